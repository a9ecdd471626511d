//! What the console's pages share: who is asking ([`Who`], from the session the gate checked),
//! the role check, the frame every page is drawn in (navigation, the user, the logout form),
//! error pages, the session cookie, and formatting.

use std::net::IpAddr;

use askama::Template;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::super::state::AppState;
use crate::model::Role;
use crate::users::sessions::Session;

/// Where the console is mounted.
pub const ROOT: &str = "/ui";
/// The session cookie's name.
const COOKIE: &str = "phoneprov_session";

/// The user behind a request, and from where.
#[derive(Clone, Debug)]
pub struct Who {
    pub session: Session,
    pub peer: IpAddr,
}

impl Who {
    pub fn role(&self) -> Role {
        self.session.user.role
    }

    /// Records a change this user made.
    pub async fn record(&self, st: &AppState, action: &str, detail: &str) {
        let peer = self.peer.to_string();
        if let Err(e) = st
            .users
            .record(&self.session.user, &peer, action, detail)
            .await
        {
            tracing::error!(error = %e, user = %self.session.user.name, %action, "cannot record a console change");
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Who, Response> {
        parts
            .extensions
            .get::<Who>()
            .cloned()
            .ok_or_else(|| (StatusCode::FORBIDDEN, "Forbidden: log in first.\n").into_response())
    }
}

/// What every page's frame shows: the user, their role's navigation, the logout form.
pub struct Frame {
    pub title: String,
    pub tab: &'static str,
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub may_change: bool,
    pub is_admin: bool,
}

impl Frame {
    pub fn new(who: &Who, tab: &'static str, title: impl Into<String>) -> Frame {
        Frame {
            title: title.into(),
            tab,
            user: who.session.user.name.clone(),
            role: who.role().as_str(),
            csrf: who.session.csrf.clone(),
            may_change: who.role().may_change(),
            is_admin: who.role().is_admin(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    f: Frame,
    message: &'a str,
}

/// A page saying what went wrong, in the user's frame.
pub fn error_page(who: &Who, status: StatusCode, message: &str) -> Response {
    let mut r = page(&ErrorPage {
        f: Frame::new(who, "", status.canonical_reason().unwrap_or("Error")),
        message,
    });
    *r.status_mut() = status;
    r
}

/// A template drawn as an HTML answer (a 500 that says so if it cannot be).
pub fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page failed to render.\n",
            )
                .into_response()
        }
    }
}

/// The page refusing a request below `role`, if it is.
pub fn need(who: &Who, role: Role) -> Option<Response> {
    if who.role() >= role {
        return None;
    }
    Some(error_page(
        who,
        StatusCode::FORBIDDEN,
        &format!(
            "This needs the {role} role; you are {} ({}).",
            who.session.user.name,
            who.role()
        ),
    ))
}

/// The session cookie's token, if the request has one.
pub fn session_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value that opens (`Some(token)`) or ends a session.
pub fn cookie(token: Option<&str>, st: &AppState) -> String {
    match token {
        Some(t) => format!(
            "{COOKIE}={t}; Path={ROOT}; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            st.sessions.policy().lifetime.as_secs()
        ),
        None => format!("{COOKIE}=; Path={ROOT}; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
    }
}

/// Every site's name, for a form's choice (empty if the database cannot say: the form's
/// answer will).
pub async fn site_names(st: &AppState) -> Vec<String> {
    st.manager
        .site_names()
        .await
        .map(|v| v.into_iter().map(|(_, n)| n).collect())
        .unwrap_or_default()
}

/// Unix milliseconds as `2026-12-02 03:40:12 UTC`.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

/// How long ago, roughly (`3 min ago`).
pub fn ago(ms: i64) -> String {
    let s = (crate::store::now_ms() - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
