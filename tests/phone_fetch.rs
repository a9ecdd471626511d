//! What phones get over HTTP: the full Yealink and Polycom boot sequences, uploads, last-seen,
//! identical misses, ETags, key-less root, and changes picked up by a running server.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn t54w_boot_sequence() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let base = format!("/p/{key}");

    // 1. <mac>.boot: the model's common file, then the phone's own file.
    let (st, boot) = get(&srv.url(&format!("{base}/{T54W_MAC}.boot")), T54W_UA).await;
    assert_eq!(st, 200);
    let lines: Vec<&str> = boot.lines().collect();
    assert_eq!(lines[0], "#!version:1.0.0.1");
    let includes: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("include:config"))
        .copied()
        .collect();
    assert_eq!(
        includes,
        [
            "include:config \"y000000000096.cfg\"",
            "include:config \"805ec0aabbcc.cfg\""
        ]
    );
    assert_eq!(yealink_value(&boot, "overwrite_mode"), Some("1"));

    // 2. y000000000000.boot names no MAC: the User-Agent's MAC picks the phone's boot file.
    let (st, generic) = get(&srv.url(&format!("{base}/y000000000000.boot")), T54W_UA).await;
    assert_eq!((st, generic.as_str()), (200, boot.as_str()));
    let (st, _) = get(
        &srv.url(&format!("{base}/y000000000000.boot")),
        "Yealink SIP-T54W 96.86.0.45 80:5e:c0:00:00:01",
    )
    .await;
    assert_eq!(st, 404, "an unknown phone's User-Agent gets no boot file");

    // 3. The common file points the phone back at this site, with time settings.
    let (st, common) = get(&srv.url(&format!("{base}/y000000000096.cfg")), T54W_UA).await;
    assert_eq!(st, 200);
    assert_eq!(common.lines().next(), Some("#!version:1.0.0.1"));
    assert_eq!(
        yealink_value(&common, "static.auto_provision.server.url"),
        Some(format!("{PUBLIC_URL}/p/{key}/").as_str())
    );
    assert_eq!(
        yealink_value(&common, "local_time.ntp_server1"),
        Some("ntp.example.com")
    );
    assert_eq!(yealink_value(&common, "local_time.time_zone"), Some("-7"));
    // Denver's rule written out: 2nd Sunday of March, 1st Sunday of November, at 02:00.
    assert_eq!(yealink_value(&common, "local_time.summer_time"), Some("1"));
    assert_eq!(
        yealink_value(&common, "local_time.dst_time_type"),
        Some("1")
    );
    assert_eq!(
        yealink_value(&common, "local_time.start_time"),
        Some("3/2/7/2")
    );
    assert_eq!(
        yealink_value(&common, "local_time.end_time"),
        Some("11/1/7/2")
    );
    assert_eq!(yealink_value(&common, "local_time.offset_time"), Some("60"));
    assert_eq!(
        yealink_value(&common, "local_time.manual_ntp_srv_prior"),
        Some("1")
    );
    assert_eq!(
        yealink_value(&common, "static.auto_provision.custom.protect"),
        Some("1")
    );
    assert!(
        !common.contains("password"),
        "the common file holds no line secrets"
    );

    // 4. <mac>.cfg: both accounts, TLS.
    let (st, cfg) = get(&srv.url(&format!("{base}/{T54W_MAC}.cfg")), T54W_UA).await;
    assert_eq!(st, 200);
    assert_eq!(cfg.lines().next(), Some("#!version:1.0.0.1"));
    for (k, v) in [
        ("account.1.enable", "1"),
        ("account.1.user_name", "201"),
        ("account.1.auth_name", "201"),
        ("account.1.password", "Xk29-pq8s-Lm2v"),
        ("account.1.display_name", "Front Desk"),
        ("account.1.sip_server.1.address", "pbx.example.com"),
        ("account.1.sip_server.1.port", "5061"),
        ("account.1.sip_server.1.transport_type", "2"),
        ("account.2.user_name", "209"),
        ("account.2.auth_name", "a209"),
        ("account.2.password", "Second-Pw-22"),
        ("account.2.sip_server.1.transport_type", "2"),
        ("linekey.2.line", "2"),
    ] {
        assert_eq!(yealink_value(&cfg, k), Some(v), "{k} in\n{cfg}");
    }
    assert_eq!(yealink_value(&cfg, "account.3.enable"), None);

    // Upper-case MAC in the name is the same file.
    let (st, upper) = get(&srv.url(&format!("{base}/805EC0AABBCC.cfg")), T54W_UA).await;
    assert_eq!((st, upper.as_str()), (200, cfg.as_str()));

    // Last-seen is recorded (batched) with what the User-Agent said.
    let seen = eventually(Duration::from_secs(5), || async {
        let v = env.json(&["phone", "show", "80-5e-c0-aa-bb-cc"]);
        (!v["last_seen"].is_null()).then_some(v)
    })
    .await
    .expect("last-seen recorded")
    .0;
    let ls = &seen["last_seen"];
    assert_eq!(ls["peer"], "127.0.0.1");
    assert_eq!(ls["transport"], "http");
    assert_eq!(ls["model"], "T54W");
    assert_eq!(ls["firmware"], "96.86.0.45");
    assert_eq!(ls["user_agent"], T54W_UA);
    let text = env.ok(&["phone", "show", T54W_MAC]);
    assert!(text.contains("firmware 96.86.0.45"), "{text}");
    assert!(
        !text.contains("Xk29"),
        "phone show never prints passwords:\n{text}"
    );
    assert!(
        !srv.log().contains("Xk29-pq8s-Lm2v"),
        "passwords never reach the log"
    );
}

