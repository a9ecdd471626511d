//! `phoneprov audit`: fetches of sensitive files, newest first, as a table.

use std::process::ExitCode;

use phoneprov::config::AuditArgs;
use phoneprov::manage::{self, Manager};

use super::print::{print, when};

pub async fn run(m: &Manager, args: AuditArgs, json: bool) -> anyhow::Result<ExitCode> {
    let AuditArgs {
        site,
        mac,
        peer,
        result,
        since,
        limit,
    } = args;
    let since = since
        .map(|d| phoneprov::config::parse_duration(&d).map_err(manage::Error::Invalid))
        .transpose()?
        .map(|d| phoneprov::store::now_ms() - d.as_millis() as i64);
    let rows = m
        .audit(site.as_deref(), mac.as_deref(), peer, result, since, limit)
        .await?;
    print(json, &rows, audit_table(&rows));
    Ok(ExitCode::SUCCESS)
}

/// The fetch audit as a table.
pub fn audit_table(rows: &[phoneprov::store::AuditRow]) -> String {
    let mut out = String::from(
        "LAST SEEN                  COUNT  PEER             VIA    SITE         MAC           FILE                      RESULT             LOGIN",
    );
    for r in rows {
        out.push_str(&format!(
            "\n{:<26} {:>5}  {:<16} {:<6} {:<12} {:<13} {:<25} {:<18} {}",
            when(r.last_at),
            r.count,
            r.peer,
            r.transport,
            r.site.as_deref().unwrap_or("-"),
            r.mac.as_deref().unwrap_or("-"),
            r.file,
            r.result,
            r.auth
        ));
    }
    out
}
