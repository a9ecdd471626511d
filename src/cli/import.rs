//! `phoneprov import` (CSV, all or nothing, with optional YMCS steps after it) and
//! `phoneprov export` (CSV that `import` reads back unchanged).

use std::path::Path;
use std::process::ExitCode;

use phoneprov::config::{ExportArgs, ImportArgs};
use phoneprov::manage::{self, Manager};

use super::print::print;
use super::ymcs;

pub async fn import(
    m: &Manager,
    data_dir: &Path,
    args: ImportArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let ImportArgs {
        file,
        site,
        dry_run,
        allow_move,
        ymcs,
        confirm,
    } = args;
    for w in &ymcs {
        if !matches!(w.as_str(), "register" | "rps") {
            return Err(manage::Error::Invalid(format!(
                "--ymcs '{w}': expected register, rps or both (register,rps)"
            ))
            .into());
        }
    }
    // Without --confirm, YMCS steps make the whole command a plan: nothing is imported,
    // YMCS is only read, exit 3. Check the YMCS settings first, so a typo costs nothing.
    let plan_only = !ymcs.is_empty() && !confirm && !dry_run;
    let mut clouds = match ymcs.is_empty() || dry_run {
        true => None,
        false => Some(ymcs::clouds_for(data_dir, &ymcs)?),
    };
    let input = phoneprov::import::Input::Path(file);
    let opts = phoneprov::import::Options {
        site,
        dry_run: dry_run || plan_only,
        allow_move,
        ..Default::default()
    };
    // Progress on stderr when it is a terminal (indicatif draws nothing otherwise).
    let bar = match json {
        true => indicatif::ProgressBar::hidden(),
        false => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_message("validating");
    let b2 = bar.clone();
    let progress = phoneprov::import::Progress::new(move |s| match s {
        phoneprov::import::Step::Validated(n) => {
            b2.set_message(format!("validating: {n} rows checked"));
            b2.tick();
        }
        phoneprov::import::Step::Written { done, total } => {
            if b2.length() != Some(total) {
                b2.set_length(total);
                b2.set_style(
                    indicatif::ProgressStyle::with_template("writing {bar:30} {pos}/{len} phones")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
            }
            b2.set_position(done);
        }
    });
    let report = phoneprov::import::import(m, &input, &opts, &progress).await;
    bar.finish_and_clear();
    let report = report?;
    print(json, &report, import_text(&report));
    if !report.errors.is_empty() {
        return Ok(ExitCode::from(2));
    }
    if let Some(c) = clouds.as_mut() {
        // The import stands whatever YMCS says; the report names what to retry.
        let mut code = ExitCode::SUCCESS;
        let all = m.targets_of(report.planned.clone()).await?;
        let site_names: Vec<String> = all.iter().map(|(s, _)| s.name.clone()).collect();
        for w in &ymcs {
            let targets = all.clone();
            let r = match w.as_str() {
                "register" => match c.ymcs() {
                    Ok(y) => phoneprov::ymcs::register(y, targets, confirm, &|_, _| {}).await,
                    Err(e) => Err(e),
                },
                _ => match c.rps() {
                    Ok(r) => phoneprov::ymcs::rps_add(m, r, targets, confirm, &|_, _| {}).await,
                    Err(e) => Err(e),
                },
            };
            match r {
                Ok(r) => {
                    let rc = ymcs::show(&r, json);
                    if rc != ExitCode::SUCCESS {
                        code = rc;
                    }
                }
                Err(e) => {
                    let op = if w == "rps" { "rps-add" } else { "register" };
                    let retry: Vec<String> = site_names
                        .iter()
                        .map(|s| format!("phoneprov ymcs {op} --site {s} --confirm"))
                        .collect();
                    eprintln!(
                        "error: {}YMCS {w} failed: {e}\nretry with: {}",
                        if plan_only { "" } else { "import done, but " },
                        retry.join("\n            ")
                    );
                    code = ExitCode::from(1);
                }
            }
        }
        if plan_only && code != ExitCode::from(1) {
            if !json {
                println!(
                    "[DRY RUN] nothing was imported and nothing sent to Yealink's cloud; re-run with --confirm to import and do the YMCS steps."
                );
            }
            return Ok(ExitCode::from(ymcs::DRY_RUN));
        }
        return Ok(code);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(m: &Manager, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let ExportArgs { site, with_secrets } = args;
    let out = std::io::stdout().lock();
    let n = phoneprov::import::export(m, site.as_deref(), with_secrets, out).await?;
    tracing::info!(phones = n, "exported");
    Ok(ExitCode::SUCCESS)
}

pub fn import_text(r: &phoneprov::import::Report) -> String {
    let mut out = String::new();
    for e in &r.errors {
        let col = if e.column.is_empty() {
            String::new()
        } else {
            format!(", column {}", e.column)
        };
        out.push_str(&format!("line {}{col}: {}\n", e.line, e.message));
    }
    let verb = match (r.errors.is_empty(), r.dry_run, r.applied) {
        (false, _, _) => format!("{} error(s); nothing was changed.", r.errors.len()),
        (true, true, _) => "[DRY RUN] nothing was changed.".to_string(),
        (true, false, true) => "applied.".to_string(),
        (true, false, false) => "nothing to change.".to_string(),
    };
    out.push_str(&format!(
        "{} rows: {} created, {} updated, {} unchanged; {verb}",
        r.rows, r.created, r.updated, r.unchanged
    ));
    out
}