#[tokio::test]
async fn vvx_boot_sequence_and_uploads() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let base = format!("/p/{key}");

    // The phone asks for <MAC>.cfg; either case works.
    let (st, master) = get(&srv.url(&format!("{base}/0004F2A1B2C3.cfg")), VVX_UA).await;
    assert_eq!(st, 200, "{master}");
    let (_, lower) = get(&srv.url(&format!("{base}/{VVX_MAC}.cfg")), VVX_UA).await;
    assert_eq!(master, lower);
    assert_eq!(
        xml_attr(&master, "APP_FILE_PATH"),
        Some(""),
        "no image assigned: none named"
    );
    let config_files = xml_attr(&master, "CONFIG_FILES").expect("CONFIG_FILES");
    let listed: Vec<&str> = config_files.split(',').map(str::trim).collect();
    assert_eq!(
        listed,
        [
            format!("{VVX_MAC}-settings.cfg"),
            format!("{VVX_MAC}-lines.cfg"),
            "site.cfg".into()
        ]
    );

    // Every listed file is served.
    let mut bodies = Vec::new();
    for f in &listed {
        let (st, body) = get(&srv.url(&format!("{base}/{f}")), VVX_UA).await;
        assert_eq!(st, 200, "{f}");
        assert!(body.starts_with("<?xml"), "{f}: {body}");
        bodies.push(body);
    }
    let lines = &bodies[1];
    assert_eq!(
        xml_attr(lines, "reg.1.address"),
        Some("204@pbx.example.com")
    );
    assert_eq!(
        xml_attr(lines, "reg.1.auth.password"),
        Some("Mm18&lt;tt4w&gt;&amp;&quot;Ee9r"),
        "XML-escaped"
    );
    assert_eq!(
        xml_attr(lines, "reg.1.displayName"),
        Some("Conference Room")
    );
    assert_eq!(
        xml_attr(lines, "reg.1.server.1.address"),
        Some("pbx.example.com")
    );
    assert_eq!(xml_attr(lines, "reg.1.server.1.port"), Some("5061"));
    assert_eq!(xml_attr(lines, "reg.1.server.1.transport"), Some("TLS"));
    let site = &bodies[2];
    assert_eq!(
        xml_attr(site, "device.prov.serverName"),
        Some(format!("{PUBLIC_URL}/p/{key}/").as_str())
    );
    assert_eq!(xml_attr(site, "tcpIpApp.sntp.gmtOffset"), Some("-25200"));

    // The default master file uses the phone's own placeholder.
    let (st, default) = get(&srv.url(&format!("{base}/000000000000.cfg")), VVX_UA).await;
    assert_eq!(st, 200);
    assert!(
        xml_attr(&default, "CONFIG_FILES")
            .unwrap()
            .contains("[PHONE_MAC_ADDRESS]-lines.cfg")
    );

    // Uploads: logs and overrides accepted for a known phone; overrides served back.
    let c = client();
    let put = |name: &str, body: Vec<u8>| {
        c.put(srv.url(&format!("{base}/{name}")))
            .header("User-Agent", VVX_UA)
            .body(body)
            .send()
    };
    assert_eq!(
        put("0004F2A1B2C3-app.log", b"boot ok\n".to_vec())
            .await
            .unwrap()
            .status(),
        204
    );
    let override_body =
        "<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity=\"1\"/></PHONE_CONFIG>\n";
    assert_eq!(
        put("0004f2a1b2c3-phone.cfg", override_body.into())
            .await
            .unwrap()
            .status(),
        204
    );
    let served = eventually(Duration::from_secs(3), || async {
        let (st, body) = get(&srv.url(&format!("{base}/0004F2A1B2C3-phone.cfg")), VVX_UA).await;
        (st == 200).then_some(body)
    })
    .await
    .expect("override served back")
    .0;
    assert_eq!(served, override_body);
    // Logs are stored, not served.
    let (st, _) = get(&srv.url(&format!("{base}/0004f2a1b2c3-app.log")), VVX_UA).await;
    assert_eq!(st, 404);
    // Over the size cap: refused.
    let r = put("0004f2a1b2c3-boot.log", vec![b'x'; 2 * 1024 * 1024])
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Unknown MAC, wrong key, or a name that is not an upload: the same 404 as any miss.
    for path in [
        format!("{base}/0004f2000000-app.log"),
        format!("/p/0000000000000000/{VVX_MAC}-app.log"),
        format!("{base}/{VVX_MAC}.cfg"),
        format!("{base}/{T54W_MAC}-app.log"),
    ] {
        let r = c.put(srv.url(&path)).body("x").send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

/// Status, headers that are not the date, and body.
async fn answer(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let r = client()
        .get(url)
        .header("User-Agent", T54W_UA)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| *k != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    headers.sort();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn every_miss_is_the_same_404() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let misses = [
        format!("/p/{key}/805ec0000001.cfg"), // unknown MAC, right key
        format!("/p/0123456789abcdef0123456789abcdef/{T54W_MAC}.cfg"), // known MAC, wrong key
        format!("/p/{key}/no-such-file.txt"), // missing file
        format!("/{T54W_MAC}.cfg"),           // key-less root, not allowed for the site
        format!("/p/{key}/..%2f..%2fetc%2fpasswd"), // traversal attempt
        format!("/p/{key}/sub/{T54W_MAC}.cfg"), // deeper path
    ];
    let first = answer(&srv.url(&misses[0])).await;
    assert_eq!(first.0, 404);
    for m in &misses[1..] {
        assert_eq!(answer(&srv.url(m)).await, first, "{m} answers differently");
    }
}

#[tokio::test]
async fn etag_and_304() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let r = client()
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = client()
        .get(&url)
        .header("If-None-Match", "\"other\", W/".to_string() + &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304, "a list with a weak match still matches");
    let r = client()
        .get(&url)
        .header("If-None-Match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // HEAD: same headers, no body.
    let r = client().head(&url).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["etag"].to_str().unwrap()),
        (200, etag.as_str())
    );
}

