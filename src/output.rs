//! What the CLI prints: text for people, JSON with `--json`, and the `--demo` walkthrough.

use std::net::SocketAddr;

use chrono::TimeZone;
use phoneprov::config::Settings;
use phoneprov::manage::{LineInput, Manager, PhoneInput, PhoneView, SiteInput, SiteView};
use phoneprov::serve::ServeConfig;
use phoneprov::store::Store;

pub fn print<T: serde::Serialize>(json: bool, value: &T, text: String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot print JSON: {e}"),
        }
    } else if !text.is_empty() {
        println!("{text}");
    }
}

fn when(ms: i64) -> String {
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `phoneprov token new|list|rm`.
pub fn token_cmd(
    path: &std::path::Path,
    cmd: phoneprov::config::TokenCmd,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    use phoneprov::config::TokenCmd;
    use phoneprov::tokens;
    let refused = |e: tokens::TokenError| -> anyhow::Error {
        match e {
            tokens::TokenError::Invalid(m) => phoneprov::manage::Error::Invalid(m).into(),
            tokens::TokenError::NotFound(m) => {
                phoneprov::manage::Error::NotFound(format!("no admin token named '{m}'")).into()
            }
            other => other.into(),
        }
    };
    match cmd {
        TokenCmd::New { name } => {
            let token = tokens::create(path, &name).map_err(refused)?;
            print(
                json,
                &serde_json::json!({"name": name, "token": token}),
                format!(
                    "{token}\n(shown once: only its hash is kept in {})",
                    path.display()
                ),
            );
        }
        TokenCmd::List => {
            let entries = tokens::read(path).map_err(refused)?;
            let text = entries
                .iter()
                .map(|e| format!("{}  created {}", e.name, when(e.created_at)))
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &entries, text);
        }
        TokenCmd::Rm { name } => {
            tokens::remove(path, &name).map_err(refused)?;
            print(
                json,
                &serde_json::json!({"removed": name}),
                format!("token '{name}' revoked"),
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The fetch audit as a table.
pub fn audit_table(rows: &[phoneprov::store::AuditRow]) -> String {
    let mut out = String::from(
        "LAST SEEN                  COUNT  PEER             VIA    SITE         MAC           FILE                      RESULT             LOGIN",
    );
    for r in rows {
        out.push_str(&format!(
            "\n{:<26} {:>5}  {:<16} {:<6} {:<12} {:<13} {:<25} {:<18} {}",
            when(r.last_at),
            r.count,
            r.peer,
            r.transport,
            r.site.as_deref().unwrap_or("-"),
            r.mac.as_deref().unwrap_or("-"),
            r.file,
            r.result,
            r.auth
        ));
    }
    out
}

pub fn site_text(v: &SiteView) -> String {
    let s = &v.site;
    let mut out = format!(
        "site:             {}\nprovisioning URL: {}\nSIP server:       {}:{} ({})\nphones:           {}\n",
        s.name, v.provisioning_url, s.sip_server, s.sip_port, s.transport, v.phones
    );
    for w in &v.warnings {
        out.push_str(&format!("WARNING:          {w}\n"));
    }
    match (&s.sip.outbound_proxy, &s.sip.outbound_proxy_2) {
        (Some(p), Some(p2)) => out.push_str(&format!("outbound proxy:   {p}, failover {p2}\n")),
        (Some(p), None) => out.push_str(&format!("outbound proxy:   {p}\n")),
        _ => {}
    }
    out.push_str(&format!(
        "re-checks:        {}\n",
        match s.sip.recheck {
            phoneprov::model::Recheck::Off =>
                "off (changes reach phones at their next boot)".to_string(),
            r => r.to_string(),
        }
    ));
    if let Some(tz) = &s.time_zone {
        out.push_str(&format!("time zone:        {tz}\n"));
    }
    if !s.ntp.is_empty() {
        out.push_str(&format!("NTP:              {}\n", s.ntp.join(", ")));
    }
    out.push_str(&format!(
        "key-less at /:    {}",
        if s.allow_keyless { "allowed" } else { "no" }
    ));
    let a = &s.access;
    match &a.auth {
        Some(c) => {
            out.push_str(&format!(
                "\nlogin:            {} (phones that fetched with it: {} of {})",
                c.user,
                v.phones_on_current_login.unwrap_or(0),
                v.phones
            ));
            if let (Some(p), Some(until)) = (&a.previous_auth, a.previous_until) {
                out.push_str(&format!(
                    "\nprevious login:   {} accepted until {}",
                    p.user,
                    when(until)
                ));
            }
        }
        None => out.push_str("\nlogin:            none (the site key alone guards the files)"),
    }
    if !a.allow_nets.is_empty() {
        let nets: Vec<String> = a.allow_nets.iter().map(|n| n.to_string()).collect();
        out.push_str(&format!("\nallowed networks: {}", nets.join(", ")));
    }
    out.push_str(&format!(
        "\nHTTPS only:       {}\nTFTP for configs: {}",
        if a.require_https { "yes" } else { "no" },
        if a.tftp_allowed() {
            "allowed"
        } else {
            "refused"
        }
    ));
    out
}

pub fn sites_text(v: &[SiteView]) -> String {
    let mut out = format!("{:<24} {:>6}  {:<30} URL", "SITE", "PHONES", "SIP SERVER");
    for s in v {
        out.push_str(&format!(
            "\n{:<24} {:>6}  {:<30} {}",
            s.site.name,
            s.phones,
            format!(
                "{}:{}/{}",
                s.site.sip_server, s.site.sip_port, s.site.transport
            ),
            s.provisioning_url
        ));
    }
    out
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

/// The demo site, as seeded.
#[derive(Debug)]
pub struct Demo {
    pub site: SiteView,
}

const DEMO_T54W: &str = "80:5e:c0:de:00:01";
const DEMO_VVX: &str = "00:04:f2:de:00:02";

/// Seeds the demo site on an empty database; on a database that has the demo site already,
/// shows it again.
pub async fn seed_demo(
    store: &Store,
    settings: &Settings,
    cfg: &ServeConfig,
) -> anyhow::Result<Option<Demo>> {
    let _ = cfg;
    let m = Manager::open(store.clone(), settings.urls(), &settings.data_dir)?;
    let sites = m.site_list().await?;
    if let Some(site) = sites.into_iter().find(|s| s.site.name == "demo") {
        return Ok(Some(Demo { site }));
    }
    if !m.site_list().await?.is_empty() {
        tracing::warn!("--demo seeds an empty database only; this one has sites already");
        return Ok(None);
    }
    let site = m
        .site_add(SiteInput {
            name: "demo".into(),
            sip_server: "pbx.example.com".into(),
            transport: Some("udp".into()),
            time_zone: Some("America/Denver".into()),
            ntp: vec!["pool.ntp.org".into()],
            allow_keyless: false,
            ymcs_site: None,
            ..Default::default()
        })
        .await?;
    for (mac, model, label, user) in [
        (DEMO_T54W, "T54W", "Front Desk", "201"),
        (DEMO_VVX, "VVX_450", "Conference Room", "202"),
    ] {
        m.phone_add(PhoneInput {
            mac: mac.into(),
            model: model.into(),
            site: "demo".into(),
            label: Some(label.into()),
            ..Default::default()
        })
        .await?;
        let password = phoneprov::manage::new_site_key()?;
        m.line_set(
            mac,
            1,
            LineInput {
                user: user.into(),
                auth_user: None,
                password,
                display_name: Some(label.into()),
                label: None,
                domain: None,
            },
        )
        .await?;
    }
    Ok(Some(Demo { site }))
}

/// How to run this binary again from the current folder: its name when it is on the PATH,
/// else its path (relative to the current folder when it is below it), with the data dir when
/// it was given.
fn invoked_as(data_dir: &std::path::Path) -> String {
    let exe = std::env::current_exe().ok();
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            let c = d.join("phoneprov");
            exe.as_ref()
                .is_some_and(|e| c.canonicalize().ok().as_ref() == e.canonicalize().ok().as_ref())
        })
    });
    let mut me = match (on_path, &exe) {
        (true, _) | (false, None) => "phoneprov".to_string(),
        (false, Some(e)) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            e.strip_prefix(&cwd)
                .map(|r| r.display().to_string())
                .unwrap_or_else(|_| e.display().to_string())
        }
    };
    let default = std::path::Path::new(phoneprov::config::DEFAULT_DATA_DIR);
    if data_dir != default && data_dir != default.strip_prefix("./").unwrap_or(default) {
        me.push_str(&format!(" --data-dir '{}'", data_dir.display()));
    }
    me
}

