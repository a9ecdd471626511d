//! `phoneprov pbx ...`: add, list, show, remove PBXes; sync one into a site. A sync prints the
//! import's report (created/updated/unchanged/removed) with the PBX records in its errors, the
//! phones skipped (models we do not provision) and any warnings. Exit 2 when the PBX's data is
//! refused (a malformed record, an invalid row): nothing changed.

use std::process::ExitCode;

use phoneprov::config::PbxCmd;
use phoneprov::manage::{self, Manager};
use phoneprov::pbx::{self, PbxError, SyncError};

use super::print::print;

fn refused(e: SyncError) -> anyhow::Error {
    match e {
        SyncError::Manage(e) => e.into(),
        SyncError::Pbx(e @ (PbxError::Malformed { .. } | PbxError::Config(_))) => {
            manage::Error::Invalid(e.to_string()).into()
        }
        SyncError::Pbx(e) => e.into(),
    }
}

pub async fn run(
    m: &Manager,
    data_dir: &std::path::Path,
    cmd: PbxCmd,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        PbxCmd::Add {
            name,
            kind,
            base_url,
            api_version,
        } => {
            let p = m.pbx_add(&name, &kind, &base_url, &api_version).await?;
            print(
                json,
                &p,
                format!(
                    "PBX '{}' ({}, {}, API {})",
                    p.name, p.kind, p.base_url, p.api_version
                ),
            );
        }
        PbxCmd::List => {
            let l = m.pbx_list().await?;
            let text = l
                .iter()
                .map(|p| {
                    format!(
                        "{:<16} {:<11} {:<5} {}",
                        p.name, p.kind, p.api_version, p.base_url
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &l, text);
        }
        PbxCmd::Show { name } => {
            let p = m.pbx_named(&name).await?;
            let pairs = m.pbx_pairs(Some(p.id)).await?;
            let mut text = format!(
                "PBX '{}' ({}, {}, API {})",
                p.name, p.kind, p.base_url, p.api_version
            );
            for s in &pairs {
                text.push_str(&format!(
                    "\n  domain {} → site {}{}: last ok {}{}",
                    s.domain,
                    s.site,
                    if s.prune { " (prune)" } else { "" },
                    s.last_ok_at
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "never".into()),
                    s.last_error
                        .as_deref()
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                ));
            }
            print(json, &serde_json::json!({"pbx": p, "syncs": pairs}), text);
        }
        PbxCmd::Rm { name } => {
            m.pbx_rm(&name).await?;
            print(
                json,
                &serde_json::json!({"removed": name}),
                format!("PBX '{name}' removed"),
            );
        }
        PbxCmd::Sync {
            name,
            domain,
            site,
            dry_run,
            prune,
        } => {
            let r = pbx::sync(m, data_dir, &name, &domain, &site, dry_run, prune)
                .await
                .map_err(refused)?;
            let mut text = String::new();
            for e in &r.import.errors {
                text.push_str(&format!(
                    "error: {}: {}{}\n",
                    e.record.as_deref().unwrap_or("?"),
                    if e.column.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", e.column)
                    },
                    e.message
                ));
            }
            for s in &r.skipped {
                text.push_str(&format!("skipped {} ({}): {}\n", s.mac, s.record, s.reason));
            }
            for w in &r.warnings {
                text.push_str(&format!("warning: {w}\n"));
            }
            let verb = if !r.import.errors.is_empty() {
                "refused, nothing changed; would have "
            } else if r.import.dry_run {
                "would be "
            } else {
                ""
            };
            text.push_str(&format!(
                "{} ({}) domain {} → site {}: {verb}created {}, updated {}, unchanged {}, removed {}{}",
                r.pbx,
                r.api,
                r.domain,
                r.site,
                r.import.created,
                r.import.updated,
                r.import.unchanged,
                r.import.removed,
                if r.throttled > 0 { format!(" ({} rate-limit waits)", r.throttled) } else { String::new() }
            ));
            print(json, &r, text);
            if !r.import.errors.is_empty() {
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
