//! `phoneprov site add|update|list|show|rm`: a site's arguments to one `Manager` call, and
//! how a site is printed.

use std::process::ExitCode;

use phoneprov::config::SiteCmd;
use phoneprov::manage::{Manager, SiteInput, SiteUpdate, SiteView};

use super::print::{print, when};
use super::setup::secret;

pub async fn run(m: &Manager, cmd: SiteCmd, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        SiteCmd::Add {
            name,
            sip_server,
            transport,
            time_zone,
            ntp,
            allow_keyless,
            ymcs_site,
            sip,
        } => {
            let v = m
                .site_add(SiteInput {
                    name,
                    sip_server,
                    transport: Some(transport),
                    time_zone,
                    ntp,
                    allow_keyless,
                    ymcs_site,
                    outbound_proxy: sip.outbound_proxy,
                    outbound_proxy_2: sip.outbound_proxy_2,
                    recheck: sip.recheck,
                })
                .await?;
            print(json, &v, site_text(&v));
        }
        SiteCmd::Update {
            name,
            sip_server,
            transport,
            time_zone,
            ntp,
            allow_keyless,
            rotate_key,
            recovery,
            access,
            sip,
        } => {
            let ntp = (!ntp.is_empty()).then_some(ntp);
            let auth_password = access
                .auth_password
                .map(|p| secret(p, "provisioning password"))
                .transpose()?;
            let allow_nets = match (access.any_net, access.allow_net.is_empty()) {
                (true, _) => Some(Vec::new()),
                (false, false) => Some(access.allow_net),
                (false, true) => None,
            };
            let v = m
                .site_update(
                    &name,
                    SiteUpdate {
                        sip_server,
                        transport,
                        time_zone,
                        ntp,
                        allow_keyless,
                        rotate_key,
                        recovery,
                        auth_user: access.auth_user,
                        auth_password,
                        no_auth: access.no_auth,
                        rotation_window: access.rotation_window,
                        allow_nets,
                        require_https: access.require_https,
                        tftp: access.tftp,
                        ymcs_site: access.ymcs_site,
                        outbound_proxy: sip.outbound_proxy,
                        outbound_proxy_2: sip.outbound_proxy_2,
                        recheck: sip.recheck,
                    },
                )
                .await?;
            print(json, &v, site_text(&v));
        }
        SiteCmd::List => {
            let v = m.site_list().await?;
            print(json, &v, sites_text(&v));
        }
        SiteCmd::Show { name } => {
            let v = m.site_show(&name).await?;
            print(json, &v, site_text(&v));
        }
        SiteCmd::Rm { name, force } => {
            let n = m.site_rm(&name, force).await?;
            print(
                json,
                &serde_json::json!({"removed": name, "removed_phones": n}),
                format!("removed site {name} ({n} phones)"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
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
