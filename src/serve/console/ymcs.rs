//! The YMCS/RPS page: whether the key works and YMCS's sites; a site's phones beside YMCS's
//! devices; an operation (register, RPS add or remove, reboot) shown as a dry-run plan first,
//! sent only when the plan's Confirm is pressed.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::super::state::AppState;
use super::forms::Posted;
use super::view::{Frame, Who, need, page, site_names};
use crate::model::Role;
use crate::ymcs::{self, Client, Clouds, Report, YmcsConfig};

pub struct YmcsSite {
    pub name: String,
    pub devices: String,
}

pub struct DeviceRow {
    pub mac: String,
    pub site: String,
    pub ymcs_site: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "ymcs.html")]
struct YmcsPage {
    f: Frame,
    site: String,
    sites: Vec<String>,
    problem: String,
    ymcs_sites: Vec<YmcsSite>,
    devices: Vec<DeviceRow>,
    op: String,
    report: Option<Report>,
    confirmed: bool,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Deserialize, Default)]
pub struct SiteQuery {
    #[serde(default)]
    site: String,
}

fn blank(who: &Who, site: String, sites: Vec<String>) -> YmcsPage {
    YmcsPage {
        f: Frame::new(who, "ymcs", "Yealink cloud (YMCS and RPS)"),
        site,
        sites,
        problem: String::new(),
        ymcs_sites: vec![],
        devices: vec![],
        op: String::new(),
        report: None,
        confirmed: false,
    }
}

pub async fn status(State(st): State<AppState>, who: Who, Query(q): Query<SiteQuery>) -> Response {
    let mut p = blank(&who, q.site.clone(), site_names(&st).await);
    let client = YmcsConfig::load(&st.data_dir)
        .map_err(ymcs::OpError::from)
        .and_then(|c| Ok(Client::new(c)?));
    match client {
        Err(e) => p.problem = format!("YMCS is not set up or cannot be reached: {e}"),
        Ok(mut c) => {
            match ymcs::status(&mut c).await {
                Ok(v) => {
                    p.ymcs_sites = v["sites"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|s| YmcsSite {
                                    name: text(&s["name"]),
                                    devices: text(&s["devices"]),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                }
                Err(e) => p.problem = format!("YMCS status: {e}"),
            }
            if !q.site.is_empty() && p.problem.is_empty() {
                match ymcs::devices(&st.manager, &mut c, Some(&q.site)).await {
                    Ok(d) => {
                        p.devices = d
                            .iter()
                            .map(|v| DeviceRow {
                                mac: text(&v["mac"]),
                                site: text(&v["site"]),
                                ymcs_site: text(&v["ymcs_site"]),
                                state: text(&v["state"]),
                            })
                            .collect()
                    }
                    Err(e) => p.problem = format!("YMCS devices: {e}"),
                }
            }
        }
    }
    page(&p)
}

#[derive(Deserialize)]
pub struct OpForm {
    op: String,
    site: String,
    #[serde(default)]
    confirm: String,
}

/// An operation for a site's phones: the plan, or (with `confirm`) the real thing.
pub async fn plan(State(st): State<AppState>, Posted(who, f): Posted<OpForm>) -> Response {
    if let Some(r) = need(&who, Role::Tech) {
        return r;
    }
    let confirm = f.confirm == "yes";
    let mut p = blank(&who, f.site.clone(), site_names(&st).await);
    p.op = f.op.clone();
    let r = async {
        let targets = st.manager.phones_for(Some(&f.site), &[]).await?;
        let mut clouds = Clouds::new(&st.data_dir);
        let none = &|_, _| {};
        match f.op.as_str() {
            "register" => ymcs::register(clouds.ymcs()?, targets, confirm, none).await,
            "rps-add" => ymcs::rps_add(&st.manager, clouds.rps()?, targets, confirm, none).await,
            "rps-remove" => ymcs::rps_remove(clouds.rps()?, targets, confirm, none).await,
            "reboot" => ymcs::reboot(clouds.ymcs()?, targets, confirm, 60, none).await,
            other => Err(ymcs::OpError::Invalid(format!(
                "no YMCS operation '{other}'"
            ))),
        }
    }
    .await;
    match r {
        Ok(rep) => {
            if confirm {
                let failed = rep.failed().len();
                who.record(
                    &st,
                    &format!("ymcs.{}", f.op),
                    &format!(
                        "site {}: {} phones, {failed} failed",
                        f.site,
                        rep.rows.len()
                    ),
                )
                .await;
            }
            p.confirmed = confirm;
            p.report = Some(rep);
            page(&p)
        }
        Err(e) => {
            p.problem = format!("YMCS {}: {e}", f.op);
            let mut resp = page(&p);
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp
        }
    }
}
