//! The web console under `/ui/`: server-rendered pages (askama templates in `ui/`, compiled
//! into the binary) for technicians. This file owns the gate in front of every page — HTTPS
//! (plain HTTP only from the host itself), the session cookie, roles, the security headers —
//! and the routes; each group of pages lives in a file of its own, and every form goes
//! through [`forms`], which refuses it without the session's CSRF token.

mod audit;
mod firmware;
mod forms;
mod import;
mod login;
mod phones;
mod sites;
mod users;
mod view;
mod ymcs;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::state::AppState;
use crate::resolve::Transport;
use crate::users::sessions::Session;

use view::{ROOT, Who, cookie, session_token};

/// The console's routes: the login page and the stylesheet are open, everything else needs a
/// session.
pub fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/ui/sites") }))
        .route(
            "/import/preview",
            post(import::preview).layer(DefaultBodyLimit::max(forms::UPLOAD_CAP)),
        )
        .route("/logout", post(login::logout))
        .route("/sites", get(sites::list))
        .route("/sites/{name}", get(sites::show))
        .route("/phones", get(phones::search))
        .route("/phones/{mac}", get(phones::show).post(phones::update))
        .route("/phones/{mac}/files/{name}", get(phones::file))
        .route("/import", get(import::form))
        .route("/import/apply", post(import::apply))
        .route("/firmware", get(firmware::list))
        .route("/firmware/assign", post(firmware::assign))
        .route("/ymcs", get(ymcs::status))
        .route("/ymcs/plan", post(ymcs::plan))
        .route("/audit", get(audit::fetches))
        .route("/changes", get(audit::changes))
        .route("/users", get(users::list).post(users::add))
        .route("/users/{name}/rm", post(users::rm))
        .fallback(|who: Who| async move {
            view::error_page(&who, StatusCode::NOT_FOUND, "No such page.")
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    let open = Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/console.css", get(stylesheet));
    Router::new()
        .route("/ui/", get(|| async { Redirect::to("/ui/sites") }))
        .nest(
            ROOT,
            pages
                .merge(open)
                .layer(middleware::from_fn_with_state(state, gate)),
        )
}

/// Whether an address is this host's own.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// In front of every console answer: HTTPS only (plain HTTP from the host itself, e.g. through
/// an SSH tunnel); a form posted from another origin is refused; every answer carries the
/// headers that keep it out of frames, caches and other sites' scripts.
async fn gate(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if st.scheme == Transport::Http && !is_loopback(peer.ip()) {
        if let Some(base) = &st.public_https_url {
            let to = format!("{}{}", base.trim_end_matches('/'), req.uri().path());
            return Redirect::to(&to).into_response();
        }
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The console is served over HTTPS only (passwords cross the network): start `serve --https ADDR`, \
             or reach this port from the server itself (e.g. an SSH tunnel).\n",
        )
            .into_response();
    }
    if req.method() == Method::POST && !same_origin(&req) {
        tracing::warn!(%peer, path = %req.uri().path(), "console form from another origin refused");
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: the form came from another site.\n",
        )
            .into_response();
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    for (k, v) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Not `no-referrer`: with it a browser sends `Origin: null` on the forms, which the
        // origin check above must refuse.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// A POST whose `Origin` (when the browser sends one) is this server.
fn same_origin(req: &Request) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .map(|(_, h)| h.eq_ignore_ascii_case(host))
        .unwrap_or(false)
}

/// Pages need a live session: without one, a page sends the browser to the login (and back),
/// a form is refused.
async fn require_session(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let session: Option<Session> = match session_token(&req) {
        Some(t) => match st.sessions.check(&t).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot check a console session");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database cannot be reached; try again.\n",
                )
                    .into_response();
            }
        },
        None => None,
    };
    let Some(session) = session else {
        if req.method() == Method::GET {
            // Inside the nest the URI has lost its `/ui`.
            let here = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let to = format!(
                "{ROOT}/login?next={}",
                view::url_encode(&format!("{ROOT}{here}"))
            );
            let mut r = Redirect::to(&to).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie(None, &st)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return r;
        }
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: your session has ended; log in again.\n",
        )
            .into_response();
    };
    req.extensions_mut().insert(Who {
        session,
        peer: peer.ip(),
    });
    next.run(req).await
}

/// The console's stylesheet (compiled in: no CDN, no external font).
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../../ui/console.css"),
    )
        .into_response()
}
