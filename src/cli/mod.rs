//! The command-line edge (binary side): one file per command group, each turning its
//! arguments into one library verb and printing the outcome. This module opens what every
//! command needs (settings, the data dir, the database, the `Manager`) and hands the command
//! to its group; `main.rs` only starts logging and the runtime and maps errors to exit codes.

mod audit;
mod backup;
mod demo;
mod doctor;
mod firmware;
mod import;
mod line;
mod migrate_db;
mod pbx;
mod phone;
mod policy;
mod print;
mod render;
mod serve;
mod setting;
pub mod setup;
mod site;
mod token;
mod user;
mod ymcs;

use std::process::ExitCode;

use anyhow::Context;

use phoneprov::config::{Cli, Command, Settings};
use phoneprov::manage::Manager;
use phoneprov::store::{Location, Store};

/// Runs one command: 0 done, 2 refused, 3 a dry run, 1 anything else (an `Err`).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&cli)?;
    let database = match &settings.database_url {
        Some(u) => Location::parse(u).map_err(|e| anyhow::anyhow!("--database-url: {e}"))?,
        None => Location::Sqlite(settings.default_db_path()),
    };
    if let Command::Restore(args) = cli.command {
        // Into an empty dir: nothing may be opened or created there first.
        return backup::restore(&settings.data_dir, &database, args, cli.json).await;
    }
    setup::ensure_data_dir(&settings, &database, setup::creates_data(&cli.command))?;
    // A server outlasts its database's restarts (it waits, saying so); a command rides out
    // a short one.
    let wait = match &cli.command {
        Command::Serve(_) => None,
        _ => Some(std::time::Duration::from_secs(
            phoneprov::store::BUSY_WAIT_S,
        )),
    };
    let store = Store::connect_waiting(&database, Some(&settings.data_dir), wait)
        .await
        .with_context(|| format!("opening the database {database}"))?;
    let result = dispatch(&store, &settings, cli.command, cli.json).await;
    store.close().await;
    result
}

async fn dispatch(
    store: &Store,
    settings: &Settings,
    command: Command,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let data_dir = &settings.data_dir;
    if let Command::Serve(args) = command {
        return serve::serve(store.clone(), settings, args).await;
    }
    if let Command::Token(cmd) = command {
        return token::run(&settings.tokens_path(), cmd, json);
    }
    if let Command::User(cmd) = command {
        return user::run(store, cmd, json).await;
    }
    if let Command::Doctor(args) = command {
        // The doctor runs even when the verbs cannot be set up: it says why.
        let m = Manager::open(
            store.clone(),
            phoneprov::render::Urls::of(settings),
            data_dir,
        )
        .ok();
        return doctor::run(store, m.as_ref(), settings, args, json).await;
    }
    let m = Manager::open(
        store.clone(),
        phoneprov::render::Urls::of(settings),
        data_dir,
    )?;
    match command {
        Command::Serve(_)
        | Command::Token(_)
        | Command::User(_)
        | Command::Restore(_)
        | Command::Doctor(_) => {
            unreachable!("handled above")
        }
        Command::Backup(args) => backup::backup(store, data_dir, args, json).await,
        Command::MigrateDb(args) => migrate_db::run(store, data_dir, args, json).await,

        Command::Site(cmd) => site::run(&m, cmd, json).await,
        Command::Phone(cmd) => phone::run(&m, cmd, json).await,
        Command::Line(cmd) => line::run(&m, cmd, json).await,
        Command::Setting(cmd) => setting::run(&m, cmd, json).await,
        Command::Firmware(cmd) => firmware::run(&m, cmd, json).await,
        Command::Policy(cmd) => policy::run(&m, cmd, json).await,
        Command::Recover(args) => serve::recover(&m, args).await,
        Command::Import(args) => import::import(&m, data_dir, args, json).await,
        Command::Export(args) => import::export(&m, args).await,
        Command::Render(args) => render::run(&m, args, json).await,
        Command::Pbx(cmd) => pbx::run(&m, data_dir, cmd, json).await,
        Command::Ymcs(cmd) => ymcs::run(&m, data_dir, cmd, json).await,
        Command::Audit(args) => audit::run(&m, args, json).await,
    }
}
