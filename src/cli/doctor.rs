//! `phoneprov doctor`: the checks of [`phoneprov::doctor`], one line each, exit 1 if any fails.

use std::process::ExitCode;

use phoneprov::config::{DoctorArgs, Settings};
use phoneprov::doctor::{self, Status};
use phoneprov::manage::Manager;
use phoneprov::store::Store;

use super::print::print;

pub async fn run(
    store: &Store,
    m: Option<&Manager>,
    settings: &Settings,
    args: DoctorArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let tftp = match args.tftp {
        Some(t) if t.eq_ignore_ascii_case("off") => None,
        Some(t) => Some(t),
        None => settings.tftp.clone(),
    };
    let checks = doctor::run(&doctor::Inputs {
        store,
        manager: m,
        data_dir: &settings.data_dir,
        public_url: &settings.public_url,
        public_url_configured: settings.public_url_configured,
        public_https_url: settings.public_https_url.as_deref(),
        tftp,
        tls_cert: args.tls_cert.as_deref(),
        storm: doctor::StormAsks {
            listen_backlog: phoneprov::serve::LISTEN_BACKLOG as u64,
            tftp_receive_buffer: phoneprov::serve::TFTP_RECEIVE_BUFFER as u64,
        },
    })
    .await;
    let text = checks
        .iter()
        .map(|c| {
            let word = match c.status {
                Status::Ok => "OK  ",
                Status::Fail => "FAIL",
                Status::Skip => "SKIP",
            };
            let mut line = format!("{word}  {:<18} {}", c.name, c.detail);
            if let Some(f) = &c.fix {
                line.push_str(&format!("\n      fix: {f}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(json, &checks, text);
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
