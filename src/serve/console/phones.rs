//! The phones pages: search by MAC (any spelling), label or site; one phone with its last
//! fetches, its firmware (and the DENIED! flag), its lines and its files — secrets masked for
//! everyone but admins; changing its label.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::state::AppState;
use super::forms::Posted;
use super::view::{Frame, Who, ago, error_page, need, page, url_encode, when};
use crate::manage::{self, PhoneUpdate, PhoneView};
use crate::model::Role;

/// Most phones a search lists.
const SHOWN: usize = 200;

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    site: String,
}

pub struct PhoneRow {
    pub mac: String,
    pub mac_colon: String,
    pub model: String,
    pub site: String,
    pub label: String,
    pub seen: String,
    pub firmware: String,
    pub denied: bool,
}

fn row(p: &PhoneView) -> PhoneRow {
    PhoneRow {
        mac: p.mac.to_string(),
        mac_colon: p.mac_colon.clone(),
        model: p.model.clone(),
        site: p.site.clone(),
        label: p.label.clone(),
        seen: p
            .last_seen
            .as_ref()
            .map(|s| ago(s.at))
            .unwrap_or_else(|| "never".into()),
        firmware: p
            .last_seen
            .as_ref()
            .and_then(|s| s.firmware.clone())
            .unwrap_or_default(),
        denied: p.firmware_denied.is_some(),
    }
}

#[derive(Template)]
#[template(path = "phones.html")]
struct PhonesPage {
    f: Frame,
    q: String,
    site: String,
    phones: Vec<PhoneRow>,
    more: usize,
}

pub async fn search(
    State(st): State<AppState>,
    who: Who,
    Query(q): Query<SearchQuery>,
) -> Response {
    let site = (!q.site.trim().is_empty()).then(|| q.site.trim());
    // A whole MAC of an enrolled phone goes straight to its page.
    if let Ok(mac) = q.q.trim().parse::<crate::mac::Mac>()
        && let Ok(p) = st.manager.phone_show(&mac.to_string()).await
        && site.is_none_or(|s| s == p.site)
    {
        return Redirect::to(&format!("/ui/phones/{mac}")).into_response();
    }
    let (shown, total) = match st.manager.phone_search(&q.q, site, SHOWN).await {
        Ok(r) => r,
        Err(manage::Error::NotFound(m)) => return error_page(&who, StatusCode::NOT_FOUND, &m),
        Err(e) => return error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    page(&PhonesPage {
        more: total.saturating_sub(shown.len()),
        phones: shown.iter().map(row).collect(),
        q: q.q.clone(),
        site: q.site.clone(),
        f: Frame::new(&who, "phones", "Phones"),
    })
}

pub struct FetchRow {
    pub at: String,
    pub file: String,
    pub result: String,
    pub peer: String,
    pub transport: String,
    pub count: i64,
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage {
    f: Frame,
    p: PhoneView,
    seen_at: String,
    denied: Vec<String>,
    fetches: Vec<FetchRow>,
    notice: String,
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    saved: bool,
}

pub async fn show(
    State(st): State<AppState>,
    who: Who,
    Path(mac): Path<String>,
    Query(n): Query<Notice>,
) -> Response {
    let p = match st.manager.phone_show(&mac).await {
        Ok(p) => p,
        Err(manage::Error::NotFound(m) | manage::Error::Invalid(m)) => {
            return error_page(&who, StatusCode::NOT_FOUND, &m);
        }
        Err(e) => return error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let mac_s = p.mac.to_string();
    let fetches = st
        .manager
        .audit(None, Some(&mac_s), None, None, None, 20)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|a| FetchRow {
            at: when(a.last_at),
            file: a.file,
            result: a.result,
            peer: a.peer,
            transport: a.transport,
            count: a.count,
        })
        .collect();
    page(&PhonePage {
        seen_at: p
            .last_seen
            .as_ref()
            .map(|s| format!("{} ({})", when(s.at), ago(s.at)))
            .unwrap_or_default(),
        denied: p.firmware_denied.clone().unwrap_or_default(),
        fetches,
        notice: if n.saved {
            "Saved.".into()
        } else {
            String::new()
        },
        f: Frame::new(&who, "phones", format!("Phone {}", p.mac_colon)),
        p,
    })
}

#[derive(Deserialize)]
pub struct PhoneEdit {
    #[serde(default)]
    label: String,
    #[serde(default)]
    sn: String,
}

pub async fn update(
    State(st): State<AppState>,
    Path(mac): Path<String>,
    Posted(who, edit): Posted<PhoneEdit>,
) -> Response {
    if let Some(r) = need(&who, Role::Tech) {
        return r;
    }
    let u = PhoneUpdate {
        label: Some(edit.label.trim().to_string()),
        sn: Some(edit.sn.trim().to_string()),
        ..Default::default()
    };
    match st.manager.phone_update(&mac, u).await {
        Ok(p) => {
            who.record(
                &st,
                "phone.update",
                &format!(
                    "{}: label '{}', sn '{}'",
                    p.mac_colon,
                    p.label,
                    p.sn.clone().unwrap_or_default()
                ),
            )
            .await;
            Redirect::to(&format!("/ui/phones/{}?saved=true", p.mac)).into_response()
        }
        Err(manage::Error::NotFound(m)) => error_page(&who, StatusCode::NOT_FOUND, &m),
        Err(
            e @ (manage::Error::Invalid(_) | manage::Error::Conflict(_) | manage::Error::Render(_)),
        ) => error_page(&who, StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Template)]
#[template(path = "file.html")]
struct FilePage {
    f: Frame,
    mac: String,
    name: String,
    text: String,
    masked: bool,
}

/// One of the phone's files, as the phone gets it — with secrets masked unless an admin asks.
pub async fn file(
    State(st): State<AppState>,
    who: Who,
    Path((mac, name)): Path<(String, String)>,
) -> Response {
    let files = match st.manager.render_phone(&mac).await {
        Ok(f) => f,
        Err(manage::Error::NotFound(m) | manage::Error::Invalid(m)) => {
            return error_page(&who, StatusCode::NOT_FOUND, &m);
        }
        Err(e) => return error_page(&who, StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let name = crate::resolve::canonical_name(&name);
    let Some((_, bytes)) = files.iter().find(|(n, _)| *n == name) else {
        return error_page(
            &who,
            StatusCode::NOT_FOUND,
            &format!("This phone has no file '{name}'."),
        );
    };
    let text = String::from_utf8_lossy(bytes).into_owned();
    let masked = !who.role().is_admin();
    let text = if masked {
        match st.manager.phone_secrets(&mac).await {
            Ok(secrets) => manage::mask::mask_secrets(&text, &secrets),
            Err(e) => return error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    } else {
        text
    };
    page(&FilePage {
        f: Frame::new(&who, "phones", name.clone()),
        mac: url_encode(&mac),
        name,
        text,
        masked,
    })
}