pub fn demo_instructions(
    demo: &Demo,
    addr: SocketAddr,
    public_url: &str,
    data_dir: &std::path::Path,
) -> String {
    let base = format!("{public_url}/p/{}", demo.site.site.key);
    let _ = addr;
    // The command as this binary was started (`target/release/phoneprov` under `cargo run`),
    // so the line works as printed whether or not phoneprov is on the PATH.
    let me = invoked_as(data_dir);
    let t = DEMO_T54W.replace(':', "");
    let v = DEMO_VVX.replace(':', "");
    format!(
        "\nDemo site 'demo' is ready: a Yealink T54W ({DEMO_T54W}) and a Polycom VVX 450 ({DEMO_VVX}).\n\
         Fetch what the T54W gets when it boots:\n\
         \x20 curl -A 'Yealink SIP-T54W 96.86.0.45 {DEMO_T54W}' {base}/{t}.boot\n\
         \x20 curl -A 'Yealink SIP-T54W 96.86.0.45 {DEMO_T54W}' {base}/y000000000096.cfg\n\
         \x20 curl -A 'Yealink SIP-T54W 96.86.0.45 {DEMO_T54W}' {base}/{t}.cfg\n\
         and what the VVX 450 gets:\n\
         \x20 curl -A 'FileTransport PolycomVVX-VVX_450-UA/6.4.3.5156 Type/Application' {base}/{v}.cfg\n\
         \x20 curl -A 'FileTransport PolycomVVX-VVX_450-UA/6.4.3.5156 Type/Application' {base}/{v}-lines.cfg\n\
         Then see it recorded:  {me} phone show {DEMO_T54W}\n\
         An unknown MAC gets the same 404 as a missing file:\n\
         \x20 curl -i {base}/805ec0000000.cfg\n"
    )
}

