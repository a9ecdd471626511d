//! HTTP: a thin transport over the resolver for phones, and the admin REST API under
//! `/api/v1` behind a bearer token. Handlers parse, call one function, and map its result.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::manage::{self, LayerInput, LineInput, Manager, PhoneInput, SiteInput, SiteUpdate};
use crate::resolve::{RequestFacts, Resolution, Resolver, Transport};

use super::firmware_api;

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
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/sites", get(list_sites).post(add_site))
        .route(
            "/sites/{name}",
            get(show_site).patch(update_site).delete(rm_site),
        )
        .route("/phones", get(list_phones).post(add_phone))
        .route(
            "/phones/{mac}",
            get(show_phone).patch(update_phone).delete(rm_phone),
        )
        .route("/phones/{mac}/lines/{n}", put(set_line).delete(rm_line))
        .route("/phones/{mac}/files", get(phone_files))
        .route("/phones/{mac}/files/{name}", get(phone_file))
        .route(
            "/settings",
            get(list_settings).put(set_setting).delete(rm_setting),
        )
        .route("/import", axum::routing::post(import_csv))
        .route(
            "/firmware",
            get(firmware_api::list_firmware).post(firmware_api::upload_firmware),
        )
        .route("/firmware/assign", put(firmware_api::assign_firmware))
        .route("/firmware/audit", get(firmware_api::audit_firmware))
        .route("/audit", get(fetch_audit))
        .route("/ymcs/status", get(super::ymcs_api::status))
        .route("/ymcs/devices", get(super::ymcs_api::devices))
        .route(
            "/ymcs/{op}",
            axum::routing::post(super::ymcs_api::operation),
        )
        .route("/export", get(export_csv))
        .fallback(super::api_errors::not_found)
        .layer(middleware::from_fn(super::api_errors::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .nest("/api/v1", api)
        .fallback(phone_request)
        .layer(middleware::from_fn(limit_headers))
        .with_state(state)
}

/// Largest total size of a request's headers; phones send a few hundred bytes.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests with oversized headers (431) before any handler runs.
async fn limit_headers(req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// What the resolver needs to know of an HTTP request.
fn facts_of(req: &Request, peer: SocketAddr, scheme: Transport) -> RequestFacts<'_> {
    let header = |h| {
        req.headers()
            .get(h)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    RequestFacts {
        path: req.uri().path(),
        peer: peer.ip(),
        user_agent: header(header::USER_AGENT),
        transport: scheme,
        authorization: header(header::AUTHORIZATION),
        method: req.method().as_str(),
        uri: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
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
        Method::GET | Method::HEAD => {
            let path = req.uri().path();
            let facts = facts_of(&req, peer, st.scheme);
            match st.resolver.resolve(&facts) {
                Resolution::Found(file) => {
                    tracing::debug!(%peer, mac = ?file.mac, path = %path, "served");
                    let mut headers = HeaderMap::new();
                    if let Ok(v) = HeaderValue::from_str(&file.etag) {
                        headers.insert(header::ETAG, v);
                    }
                    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    if etag_matches(req.headers(), &file.etag) {
                        return (StatusCode::NOT_MODIFIED, headers).into_response();
                    }
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(file.content_type),
                    );
                    (StatusCode::OK, headers, Body::from(file.bytes.clone())).into_response()
                }
                Resolution::Disk(d) => disk_response(&d, req.headers(), peer).await,
                Resolution::NotFound => {
                    tracing::debug!(%peer, path = %path, "not found");
                    not_found()
                }
                Resolution::Unauthorized => {
                    tracing::debug!(%peer, path = %path, "unauthorized");
                    unauthorized(&st)
                }
            }
        }
        Method::PUT => upload(st, peer, req).await,
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD, PUT")],
            "Method Not Allowed\n",
        )
            .into_response(),
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
    let (site_id, mac, name) = match st.resolver.upload_target(&facts_of(&req, peer, st.scheme)) {
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
    let body = match axum::body::to_bytes(req.into_body(), st.upload_cap.saturating_mul(4)).await {
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

/// Bearer-token check for the admin API, in constant time.
async fn require_admin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if st.admin_tokens.verify(given).is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({"error": "missing or wrong admin token"})),
        )
            .into_response();
    }
    next.run(req).await
}

/// A manage error as an HTTP answer: client errors say why; internal ones are logged in full
/// and answered blandly.
pub struct ApiError(pub manage::Error);

impl From<manage::Error> for ApiError {
    fn from(e: manage::Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use manage::Error as E;
        let status = match &self.0 {
            E::Invalid(_) => StatusCode::BAD_REQUEST,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Render(_) | E::Policy(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::Store(e) => {
                tracing::error!(error = %e, "admin request failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(serde_json::json!({"error": "internal error; see the server log"})),
                )
                    .into_response();
            }
        };
        (
            status,
            Json(serde_json::json!({"error": self.0.to_string()})),
        )
            .into_response()
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

async fn list_sites(State(st): State<AppState>) -> ApiResult<Response> {
    Ok(Json(st.manager.site_list().await?).into_response())
}

async fn add_site(State(st): State<AppState>, Json(input): Json<SiteInput>) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(st.manager.site_add(input).await?)).into_response())
}

async fn show_site(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(st.manager.site_show(&name).await?).into_response())
}

async fn update_site(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(u): Json<SiteUpdate>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.site_update(&name, u).await?).into_response())
}

