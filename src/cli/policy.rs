//! `phoneprov policy show`: the rules in force, the stored images they deny, and the phones
//! assigned one.

use std::process::ExitCode;

use phoneprov::config::PolicyCmd;
use phoneprov::manage::Manager;

use super::print::print;

pub async fn run(m: &Manager, cmd: PolicyCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCmd::Show => {
            let policy = m.policy.get();
            let images = m.firmware_list().await?;
            let mut conn = m.store.conn().await?;
            let affected = phoneprov::publish::denied_assignments(&mut conn, &policy).await?;
            print(
                json,
                &serde_json::json!({"rules": policy.rules, "images": images, "denied_assignments": affected.iter().map(|(mac, f)| serde_json::json!({"mac": mac, "file": f})).collect::<Vec<_>>()}),
                policy_text(&policy, &images, &affected),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn policy_text(
    p: &phoneprov::firmware::policy::Policy,
    images: &[phoneprov::rollout::ImageView],
    affected: &[(phoneprov::mac::Mac, String)],
) -> String {
    let mut out = String::from("Rules (deny always wins):");
    for r in &p.rules {
        let mut what = Vec::new();
        if !r.versions.is_empty() {
            what.push(format!(
                "versions {}",
                r.versions
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some((a, b)) = &r.range {
            what.push(format!("range {a}..{b}"));
        }
        if !r.sha256.is_empty() {
            what.push(format!("sha256 {}", r.sha256.join(", ")));
        }
        if let Some(m) = &r.minimum {
            what.push(format!("at least {m}"));
        }
        let scope = format!(
            "{}{}{}",
            r.vendor,
            r.family.map(|f| format!(" family {f}")).unwrap_or_default(),
            if r.models.is_empty() {
                String::new()
            } else {
                format!(" models {}", r.models.join(","))
            }
        );
        out.push_str(&format!(
            "\n  {:?} {scope}: {}\n    {} ({})",
            r.kind,
            what.join("; "),
            r.reason,
            r.source
        ));
    }
    let denied: Vec<_> = images.iter().filter(|i| !i.verdict.allowed()).collect();
    out.push_str(&format!(
        "\nStored images: {} ({} denied)",
        images.len(),
        denied.len()
    ));
    for i in denied {
        out.push_str(&format!(
            "\n  DENIED {}: {}",
            i.image.file_name,
            i.verdict.refusals.join("; ")
        ));
    }
    if !affected.is_empty() {
        out.push_str("\nPhones assigned a denied image (their files do not reference it):");
        for (mac, f) in affected {
            out.push_str(&format!("\n  {} {f}", mac.colon()));
        }
    }
    out
}
