//! The CSV import pages: upload (or paste) a MAC list, see the plan — every row created,
//! updated, moved or unchanged, every error with its line and column, and the YMCS steps as a
//! dry run — fix it in place, then apply. Applying re-checks the file against the database as
//! it is then: all rows or none.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::super::state::AppState;
use super::forms::{Posted, Uploaded};
use super::view::{Frame, Who, need, page};
use crate::import::{Input, Options, Progress, Report};
use crate::model::Role;
use crate::ymcs::{self, Clouds};

/// Most planned rows a page lists.
const SHOWN: usize = 500;

/// What the tech chose.
#[derive(Debug, Clone, Default)]
struct Choices {
    csv: String,
    site: String,
    allow_move: bool,
    register: bool,
    rps: bool,
}

pub struct PlanRow {
    pub mac: String,
    pub model: String,
    pub site: String,
    pub label: String,
    pub change: &'static str,
}

pub struct YmcsPlan {
    pub operation: String,
    pub rows: Vec<crate::ymcs::Row>,
    pub notes: Vec<String>,
    pub error: String,
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    f: Frame,
    sites: Vec<String>,
    c: ChoicesView,
    report: Option<Report>,
    rows: Vec<PlanRow>,
    more: usize,
    ymcs: Vec<YmcsPlan>,
    applied: bool,
    problem: String,
}

/// The choices as the template shows them.
pub struct ChoicesView {
    pub csv: String,
    pub site: String,
    pub allow_move: bool,
    pub register: bool,
    pub rps: bool,
}

impl From<&Choices> for ChoicesView {
    fn from(c: &Choices) -> Self {
        ChoicesView {
            csv: c.csv.clone(),
            site: c.site.clone(),
            allow_move: c.allow_move,
            register: c.register,
            rps: c.rps,
        }
    }
}

async fn draw(
    st: &AppState,
    who: &Who,
    c: &Choices,
    report: Option<Report>,
    ymcs: Vec<YmcsPlan>,
    applied: bool,
    problem: String,
) -> Response {
    let sites = st.manager.site_names().await.unwrap_or_default();
    let names: std::collections::HashMap<i64, String> = sites.iter().cloned().collect();
    let rows: Vec<PlanRow> = report
        .as_ref()
        .map(|r| {
            r.planned
                .iter()
                .zip(r.changes.iter())
                .take(SHOWN)
                .map(|(p, ch)| PlanRow {
                    mac: p.mac.colon(),
                    model: p.model.clone(),
                    site: names
                        .get(&p.site_id)
                        .cloned()
                        .unwrap_or_else(|| c.site.clone()),
                    label: p.label.clone(),
                    change: ch,
                })
                .collect()
        })
        .unwrap_or_default();
    let more = report
        .as_ref()
        .map(|r| r.planned.len().saturating_sub(SHOWN))
        .unwrap_or(0);
    let status = match &report {
        Some(r) if !r.errors.is_empty() => StatusCode::UNPROCESSABLE_ENTITY,
        _ if !problem.is_empty() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let mut resp = page(&ImportPage {
        f: Frame::new(
            who,
            "import",
            if applied {
                "Import applied"
            } else {
                "Import phones"
            },
        ),
        sites: sites.into_iter().map(|(_, n)| n).collect(),
        c: c.into(),
        report,
        rows,
        more,
        ymcs,
        applied,
        problem,
    });
    *resp.status_mut() = status;
    resp
}

/// The page again with a problem that stopped the check (nothing was changed).
async fn refuse(st: &AppState, who: &Who, c: &Choices, problem: String) -> Response {
    draw(st, who, c, None, Vec::new(), false, problem).await
}

pub async fn form(State(st): State<AppState>, who: Who) -> Response {
    if let Some(r) = need(&who, Role::Tech) {
        return r;
    }
    draw(
        &st,
        &who,
        &Choices::default(),
        None,
        Vec::new(),
        false,
        String::new(),
    )
    .await
}

async fn run(st: &AppState, c: &Choices, dry_run: bool) -> Result<Report, String> {
    let opts = Options {
        site: (!c.site.trim().is_empty()).then(|| c.site.trim().to_string()),
        dry_run,
        allow_move: c.allow_move,
        ..Default::default()
    };
    let input = Input::Bytes(bytes::Bytes::from(c.csv.clone().into_bytes()));
    crate::import::import(&st.manager, &input, &opts, &Progress::none())
        .await
        .map_err(|e| e.to_string())
}

/// The YMCS steps chosen, for the phones of a report: a plan unless `confirm`.
async fn ymcs_steps(st: &AppState, c: &Choices, r: &Report, confirm: bool) -> Vec<YmcsPlan> {
    let mut out = Vec::new();
    let ops: Vec<&str> = [("register", c.register), ("rps-add", c.rps)]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(op, _)| op)
        .collect();
    if ops.is_empty() {
        return out;
    }
    let targets = match st.manager.targets_of(r.planned.clone()).await {
        Ok(t) => t,
        Err(e) => {
            out.push(YmcsPlan {
                operation: "ymcs".into(),
                rows: vec![],
                notes: vec![],
                error: e.to_string(),
            });
            return out;
        }
    };
    let mut clouds = Clouds::new(&st.data_dir);
    for op in ops {
        let none = &|_, _| {};
        let res = match op {
            "register" => match clouds.ymcs() {
                Ok(y) => ymcs::register(y, targets.clone(), confirm, none).await,
                Err(e) => Err(e),
            },
            _ => match clouds.rps() {
                Ok(api) => ymcs::rps_add(&st.manager, api, targets.clone(), confirm, none).await,
                Err(e) => Err(e),
            },
        };
        out.push(match res {
            Ok(rep) => YmcsPlan {
                operation: op.into(),
                rows: rep.rows,
                notes: rep.notes,
                error: String::new(),
            },
            Err(e) => YmcsPlan {
                operation: op.into(),
                rows: vec![],
                notes: vec![],
                error: format!("YMCS {op}: {e}"),
            },
        });
    }
    out
}

