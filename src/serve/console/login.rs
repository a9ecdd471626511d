//! Logging in and out: the login form, the password check (slowed per name and per address
//! after a few failures), the session cookie it sets, and logout.

use std::net::SocketAddr;
use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::super::state::AppState;
use super::forms::Posted;
use super::view::{ROOT, cookie, page};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    user: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

/// Only a console page may be where a login leads (never another site).
fn safe_next(next: &str) -> String {
    let ok = next.starts_with("/ui/") && !next.starts_with("//") && !next.contains('\\');
    if ok {
        next.to_string()
    } else {
        format!("{ROOT}/sites")
    }
}

pub async fn form(Query(q): Query<Next>) -> Response {
    page(&LoginPage {
        next: safe_next(&q.next),
        user: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

fn again(f: &LoginForm, status: StatusCode, error: String) -> Response {
    let mut r = page(&LoginPage {
        next: safe_next(&f.next),
        user: f.user.clone(),
        error: Some(error),
    });
    *r.status_mut() = status;
    r
}

pub async fn submit(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let ip = peer.ip();
    let wait = st.login_throttle.wait(&f.user, ip, Instant::now());
    if !wait.is_zero() {
        tracing::warn!(user = %f.user, %peer, wait_s = wait.as_secs(), "console login refused: too many failures");
        let mut r = again(
            &f,
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed logins for this name or from this address: try again in {} s.",
                wait.as_secs().max(1)
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let user = match st.users.authenticate(&f.user, &f.password).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "console login could not be checked");
            return again(
                &f,
                StatusCode::SERVICE_UNAVAILABLE,
                "The login could not be checked; try again.".into(),
            );
        }
    };
    let Some(user) = user else {
        st.login_throttle.failed(&f.user, ip, Instant::now());
        tracing::warn!(user = %f.user, %peer, "console login failed");
        return again(
            &f,
            StatusCode::UNAUTHORIZED,
            "Wrong name or password.".into(),
        );
    };
    st.login_throttle.succeeded(&user.name);
    let token = match st.sessions.open(&user, &ip.to_string()).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a console session");
            return again(
                &f,
                StatusCode::SERVICE_UNAVAILABLE,
                "The session could not be opened; try again.".into(),
            );
        }
    };
    tracing::info!(user = %user.name, role = %user.role, %peer, "console login");
    let mut r = Redirect::to(&safe_next(&f.next)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie(Some(&token), &st)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub struct Nothing {}

pub async fn logout(
    State(st): State<AppState>,
    Posted(who, Nothing {}): Posted<Nothing>,
) -> Response {
    if let Err(e) = st.sessions.close(&who.session).await {
        tracing::error!(error = %e, "cannot end a console session");
    }
    tracing::info!(user = %who.session.user.name, peer = %who.peer, "console logout");
    let mut r = Redirect::to(&format!("{ROOT}/login")).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie(None, &st)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