#[tokio::test]
async fn cli_change_reaches_a_running_server_within_two_seconds() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));
    let (_, before) = get(&url, T54W_UA).await;
    assert_eq!(
        yealink_value(&before, "account.1.password"),
        Some("Xk29-pq8s-Lm2v")
    );

    env.ok(&[
        "line",
        "set",
        T54W_MAC,
        "1",
        "--user",
        "201",
        "--password",
        "Changed-On-PBX-1",
    ]);
    let (_, took) = eventually(Duration::from_secs(5), || async {
        let (_, body) = get(&url, T54W_UA).await;
        (yealink_value(&body, "account.1.password") == Some("Changed-On-PBX-1")).then_some(())
    })
    .await
    .expect("the change was never served");
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // A site-level change reaches every file of the site, a removed phone disappears.
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--sip-server",
        "pbx2.example.com:5071",
    ]);
    env.ok(&["phone", "rm", VVX_MAC]);
    let vvx = srv.url(&format!("/p/{key}/{VVX_MAC}.cfg"));
    eventually(Duration::from_secs(3), || async {
        let (_, body) = get(&url, T54W_UA).await;
        let (st, _) = get(&vvx, VVX_UA).await;
        (yealink_value(&body, "account.1.sip_server.1.address") == Some("pbx2.example.com")
            && yealink_value(&body, "account.1.sip_server.1.port") == Some("5071")
            && st == 404)
            .then_some(())
    })
    .await
    .expect("site change and phone removal served");

    // Rotating the key moves the site: the old URL is a miss, the new one serves.
    env.ok(&["site", "update", "valleywide", "--rotate-key"]);
    let new_key = env.site_key("valleywide");
    assert_ne!(new_key, key);
    eventually(Duration::from_secs(3), || async {
        let (old, _) = get(&url, T54W_UA).await;
        let (new, body) = get(
            &srv.url(&format!("/p/{new_key}/y000000000096.cfg")),
            T54W_UA,
        )
        .await;
        (old == 404 && new == 200 && body.contains(&new_key)).then_some(())
    })
    .await
    .expect("rotated key served");
}

