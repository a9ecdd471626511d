//! HTTP: a thin transport over the resolver for phones (GET, HEAD, and the uploads phones
//! PUT), with the admin API of [`super::admin_api`] nested under `/api/v1`.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::resolve::{RequestFacts, Resolution, Transport};

use super::api_errors::ApiError;
use super::state::AppState;

/// The phones' routes and, under `/api/v1`, the admin API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .merge(super::admin_api::routes(state.clone()))
        .merge(super::console::routes(state.clone()))
        .fallback(phone_request)
        .layer(middleware::from_fn(limit_headers))
        .with_state(state)
}

/// `GET /metrics`: the Prometheus text. Open to the host itself (127.0.0.1 or ::1: a local
/// scraper or agent), to any address with `--metrics-open`, otherwise only with an admin
/// bearer token.
async fn metrics_text(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let local = match peer.ip() {
        std::net::IpAddr::V4(a) => a == std::net::Ipv4Addr::LOCALHOST,
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
        }
    };
    let allowed = local || st.metrics_open || st.is_admin(&headers);
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need an admin token from this address (or serve --metrics-open)\n",
        )
            .into_response();
    }
    match &st.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded\n",
        )
            .into_response(),
    }
}

/// Largest total size of a request's headers; phones send a few hundred bytes.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests with oversized headers (431) before any handler runs.
async fn limit_headers(req: Request, next: Next) -> Response {
    match oversized(req.headers()) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    }
}

/// The 431 for headers over [`MAX_HEADER_BYTES`] in all.
fn oversized(headers: &HeaderMap) -> Option<Response> {
    let size: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    (size > MAX_HEADER_BYTES).then(|| {
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large\n",
        )
            .into_response()
    })
}

/// What the resolver needs to know of an HTTP request.
fn facts_of(req: &Parts, peer: SocketAddr, scheme: Transport) -> RequestFacts<'_> {
    let header = |h| {
        req.headers
            .get(h)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    RequestFacts {
        path: req.uri.path(),
        peer: peer.ip(),
        user_agent: header(header::USER_AGENT),
        transport: scheme,
        authorization: header(header::AUTHORIZATION),
        method: req.method.as_str(),
        uri: req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        auth_checked: Default::default(),
    }
}

/// The answer when credentials are needed, and to every miss a caller without them could
/// otherwise tell from it: the same status, headers (a fresh nonce) and body.
fn unauthorized(st: &AppState) -> Response {
    let [digest, basic] = st.resolver.challenge();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for v in [digest, basic] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.append(header::WWW_AUTHENTICATE, v);
        }
    }
    (StatusCode::UNAUTHORIZED, headers, "Unauthorized\n").into_response()
}

/// The one answer to every miss, whatever the cause: nothing tells a scanner which MACs exist.
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not Found\n",
    )
        .into_response()
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// Phones: GET and HEAD fetch files; PUT uploads logs and overrides.
async fn phone_request(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    match *req.method() {
        Method::GET | Method::HEAD => fetch(&st, peer, &req.into_parts().0).await,
        Method::PUT => upload(st, peer, req).await,
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD, PUT")],
            "Method Not Allowed\n",
        )
            .into_response(),
    }
}

/// A phone's GET or HEAD that bypassed the router ([`super::http_server`] sends those under
/// `/p/` straight here): the router's header limit, then [`fetch`].
pub(super) async fn fetch_unrouted(st: &AppState, peer: SocketAddr, req: &Parts) -> Response {
    match oversized(&req.headers) {
        Some(refusal) => refusal,
        None => fetch(st, peer, req).await,
    }
}

/// A phone's GET or HEAD, timed.
async fn fetch(st: &AppState, peer: SocketAddr, req: &Parts) -> Response {
    let started = std::time::Instant::now();
    let r = answer(st, peer, req).await;
    st.latency.record(started.elapsed().as_secs_f64());
    r
}

async fn answer(st: &AppState, peer: SocketAddr, req: &Parts) -> Response {
    let path = req.uri.path();
    let facts = facts_of(req, peer, st.scheme);
    match crate::resolve::answer(&st.resolver, &facts).await {
        Resolution::Found(file) => {
            tracing::debug!(%peer, mac = ?file.mac(), path = %path, "served");
            // Built in place: the answer to most of a boot storm's requests.
            let fresh = etag_matches(&req.headers, file.etag());
            let etag = HeaderValue::from_bytes(file.etag().as_bytes());
            let content_type = file.content_type();
            let mut r = match fresh {
                true => Response::new(Body::empty()),
                false => Response::new(Body::from(file.body())),
            };
            let headers = r.headers_mut();
            headers.reserve(3);
            if let Ok(v) = etag {
                headers.insert(header::ETAG, v);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            if fresh {
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                return r;
            }
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        Resolution::Disk(d) => disk_response(&d, &req.headers, peer).await,
        Resolution::NotFound => {
            tracing::debug!(%peer, path = %path, "not found");
            not_found()
        }
        Resolution::Unauthorized => {
            tracing::debug!(%peer, path = %path, "unauthorized");
            unauthorized(st)
        }
    }
}

/// Streams an operator's static file; memory stays flat whatever its size.
async fn disk_response(
    d: &crate::resolve::DiskFile,
    req_headers: &HeaderMap,
    peer: SocketAddr,
) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&d.etag) {
        headers.insert(header::ETAG, v);
    }
    if etag_matches(req_headers, &d.etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let file = match tokio::fs::File::open(&d.path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(%peer, path = %d.path.display(), error = %e, "static file vanished");
            return not_found();
        }
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(d.len));
    tracing::debug!(%peer, path = %d.path.display(), bytes = d.len, "streaming static file");
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    (StatusCode::OK, headers, body).into_response()
}

async fn upload(st: AppState, peer: SocketAddr, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let (site_id, mac, name) = match st
        .resolver
        .upload_target(&facts_of(&parts, peer, st.scheme))
    {
        Ok(t) => t,
        Err(Resolution::Unauthorized) => return unauthorized(&st),
        Err(_) => return not_found(),
    };
    // Read up to a bounded multiple of the cap, so a client sending a moderately oversized
    // body gets a clean 413 instead of a reset connection; beyond that, stop reading.
    let too_large = || {
        tracing::warn!(%peer, %mac, file = %name, cap = st.upload_cap, "upload refused: too large");
        (StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n").into_response()
    };
    let body = match axum::body::to_bytes(body, st.upload_cap.saturating_mul(4)).await {
        Ok(b) if b.len() <= st.upload_cap => b,
        _ => return too_large(),
    };
    match st.manager.store_upload(site_id, mac, &name, &body).await {
        Ok(()) => {
            tracing::info!(%peer, %mac, file = %name, bytes = body.len(), "upload stored");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}
