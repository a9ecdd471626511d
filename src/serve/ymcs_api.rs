//! The YMCS operations over the admin API: the same verbs as `phoneprov ymcs`, the same gate
//! (a write without `"confirm": true` is a plan), the same report as `--json`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::state::AppState;
use crate::ymcs::{self, Client, OpError, YmcsConfig, YmcsError};

/// Body of `POST /api/v1/ymcs/{register|rps-add|rps-remove|reboot}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRequest {
    site: Option<String>,
    #[serde(default)]
    macs: Vec<String>,
    #[serde(default)]
    confirm: bool,
    /// Reboots per minute.
    pace: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SiteQuery {
    site: Option<String>,
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
    (status, Json(serde_json::json!({"error": msg}))).into_response()
}

fn client(st: &AppState) -> Result<Client, OpError> {
    Ok(Client::new(YmcsConfig::load(&st.data_dir)?)?)
}

pub async fn status(State(st): State<AppState>) -> Response {
    let r = async { ymcs::status(&mut client(&st)?).await }.await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

pub async fn devices(State(st): State<AppState>, Query(q): Query<SiteQuery>) -> Response {
    let r = async { ymcs::devices(&st.manager, &mut client(&st)?, q.site.as_deref()).await }.await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

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
