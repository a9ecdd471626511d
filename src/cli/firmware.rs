//! `phoneprov firmware add|list|rm|assign|unassign|check|audit`: the firmware store, its
//! judgement and assignments, and how they are printed. `check` and `audit` exit 1 when the
//! policy denies what they found.

use std::process::ExitCode;

use phoneprov::config::{FirmwareCmd, TargetArgs};
use phoneprov::manage::Manager;

use super::print::{print, when};

pub async fn run(m: &Manager, cmd: FirmwareCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        FirmwareCmd::Add {
            file,
            version,
            models,
        } => {
            let i = m.firmware_add(&file, version.as_deref(), &models).await?;
            print(
                json,
                &i,
                format!(
                    "stored {} (version {}, fits {}), sha256 {}",
                    i.file_name,
                    i.version,
                    i.models.join(", "),
                    i.sha256
                ),
            );
        }
        FirmwareCmd::List => {
            let v = m.firmware_list().await?;
            print(json, &v, firmware_text(&v));
        }
        FirmwareCmd::Rm { image } => {
            let i = m.firmware_rm(&image).await?;
            print(json, &i, format!("removed {}", i.file_name));
        }
        FirmwareCmd::Assign { image, target: t } => {
            let i = m.firmware_assign(&image, &target(t)).await?;
            print(
                json,
                &i,
                format!("assigned {} (version {})", i.file_name, i.version),
            );
        }
        FirmwareCmd::Unassign { target: t } => {
            m.firmware_unassign(&target(t)).await?;
            print(
                json,
                &serde_json::json!({"unassigned": true}),
                "unassigned".into(),
            );
        }
        FirmwareCmd::Check {
            file,
            version,
            models,
        } => {
            let c = m.firmware_check(&file, version.as_deref(), &models).await?;
            let bytes = format!(
                "  {} bytes, sha256 {}, sha1 {}\n  {}",
                c.content.size,
                c.content.sha256,
                c.content.sha1,
                match &c.known {
                    Some(k) => format!("a known build: {} {} ({})", k.vendor, k.version, k.at),
                    None => "not a build phoneprov knows by content: identified by its name and the version given".into(),
                }
            );
            let text = if c.verdict.allowed() {
                format!(
                    "{}: version {} for {}: allowed by the policy\n{bytes}",
                    c.file_name,
                    c.version,
                    c.models.join(", ")
                )
            } else {
                format!(
                    "{}: version {} for {}: DENIED\n  {}\n{bytes}",
                    c.file_name,
                    c.version,
                    c.models.join(", "),
                    c.verdict.refusals.join("\n  ")
                )
            };
            print(json, &c, text);
            if !c.verdict.allowed() {
                return Ok(ExitCode::from(1));
            }
        }
        FirmwareCmd::Audit => {
            let v = m.firmware_audit().await?;
            print(json, &v, audit_text(&v));
            if !v.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn target(t: TargetArgs) -> phoneprov::rollout::TargetInput {
    phoneprov::rollout::TargetInput {
        site: t.site,
        model: t.model,
        phone: t.phone,
    }
}

pub fn firmware_text(v: &[phoneprov::rollout::ImageView]) -> String {
    let mut out = format!(
        "{:<12} {:<10} {:<18} {:>12} {:<9} {:<8} FILE",
        "VERSION", "VENDOR", "SHA256", "BYTES", "POLICY", "ASSIGNED"
    );
    for i in v {
        out.push_str(&format!(
            "\n{:<12} {:<10} {:<18} {:>12} {:<9} {:<8} {}",
            i.image.version,
            i.image.vendor,
            &i.image.sha256[..16],
            i.image.size,
            if i.verdict.allowed() {
                "allowed"
            } else {
                "DENIED"
            },
            i.assigned,
            i.image.file_name
        ));
    }
    out
}

pub fn audit_text(v: &[phoneprov::rollout::AtRisk]) -> String {
    if v.is_empty() {
        return "no phone reports firmware the policy denies".into();
    }
    let mut out = format!("{} phone(s) run firmware the policy denies:", v.len());
    for p in v {
        out.push_str(&format!(
            "\n  {} {} in site {}: {} (seen {})\n    {}",
            p.mac,
            p.model,
            p.site,
            p.firmware,
            when(p.seen_at),
            p.refusals.join("\n    ")
        ));
    }
    out
}
