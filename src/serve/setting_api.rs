//! Raw vendor settings over the admin API: list, set and remove a key at one layer (a model
//! everywhere, a site — optionally one vendor's phones there —, a model within a site, a phone).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::api_errors::ApiResult;
use super::openapi::{Failures, Unprocessable};
use super::state::AppState;
use crate::manage::{self, LayerInput};
use crate::model::Setting;

/// The layer a setting is at: `site` (with `vendor` to narrow it), `model` (with `site` for a
/// model within a site), or `phone`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SettingQuery {
    /// A site's name.
    site: Option<String>,
    /// A model (`T54W`, `VVX 450`).
    model: Option<String>,
    /// A phone's MAC, in any spelling.
    phone: Option<String>,
    /// `yealink` or `polycom`: a site-wide setting for that vendor's phones only.
    vendor: Option<String>,
    /// The key to remove (`DELETE` only).
    key: Option<String>,
}

impl SettingQuery {
    fn layer(&self) -> LayerInput {
        LayerInput {
            site: self.site.clone(),
            model: self.model.clone(),
            phone: self.phone.clone(),
            vendor: self.vendor.clone(),
        }
    }
}

/// A key set at a layer.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingBody {
    /// A site's name.
    site: Option<String>,
    /// A model (`T54W`, `VVX 450`).
    model: Option<String>,
    /// A phone's MAC, in any spelling.
    phone: Option<String>,
    /// `yealink` or `polycom`: a site-wide setting for that vendor's phones only.
    vendor: Option<String>,
    /// The vendor's key, as in its files (`local_time.ntp_server1`, `voIpProt.server.1.address`).
    key: String,
    value: String,
}

/// Whether a set changed anything.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SettingChanged {
    /// False when the key already had that value.
    changed: bool,
}

/// The keys set at one layer.
#[utoipa::path(get, path = "/settings", tag = "settings", params(SettingQuery),
    responses((status = 200, body = Vec<Setting>), Failures))]
pub(super) async fn list_settings(
    State(st): State<AppState>,
    Query(q): Query<SettingQuery>,
) -> ApiResult<Response> {
    Ok(Json(st.manager.setting_list(&q.layer()).await?).into_response())
}

/// Sets a key at a layer; the phones it touches are checked to render before it is kept.
#[utoipa::path(put, path = "/settings", tag = "settings", request_body = SettingBody,
    responses((status = 200, body = SettingChanged), Failures, Unprocessable))]
pub(super) async fn set_setting(
    State(st): State<AppState>,
    Json(b): Json<SettingBody>,
) -> ApiResult<Response> {
    let layer = LayerInput {
        site: b.site,
        model: b.model,
        phone: b.phone,
        vendor: b.vendor,
    };
    let changed = st.manager.setting_set(&layer, &b.key, &b.value).await?;
    Ok(Json(SettingChanged { changed }).into_response())
}

/// Removes a key from a layer.
#[utoipa::path(delete, path = "/settings", tag = "settings", params(SettingQuery),
    responses((status = 204, description = "Removed"), Failures, Unprocessable))]
pub(super) async fn rm_setting(
    State(st): State<AppState>,
    Query(q): Query<SettingQuery>,
) -> ApiResult<Response> {
    let key = q
        .key
        .clone()
        .ok_or_else(|| manage::Error::Invalid("name the setting to remove with ?key=".into()))?;
    st.manager.setting_rm(&q.layer(), &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
