//! `phoneprov line set|rm`: a phone's SIP lines.

use std::process::ExitCode;

use phoneprov::config::LineCmd;
use phoneprov::manage::{LineInput, Manager};

use super::print::print;
use super::setup::secret;

pub async fn run(m: &Manager, cmd: LineCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        LineCmd::Set {
            mac,
            n,
            user,
            auth_user,
            password,
            display_name,
            label,
            domain,
        } => {
            let password = secret(password, &format!("SIP password for line {n} of {mac}"))?;
            let v = m
                .line_set(
                    &mac,
                    n,
                    LineInput {
                        user,
                        auth_user,
                        password,
                        display_name,
                        label,
                        domain,
                    },
                )
                .await?;
            print(
                json,
                &v,
                format!("line {} of {mac} set (user {})", v.n, v.user),
            );
        }
        LineCmd::Rm { mac, n } => {
            m.line_rm(&mac, n).await?;
            print(
                json,
                &serde_json::json!({"removed": n}),
                format!("line {n} of {mac} removed"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
