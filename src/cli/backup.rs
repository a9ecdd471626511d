//! `phoneprov backup FILE` and `phoneprov restore FILE`: the archive of a whole install.

use std::path::Path;
use std::process::ExitCode;

use phoneprov::backup::{BackupError, Manifest};
use phoneprov::config::BackupArgs;
use phoneprov::manage;
use phoneprov::store::{Location, Store};

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

/// Restores the archive's files into `data_dir`; with another database configured (PostgreSQL,
/// or an SQLite file elsewhere), its rows go into that one, which must be empty.
pub async fn restore(
    data_dir: &Path,
    database: &Location,
    args: BackupArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // The archive's database lands in the data dir's file; a database configured elsewhere
    // (PostgreSQL, or a file outside) gets its rows instead, and must be empty. Checked before
    // anything is unpacked.
    let file = data_dir.join(phoneprov::config::DB_FILE);
    let target = if database == &Location::Sqlite(file.clone()) {
        None
    } else {
        let t = Store::connect(database, None).await?;
        let busy = t.non_empty_tables().await?;
        if !busy.is_empty() {
            t.close().await;
            return Err(manage::Error::Invalid(format!(
                "{database} is not empty ({} tables hold rows): restore into a new, empty database",
                busy.len()
            ))
            .into());
        }
        Some(t)
    };
    let m = phoneprov::backup::restore(&args.file, data_dir)
        .await
        .map_err(refused)?;
    if let Some(t) = target {
        let copy = Store::connect(&Location::Sqlite(file.clone()), None).await?;
        let done = copy.copy_into(&t).await;
        copy.close().await;
        t.close().await;
        if let Err(e) = done {
            // Nothing is left half-done: the files go, the database is as it was (the copy is
            // one transaction there).
            let _ = std::fs::remove_dir_all(data_dir);
            return Err(e.into());
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
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
