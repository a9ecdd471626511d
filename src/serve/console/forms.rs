//! Every form the console takes comes through here: [`Posted`] (a URL-encoded form) and
//! [`Uploaded`] (a multipart one, for files) read the body, bounded, and refuse it unless it
//! carries the session's CSRF token in its `csrf` field. A handler cannot take a form without
//! that check.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::view::{Who, error_page};

/// Largest URL-encoded form (an import's CSV travels back in one).
const FORM_CAP: usize = 64 * 1024 * 1024;
/// Largest multipart upload.
pub const UPLOAD_CAP: usize = 64 * 1024 * 1024;

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

fn refused(who: &Who) -> Response {
    tracing::warn!(user = %who.session.user.name, peer = %who.peer, "console form without its CSRF token refused");
    error_page(
        who,
        StatusCode::FORBIDDEN,
        "This form was refused: it did not carry this session's security token. Reload the page and try again.",
    )
}

/// A URL-encoded form whose CSRF token was checked, with who sent it.
pub struct Posted<T>(pub Who, pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Posted<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = Who::from_request_parts(&mut parts, state).await?;
        let bytes: Bytes = axum::body::to_bytes(body, FORM_CAP).await.map_err(|_| {
            error_page(
                &who,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large.",
            )
        })?;
        let token: CsrfOnly = serde_urlencoded::from_bytes(&bytes).map_err(|_| refused(&who))?;
        if !who.session.csrf_ok(&token.csrf) {
            return Err(refused(&who));
        }
        let form: T = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            error_page(
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("The form is not complete: {e}"),
            )
        })?;
        Ok(Posted(who, form))
    }
}

/// A multipart form (file uploads) whose CSRF token was checked: its fields by name.
pub struct Uploaded {
    pub who: Who,
    fields: Vec<(String, Bytes)>,
}

impl Uploaded {
    /// A field's bytes (the first of that name).
    pub fn bytes(&self, name: &str) -> Option<&Bytes> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, b)| b)
    }

    /// A field as text (empty when absent or not UTF-8).
    pub fn text(&self, name: &str) -> &str {
        self.bytes(name)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequest<S> for Uploaded {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = Who::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let bad = |who: &Who, m: String| error_page(who, StatusCode::BAD_REQUEST, &m);
        let mut mp = Multipart::from_request(req, state)
            .await
            .map_err(|e| bad(&who, format!("The upload is not a form: {e}")))?;
        let (mut fields, mut total) = (Vec::new(), 0usize);
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| bad(&who, format!("The upload was cut short: {e}")))?
        {
            let name = field.name().unwrap_or("").to_string();
            let data = field
                .bytes()
                .await
                .map_err(|e| bad(&who, format!("The upload was cut short: {e}")))?;
            total += data.len();
            if total > UPLOAD_CAP {
                return Err(error_page(
                    &who,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The upload is larger than 64 MiB.",
                )
                .into_response());
            }
            fields.push((name, data));
        }
        let up = Uploaded { who, fields };
        if !up.who.session.csrf_ok(up.text("csrf")) {
            return Err(refused(&up.who));
        }
        Ok(up)
    }
}
