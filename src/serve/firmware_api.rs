//! Firmware over the admin API: list, a streamed upload stored like `firmware add` (the one
//! judgement of the bytes), assignment, and the audit of phones running a denied build.

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::api_errors::ApiResult;
use super::openapi::{Failures, Unprocessable};
use super::state::AppState;
use crate::manage;
use crate::rollout::{AtRisk, ImageView};
use crate::store::firmware::Image;

/// Every stored image, with what the policy says of it now and how many phones it is assigned to.
#[utoipa::path(get, path = "/firmware", tag = "firmware",
    responses((status = 200, body = Vec<ImageView>), Failures))]
pub(super) async fn list_firmware(State(st): State<AppState>) -> ApiResult<Response> {
    Ok(Json(st.manager.firmware_list().await?).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadQuery {
    /// The image's file name, as published (it says vendor, version and models).
    name: String,
    /// The version, when the name does not say it.
    version: Option<String>,
    /// The models it is for, comma-separated, when the name does not say them.
    models: Option<String>,
}

/// Largest image accepted (T5x images are about 43 MB).
const FIRMWARE_CAP: u64 = 512 * 1024 * 1024;

/// Stores an image like `phoneprov firmware add`: judged by its bytes (a known build is known
/// by content, whatever its name) and refused if the policy denies it.
///
/// The body is streamed to a temporary file named as the image, then stored.
#[utoipa::path(post, path = "/firmware", tag = "firmware", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The image's bytes"),
    responses((status = 201, body = Image), Failures, Unprocessable))]
pub(super) async fn upload_firmware(
    State(st): State<AppState>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> ApiResult<Response> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let name = std::path::Path::new(&q.name)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n == q.name && !n.starts_with('.'))
        .ok_or_else(|| manage::Error::Invalid(format!("'{}' is not a plain file name", q.name)))?
        .to_string();
    let dir = st
        .manager
        .firmware_dir
        .join(format!(".upload-{}", manage::new_site_key()?));
    let io = |e: std::io::Error| manage::Error::Invalid(format!("cannot receive the image: {e}"));
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let path = dir.join(&name);
    let result = async {
        let mut f = tokio::fs::File::create(&path).await.map_err(io)?;
        let mut body = req.into_body().into_data_stream();
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| manage::Error::Invalid(format!("upload interrupted: {e}")))?;
            n += chunk.len() as u64;
            if n > FIRMWARE_CAP {
                return Err(manage::Error::Invalid(format!(
                    "image larger than {FIRMWARE_CAP} bytes"
                )));
            }
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        let models: Vec<String> = q
            .models
            .iter()
            .flat_map(|m| m.split(','))
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        st.manager
            .firmware_add(&path, q.version.as_deref(), &models)
            .await
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok((StatusCode::CREATED, Json(result?)).into_response())
}

/// An image and where it goes: a site, a model (within a site, or everywhere) or a phone.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignBody {
    /// A stored image's version or sha256.
    image: String,
    site: Option<String>,
    model: Option<String>,
    /// A phone's MAC, in any spelling.
    phone: Option<String>,
}

/// Assigns a stored image: the phones it reaches are told to fetch it.
#[utoipa::path(put, path = "/firmware/assign", tag = "firmware", request_body = AssignBody,
    responses((status = 200, body = Image), Failures, Unprocessable))]
pub(super) async fn assign_firmware(
    State(st): State<AppState>,
    Json(b): Json<AssignBody>,
) -> ApiResult<Response> {
    let t = crate::rollout::TargetInput {
        site: b.site,
        model: b.model,
        phone: b.phone,
    };
    Ok(Json(st.manager.firmware_assign(&b.image, &t).await?).into_response())
}

/// Phones whose running firmware (from their last User-Agent) the policy denies.
#[utoipa::path(get, path = "/firmware/audit", tag = "firmware",
    responses((status = 200, body = Vec<AtRisk>), Failures))]
pub(super) async fn audit_firmware(State(st): State<AppState>) -> ApiResult<Response> {
    Ok(Json(st.manager.firmware_audit().await?).into_response())
}
