//! `phoneprov ymcs ...` and `import --ymcs`: runs an operation, prints the plan or the per-MAC
//! result table. Exit codes: 0 done, 3 dry run (nothing changed; re-run with --confirm),
//! 1 some MACs failed (the report names them), 2 refused.

use std::process::ExitCode;

use phoneprov::config::{YmcsCmd, YmcsTarget};
use phoneprov::manage::{self, Manager};
use phoneprov::ymcs::{self, OpError, Report};

use super::print::print;

/// Exit code of a dry run.
pub const DRY_RUN: u8 = 3;

fn refused(e: OpError) -> anyhow::Error {
    match e {
        OpError::Invalid(m) => manage::Error::Invalid(m).into(),
        OpError::Manage(e) => e.into(),
        OpError::Ymcs(ymcs::YmcsError::Config(m)) => {
            manage::Error::Invalid(format!("YMCS is not configured: {m}")).into()
        }
        other => other.into(),
    }
}

/// A progress bar on stderr (drawn only when it is a terminal) for large batches.
fn progress(done: usize, total: usize) {
    static BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    if total < 20 {
        return;
    }
    let mut g = BAR.lock().unwrap_or_else(|p| p.into_inner());
    let bar = g.get_or_insert_with(|| {
        let b = indicatif::ProgressBar::new(total as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} phones")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    bar.set_length(total as u64);
    bar.set_position(done as u64);
    if done >= total {
        bar.finish_and_clear();
        *g = None;
    }
}

/// The clients an `import --ymcs` step list needs, checked before anything is imported.
pub fn clouds_for(data_dir: &std::path::Path, steps: &[String]) -> anyhow::Result<ymcs::Clouds> {
    let mut c = ymcs::Clouds::new(data_dir);
    if steps.iter().any(|s| s == "register") {
        c.ymcs().map_err(refused)?;
    }
    if steps.iter().any(|s| s == "rps") {
        c.rps().map_err(refused)?;
    }
    Ok(c)
}

pub async fn run(
    m: &Manager,
    data_dir: &std::path::Path,
    cmd: YmcsCmd,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut clouds = ymcs::Clouds::new(data_dir);
    let targets = |t: &YmcsTarget| {
        let (site, macs) = (t.site.clone(), t.macs.clone());
        async move { m.phones_for(site.as_deref(), &macs).await }
    };
    let report = match cmd {
        YmcsCmd::Status => {
            let mut v = ymcs::status(clouds.ymcs().map_err(refused)?)
                .await
                .map_err(refused)?;
            let rps = match clouds.rps_v1().map_err(refused)? {
                Some(r) => match ymcs::RpsApi::V1(r).servers().await {
                    Ok(s) => format!(
                        "RPS management API (v1): key works ({} server entries); rps-add and rps-remove use it",
                        s.len()
                    ),
                    Err(e) => format!("RPS management API (v1): {e}"),
                },
                None => "RPS management API (v1): not configured; rps-add uses YMCS v2, which refuses writes by MAC to ordinary accounts (set PHONEPROV_RPS_KEY_ID and PHONEPROV_RPS_KEY_SECRET, or give phones serial numbers)".to_string(),
            };
            v["rps"] = serde_json::json!(rps);
            let mut text = format!(
                "YMCS: access key works\n{rps}\nSITE                             DEVICES"
            );
            for s in v["sites"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "\n{:<32} {}",
                    s["name"].as_str().unwrap_or("?"),
                    s["devices"]
                ));
            }
            print(json, &v, text);
            return Ok(ExitCode::SUCCESS);
        }
        YmcsCmd::Devices { site } => {
            let rows = ymcs::devices(m, clouds.ymcs().map_err(refused)?, site.as_deref())
                .await
                .map_err(refused)?;
            let mut text = format!(
                "{:<13} {:<16} {:<10} {:<20} STATE",
                "MAC", "SITE", "MODEL", "YMCS SITE"
            );
            for r in &rows {
                text.push_str(&format!(
                    "\n{:<13} {:<16} {:<10} {:<20} {}",
                    r["mac"].as_str().unwrap_or(""),
                    r["site"].as_str().unwrap_or("-"),
                    r["model"].as_str().unwrap_or("-"),
                    r["ymcs_site"].as_str().unwrap_or("-"),
                    r["state"].as_str().unwrap_or("")
                ));
            }
            print(json, &rows, text);
            return Ok(ExitCode::SUCCESS);
        }
        YmcsCmd::Register(t) => {
            let tg = targets(&t).await?;
            ymcs::register(clouds.ymcs().map_err(refused)?, tg, t.confirm, &progress).await
        }
        YmcsCmd::RpsAdd(t) => {
            let tg = targets(&t).await?;
            ymcs::rps_add(m, clouds.rps().map_err(refused)?, tg, t.confirm, &progress).await
        }
        YmcsCmd::RpsRemove(t) => {
            let tg = targets(&t).await?;
            ymcs::rps_remove(clouds.rps().map_err(refused)?, tg, t.confirm, &progress).await
        }
        YmcsCmd::Reboot { target, pace } => {
            let pace = ymcs::parse_pace(&pace).map_err(manage::Error::Invalid)?;
            let tg = targets(&target).await?;
            ymcs::reboot(clouds.ymcs().map_err(refused)?, tg, target.confirm, pace, &progress).await
        }
    }
    .map_err(refused)?;
    Ok(show(&report, json))
}

/// Prints a plan or a result table; the exit code it calls for.
pub fn show(r: &Report, json: bool) -> ExitCode {
    let mut text = String::new();
    if r.dry_run {
        for n in &r.notes {
            text.push_str(&format!("[DRY RUN] {} {n}\n", r.operation));
        }
        for row in &r.rows {
            text.push_str(&format!(
                "[DRY RUN] {} {} ({}): {} — {}\n",
                r.operation, row.mac, row.site, row.action, row.detail
            ));
        }
        let changes = r
            .rows
            .iter()
            .filter(|x| !matches!(x.action.as_str(), "unchanged" | "skip"))
            .count();
        text.push_str(&format!(
            "[DRY RUN] {changes} change(s); nothing was sent. Re-run with --confirm to do it."
        ));
    } else {
        text.push_str(&format!(
            "{:<13} {:<16} {:<10} {:<10} DETAIL",
            "MAC", "SITE", "ACTION", "RESULT"
        ));
        for row in &r.rows {
            text.push_str(&format!(
                "\n{:<13} {:<16} {:<10} {:<10} {}",
                row.mac, row.site, row.action, row.result, row.detail
            ));
        }
        let failed = r.failed();
        for n in &r.notes {
            text.push_str(&format!("\n{} {n}", r.operation));
        }
        text.push_str(&format!(
            "\n{} request(s), {} throttled (429)",
            r.requests, r.throttled
        ));
        if !failed.is_empty() {
            text.push_str(&format!(
                "\n{} MAC(s) failed; retry with: phoneprov ymcs {} --confirm {}",
                failed.len(),
                r.operation,
                failed.join(" ")
            ));
        }
    }
    print(json, r, text);
    if r.dry_run {
        ExitCode::from(DRY_RUN)
    } else if r.failed().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