#[tokio::test]
async fn keyless_root_only_when_the_site_allows_it() {
    let env = Env::new();
    env.seed();
    let srv = env.start();
    let (st, _) = get(&srv.url(&format!("/{T54W_MAC}.cfg")), T54W_UA).await;
    assert_eq!(st, 404);
    env.ok(&["site", "update", "valleywide", "--allow-keyless", "true"]);
    let (body, _) = eventually(Duration::from_secs(3), || async {
        let (st, body) = get(&srv.url(&format!("/{T54W_MAC}.cfg")), T54W_UA).await;
        (st == 200).then_some(body)
    })
    .await
    .expect("served at the root");
    assert_eq!(yealink_value(&body, "account.1.user_name"), Some("201"));
    // A name without a MAC resolves to the only key-less site; tftp-style bare names too.
    let (st, common) = get(&srv.url("/y000000000096.cfg"), T54W_UA).await;
    assert_eq!(st, 200);
    assert!(common.contains("static.auto_provision.server.url"));
    // With a second key-less site, a MAC-less name is ambiguous: refuse to guess.
    env.ok(&[
        "site",
        "add",
        "other",
        "--sip-server",
        "pbx.other.example",
        "--allow-keyless",
    ]);
    eventually(Duration::from_secs(3), || async {
        let (st, _) = get(&srv.url("/y000000000096.cfg"), "curl/8").await;
        (st == 404).then_some(())
    })
    .await
    .expect("ambiguous name refused");
    // ...but the User-Agent's MAC still finds the phone's site.
    let (st, _) = get(&srv.url("/y000000000096.cfg"), T54W_UA).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn settings_layers_override_in_order() {
    let env = Env::new();
    let key = env.seed();
    env.ok(&[
        "phone",
        "add",
        "805ec0aabbcd",
        "--model",
        "T54W",
        "--site",
        "valleywide",
    ]);
    env.ok(&["setting", "set", "--model", "T54W", "features.a", "model"]);
    env.ok(&["setting", "set", "--model", "T54W", "features.b", "model"]);
    env.ok(&["setting", "set", "--model", "T54W", "features.c", "model"]);
    env.ok(&["setting", "set", "--model", "T54W", "features.d", "model"]);
    env.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "features.b",
        "site",
    ]);
    env.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "features.c",
        "site",
    ]);
    env.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "features.d",
        "site",
    ]);
    env.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "--model",
        "T54W",
        "features.c",
        "site-model",
    ]);
    env.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "--model",
        "T54W",
        "features.d",
        "site-model",
    ]);
    env.ok(&[
        "setting",
        "set",
        "--phone",
        "80:5e:c0:aa:bb:cc",
        "features.d",
        "phone",
    ]);
    env.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "--vendor",
        "polycom",
        "up.oneTouchVoiceMail",
        "1",
    ]);
    // An operator key overrides a generated one: it comes last, and Yealink's last value wins.
    env.ok(&[
        "setting",
        "set",
        "--phone",
        T54W_MAC,
        "account.1.sip_server.1.port",
        "5090",
    ]);
    let srv = env.start();

    let (_, cfg) = get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), T54W_UA).await;
    for (k, v) in [
        ("features.a", "model"),
        ("features.b", "site"),
        ("features.c", "site-model"),
        ("features.d", "phone"),
        ("account.1.sip_server.1.port", "5090"),
    ] {
        assert_eq!(yealink_value(&cfg, k), Some(v), "{k}:\n{cfg}");
    }
    assert!(
        !cfg.contains("up.oneTouchVoiceMail"),
        "polycom-only setting kept off Yealinks"
    );
    let (_, other) = get(&srv.url(&format!("/p/{key}/805ec0aabbcd.cfg")), T54W_UA).await;
    assert_eq!(
        yealink_value(&other, "features.d"),
        Some("site-model"),
        "the phone layer is one phone's"
    );
    let (_, common) = get(&srv.url(&format!("/p/{key}/y000000000096.cfg")), T54W_UA).await;
    assert_eq!(yealink_value(&common, "features.b"), Some("site"));

    // Polycom: the settings file is listed first, and carries the merged layers for its vendor.
    let (_, pset) = get(
        &srv.url(&format!("/p/{key}/{VVX_MAC}-settings.cfg")),
        VVX_UA,
    )
    .await;
    assert_eq!(xml_attr(&pset, "up.oneTouchVoiceMail"), Some("1"));
    assert_eq!(xml_attr(&pset, "features.b"), Some("site"));
    assert_eq!(
        xml_attr(&pset, "features.a"),
        None,
        "T54W model settings are not a VVX's"
    );

    // Removing a layer's key lets the layer below show through.
    env.ok(&["setting", "rm", "--phone", T54W_MAC, "features.d"]);
    eventually(Duration::from_secs(3), || async {
        let (_, cfg) = get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), T54W_UA).await;
        (yealink_value(&cfg, "features.d") == Some("site-model")).then_some(())
    })
    .await
    .expect("layer below shows through");
}

