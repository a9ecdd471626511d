//! The files phones get in the field, compared key by key with what peers write
//! (domain.md §2, §3): a NetSapiens-style site (account domain ≠ core server, a login,
//! Australia/Sydney) for a T54W, T46U, T31G, VVX 450 and SoundPoint IP 550, kept as golden
//! files in `tests/golden/` (regenerate with `UPDATE_GOLDEN=1` and read the diff); re-checks;
//! images only for the phones they are assigned to.

mod common;

use std::path::PathBuf;

use common::images::*;
use common::*;

const DOMAIN: &str = "vwp.91912.service";
const CORE: &str = "core1-phx.example.net";
const CORE2: &str = "core2-dal.example.net";
const PHONES: &[(&str, &str, &str)] = &[
    ("805ec0000001", "T54W", "y000000000096.cfg"),
    ("805ec0000002", "T46U", "y000000000108.cfg"),
    ("805ec0000003", "T31G", "y000000000123.cfg"),
    ("0004f2000004", "VVX_450", ""),
    ("0004f2000005", "SPIP_550", ""),
];
const VVX450_UA: &str = "FileTransport PolycomVVX-VVX_450-UA/6.4.3.5156 Type/Application";
const SPIP550_UA: &str =
    "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1009 Type/Application";
const VVX601_UA: &str = "FileTransport PolycomVVX-VVX_601-UA/6.4.3.5156 Type/Application";

/// The NetSapiens-style site: registers as 101x@vwp.91912.service, sends SIP to the core.
fn netsapiens_site(env: &Env) -> String {
    env.ok(&[
        "site",
        "add",
        "acme",
        "--sip-server",
        DOMAIN,
        "--outbound-proxy",
        CORE,
        "--outbound-proxy-2",
        &format!("{CORE2}:5070"),
        "--time-zone",
        "Australia/Sydney",
        "--ntp",
        "ntp.example.com",
    ]);
    env.ok(&[
        "site",
        "update",
        "acme",
        "--auth-user",
        "prov-acme",
        "--auth-password",
        "Acme-Prov-Pass-1",
    ]);
    for (i, (mac, model, _)) in PHONES.iter().enumerate() {
        env.ok(&[
            "phone", "add", mac, "--model", model, "--site", "acme", "--label", "Desk",
        ]);
        let user = format!("101{i}");
        env.ok(&[
            "line",
            "set",
            mac,
            "1",
            "--user",
            &user,
            "--auth-user",
            &format!("{user}acme"),
            "--password",
            &format!("Sip-Pass-{i}x9"),
            "--display-name",
            &format!("User {i}"),
            "--domain",
            DOMAIN,
        ]);
    }
    env.site_key("acme")
}

fn files_of(mac: &str, common: &str) -> Vec<String> {
    if mac.starts_with("805e") {
        vec![
            format!("{mac}.boot"),
            format!("{mac}.cfg"),
            common.to_string(),
        ]
    } else {
        ["", "-settings", "-lines"]
            .iter()
            .map(|s| format!("{mac}{s}.cfg"))
            .chain(["000000000000.cfg".to_string(), "site.cfg".to_string()])
            .collect()
    }
}

