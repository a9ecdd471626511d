//! The audit pages: the fetch audit (what each phone fetched, from where, how it went) with
//! filters, and the changes made through the console with who made them.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::super::state::AppState;
use super::view::{Frame, Who, error_page, page, when};

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    site: String,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    peer: String,
    #[serde(default)]
    result: String,
}

pub struct AuditLine {
    pub at: String,
    pub site: String,
    pub mac: String,
    pub file: String,
    pub result: String,
    pub peer: String,
    pub transport: String,
    pub auth: String,
    pub count: i64,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    f: Frame,
    q: AuditQuery,
    rows: Vec<AuditLine>,
    results: &'static [&'static str],
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub async fn fetches(
    State(st): State<AppState>,
    who: Who,
    Query(q): Query<AuditQuery>,
) -> Response {
    let rows = st
        .manager
        .audit(
            opt(&q.site).as_deref(),
            opt(&q.mac).as_deref(),
            opt(&q.peer),
            opt(&q.result),
            None,
            200,
        )
        .await;
    match rows {
        Ok(rows) => page(&AuditPage {
            rows: rows
                .into_iter()
                .map(|a| AuditLine {
                    at: when(a.last_at),
                    site: a.site.unwrap_or_default(),
                    mac: a.mac.unwrap_or_default(),
                    file: a.file,
                    result: a.result,
                    peer: a.peer,
                    transport: a.transport,
                    auth: a.auth,
                    count: a.count,
                })
                .collect(),
            q,
            results: &[
                "served",
                "not-found",
                "unauthorized",
                "refused-network",
                "refused-transport",
                "banned",
            ],
            f: Frame::new(&who, "audit", "Fetch audit"),
        }),
        Err(e @ (crate::manage::Error::Invalid(_) | crate::manage::Error::NotFound(_))) => {
            error_page(&who, StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())
        }
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Deserialize, Default)]
pub struct ChangesQuery {
    #[serde(default)]
    user: String,
}

pub struct ChangeLine {
    pub at: String,
    pub user: String,
    pub role: String,
    pub peer: String,
    pub action: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "changes.html")]
struct ChangesPage {
    f: Frame,
    user: String,
    rows: Vec<ChangeLine>,
}

pub async fn changes(
    State(st): State<AppState>,
    who: Who,
    Query(q): Query<ChangesQuery>,
) -> Response {
    match st.users.actions(opt(&q.user).as_deref(), 500).await {
        Ok(rows) => page(&ChangesPage {
            rows: rows
                .into_iter()
                .map(|a| ChangeLine {
                    at: when(a.at),
                    user: a.user,
                    role: a.role,
                    peer: a.peer,
                    action: a.action,
                    detail: a.detail,
                })
                .collect(),
            user: q.user,
            f: Frame::new(&who, "changes", "Changes made in the console"),
        }),
        Err(e) => error_page(&who, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
