//! The binary's bootstrapping: parse, set up logging, start the runtime, run one command
//! ([`cli`]), and turn an error into its message and exit code (2 the request was refused and
//! nothing changed, 1 anything else).

use std::process::ExitCode;

use clap::Parser;

use phoneprov::config::{Cli, Command};
use phoneprov::manage;
use phoneprov::serve;

mod cli;

mod alloc;

#[global_allocator]
static ALLOC: alloc::Alloc = alloc::Alloc;

use cli::setup::error_text;

fn main() -> ExitCode {
    alloc::tune();
    let cli = Cli::parse();
    // Default levels: `serve` logs what it does; `recover`'s requests, progress and outcomes are
    // its output (the tech watches them); other commands say only what went wrong.
    let default = match cli.command {
        Command::Serve(_) => "info",
        Command::Recover(_) => "warn,phoneprov::recover=info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHONEPROV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().flatten_event(true).init();
    } else {
        logs.with_ansi(ansi).init();
    }

    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // A refused request is the user's to fix: exit 2. Anything else: 1.
            let refused = match e.downcast_ref::<manage::Error>() {
                Some(manage::Error::Store(_) | manage::Error::Io(_)) => false,
                Some(_) => true,
                None => {
                    e.downcast_ref::<phoneprov::config::ConfigError>().is_some()
                        || matches!(
                            e.downcast_ref::<serve::ServeError>(),
                            Some(serve::ServeError::Publish(
                                phoneprov::publish::PublishError::Render(_)
                            ))
                        )
                }
            };
            let code = if refused { 2 } else { 1 };
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(code)
        }
    }
}