#[test]
fn golden_files_for_a_netsapiens_site() {
    let env = Env::new();
    let key = netsapiens_site(&env);
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut differ = Vec::new();
    for (mac, model, common) in PHONES {
        for file in files_of(mac, common) {
            let text = env.ok(&["render", mac, &file]).replace(&key, "SITEKEY");
            let path = golden.join(model).join(&file);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                differ.push(format!("{}:\n{text}", path.display()));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "rendered files differ from tests/golden (UPDATE_GOLDEN=1 to accept):\n{}",
        differ.join("\n")
    );

    // What the golden files must say, key by key (domain.md §2, §3).
    let t54w = env.ok(&["render", "805ec0000001", "805ec0000001.cfg"]);
    for (k, v) in [
        ("account.1.sip_server.1.address", DOMAIN),
        ("account.1.user_name", "1010"),
        ("account.1.auth_name", "1010acme"),
        ("account.1.outbound_proxy_enable", "1"),
        ("account.1.outbound_proxy.1.address", CORE),
        ("account.1.outbound_proxy.1.port", "5060"),
        ("account.1.outbound_proxy.2.address", CORE2),
        ("account.1.outbound_proxy.2.port", "5070"),
        ("static.auto_provision.weekly.enable", "1"),
        ("static.auto_provision.weekly.begin_time", "02:00"),
        ("static.auto_provision.weekly.end_time", "04:00"),
        ("static.auto_provision.repeat.enable", "0"),
    ] {
        assert_eq!(yealink_value(&t54w, k), Some(v), "T54W {k}");
    }
    assert!(!t54w.contains("static.firmware.url"), "no image assigned");
    let common = env.ok(&["render", "805ec0000001", "y000000000096.cfg"]);
    for (k, v) in [
        ("local_time.time_zone", "+10"),
        ("local_time.summer_time", "1"),
        ("local_time.dst_time_type", "1"),
        // Sydney: first Sunday of October at 02:00 standard, first Sunday of April at 03:00.
        ("local_time.start_time", "10/1/7/2"),
        ("local_time.end_time", "4/1/7/3"),
        ("local_time.offset_time", "60"),
        ("local_time.manual_ntp_srv_prior", "1"),
        ("static.auto_provision.server.username", "prov-acme"),
        ("static.auto_provision.custom.protect", "1"),
    ] {
        assert_eq!(yealink_value(&common, k), Some(v), "common {k}");
    }
    let lines = env.ok(&["render", "0004f2000004", "0004f2000004-lines.cfg"]);
    for (k, v) in [
        ("reg.1.address", "1013@vwp.91912.service"),
        ("reg.1.server.1.address", DOMAIN),
        ("reg.1.outboundProxy.address", CORE),
        ("reg.1.outboundProxy.port", "5060"),
        ("prov.polling.enabled", "1"),
        ("prov.polling.mode", "abs"),
        ("prov.polling.time", "02:00"),
        ("prov.polling.timeRandomEnd", "04:00"),
    ] {
        assert_eq!(xml_attr(&lines, k), Some(v), "VVX lines {k}");
    }
    let site = env.ok(&["render", "0004f2000004", "site.cfg"]);
    for (k, v) in [
        ("device.dhcp.bootSrvUseOpt", "Static"),
        ("device.dhcp.bootSrvUseOpt.set", "1"),
        ("tcpIpApp.sntp.gmtOffset", "36000"),
        ("tcpIpApp.sntp.gmtOffset.overrideDHCP", "1"),
        ("tcpIpApp.sntp.address.overrideDHCP", "1"),
        ("tcpIpApp.sntp.daylightSavings.enable", "1"),
        ("tcpIpApp.sntp.daylightSavings.fixedDayEnable", "0"),
        ("tcpIpApp.sntp.daylightSavings.start.month", "10"),
        ("tcpIpApp.sntp.daylightSavings.start.date", "1"),
        ("tcpIpApp.sntp.daylightSavings.start.dayOfWeek", "1"),
        ("tcpIpApp.sntp.daylightSavings.start.time", "2"),
        ("tcpIpApp.sntp.daylightSavings.stop.month", "4"),
        ("tcpIpApp.sntp.daylightSavings.stop.time", "3"),
        ("device.prov.user", "prov-acme"),
    ] {
        assert_eq!(xml_attr(&site, k), Some(v), "site.cfg {k}");
    }
    for (mac, f) in [
        ("0004f2000005", "0004f2000005.cfg"),
        ("0004f2000005", "000000000000.cfg"),
    ] {
        let master = env.ok(&["render", mac, f]);
        assert_eq!(
            xml_attr(&master, "APP_FILE_PATH"),
            Some(""),
            "{f} names no image"
        );
    }
    // A phone without line keys gets none; a T31G gets its two.
    env.ok(&[
        "phone",
        "add",
        "805ec0000009",
        "--model",
        "T30",
        "--site",
        "acme",
    ]);
    env.ok(&[
        "line",
        "set",
        "805ec0000009",
        "1",
        "--user",
        "1019",
        "--password",
        "Pw-1019-x",
    ]);
    let t30 = env.ok(&["render", "805ec0000009", "805ec0000009.cfg"]);
    assert!(!t30.contains("linekey."), "{t30}");
    let t31 = env.ok(&["render", "805ec0000003", "805ec0000003.cfg"]);
    assert_eq!(yealink_value(&t31, "linekey.1.type"), Some("15"));
}

#[test]
fn sip_fields_from_every_door() {
    let env = Env::new();
    netsapiens_site(&env);
    // A line of another domain than the site's.
    env.ok(&[
        "line",
        "set",
        "805ec0000001",
        "2",
        "--user",
        "2001",
        "--password",
        "Pw-2001-x",
        "--domain",
        "Other.91912.Service",
    ]);
    let cfg = env.ok(&["render", "805ec0000001", "805ec0000001.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "account.2.sip_server.1.address"),
        Some("other.91912.service")
    );
    // DNS NAPTR/SRV: transport 3 and no port written, for the server and the proxies.
    env.ok(&["site", "update", "acme", "--transport", "dns"]);
    let cfg = env.ok(&["render", "805ec0000001", "805ec0000001.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "account.1.sip_server.1.transport_type"),
        Some("3")
    );
    assert!(!cfg.contains(".port = "), "{cfg}");
    let lines = env.ok(&["render", "0004f2000004", "0004f2000004-lines.cfg"]);
    assert_eq!(
        xml_attr(&lines, "reg.1.server.1.transport"),
        Some("DNSnaptr")
    );
    assert!(!lines.contains(".port="), "{lines}");
    // Bad values: a clear error, nothing changed.
    for (args, want) in [
        (
            vec!["site", "update", "acme", "--outbound-proxy", "core 1"],
            "outbound proxy",
        ),
        (
            vec![
                "site",
                "update",
                "acme",
                "--outbound-proxy",
                "",
                "--outbound-proxy-2",
                "x.example",
            ],
            "needs a first one",
        ),
        (
            vec!["site", "update", "acme", "--recheck", "daily:05:00-04:00"],
            "must end after it starts",
        ),
        (
            vec!["site", "update", "acme", "--recheck", "every:5m"],
            "15 minutes to 7 days",
        ),
        (
            vec!["site", "update", "acme", "--recheck", "hourly"],
            "daily:HH:MM-HH:MM",
        ),
        (
            vec!["site", "update", "acme", "--transport", "sctp"],
            "udp, tcp, tls or dns",
        ),
        (
            vec![
                "line",
                "set",
                "805ec0000001",
                "3",
                "--user",
                "3",
                "--password",
                "Pw-3003-x",
                "--domain",
                "bad_domain!",
            ],
            "line domain",
        ),
    ] {
        let err = env.refused(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let show = env.ok(&["site", "show", "acme"]);
    assert!(
        show.contains(&format!(
            "outbound proxy:   {CORE}:5060, failover {CORE2}:5070"
        )),
        "{show}"
    );
    assert!(
        show.contains("re-checks:        daily:02:00-04:00"),
        "{show}"
    );
    // CSV: line<N>_domain in and out, a bad one named by line and column.
    let csv = env.data_dir().join("p.csv");
    std::fs::write(&csv, "mac,model,site,line1_user,line1_password,line1_domain\n805ec0000007,T54W,acme,1017,Pw-1017-xx,Tenant7.91912.service\n805ec0000008,T54W,acme,1018,Pw-1018-xx,bad domain\n").unwrap();
    let o = env.run(&["import", csv.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(
        said.contains("line 3, column line1_domain") && said.contains("nothing was changed"),
        "{said}"
    );
    std::fs::write(&csv, "mac,model,site,line1_user,line1_password,line1_domain\n805ec0000007,T54W,acme,1017,Pw-1017-xx,Tenant7.91912.service\n").unwrap();
    env.ok(&["import", csv.to_str().unwrap()]);
    let cfg = env.ok(&["render", "805ec0000007", "805ec0000007.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "account.1.sip_server.1.address"),
        Some("tenant7.91912.service")
    );
    let out = env.ok(&["export"]);
    assert!(
        out.lines().next().unwrap().contains("line1_domain"),
        "{out}"
    );
    assert!(out.contains("tenant7.91912.service"), "{out}");
}

#[test]
fn rechecks_on_a_schedule_spread_by_phone() {
    let env = Env::new();
    netsapiens_site(&env);
    env.ok(&["site", "update", "acme", "--recheck", "every:6h"]);
    let mut minutes = Vec::new();
    for mac in ["805ec0000001", "805ec0000002", "805ec0000003"] {
        let cfg = env.ok(&["render", mac, &format!("{mac}.cfg")]);
        assert_eq!(
            yealink_value(&cfg, "static.auto_provision.repeat.enable"),
            Some("1")
        );
        assert_eq!(
            yealink_value(&cfg, "static.auto_provision.weekly.enable"),
            Some("0")
        );
        let m: u32 = yealink_value(&cfg, "static.auto_provision.repeat.minutes")
            .unwrap()
            .parse()
            .unwrap();
        assert!((360..=396).contains(&m), "{m}");
        minutes.push(m);
    }
    minutes.dedup();
    assert!(
        minutes.len() > 1,
        "phones of a site are spread: {minutes:?}"
    );
    let lines = env.ok(&["render", "0004f2000004", "0004f2000004-lines.cfg"]);
    assert_eq!(xml_attr(&lines, "prov.polling.mode"), Some("rel"));
    let p: u32 = xml_attr(&lines, "prov.polling.period")
        .unwrap()
        .parse()
        .unwrap();
    assert!((21600..=23760).contains(&p) && p.is_multiple_of(60), "{p}");
    env.ok(&["site", "update", "acme", "--recheck", "off"]);
    let cfg = env.ok(&["render", "805ec0000001", "805ec0000001.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "static.auto_provision.repeat.enable"),
        Some("0")
    );
    assert_eq!(
        yealink_value(&cfg, "static.auto_provision.weekly.enable"),
        Some("0")
    );
    let lines = env.ok(&["render", "0004f2000004", "0004f2000004-lines.cfg"]);
    assert_eq!(xml_attr(&lines, "prov.polling.enabled"), Some("0"));
    assert!(
        env.ok(&["site", "show", "acme"])
            .contains("off (changes reach phones at their next boot)")
    );
}

#[tokio::test]
async fn images_reach_only_the_phones_they_are_assigned_to() {
    let env = Env::new();
    let key = netsapiens_site(&env);
    env.ok(&["site", "add", "other", "--sip-server", "pbx.other.example"]);
    env.ok(&[
        "phone",
        "add",
        "0004f2000006",
        "--model",
        "VVX_601",
        "--site",
        "other",
    ]);
    env.ok(&[
        "phone",
        "add",
        "805ec0000006",
        "--model",
        "T57W",
        "--site",
        "acme",
    ]);
    let other = env.site_key("other");
    let up = tempfile::tempdir().unwrap();
    let poly = blob(80_000, 51);
    let rom = blob(90_000, 52);
    let rom_name = "T54W(T57W,T53W)-96.86.0.70.rom";
    env.ok(&[
        "firmware",
        "add",
        put(up.path(), "sip.ld", &poly).to_str().unwrap(),
        "--version",
        "6.4.3.5156",
        "--models",
        "VVX_450,VVX_601",
    ]);
    env.ok(&[
        "firmware",
        "add",
        put(up.path(), rom_name, &rom).to_str().unwrap(),
    ]);
    env.ok(&[
        "firmware",
        "assign",
        "6.4.3.5156",
        "--phone",
        "0004f2000004",
    ]);
    env.ok(&[
        "firmware",
        "assign",
        "96.86.0.70",
        "--phone",
        "805ec0000001",
    ]);
    // Only the assignee's master names it; the unassigned SoundPoint's names nothing.
    let m = env.ok(&["render", "0004f2000004", "0004f2000004.cfg"]);
    assert_eq!(xml_attr(&m, "APP_FILE_PATH"), Some("sip.ld"));
    let m = env.ok(&["render", "0004f2000005", "0004f2000005.cfg"]);
    assert_eq!(xml_attr(&m, "APP_FILE_PATH"), Some(""));
    std::fs::create_dir_all(env.data_dir().join("files")).unwrap();
    std::fs::write(env.data_dir().join("files/copy.ld"), &poly).unwrap();

    let srv = env.start();
    let fetch = |site: String, name: &str, ua: &str| {
        let url = srv.url(&format!("/p/{site}/{name}"));
        let ua = ua.to_string();
        async move {
            let r = client()
                .get(url)
                .header("User-Agent", ua)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        }
    };
    // No login needed for an image (the site has one; its per-MAC files still want it).
    let (st, body) = fetch(key.clone(), "sip.ld", VVX450_UA).await;
    assert_eq!((st, sha(&body)), (200, sha(&poly)));
    let (st, _) = fetch(key.clone(), "0004f2000004.cfg", VVX450_UA).await;
    assert_eq!(st, 401, "per-MAC files still need the login");
    // A model it does not fit, another site, another name: a miss.
    assert_ne!(fetch(key.clone(), "sip.ld", SPIP550_UA).await.0, 200);
    assert_ne!(fetch(other.clone(), "sip.ld", VVX601_UA).await.0, 200);
    assert_ne!(fetch(key.clone(), "copy.ld", VVX450_UA).await.0, 200);
    let out = tempfile::tempdir().unwrap();
    assert!(!tftp_get(
        &srv,
        &format!("p/{other}/sip.ld"),
        &out.path().join("a")
    ));
    // Yealink: the MAC in the User-Agent must be an assignee's, even within the family.
    let ua = |mac: &str, model: &str| format!("Yealink SIP-{model} 96.86.0.45 {mac}");
    let (st, body) = fetch(key.clone(), rom_name, &ua("80:5e:c0:00:00:01", "T54W")).await;
    assert_eq!((st, sha(&body)), (200, sha(&rom)));
    assert_ne!(
        fetch(key.clone(), rom_name, &ua("80:5e:c0:00:00:06", "T57W"))
            .await
            .0,
        200
    );
    assert_ne!(
        fetch(key.clone(), rom_name, &ua("80:5e:c0:00:00:02", "T46U"))
            .await
            .0,
        200
    );
    // Field shapes of the same request: percent-encoded name, doubled slash.
    let (st, _) = fetch(
        key.clone(),
        "T54W%28T57W%2CT53W%29-96.86.0.70.rom",
        &ua("80:5e:c0:00:00:01", "T54W"),
    )
    .await;
    assert_eq!(st, 200);
    let o = std::process::Command::new("curl")
        .args([
            "-s",
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-A",
            VVX450_UA,
        ])
        .arg(srv.url(&format!("/p/{key}//sip.ld")))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "200");
}

#[tokio::test]
async fn sip_fields_over_the_admin_api() {
    let env = Env::new();
    let srv = env.start();
    let token = env.admin_token();
    let c = client();
    let api = |p: &str| srv.url(&format!("/api/v1{p}"));
    let r = c
        .post(api("/sites"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "acme", "sip_server": DOMAIN, "outbound_proxy": format!("{CORE}:5070"), "recheck": "every:2h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: serde_json::Value = c
        .get(api("/sites/acme"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["sip"]["outbound_proxy"]["host"], CORE, "{v}");
    assert_eq!(v["sip"]["outbound_proxy"]["port"], 5070, "{v}");
    assert_eq!(v["sip"]["recheck"], "every:2h", "{v}");
    let r = c
        .patch(api("/sites/acme"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"recheck": "weekly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("daily:HH:MM-HH:MM"));
    env.ok(&[
        "phone",
        "add",
        "805ec0000001",
        "--model",
        "T54W",
        "--site",
        "acme",
    ]);
    let r = c
        .put(api("/phones/805ec0000001/lines/1"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"user": "1010", "password": "Pw-1010-x", "domain": "tenant.91912.service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let cfg = env.ok(&["render", "805ec0000001", "805ec0000001.cfg"]);
    assert_eq!(
        yealink_value(&cfg, "account.1.sip_server.1.address"),
        Some("tenant.91912.service")
    );
    assert_eq!(
        yealink_value(&cfg, "account.1.outbound_proxy.1.port"),
        Some("5070")
    );
}
