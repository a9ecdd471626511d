//! `serve --demo`: the demo site seeded on an empty database, and the walkthrough printed
//! for it.

use std::net::SocketAddr;

use phoneprov::config::Settings;
use phoneprov::manage::{LineInput, Manager, PhoneInput, SiteInput, SiteView};
use phoneprov::serve::ServeConfig;
use phoneprov::store::Store;

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
    let m = Manager::open(
        store.clone(),
        phoneprov::render::Urls::of(settings),
        &settings.data_dir,
    )?;
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
