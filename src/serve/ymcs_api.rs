//! The YMCS operations over the admin API: the same verbs as `phoneprov ymcs`, the same gate
//! (a write without `"confirm": true` is a plan), the same report as `--json`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::openapi::{ErrorBody, Failures, Unprocessable};
use super::state::AppState;
use crate::ymcs::{self, Client, OpError, YmcsConfig, YmcsError};

/// Body of `POST /api/v1/ymcs/{register|rps-add|rps-remove|reboot}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpRequest {
    /// Every phone of this site (or, with `macs`, those of them).
    site: Option<String>,
    /// These phones (any MAC spelling).
    #[serde(default)]
    macs: Vec<String>,
    /// Do it; without, the answer is the plan and nothing is sent.
    #[serde(default)]
    confirm: bool,
    /// Reboots per minute (default 60).
    pace: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SiteQuery {
    /// Only this site's phones.
    site: Option<String>,
}

/// The operations of `POST /ymcs/{op}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // only its schema is used: the path is matched as text, to name a wrong one
pub enum Operation {
    Register,
    RpsAdd,
    RpsRemove,
    Reboot,
}

/// What `ymcs status` reads (YMCS's own ids and counts, as it gives them).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: ymcs::status builds the same shape
pub struct Status {
    /// `ok`: the key works.
    token: String,
    sites: Vec<StatusSite>,
}

/// A YMCS site and its number of devices.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StatusSite {
    #[schema(value_type = Object)]
    id: serde_json::Value,
    #[schema(value_type = Object)]
    name: serde_json::Value,
    #[schema(value_type = Object)]
    devices: serde_json::Value,
}

/// A MAC and whether we, YMCS, or both know it.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: ymcs::devices builds the same shape
pub struct Device {
    mac: String,
    /// Our site; absent for `ymcs-only`.
    site: Option<String>,
    model: Option<String>,
    /// The YMCS site it is in, if any.
    ymcs_site: Option<String>,
    /// `both`, `ours-only`, `other-ymcs-site` or `ymcs-only`.
    state: String,
}

fn fail(e: OpError) -> Response {
    let (status, msg) = match &e {
        OpError::Invalid(m) => (StatusCode::BAD_REQUEST, m.clone()),
        OpError::Manage(crate::manage::Error::NotFound(m)) => (StatusCode::NOT_FOUND, m.clone()),
        OpError::Manage(e) => (StatusCode::BAD_REQUEST, e.to_string()),
        OpError::Ymcs(YmcsError::Config(m)) => (
            StatusCode::BAD_REQUEST,
            format!("YMCS is not configured: {m}"),
        ),
        OpError::Ymcs(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
    };
    super::openapi::error(status, msg)
}

fn client(st: &AppState) -> Result<Client, OpError> {
    Ok(Client::new(YmcsConfig::load(&st.data_dir)?)?)
}

/// Checks the YMCS key and lists YMCS's sites with their device counts.
#[utoipa::path(get, path = "/ymcs/status", tag = "ymcs",
    responses(
        (status = 200, body = Status),
        (status = 502, description = "YMCS refused or did not answer", body = ErrorBody),
        Failures
    ))]
pub async fn status(State(st): State<AppState>) -> Response {
    let r = async { ymcs::status(&mut client(&st)?).await }.await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

/// Our phones beside YMCS's devices, by MAC.
#[utoipa::path(get, path = "/ymcs/devices", tag = "ymcs", params(SiteQuery),
    responses(
        (status = 200, body = Vec<Device>),
        (status = 502, description = "YMCS refused or did not answer", body = ErrorBody),
        Failures
    ))]
pub async fn devices(State(st): State<AppState>, Query(q): Query<SiteQuery>) -> Response {
    let r = async { ymcs::devices(&st.manager, &mut client(&st)?, q.site.as_deref()).await }.await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

/// Registers MACs in YMCS, points them at us in RPS (or takes them out), or reboots them: a
/// plan unless `confirm` is true.
#[utoipa::path(post, path = "/ymcs/{op}", tag = "ymcs", request_body = OpRequest,
    params(("op" = inline(Operation), Path, description = "The operation")),
    responses(
        (status = 200, description = "The plan, or what was done", body = crate::ymcs::Report),
        (status = 502, description = "YMCS or RPS refused or did not answer", body = ErrorBody),
        Failures, Unprocessable
    ))]
pub async fn operation(
    State(st): State<AppState>,
    Path(op): Path<String>,
    Json(rq): Json<OpRequest>,
) -> Response {
    let r = async {
        let mut clouds = ymcs::Clouds::new(&st.data_dir);
        let targets = st.manager.phones_for(rq.site.as_deref(), &rq.macs).await?;
        let none = &|_, _| {};
        match op.as_str() {
            "register" => ymcs::register(clouds.ymcs()?, targets, rq.confirm, none).await,
            "rps-add" => ymcs::rps_add(&st.manager, clouds.rps()?, targets, rq.confirm, none).await,
            "rps-remove" => ymcs::rps_remove(clouds.rps()?, targets, rq.confirm, none).await,
            "reboot" => {
                let pace = ymcs::parse_pace(rq.pace.as_deref().unwrap_or("60"))
                    .map_err(OpError::Invalid)?;
                ymcs::reboot(clouds.ymcs()?, targets, rq.confirm, pace, none).await
            }
            other => Err(OpError::Invalid(format!(
                "no YMCS operation '{other}'; register, rps-add, rps-remove or reboot"
            ))),
        }
    }
    .await;
    match r {
        Ok(report) => Json(report).into_response(),
        Err(e) => fail(e),
    }
}
