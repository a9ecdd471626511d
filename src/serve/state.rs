//! What every HTTP handler can reach — the resolver, the manager, the admin tokens, the
//! console's users and sessions, and which listener it serves — behind one pointer cloned per
//! request.

use std::sync::Arc;

use crate::manage::Manager;
use crate::resolve::{Resolver, Transport};

/// What every handler can reach; one pointer to clone per request.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: AppInner) -> AppState {
        AppState(Arc::new(inner))
    }
}

/// The contents of [`AppState`].
pub struct AppInner {
    pub resolver: Resolver,
    pub manager: Manager,
    /// The admin bearer tokens (hashes).
    pub admin_tokens: Arc<crate::tokens::TokenFile>,
    /// Largest body a phone may PUT.
    pub upload_cap: usize,
    /// Which listener this state serves: plain HTTP or HTTPS.
    pub scheme: Transport,
    /// The data dir (YMCS settings).
    pub data_dir: std::path::PathBuf,
    /// The Prometheus text, when the recorder is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `/metrics` for any address without a token (`--metrics-open`); loopback always is.
    pub metrics_open: bool,
    /// Time to answer a phone on this listener.
    pub latency: metrics::Histogram,
    /// The web console's users and their sessions.
    pub users: crate::users::Users,
    pub sessions: crate::users::sessions::Sessions,
    /// Failed console logins, per name and address (shared by both listeners).
    pub login_throttle: Arc<crate::users::throttle::LoginThrottle>,
    /// Where the console sends a browser that came over plain HTTP from another host.
    pub public_https_url: Option<String>,
}

impl AppInner {
    /// Whether the request carries a valid admin bearer token (checked in constant time).
    pub fn is_admin(&self, headers: &axum::http::HeaderMap) -> bool {
        self.token_of(headers).is_some()
    }

    /// The name of the valid admin bearer token the request carries, if any.
    pub fn token_of(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        self.admin_tokens.verify(given)
    }
}
