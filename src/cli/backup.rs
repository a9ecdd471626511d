//! `phoneprov backup FILE` and `phoneprov restore FILE`: the archive of a whole install.

use std::path::Path;
use std::process::ExitCode;

use phoneprov::backup::{BackupError, Manifest};
use phoneprov::config::BackupArgs;
use phoneprov::manage;
use phoneprov::store::Store;

use super::print::print;

fn refused(e: BackupError) -> anyhow::Error {
    match e {
        BackupError::Refused(m) => manage::Error::Invalid(m).into(),
        other => other.into(),
    }
}

fn summary(m: &Manifest) -> String {
    let rows: Vec<String> = ["sites", "phones", "lines", "firmware", "fetch_audit"]
        .iter()
        .filter_map(|t| m.database.tables.get(*t).map(|n| format!("{n} {t}")))
        .collect();
    let bytes: u64 = m.files.values().map(|f| f.size).sum();
    format!(
        "{} files, {bytes} bytes; database: {}",
        m.files.len(),
        rows.join(", ")
    )
}

pub async fn backup(
    store: &Store,
    data_dir: &Path,
    args: BackupArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let m = phoneprov::backup::backup(store, data_dir, &args.file)
        .await
        .map_err(refused)?;
    print(
        json,
        &m,
        format!(
            "backed up to {} ({}); it holds SIP passwords: keep it private",
            args.file.display(),
            summary(&m)
        ),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(data_dir: &Path, args: BackupArgs, json: bool) -> anyhow::Result<ExitCode> {
    let m = phoneprov::backup::restore(&args.file, data_dir)
        .await
        .map_err(refused)?;
    print(
        json,
        &m,
        format!(
            "restored {} into {} ({}), every file and row checked",
            args.file.display(),
            data_dir.display(),
            summary(&m)
        ),
    );
    Ok(ExitCode::SUCCESS)
}
