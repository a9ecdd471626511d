//! The admin API under `/api/v1`: its routes (each one in the OpenAPI document), the
//! bearer-token gate in front of them, and the fetch audit. The handlers of each resource live in
//! modules of their own (`site_api`, `phone_api`, `setting_api`, `import_api`, `firmware_api`,
//! `ymcs_api`); every handler is a thin call into `Manager`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::api_errors::{self, ApiResult};
use super::openapi::{self, Failures};
use super::state::AppState;
use super::{firmware_api, import_api, phone_api, setting_api, site_api, ymcs_api};

/// The admin API at `/api/v1`: every route behind the token check (but the document), every
/// error answered as JSON, and every route in the OpenAPI document (each is added with
/// `routes!`, which takes it from the handler's `#[utoipa::path]`).
pub fn routes(state: AppState) -> Router<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(site_api::list_sites, site_api::add_site))
        .routes(routes!(
            site_api::show_site,
            site_api::update_site,
            site_api::rm_site
        ))
        .routes(routes!(phone_api::list_phones, phone_api::add_phone))
        .routes(routes!(
            phone_api::show_phone,
            phone_api::update_phone,
            phone_api::rm_phone
        ))
        .routes(routes!(phone_api::set_line, phone_api::rm_line))
        .routes(routes!(phone_api::phone_files))
        .routes(routes!(phone_api::phone_file))
        .routes(routes!(
            setting_api::list_settings,
            setting_api::set_setting,
            setting_api::rm_setting
        ))
        .routes(routes!(import_api::import_csv))
        .routes(routes!(import_api::export_csv))
        .routes(routes!(fetch_audit))
        .routes(routes!(
            firmware_api::list_firmware,
            firmware_api::upload_firmware
        ))
        .routes(routes!(firmware_api::assign_firmware))
        .routes(routes!(firmware_api::audit_firmware))
        .routes(routes!(ymcs_api::status))
        .routes(routes!(ymcs_api::devices))
        .routes(routes!(ymcs_api::operation))
        .fallback(api_errors::not_found)
        .layer(middleware::from_fn(api_errors::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), require_admin))
        .routes(routes!(openapi::document));
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(API_ROOT, api)
        .split_for_parts();
    openapi::keep(&doc);
    router
}

/// Where the admin API is mounted.
pub const API_ROOT: &str = "/api/v1";

/// Bearer-token check for the admin API, in constant time; a change that succeeds is recorded
/// in the log of changes with the token's name (method and path, never the body).
async fn require_admin(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = st.token_of(req.headers()) else {
        let mut r = openapi::error(StatusCode::UNAUTHORIZED, "missing or wrong admin token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return r;
    };
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    let r = next.run(req).await;
    let reads = matches!(method, axum::http::Method::GET | axum::http::Method::HEAD);
    if !reads && r.status().is_success() {
        let action = format!("api.{}", method.as_str().to_ascii_lowercase());
        let detail = format!("{API_ROOT}{path} ({})", r.status().as_u16());
        if let Err(e) = st
            .users
            .record_as(&token, "api", &peer.ip().to_string(), &action, &detail)
            .await
        {
            tracing::error!(error = %e, token = %token, "cannot record an admin API change");
        }
    }
    r
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only this site's fetches.
    site: Option<String>,
    /// Only this phone's (any MAC spelling).
    mac: Option<String>,
    /// Only from this IP address.
    peer: Option<String>,
    /// Only this result: `served`, `not-found`, `unauthorized`, `refused-network`,
    /// `refused-transport` or `banned`.
    result: Option<String>,
    /// Only fetches at or after this moment (unix milliseconds).
    since: Option<i64>,
    /// At most this many rows (default 100; 1 to 10,000, larger or smaller are clamped).
    limit: Option<i64>,
}

/// The fetch audit, newest first: what each phone fetched, from where, and how it went.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<crate::store::AuditRow>), Failures))]
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