#[tokio::test]
async fn demo_serves_in_one_command() {
    let env = Env::bare();
    let srv = env.start_with(&["--demo"]);
    let (out, _) = eventually(Duration::from_secs(5), || async {
        let out = srv.stdout();
        out.contains("phone show").then_some(out)
    })
    .await
    .expect("demo instructions printed");
    // Run every printed curl command as printed: each fetches a file.
    let curls: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert!(curls.len() >= 5, "{out}");
    for c in curls {
        let o = std::process::Command::new("sh")
            .args(["-c", &format!("{c} -sS -o /dev/null -w '%{{http_code}}'")])
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&o.stdout).to_string();
        let want = if c.contains("805ec0000000") {
            "404"
        } else {
            "200"
        };
        assert_eq!(code, want, "{c}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // The "see it recorded" command works as printed (it names the binary and the data dir
    // it was started with, whether or not phoneprov is on the PATH).
    let show = out
        .lines()
        .find_map(|l| {
            l.split_once("Then see it recorded:")
                .map(|(_, c)| c.trim().to_string())
        })
        .expect("the phone show line");
    let o = std::process::Command::new("sh")
        .envs(env.db_env())
        .args(["-c", &show])
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("80:5e:c0:de:00:01"),
        "{show}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = env.json(&["site", "show", "demo"]);
    assert_eq!(v["phones"], 2);
    // A restart with --demo does not seed twice.
    drop(srv);
    let _srv = env.start_with(&["--demo"]);
    assert_eq!(env.json(&["site", "list"]).as_array().unwrap().len(), 1);
}

/// Sends raw bytes over TCP and returns the status code of the answer, if any.
fn raw_http(addr: &str, request: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test]
async fn a_connection_closed_after_its_response_ends_cleanly_with_the_whole_body() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let path = format!("/p/{key}/{T54W_MAC}.cfg");
    let (st, body) = get(&srv.url(&path), T54W_UA).await;
    assert_eq!(st, 200);
    // The server closes such a connection without a shutdown first: the client must still
    // see the whole response, then the end of the stream (not a reset, not a hang).
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {T54W_UA}\r\nConnection: close\r\n\r\n"
    );
    let addr = srv.addr.clone();
    for _ in 0..20 {
        let (addr, req) = (addr.clone(), req.clone());
        let got = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&addr)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(req.as_bytes())?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).map(|_| buf)
        })
        .await
        .unwrap()
        .expect("the response, then the end of the stream within 5 s");
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text:.80}");
        assert!(text.ends_with(&body), "the whole body");
    }
}

