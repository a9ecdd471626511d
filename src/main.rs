//! The binary's bootstrapping: parse, set up logging, start the runtime, run one command
//! ([`cli`]), and turn an error into its message and exit code (2 the request was refused and
//! nothing changed, 1 anything else).

use std::process::ExitCode;

use clap::Parser;

use phoneprov::config::{Cli, Command};
use phoneprov::manage;
use phoneprov::serve;

mod cli;

/// mimalloc (built without transparent huge pages) rather than glibc's malloc: a boot storm
/// is thousands of short connections served on a thread per core, and glibc kept what their
/// threads freed in per-thread arenas — `scripts/bench-scale` measured a storm at 100,000
/// phones at 98 MiB RSS on glibc and 71 MiB on this, the same day.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (`mimalloc.h`; libmimalloc-sys names
/// only some options). The test below checks it is the option whose default is 1000 ms
/// (`options.c`; the header's comment says 10).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory freed stays with the process before mimalloc gives it back (ms). Its default
/// of a second held a storm's freed connections (133 MiB at 100,000 phones); giving it back at
/// once (0) made every new connection fault fresh pages in and rebuild free lists — 12-15 % of
/// the cycles of a connection per request (perf) — for 5 MiB less at a storm's peak
/// (`scripts/bench-scale`: 49 MiB at 0, 54 at 50).
const PURGE_DELAY_MS: std::ffi::c_long = 50;

/// Sets [`PURGE_DELAY_MS`]; an operator's `MIMALLOC_PURGE_DELAY` (mimalloc reads its options
/// from the environment) wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one of mimalloc's options to a value it documents; no pointers, and no
    // other thread exists yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

use cli::setup::error_text;

fn main() -> ExitCode {
    tune_allocator();
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_we_set() {
        // Not set in this test process: mimalloc's default, unless the environment sets it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads an option's value.
            let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert_eq!(
                v,
                1000,
                "option {} is not purge_delay",
                super::MI_OPTION_PURGE_DELAY
            );
        }
        let given = std::env::var("MIMALLOC_PURGE_DELAY").ok();
        super::tune_allocator();
        // SAFETY: as above.
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        match given.and_then(|g| g.parse::<std::ffi::c_long>().ok()) {
            Some(g) => assert_eq!(v, g, "the environment's delay is kept"),
            None => assert_eq!(v, super::PURGE_DELAY_MS, "our delay once tuned"),
        }
    }
}
