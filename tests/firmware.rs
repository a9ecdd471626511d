//! Firmware: the policy holds on every path a byte can take to a phone — import, assignment,
//! render (including raw settings), serve by content over HTTP and TFTP, policy change — plus
//! the audit, a property test over random fleets, and recovery end to end.

mod common;

use std::time::Duration;

use common::images::*;
use common::*;

const GOOD: &str = "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.70(20211130).rom";
const BAD: &str = "T54W-96.86.0.20.rom";

#[tokio::test]
async fn every_path_refuses_the_bricking_build() {
    let env = Env::new();
    let key = env.seed();
    let up = tempfile::tempdir().unwrap();
    let bad_bytes = blob(300_000, 7);
    let good_bytes = blob(310_000, 9);

    // 1. Import: refused with the rule that denied it; nothing stored.
    let err = env.refused(&[
        "firmware",
        "add",
        put(up.path(), BAD, &bad_bytes).to_str().unwrap(),
    ]);
    assert!(
        err.contains("96.86.0.20 is denied") && err.contains("default.toml"),
        "{err}"
    );
    assert!(
        env.json(&["firmware", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !env.data_dir().join("firmware").exists()
            || std::fs::read_dir(env.data_dir().join("firmware"))
                .unwrap()
                .count()
                == 0
    );
    // `firmware check` says the same without storing, exit 1.
    let o = env.run(&["firmware", "check", up.path().join(BAD).to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("DENIED"));

    // A good image is stored, with what its name says.
    let v = env.json(&[
        "firmware",
        "add",
        put(up.path(), GOOD, &good_bytes).to_str().unwrap(),
    ]);
    assert_eq!(v["version"], "96.86.0.70");
    assert_eq!(
        v["models"],
        serde_json::json!(["T54W", "T53W", "T53", "T57W"])
    );
    assert_eq!(v["sha256"], sha(&good_bytes));
    // An image whose version cannot be read must be given one.
    let err = env.refused(&[
        "firmware",
        "add",
        put(up.path(), "sip.ld", &blob(1000, 1)).to_str().unwrap(),
    ]);
    assert!(err.contains("give --version"), "{err}");
    env.ok(&[
        "firmware",
        "add",
        up.path().join("sip.ld").to_str().unwrap(),
        "--version",
        "6.4.3.5156",
        "--models",
        "VVX_450",
    ]);

    // 2. Assignment: must fit; the target reaches the rendered files.
    let err = env.refused(&[
        "firmware",
        "assign",
        "96.86.0.70",
        "--site",
        "valleywide",
        "--model",
        "T46U",
    ]);
    assert!(err.contains("does not fit a T46U"), "{err}");
    env.ok(&["firmware", "assign", "96.86.0.70", "--site", "valleywide"]);
    env.ok(&["firmware", "assign", "6.4.3.5156", "--phone", VVX_MAC]);
    let cfg = env.ok(&["render", T54W_MAC, &format!("{T54W_MAC}.cfg")]);
    assert_eq!(
        yealink_value(&cfg, "static.firmware.url"),
        Some(format!("{PUBLIC_URL}/p/{key}/{GOOD}").as_str())
    );
    let master = env.ok(&["render", VVX_MAC, &format!("{VVX_MAC}.cfg")]);
    assert_eq!(xml_attr(&master, "APP_FILE_PATH"), Some("sip.ld"));

    // 3. Render: raw settings cannot name firmware or the provisioning server, at any layer...
    for layer in [
        vec!["--site", "valleywide"],
        vec!["--model", "T54W"],
        vec!["--phone", T54W_MAC],
        vec!["--site", "valleywide", "--model", "T54W"],
    ] {
        for key in [
            "static.firmware.url",
            "firmware.url",
            "static.auto_provision.server.url",
            "upgrade.custom.server.url",
            "device.prov.serverName",
        ] {
            let mut args = vec!["setting", "set"];
            args.extend(layer.iter().copied());
            args.extend([key, "http://evil.example/T54W-96.86.0.20.rom"]);
            let err = env.refused(&args);
            assert!(
                err.contains("is set by phoneprov"),
                "{key} {layer:?}: {err}"
            );
        }
    }
    // A value that names the denied build is refused whatever the key.
    let err = env.refused(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "lang.gui",
        "http://x.example/T54W-96.86.0.20.rom",
    ]);
    assert!(err.contains("names a denied firmware image"), "{err}");
    // ...and a row that got into the database anyway never reaches a file.
    {
        let mut c = common::db(&env).await;
        sqlx::query("INSERT INTO settings (site_id, key, value) SELECT id, 'static.firmware.url', 'http://evil.example/x.rom' FROM sites")
            .execute(&mut c).await.unwrap();
        sqlx::query("INSERT INTO settings (mac, key, value) VALUES ($1, 'Static.Firmware.URL', 'http://evil.example/y.rom')")
            .bind(T54W_MAC).execute(&mut c).await.unwrap();
    }
    let cfg = env.ok(&["render", T54W_MAC, &format!("{T54W_MAC}.cfg")]);
    assert!(!cfg.contains("evil.example"), "{cfg}");
    assert_eq!(cfg.matches("firmware.url").count(), 1);

    // 4. Serve: the assigned image by HTTP and TFTP; the denied build under any name, nowhere.
    let files = env.data_dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    for name in ["renamed-good.rom", "ringtone.wav", "T54W-96.86.0.70.rom"] {
        std::fs::write(files.join(name), &bad_bytes).unwrap();
    }
    std::fs::write(files.join("unvouched.rom"), blob(5000, 3)).unwrap();
    std::fs::write(files.join("ring.wav"), b"RIFF....WAVE").unwrap();
    let srv = env.start();
    let r = client()
        .get(srv.url(&format!("/p/{key}/{GOOD}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&good_bytes));
    let out = tempfile::tempdir().unwrap();
    assert!(tftp_get(
        &srv,
        &format!("p/{key}/{GOOD}"),
        &out.path().join("g.rom")
    ));
    assert_eq!(
        sha(&std::fs::read(out.path().join("g.rom")).unwrap()),
        sha(&good_bytes)
    );
    for name in [
        "renamed-good.rom",
        "ringtone.wav",
        "T54W-96.86.0.70.rom",
        "unvouched.rom",
        BAD,
    ] {
        let r = client()
            .get(srv.url(&format!("/p/{key}/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "HTTP served {name}");
        assert!(
            !tftp_get(&srv, &format!("p/{key}/{name}"), &out.path().join(name)),
            "TFTP served {name}"
        );
    }
    let (st, _) = get(&srv.url(&format!("/p/{key}/ring.wav")), "x").await;
    assert_eq!(st, 200, "ordinary static files still served");
    // Bad bytes copied over the stored good image: refused by content.
    let stored = env
        .data_dir()
        .join("firmware")
        .join(format!("{}.img", sha(&good_bytes)));
    let saved = std::fs::read(&stored).unwrap();
    std::fs::write(&stored, &bad_bytes).unwrap();
    assert_eq!(
        client()
            .get(srv.url(&format!("/p/{key}/{GOOD}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    std::fs::write(&stored, &saved).unwrap();

    // 5. Policy change: the operator denies the assigned build; files stop referencing it at
    // once, the image stops being served, and the affected phones are named.
    std::fs::write(env.data_dir().join("firmware-policy.toml"), "[[deny]]\nvendor = \"yealink\"\nfamily = 96\nversions = [\"96.86.0.70\"]\nreason = \"bad batch\"\n").unwrap();
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));
    eventually(Duration::from_secs(5), || async {
        let (_, body) = get(&url, T54W_UA).await;
        (!body.contains("static.firmware.url")).then_some(())
    })
    .await
    .expect("re-rendered without the denied image");
    assert_eq!(
        client()
            .get(srv.url(&format!("/p/{key}/{GOOD}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert!(
        srv.log().contains("80:5e:c0:aa:bb:cc"),
        "affected phone named in the log:\n{}",
        srv.log()
    );
    let show = env.ok(&["policy", "show"]);
    assert!(
        show.contains("bad batch") && show.contains("80:5e:c0:aa:bb:cc"),
        "{show}"
    );
    let err = env.refused(&["firmware", "assign", "96.86.0.70", "--phone", T54W_MAC]);
    assert!(err.contains("bad batch"), "{err}");
    // A broken policy file is refused with file and line; the previous one stays in force.
    std::fs::write(
        env.data_dir().join("firmware-policy.toml"),
        "[[deny]]\nvendor = \"yealink\"\nversions = [\"9x\"]\n",
    )
    .unwrap();
    let err = env.refused(&["policy", "show"]);
    assert!(
        err.contains("firmware-policy.toml:1") && err.contains("'9x' is not a version"),
        "{err}"
    );
    eventually(Duration::from_secs(5), || async {
        srv.log().contains("firmware policy refused").then_some(())
    })
    .await
    .expect("server refuses the broken policy");
    assert_eq!(
        client()
            .get(srv.url(&format!("/p/{key}/{GOOD}")))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "still denied"
    );
}

#[tokio::test]
async fn audit_flags_phones_running_a_denied_build() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let o = env.run(&["firmware", "audit"]);
    assert_eq!(o.status.code(), Some(0));
    let (st, _) = get(
        &srv.url(&format!("/p/{key}/{T54W_MAC}.boot")),
        "Yealink SIP-T54W 96.86.0.20 80:5e:c0:aa:bb:cc",
    )
    .await;
    assert_eq!(st, 200);
    let (v, _) = eventually(Duration::from_secs(5), || async {
        let v = env.json(&["phone", "show", T54W_MAC]);
        (!v["firmware_denied"].is_null()).then_some(v)
    })
    .await
    .expect("flagged");
    assert!(
        v["firmware_denied"][0]
            .as_str()
            .unwrap()
            .contains("96.86.0.20")
    );
    assert!(env.ok(&["phone", "list"]).contains("96.86.0.20 DENIED!"));
    let o = env.run(&["firmware", "audit"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("80:5e:c0:aa:bb:cc"));
    let token = env.admin_token();
    let api: serde_json::Value = client()
        .get(srv.url(&format!("/api/v1/phones/{T54W_MAC}")))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!api["firmware_denied"].is_null());
}

#[test]
fn recovery_hands_out_only_a_good_image() {
    let env = Env::new();
    let up = tempfile::tempdir().unwrap();
    let bad = put(up.path(), BAD, &blob(100_000, 1));
    let good_bytes = blob(2_000_000, 2);
    let good = put(up.path(), GOOD, &good_bytes);
    // A denied image: refused before listening.
    let err = env.refused(&[
        "recover",
        "--image",
        bad.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(
        err.contains("refusing to recover") && err.contains("96.86.0.20"),
        "{err}"
    );
    let err = env.refused(&[
        "recover",
        "--image",
        good.to_str().unwrap(),
        "--model",
        "T46U",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("T46U"), "{err}");

    let (child, addr) = spawn_recover(&env, &good);
    let out = tempfile::tempdir().unwrap();
    let p = addr.rsplit_once(':').unwrap().1.to_string();
    // Whatever image name the phone asks for, it gets the good one.
    for name in ["T54W-96.86.0.20.rom", "/recovery/fw.bin"] {
        let dest = out.path().join("got");
        let o = std::process::Command::new("tftp")
            .args([
                "-m",
                "binary",
                "127.0.0.1",
                &p,
                "-c",
                "get",
                name,
                dest.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success());
        assert_eq!(
            sha(&std::fs::read(&dest).unwrap()),
            sha(&good_bytes),
            "{name}"
        );
    }
    let dest = out.path().join("cfg");
    let o = std::process::Command::new("tftp")
        .args([
            "-m",
            "binary",
            "127.0.0.1",
            &p,
            "-c",
            "get",
            "805ec0aabbcc.cfg",
            dest.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("File not found")
            || String::from_utf8_lossy(&o.stderr).contains("File not found")
    );
    // Ctrl-C: a summary per phone.
    sigint(child.id());
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stdout.contains("recovery summary: 1 phone(s)")
            || stdout.contains("recovery summary: 2 phone(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("done"), "{stdout}");
    assert!(
        stderr.contains("recovery request") && stderr.contains("recovery progress"),
        "{stderr}"
    );
}

#[tokio::test]
async fn firmware_over_the_admin_api() {
    let env = Env::new();
    env.seed();
    let srv = env.start();
    let token = env.admin_token();
    let c = client();
    let api = |p: &str| srv.url(&format!("/api/v1{p}"));
    let good = blob(400_000, 5);
    let r = c
        .post(api("/firmware"))
        .query(&[("name", GOOD)])
        .bearer_auth(&token)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["version"].as_str(), v["sha256"].as_str()),
        (Some("96.86.0.70"), Some(sha(&good).as_str()))
    );
    let r = c
        .post(api("/firmware"))
        .query(&[("name", BAD)])
        .bearer_auth(&token)
        .body(blob(1000, 6))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("96.86.0.20 is denied"),
        "{v}"
    );
    let r = c
        .post(api("/firmware"))
        .query(&[("name", "../x.rom")])
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let list: serde_json::Value = c
        .get(api("/firmware"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = c
        .put(api("/firmware/assign"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"image": "96.86.0.70", "phone": T54W_MAC}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .put(api("/firmware/assign"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"image": "96.86.0.70", "phone": VVX_MAC}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an image that does not fit");
    let audit: serde_json::Value = c
        .get(api("/firmware/audit"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audit.as_array().unwrap().is_empty());
    assert_eq!(
        c.post(api("/firmware"))
            .query(&[("name", GOOD)])
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // No temporary upload is left behind.
    let leftovers = std::fs::read_dir(env.data_dir().join("firmware"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[tokio::test]
async fn recovery_switched_on_for_a_site_in_serve() {
    let env = Env::new();
    let key = env.seed();
    let up = tempfile::tempdir().unwrap();
    let good = blob(700_000, 11);
    env.ok(&[
        "firmware",
        "add",
        put(up.path(), GOOD, &good).to_str().unwrap(),
    ]);
    assert!(
        env.refused(&["site", "update", "valleywide", "--recovery", "1.2.3.4"])
            .contains("no stored image")
    );
    env.ok(&["site", "update", "valleywide", "--recovery", "96.86.0.70"]);
    let srv = env.start();
    let out = tempfile::tempdir().unwrap();
    // A phone in recovery asks for an image by a name of its own, bare or under the site key.
    for name in [
        "T54W-96.86.0.20.rom".to_string(),
        "recovery.bin".to_string(),
        format!("p/{key}/T54.rfs"),
    ] {
        let dest = out.path().join(name.replace('/', "_"));
        assert!(tftp_get(&srv, &name, &dest), "{name}");
        assert_eq!(sha(&std::fs::read(&dest).unwrap()), sha(&good), "{name}");
    }
    assert!(
        !tftp_get(&srv, "other.cfg", &out.path().join("x")),
        "only image names"
    );
    // Switched off: nothing.
    env.ok(&["site", "update", "valleywide", "--recovery", "off"]);
    eventually(Duration::from_secs(3), || async {
        (!tftp_get(&srv, "T54W-x.rom", &out.path().join("off.rom"))).then_some(())
    })
    .await
    .expect("recovery switched off");
    // On again, then the policy turns against the image: refused at serve time.
    env.ok(&["site", "update", "valleywide", "--recovery", "96.86.0.70"]);
    eventually(Duration::from_secs(3), || async {
        tftp_get(&srv, "a.rom", &out.path().join("on.rom")).then_some(())
    })
    .await
    .expect("recovery on");
    std::fs::write(
        env.data_dir().join("firmware-policy.toml"),
        "[[deny]]\nvendor = \"yealink\"\nversions = [\"96.86.0.70\"]\n",
    )
    .unwrap();
    eventually(Duration::from_secs(5), || async {
        (!tftp_get(&srv, "b.rom", &out.path().join("denied.rom"))).then_some(())
    })
    .await
    .expect("a denied image is never the recovery image");
}
