//! The admin API's OpenAPI 3.1 document: its title, the bearer-token scheme, the error shape
//! and the failure answers every operation shares. The operations themselves are described
//! where they are handled (`#[utoipa::path]` on each handler) and collected by the router, so a
//! route cannot be served without being in the document (`tests/openapi.rs` checks both ways).

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The document's fixed parts; the router adds every operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "phoneprov admin API",
        description = "Sites, phones, lines, settings, CSV import and export, firmware, the fetch audit and the Yealink cloud (YMCS/RPS) operations of a phoneprov server. Every operation but this document needs an admin token (`phoneprov token add`) as `Authorization: Bearer <token>`. Every error is JSON: `{\"error\": \"...\"}`.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&BearerToken),
    security(("admin_token" = [])),
    tags(
        (name = "sites", description = "Client sites: SIP server, provisioning URL and login, access rules"),
        (name = "phones", description = "Phones, their lines and the files they get"),
        (name = "settings", description = "Raw vendor settings at a layer (model, site, site and model, phone)"),
        (name = "import", description = "CSV MAC lists in and out"),
        (name = "firmware", description = "Stored images, the policy's verdict, assignment"),
        (name = "audit", description = "What phones fetched"),
        (name = "ymcs", description = "Yealink's cloud: writes are plans unless confirmed"),
        (name = "meta", description = "This document")
    )
)]
pub struct ApiDoc;

/// Adds the admin bearer token as the security scheme named by the document.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An admin token made with `phoneprov token add`"))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("admin_token", SecurityScheme::Http(scheme));
    }
}

/// Every error answer of the admin API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and, where it can, what to do.
    pub error: String,
}

/// The failures any admin operation may answer, each as [`ErrorBody`].
#[allow(dead_code)] // only its description is used: handlers answer through `ApiError`
#[derive(utoipa::IntoResponses)]
pub enum Failures {
    /// The request is malformed (a path or query value of the wrong type, a body that is not
    /// JSON) or a value is refused; the error says which and why.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No admin token, or a wrong one.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "Bearer")))]
    Unauthorized(ErrorBody),
    /// The site, phone, image or setting named does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The change conflicts with what is stored (a MAC in another site, a site with phones).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is larger than the operation takes.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not of the media type the operation takes.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// An internal error; the server log has it in full.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// The failure of a change that was understood but cannot be applied: a JSON body that does
/// not fit the operation, a template that would not render, an image the policy refuses.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
#[response(status = 422)]
pub struct Unprocessable(ErrorBody);

/// The document as served: built with the router (the same for every install and router).
static DOCUMENT: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();

/// Keeps the document the router was built with, for [`document`].
pub fn keep(doc: &utoipa::openapi::OpenApi) {
    DOCUMENT.get_or_init(|| match doc.to_pretty_json() {
        Ok(s) => bytes::Bytes::from(s),
        Err(e) => bytes::Bytes::from(format!("{{\"error\": \"document: {e}\"}}")),
    });
}

/// The document, served to anyone: it is the same for every install and holds no data.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This document", body = Object)))]
pub async fn document() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT.get().cloned().unwrap_or_default(),
    )
        .into_response()
}

/// An error answer in the documented shape.
pub fn error(status: axum::http::StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}
