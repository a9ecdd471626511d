//! `phoneprov phone add|update|list|show|rm`, and how a phone is printed.

use std::process::ExitCode;

use phoneprov::config::PhoneCmd;
use phoneprov::manage::{Manager, PhoneInput, PhoneView};

use super::print::{print, when};

pub async fn run(m: &Manager, cmd: PhoneCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        PhoneCmd::Add {
            mac,
            model,
            site,
            label,
            sn,
        } => {
            let v = m
                .phone_add(PhoneInput {
                    mac,
                    model,
                    site,
                    label,
                    sn,
                })
                .await?;
            print(json, &v, phone_text(&v));
        }
        PhoneCmd::Update {
            mac,
            label,
            sn,
            model,
            site,
            move_site,
        } => {
            let u = phoneprov::manage::PhoneUpdate {
                label,
                sn,
                model,
                site,
                move_site,
            };
            let v = m.phone_update(&mac, u).await?;
            print(json, &v, phone_text(&v));
        }
        PhoneCmd::List { site } => {
            let v = m.phone_list(site.as_deref()).await?;
            print(json, &v, phones_text(&v));
        }
        PhoneCmd::Show { mac } => {
            let v = m.phone_show(&mac).await?;
            print(json, &v, phone_text(&v));
        }
        PhoneCmd::Rm { mac } => {
            m.phone_rm(&mac).await?;
            print(
                json,
                &serde_json::json!({"removed": mac}),
                format!("removed phone {mac}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn phone_text(v: &PhoneView) -> String {
    let mut out = format!(
        "phone:     {}\nmodel:     {} ({})\nsite:      {}\nlabel:     {}\nfiles:     {}\n",
        v.mac_colon,
        v.model,
        v.vendor,
        v.site,
        v.label,
        v.files.join(", ")
    );
    if let Some(sn) = &v.sn {
        out.push_str(&format!("serial:    {sn}\n"));
    }
    if v.lines.is_empty() {
        out.push_str("lines:     none\n");
    }
    for l in &v.lines {
        out.push_str(&format!(
            "line {:<4} user {}{}{}\n",
            l.n,
            l.user,
            l.auth_user
                .as_ref()
                .map(|a| format!(", auth {a}"))
                .unwrap_or_default(),
            l.display_name
                .as_ref()
                .map(|d| format!(", \"{d}\""))
                .unwrap_or_default(),
        ));
    }
    if let Some(r) = &v.firmware_denied {
        out.push_str(&format!("FIRMWARE AT RISK: {}\n", r.join("; ")));
    }
    match &v.last_seen {
        None => out.push_str("last seen: never"),
        Some(s) => out.push_str(&format!(
            "last seen: {} from {} over {} ({})\n           model {}, firmware {}\n           user agent: {}",
            when(s.at),
            s.peer,
            s.transport,
            s.file,
            s.model.as_deref().unwrap_or("?"),
            s.firmware.as_deref().unwrap_or("?"),
            s.user_agent.as_deref().unwrap_or("-"),
        )),
    }
    out
}

pub fn phones_text(v: &[PhoneView]) -> String {
    let mut out = format!(
        "{:<18} {:<10} {:<16} {:<5} {:<26} {:<20} LABEL",
        "MAC", "MODEL", "SITE", "LINES", "LAST SEEN", "FIRMWARE"
    );
    for p in v {
        let seen = p
            .last_seen
            .as_ref()
            .map(|s| when(s.at))
            .unwrap_or_else(|| "never".into());
        let fw = p
            .last_seen
            .as_ref()
            .and_then(|s| s.firmware.clone())
            .unwrap_or_default();
        let fw = if p.firmware_denied.is_some() {
            format!("{fw} DENIED!")
        } else {
            fw
        };
        out.push_str(&format!(
            "\n{:<18} {:<10} {:<16} {:<5} {:<26} {:<20} {}",
            p.mac_colon,
            p.model,
            p.site,
            p.lines.len(),
            seen,
            fw,
            p.label
        ));
    }
    out
}