#[tokio::test]
async fn traversal_and_malformed_requests_are_refused_without_harm() {
    let env = Env::new();
    let key = env.seed();
    let files = env.data_dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(env.data_dir().join("secret.txt"), "do not serve").unwrap();
    let srv = env.start();
    let long = "a".repeat(20_000);
    let paths = [
        format!("/p/{key}/%2e%2e/%2e%2e/secret.txt"),
        format!("/p/{key}/..%2fsecret.txt"),
        format!("/p/{key}/..%252f..%252fsecret.txt"),
        format!("/p/{key}/..\\..\\secret.txt"),
        format!("/p/{key}/%00.cfg"),
        format!("/p/{key}/{T54W_MAC}.cfg%00.txt"),
        format!("/p/{key}/../../secret.txt"),
        "/../secret.txt".to_string(),
        "/%2e%2e/secret.txt".to_string(),
        format!("/p/{key}/{long}"),
        format!("/p/{long}/{T54W_MAC}.cfg"),
        "//etc/passwd".to_string(),
    ];
    for p in &paths {
        let req = format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let st = raw_http(&srv.addr, req.as_bytes());
        assert!(matches!(st, Some(400 | 404 | 414)), "{p:.80}: {st:?}");
    }
    // Malformed requests and an over-long header: refused, never a 5xx or a crash.
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(200_000)
    );
    for req in [
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"\x00\x01\x02\x03".to_vec(),
        big_header.into_bytes(),
        b"GET /p/x/y HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
    ] {
        let st = raw_http(&srv.addr, &req);
        assert!(
            st.is_none_or(|s| (400..500).contains(&s)),
            "{st:?} for {:?}",
            String::from_utf8_lossy(&req[..req.len().min(40)])
        );
    }
    // Still serving.
    let (st, body) = get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), T54W_UA).await;
    assert_eq!(st, 200);
    assert!(!body.contains("do not serve"));
    assert!(!srv.log().contains("panicked"));
}
