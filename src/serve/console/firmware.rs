//! The firmware page: every stored image with the policy's verdict now and how far its
//! rollout has gone (of the phones it is assigned to, how many last reported running it), and
//! assigning an image to a site, a model in a site, or one phone.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::state::AppState;
use super::forms::Posted;
use super::view::{Frame, Who, error_page, need, page, site_names, url_encode, when};
use crate::model::Role;
use crate::rollout::TargetInput;

pub struct ImageRow {
    pub file: String,
    pub vendor: String,
    pub version: String,
    pub models: String,
    pub size_mb: String,
    pub sha256: String,
    pub added: String,
    pub allowed: bool,
    pub refusals: Vec<String>,
    pub layers: usize,
    pub targeted: u64,
    pub running: u64,
}

#[derive(Template)]
#[template(path = "firmware.html")]
struct FirmwarePage {
    f: Frame,
    images: Vec<ImageRow>,
    sites: Vec<String>,
    notice: String,
    problem: String,
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    assigned: String,
    #[serde(default)]
    problem: String,
}

pub async fn list(State(st): State<AppState>, who: Who, Query(n): Query<Notice>) -> Response {
    let images = match st.manager.firmware_list().await {
        Ok(i) => i,
        Err(e) => return error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let sites = site_names(&st).await;
    let mut r = page(&FirmwarePage {
        images: images
            .into_iter()
            .map(|v| ImageRow {
                file: v.image.file_name.clone(),
                vendor: v.image.vendor.clone(),
                version: v.image.version.clone(),
                models: v.image.models.join(" "),
                size_mb: format!("{:.1}", v.image.size as f64 / 1_048_576.0),
                sha256: v.image.sha256.clone(),
                added: when(v.image.added_at),
                allowed: v.verdict.allowed(),
                refusals: v.verdict.refusals.clone(),
                layers: v.assigned,
                targeted: v.targeted,
                running: v.running,
            })
            .collect(),
        sites,
        notice: if n.assigned.is_empty() {
            String::new()
        } else {
            format!("Assigned {}.", n.assigned)
        },
        problem: n.problem.clone(),
        f: Frame::new(&who, "firmware", "Firmware"),
    });
    if !n.problem.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

#[derive(Deserialize)]
pub struct AssignForm {
    image: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    phone: String,
}

fn some(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub async fn assign(State(st): State<AppState>, Posted(who, a): Posted<AssignForm>) -> Response {
    if let Some(r) = need(&who, Role::Tech) {
        return r;
    }
    let t = TargetInput {
        site: some(&a.site),
        model: some(&a.model),
        phone: some(&a.phone),
    };
    let target = match (&t.phone, &t.site, &t.model) {
        (Some(p), _, _) => format!("phone {p}"),
        (None, Some(s), Some(m)) => format!("{m} phones of site {s}"),
        (None, Some(s), None) => format!("site {s}"),
        _ => String::new(),
    };
    match st.manager.firmware_assign(&a.image, &t).await {
        Ok(image) => {
            let what = format!("{} ({}) to {target}", image.version, image.file_name);
            who.record(&st, "firmware.assign", &what).await;
            Redirect::to(&format!("/ui/firmware?assigned={}", url_encode(&what))).into_response()
        }
        Err(e) => Redirect::to(&format!(
            "/ui/firmware?problem={}",
            url_encode(&e.to_string())
        ))
        .into_response(),
    }
}