/// Checks the file (uploaded or pasted) and shows the plan; changes nothing.
pub async fn preview(State(st): State<AppState>, up: Uploaded) -> Response {
    let who = up.who.clone();
    if let Some(r) = need(&who, Role::Tech) {
        return r;
    }
    let csv = match up.bytes("file").filter(|b| !b.is_empty()) {
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(e) => {
                let c = Choices::default();
                return refuse(
                    &st,
                    &who,
                    &c,
                    format!(
                        "The file is not UTF-8 text (byte {}): save it as CSV UTF-8.",
                        e.valid_up_to()
                    ),
                )
                .await;
            }
        },
        None => up.text("csv").to_string(),
    };
    let c = Choices {
        csv,
        site: up.text("site").to_string(),
        allow_move: up.text("move") == "on",
        register: up.text("register") == "on",
        rps: up.text("rps") == "on",
    };
    if c.csv.trim().is_empty() {
        return refuse(&st, &who, &c, "Choose a CSV file or paste its rows.".into()).await;
    }
    match run(&st, &c, true).await {
        Ok(r) => {
            let plans = if r.errors.is_empty() {
                ymcs_steps(&st, &c, &r, false).await
            } else {
                vec![]
            };
            draw(&st, &who, &c, Some(r), plans, false, String::new()).await
        }
        Err(e) => refuse(&st, &who, &c, e).await,
    }
}

#[derive(Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    csv: String,
    #[serde(default)]
    site: String,
    #[serde(default, rename = "move")]
    allow_move: String,
    #[serde(default)]
    register: String,
    #[serde(default)]
    rps: String,
}

/// Applies the file: every row or none; then the YMCS steps chosen, for real.
pub async fn apply(State(st): State<AppState>, Posted(who, a): Posted<ApplyForm>) -> Response {
    if let Some(r) = need(&who, Role::Tech) {
        return r;
    }
    let c = Choices {
        csv: a.csv,
        site: a.site,
        allow_move: a.allow_move == "on",
        register: a.register == "on",
        rps: a.rps == "on",
    };
    match run(&st, &c, false).await {
        Ok(r) if r.errors.is_empty() => {
            who.record(
                &st,
                "import.apply",
                &format!(
                    "{} rows: {} created, {} updated, {} unchanged; sites {}{}",
                    r.rows,
                    r.created,
                    r.updated,
                    r.unchanged,
                    r.sites.join(", "),
                    if c.allow_move { "; moves allowed" } else { "" }
                ),
            )
            .await;
            let steps = ymcs_steps(&st, &c, &r, true).await;
            for s in &steps {
                let failed = s.rows.iter().filter(|r| r.result == "failed").count();
                who.record(
                    &st,
                    &format!("ymcs.{}", s.operation),
                    &format!(
                        "{} phones after an import, {failed} failed{}",
                        s.rows.len(),
                        if s.error.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", s.error)
                        }
                    ),
                )
                .await;
            }
            draw(&st, &who, &c, Some(r), steps, true, String::new()).await
        }
        Ok(r) => {
            draw(
                &st,
                &who,
                &c,
                Some(r),
                vec![],
                false,
                "Nothing was changed: the file no longer applies as planned.".into(),
            )
            .await
        }
        Err(e) => refuse(&st, &who, &c, e).await,
    }
}
