//! Sites over the admin API: list, add, show, change (login rotation, access rules, proxies,
//! re-checks, recovery) and remove.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::api_errors::ApiResult;
use super::openapi::{Failures, Unprocessable};
use super::state::AppState;
use crate::manage::{SiteInput, SiteUpdate, SiteView};

/// Every site, with its provisioning URL and phone count.
#[utoipa::path(get, path = "/sites", tag = "sites",
    responses((status = 200, body = Vec<SiteView>), Failures))]
pub(super) async fn list_sites(State(st): State<AppState>) -> ApiResult<Response> {
    Ok(Json(st.manager.site_list().await?).into_response())
}

/// Adds a site; its provisioning URL (with a new secret key) is in the answer.
#[utoipa::path(post, path = "/sites", tag = "sites", request_body = SiteInput,
    responses((status = 201, body = SiteView), Failures, Unprocessable))]
pub(super) async fn add_site(
    State(st): State<AppState>,
    Json(input): Json<SiteInput>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(st.manager.site_add(input).await?)).into_response())
}

/// One site.
#[utoipa::path(get, path = "/sites/{name}", tag = "sites",
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 200, body = SiteView), Failures))]
pub(super) async fn show_site(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.site_show(&name).await?).into_response())
}

/// Changes a site; absent fields stay as they are.
#[utoipa::path(patch, path = "/sites/{name}", tag = "sites", request_body = SiteUpdate,
    params(("name" = String, Path, description = "The site's name")),
    responses((status = 200, body = SiteView), Failures, Unprocessable))]
pub(super) async fn update_site(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Json(u): Json<SiteUpdate>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.site_update(&name, u).await?).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RmSiteQuery {
    /// Remove the site's phones with it (otherwise a site with phones is refused, 409).
    #[serde(default)]
    force: bool,
}

/// What removing a site removed.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SiteRemoved {
    /// Phones removed with the site.
    removed_phones: u64,
}

/// Removes a site (and, with `force`, its phones).
#[utoipa::path(delete, path = "/sites/{name}", tag = "sites",
    params(("name" = String, Path, description = "The site's name"), RmSiteQuery),
    responses((status = 200, body = SiteRemoved), Failures))]
pub(super) async fn rm_site(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RmSiteQuery>,
) -> ApiResult<Response> {
    let removed_phones = st.manager.site_rm(&name, q.force).await?;
    Ok(Json(SiteRemoved { removed_phones }).into_response())
}
