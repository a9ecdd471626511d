//! CSV MAC lists over the admin API: an import (or its plan, with `dry_run`) that applies whole
//! or changes nothing, and the export that reads back in.

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::api_errors::ApiResult;
use super::openapi::{ErrorBody, Failures};
use super::state::AppState;
use crate::import::Report;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportQuery {
    /// The site of rows that name none.
    site: Option<String>,
    /// Plan only: say what would change, change nothing.
    #[serde(default)]
    dry_run: bool,
    /// Let rows move phones from another site (otherwise such a row is an error).
    #[serde(default, rename = "move")]
    allow_move: bool,
}

/// Largest CSV body the API takes (about a million rows).
const IMPORT_CAP: usize = 128 * 1024 * 1024;

/// A 422 answer of an import: the report naming every refused line, or a change that would
/// not render.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
pub(super) enum ImportRefused {
    Rows(Report),
    Error(ErrorBody),
}

/// Imports a CSV MAC list (`mac,model,site,label,...`, the README's import section): every row
/// is checked first, and then all of them apply or none.
#[utoipa::path(post, path = "/import", tag = "import", params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
        description = "The CSV, with a header row"),
    responses(
        (status = 200, description = "Applied (or, with dry_run, planned)", body = Report),
        (status = 422, description = "Nothing changed: the report names each line refused", body = ImportRefused),
        Failures
    ))]
pub(super) async fn import_csv(
    State(st): State<AppState>,
    Query(q): Query<ImportQuery>,
    req: Request,
) -> ApiResult<Response> {
    let body = match axum::body::to_bytes(req.into_body(), IMPORT_CAP).await {
        Ok(b) => b,
        Err(_) => {
            return Ok(super::openapi::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("CSV larger than {IMPORT_CAP} bytes"),
            ));
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    /// Only this site's phones.
    site: Option<String>,
    /// Include the lines' SIP passwords.
    #[serde(default)]
    with_secrets: bool,
}

/// The phones (and their lines) as a CSV that `import` takes back.
#[utoipa::path(get, path = "/export", tag = "import", params(ExportQuery),
    responses(
        (status = 200, description = "The CSV", body = String, content_type = "text/csv"),
        Failures
    ))]
pub(super) async fn export_csv(
    State(st): State<AppState>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let mut out = Vec::new();
    crate::import::export(&st.manager, q.site.as_deref(), q.with_secrets, &mut out).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
}
