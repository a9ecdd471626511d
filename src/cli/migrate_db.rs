//! `phoneprov migrate-db --to URL`: moves an install's database to another engine.

use std::path::Path;
use std::process::ExitCode;

use phoneprov::config::MigrateDbArgs;
use phoneprov::manage;
use phoneprov::store::{Location, Store, StoreError};

use super::print::print;

pub async fn run(
    store: &Store,
    data_dir: &Path,
    args: MigrateDbArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let to = Location::parse(&args.to).map_err(|e| manage::Error::Invalid(format!("--to: {e}")))?;
    if &to == store.location() {
        return Err(manage::Error::Invalid(
            "--to names the database this install already uses".into(),
        )
        .into());
    }
    let target = Store::connect(&to, Some(data_dir)).await?;
    let copied = store.copy_into(&target).await;
    target.close().await;
    let tally = match copied {
        Ok(t) => t,
        // A target that is not empty is the operator's to sort out: refused, not failed.
        Err(StoreError::Unsupported(m)) => return Err(manage::Error::Invalid(m).into()),
        Err(e) => return Err(e.into()),
    };
    let rows: Vec<String> = tally
        .rows
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(t, n)| format!("{n} {t}"))
        .collect();
    print(
        json,
        &tally,
        format!(
            "copied into {to}: {}; row counts and content digest {} match the source.\nPoint every command and server at it: --database-url (or PHONEPROV_DATABASE_URL, or database_url in the settings file). Firmware images, tokens and other files stay in the data dir.",
            if rows.is_empty() {
                "no rows".to_string()
            } else {
                rows.join(", ")
            },
            &tally.sha256[..16]
        ),
    );
    Ok(ExitCode::SUCCESS)
}