pub fn import_text(r: &phoneprov::import::Report) -> String {
    let mut out = String::new();
    for e in &r.errors {
        let col = if e.column.is_empty() {
            String::new()
        } else {
            format!(", column {}", e.column)
        };
        out.push_str(&format!("line {}{col}: {}\n", e.line, e.message));
    }
    let verb = match (r.errors.is_empty(), r.dry_run, r.applied) {
        (false, _, _) => format!("{} error(s); nothing was changed.", r.errors.len()),
        (true, true, _) => "[DRY RUN] nothing was changed.".to_string(),
        (true, false, true) => "applied.".to_string(),
        (true, false, false) => "nothing to change.".to_string(),
    };
    out.push_str(&format!(
        "{} rows: {} created, {} updated, {} unchanged; {verb}",
        r.rows, r.created, r.updated, r.unchanged
    ));
    out
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

pub fn recovery_summary(
    s: &std::collections::BTreeMap<std::net::SocketAddr, phoneprov::recover::PhoneLog>,
) -> String {
    if s.is_empty() {
        return "recovery summary: no phone asked for an image".into();
    }
    let mut out = format!("recovery summary: {} phone(s)", s.len());
    for (peer, l) in s {
        out.push_str(&format!(
            "\n  {peer}: asked for {}; {} of {} bytes; {}",
            l.requests.join(", "),
            l.acked,
            l.total,
            l.outcome.as_deref().unwrap_or("in progress when stopped")
        ));
    }
    out
}
