//! The admin API under `/api/v1`: its routes, the bearer-token gate in front of them, and the
//! inventory handlers (sites, phones, lines, settings, import, export, audit). Firmware and
//! YMCS handlers live in modules of their own; every handler is a thin call into `Manager`.

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::manage::{self, LayerInput, LineInput, PhoneInput, SiteInput, SiteUpdate};

use super::api_errors::{self, ApiResult};
use super::state::AppState;
use super::{firmware_api, ymcs_api};

/// The admin routes, behind the token check; every error answered as JSON.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
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
        .route("/ymcs/status", get(ymcs_api::status))
        .route("/ymcs/devices", get(ymcs_api::devices))
        .route("/ymcs/{op}", axum::routing::post(ymcs_api::operation))
        .route("/export", get(export_csv))
        .fallback(api_errors::not_found)
        .layer(middleware::from_fn(api_errors::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), require_admin))
}

/// Bearer-token check for the admin API, in constant time.
async fn require_admin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !st.is_admin(req.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({"error": "missing or wrong admin token"})),
        )
            .into_response();
    }
    next.run(req).await
}

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
    let report =
        crate::import::import(&st.manager, &input, &opts, &crate::import::Progress::none()).await?;
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
