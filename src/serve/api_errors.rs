//! Every admin API error is JSON (`{"error": "..."}`), including the ones axum answers itself
//! (a body that is not JSON, 415; one that does not fit, 422; a wrong method, 405), and an
//! unknown API path is a JSON 404 — never the phones' Digest challenge.

use super::openapi::error;
use crate::manage;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Turns a non-JSON error answer into `{"error": "<its text>"}`, keeping its other headers.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let s = r.status();
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(s.is_client_error() || s.is_server_error()) || is_json {
        return r;
    }
    let (parts, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let msg = match text.is_empty() {
        true => parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_string(),
        false => text,
    };
    let mut out = error(parts.status, msg);
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// An API path that does not exist.
pub async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such admin API path (the README's Admin API section lists them)",
    )
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
            E::Store(_) | E::Io(_) => {
                tracing::error!(error = %self.0, "admin request failed");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                );
            }
        };
        error(status, self.0.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
