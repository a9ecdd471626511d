//! Phones over the admin API: list, add, show, change, remove; their lines; the files each one
//! gets, rendered as a phone would receive them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::api_errors::ApiResult;
use super::openapi::{Failures, Unprocessable};
use super::state::AppState;
use crate::manage::{self, LineInput, LineView, PhoneInput, PhoneUpdate, PhoneView};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PhoneQuery {
    /// Only this site's phones.
    site: Option<String>,
}

/// Every phone (or one site's), with its lines (never their passwords) and when it was last seen.
#[utoipa::path(get, path = "/phones", tag = "phones", params(PhoneQuery),
    responses((status = 200, body = Vec<PhoneView>), Failures))]
pub(super) async fn list_phones(
    State(st): State<AppState>,
    Query(q): Query<PhoneQuery>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.phone_list(q.site.as_deref()).await?).into_response())
}

/// Adds a phone by MAC (any spelling) to a site.
#[utoipa::path(post, path = "/phones", tag = "phones", request_body = PhoneInput,
    responses((status = 201, body = PhoneView), Failures, Unprocessable))]
pub(super) async fn add_phone(
    State(st): State<AppState>,
    Json(input): Json<PhoneInput>,
) -> ApiResult<Response> {
    Ok((
        StatusCode::CREATED,
        Json(st.manager.phone_add(input).await?),
    )
        .into_response())
}

/// One phone.
#[utoipa::path(get, path = "/phones/{mac}", tag = "phones",
    params(("mac" = inline(crate::mac::MacText), Path, description = "The phone's MAC, in any spelling")),
    responses((status = 200, body = PhoneView), Failures))]
pub(super) async fn show_phone(
    State(st): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.phone_show(&mac).await?).into_response())
}

/// Changes a phone's label, serial number, model or (with `move_site`) site.
#[utoipa::path(patch, path = "/phones/{mac}", tag = "phones", request_body = PhoneUpdate,
    params(("mac" = inline(crate::mac::MacText), Path, description = "The phone's MAC, in any spelling")),
    responses((status = 200, body = PhoneView), Failures, Unprocessable))]
pub(super) async fn update_phone(
    State(st): State<AppState>,
    Path(mac): Path<String>,
    Json(u): Json<PhoneUpdate>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.phone_update(&mac, u).await?).into_response())
}

/// Removes a phone: from then on it gets nothing of its own.
#[utoipa::path(delete, path = "/phones/{mac}", tag = "phones",
    params(("mac" = inline(crate::mac::MacText), Path, description = "The phone's MAC, in any spelling")),
    responses((status = 204, description = "Removed"), Failures))]
pub(super) async fn rm_phone(
    State(st): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<Response> {
    st.manager.phone_rm(&mac).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sets line `n` (1 to the model's number of accounts) of a phone.
#[utoipa::path(put, path = "/phones/{mac}/lines/{n}", tag = "phones", request_body = LineInput,
    params(
        ("mac" = inline(crate::mac::MacText), Path, description = "The phone's MAC, in any spelling"),
        ("n" = u32, Path, description = "The line, from 1")
    ),
    responses((status = 200, body = LineView), Failures, Unprocessable))]
pub(super) async fn set_line(
    State(st): State<AppState>,
    Path((mac, n)): Path<(String, u32)>,
    Json(input): Json<LineInput>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.line_set(&mac, n, input).await?).into_response())
}

/// Removes line `n` of a phone.
#[utoipa::path(delete, path = "/phones/{mac}/lines/{n}", tag = "phones",
    params(
        ("mac" = inline(crate::mac::MacText), Path, description = "The phone's MAC, in any spelling"),
        ("n" = u32, Path, description = "The line, from 1")
    ),
    responses((status = 204, description = "Removed"), Failures))]
pub(super) async fn rm_line(
    State(st): State<AppState>,
    Path((mac, n)): Path<(String, u32)>,
) -> ApiResult<Response> {
    st.manager.line_rm(&mac, n).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One of the files a phone gets.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct FileEntry {
    /// As the phone asks for it.
    name: String,
    /// Bytes.
    size: u64,
}

/// The files a phone gets that are its own, rendered now from the stored data.
#[utoipa::path(get, path = "/phones/{mac}/files", tag = "phones",
    params(("mac" = inline(crate::mac::MacText), Path, description = "The phone's MAC, in any spelling")),
    responses((status = 200, body = Vec<FileEntry>), Failures, Unprocessable))]
pub(super) async fn phone_files(
    State(st): State<AppState>,
    Path(mac): Path<String>,
) -> ApiResult<Response> {
    let files = st.manager.render_phone(&mac).await?;
    let list: Vec<FileEntry> = files
        .iter()
        .map(|(n, b)| FileEntry {
            name: n.clone(),
            size: b.len() as u64,
        })
        .collect();
    Ok(Json(list).into_response())
}

/// One file as the phone gets it, passwords included: the admin token is the key to them.
#[utoipa::path(get, path = "/phones/{mac}/files/{name}", tag = "phones",
    params(
        ("mac" = inline(crate::mac::MacText), Path, description = "The phone's MAC, in any spelling"),
        ("name" = String, Path, description = "The file's name, as in `/phones/{mac}/files`")
    ),
    responses(
        (status = 200, description = "The file's bytes", body = String, content_type = "text/plain"),
        Failures, Unprocessable
    ))]
pub(super) async fn phone_file(
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