#[derive(Deserialize)]
struct RmSiteQuery {
    #[serde(default)]
    force: bool,
}

async fn rm_site(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RmSiteQuery>,
) -> ApiResult<Response> {
    let removed = st.manager.site_rm(&name, q.force).await?;
    Ok(Json(serde_json::json!({"removed_phones": removed})).into_response())
}

#[derive(Deserialize)]
struct PhoneQuery {
    site: Option<String>,
}

async fn list_phones(
    State(st): State<AppState>,
    Query(q): Query<PhoneQuery>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.phone_list(q.site.as_deref()).await?).into_response())
}

async fn add_phone(
    State(st): State<AppState>,
    Json(input): Json<PhoneInput>,
) -> ApiResult<Response> {
    Ok((
        StatusCode::CREATED,
        Json(st.manager.phone_add(input).await?),
    )
        .into_response())
}

async fn show_phone(State(st): State<AppState>, Path(mac): Path<String>) -> ApiResult<Response> {
    Ok(Json(st.manager.phone_show(&mac).await?).into_response())
}

async fn update_phone(
    State(st): State<AppState>,
    Path(mac): Path<String>,
    Json(u): Json<manage::PhoneUpdate>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.phone_update(&mac, u).await?).into_response())
}

async fn rm_phone(State(st): State<AppState>, Path(mac): Path<String>) -> ApiResult<Response> {
    st.manager.phone_rm(&mac).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_line(
    State(st): State<AppState>,
    Path((mac, n)): Path<(String, u32)>,
    Json(input): Json<LineInput>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.line_set(&mac, n, input).await?).into_response())
}

async fn rm_line(
    State(st): State<AppState>,
    Path((mac, n)): Path<(String, u32)>,
) -> ApiResult<Response> {
    st.manager.line_rm(&mac, n).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn phone_files(State(st): State<AppState>, Path(mac): Path<String>) -> ApiResult<Response> {
    let files = st.manager.render_phone(&mac).await?;
    let list: Vec<_> = files
        .iter()
        .map(|(n, b)| serde_json::json!({"name": n, "size": b.len()}))
        .collect();
    Ok(Json(list).into_response())
}

async fn phone_file(
    State(st): State<AppState>,
    Path((mac, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let files = st.manager.render_phone(&mac).await?;
    let name = crate::resolve::canonical_name(&name);
    let (_, bytes): &(String, Bytes) = files
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| manage::Error::NotFound(format!("phone {mac} has no file '{name}'")))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        bytes.clone(),
    )
        .into_response())
}

#[derive(Deserialize)]
struct SettingBody {
    #[serde(flatten)]
    layer: LayerInput,
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct SettingQuery {
    #[serde(flatten)]
    layer: LayerInput,
    key: Option<String>,
}

async fn list_settings(
    State(st): State<AppState>,
    Query(q): Query<SettingQuery>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.setting_list(&q.layer).await?).into_response())
}

async fn set_setting(
    State(st): State<AppState>,
    Json(b): Json<SettingBody>,
) -> ApiResult<Response> {
    let changed = st.manager.setting_set(&b.layer, &b.key, &b.value).await?;
    Ok(Json(serde_json::json!({"changed": changed})).into_response())
}

async fn rm_setting(
    State(st): State<AppState>,
    Query(q): Query<SettingQuery>,
) -> ApiResult<Response> {
    let key = q
        .key
        .ok_or_else(|| manage::Error::Invalid("name the setting to remove with ?key=".into()))?;
    st.manager.setting_rm(&q.layer, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct ImportQuery {
    site: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default, rename = "move")]
    allow_move: bool,
}

/// Largest CSV body the API takes (about a million rows).
const IMPORT_CAP: usize = 128 * 1024 * 1024;

async fn import_csv(
    State(st): State<AppState>,
    Query(q): Query<ImportQuery>,
    req: Request,
) -> ApiResult<Response> {
    let body = match axum::body::to_bytes(req.into_body(), IMPORT_CAP).await {
        Ok(b) => b,
        Err(_) => {
            return Ok((
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(serde_json::json!({"error": format!("CSV larger than {IMPORT_CAP} bytes")})),
            )
                .into_response());
        }
    };
    let input = crate::import::Input::Bytes(body);
    let opts = crate::import::Options {
        site: q.site,
        dry_run: q.dry_run,
        allow_move: q.allow_move,
        ..Default::default()
    };
    let report = crate::import::import(&st.manager, &input, &opts, &mut |_| {}).await?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)).into_response())
}

#[derive(Deserialize)]
struct ExportQuery {
    site: Option<String>,
    #[serde(default)]
    with_secrets: bool,
}

async fn export_csv(
    State(st): State<AppState>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let mut out = Vec::new();
    crate::import::export(&st.manager, q.site.as_deref(), q.with_secrets, &mut out).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    site: Option<String>,
    mac: Option<String>,
    peer: Option<String>,
    result: Option<String>,
    /// Unix ms.
    since: Option<i64>,
    limit: Option<i64>,
}

async fn fetch_audit(
    State(st): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let rows = st
        .manager
        .audit(
            q.site.as_deref(),
            q.mac.as_deref(),
            q.peer,
            q.result,
            q.since,
            q.limit.unwrap_or(100),
        )
        .await?;
    Ok(Json(rows).into_response())
}
