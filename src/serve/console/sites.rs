//! The sites pages: every site with its provisioning URL, login and rotation progress, phone
//! count, re-check schedule and recovery; one site in full.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::super::state::AppState;
use super::view::{Frame, Who, error_page, page, when};
use crate::manage::SiteView;
use crate::model::Role;

/// A site as a row of the page.
pub struct SiteRow {
    pub name: String,
    pub url: String,
    pub login: String,
    pub rotation: String,
    pub phones: i64,
    pub recheck: String,
    pub recovery: String,
    pub sip: String,
    pub warnings: Vec<String>,
}

/// The provisioning URL as this role may see it: the site key is a capability, so a viewer
/// sees it masked.
fn url_for(who: &Who, v: &SiteView) -> String {
    if who.role() >= Role::Tech || v.site.key.is_empty() {
        v.provisioning_url.clone()
    } else {
        v.provisioning_url.replace(&v.site.key, "••••••")
    }
}

fn row(who: &Who, v: &SiteView) -> SiteRow {
    let a = &v.site.access;
    let login = match &a.auth {
        Some(c) => format!("login '{}'", c.user),
        None => "no login".into(),
    };
    let rotation = match (
        &a.previous_auth,
        a.previous_until,
        v.phones_on_current_login,
    ) {
        (Some(p), Some(until), Some(on)) if until > crate::store::now_ms() => format!(
            "rotating from '{}' until {}: {on} of {} phones on the new login",
            p.user,
            when(until),
            v.phones
        ),
        (_, _, Some(on)) => format!("{on} of {} phones fetched with it", v.phones),
        _ => String::new(),
    };
    SiteRow {
        name: v.site.name.clone(),
        url: url_for(who, v),
        login,
        rotation,
        phones: v.phones,
        recheck: v.site.sip.recheck.to_string(),
        recovery: match &v.site.recovery_sha256 {
            Some(s) => format!("on: image {}", &s[..s.len().min(12)]),
            None => "off".into(),
        },
        sip: format!(
            "{}:{} ({})",
            v.site.sip_server, v.site.sip_port, v.site.transport
        ),
        warnings: v.warnings.clone(),
    }
}

#[derive(Template)]
#[template(path = "sites.html")]
struct SitesPage {
    f: Frame,
    sites: Vec<SiteRow>,
}

pub async fn list(State(st): State<AppState>, who: Who) -> Response {
    match st.manager.site_list().await {
        Ok(sites) => page(&SitesPage {
            sites: sites.iter().map(|v| row(&who, v)).collect(),
            f: Frame::new(&who, "sites", "Sites"),
        }),
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Template)]
#[template(path = "site.html")]
struct SitePage {
    f: Frame,
    s: SiteRow,
    time_zone: String,
    ntp: String,
    nets: String,
    https: bool,
    tftp: bool,
    ymcs_site: String,
}

pub async fn show(State(st): State<AppState>, who: Who, Path(name): Path<String>) -> Response {
    match st.manager.site_show(&name).await {
        Ok(v) => page(&SitePage {
            time_zone: v
                .site
                .time_zone
                .clone()
                .unwrap_or_else(|| "(phone default)".into()),
            ntp: v.site.ntp.join(" "),
            nets: v
                .site
                .access
                .allow_nets
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            https: v.site.access.require_https,
            tftp: v.site.access.tftp_allowed(),
            ymcs_site: v
                .site
                .ymcs_site
                .clone()
                .unwrap_or_else(|| v.site.name.clone()),
            s: row(&who, &v),
            f: Frame::new(&who, "sites", format!("Site {}", v.site.name)),
        }),
        Err(crate::manage::Error::NotFound(m)) => error_page(&who, StatusCode::NOT_FOUND, &m),
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
