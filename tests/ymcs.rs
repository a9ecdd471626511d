//! `phoneprov ymcs ...` and `import --ymcs` through the CLI against a strict fake YMCS.

mod common;

use std::time::{Duration, Instant};

use common::ymcs::{Fake, KEY_ID, SECRET, State};
use common::*;

const USER: &str = "prov-valley";
const PW: &str = "Pr0v-Secret-77x";

/// 150 more T54Ws in the seeded site: more than one batch (100) and one page.
fn fleet(env: &Env) -> Vec<String> {
    let mut csv = String::from("mac,model,site,line1_user,line1_password\n");
    let macs: Vec<String> = (0..150).map(|i| format!("805ec1{i:06x}")).collect();
    for (i, m) in macs.iter().enumerate() {
        csv.push_str(&format!(
            "{m},T54W,valleywide,{},pw-{i:04}-secret\n",
            300 + i
        ));
    }
    let p = env.data_dir().join("fleet.csv");
    std::fs::write(&p, csv).unwrap();
    env.ok(&["import", p.to_str().unwrap()]);
    macs
}

fn sites() -> Vec<(String, String)> {
    vec![
        ("s-1".into(), "valleywide".into()),
        ("s-2".into(), "elsewhere".into()),
    ]
}

/// (exit code, stdout, stderr)
fn run(env: &Env, args: &[&str]) -> (i32, String, String) {
    let o = env.run(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn register_plans_confirms_reports_partial_failure_and_is_idempotent() {
    let env = Env::new();
    env.seed();
    let macs = fleet(&env);
    let mut st = State {
        sites: sites(),
        ..Default::default()
    };
    // 120 devices elsewhere (more than a page), one of ours among them; one of ours already
    // registered here; one owned by another organisation.
    for i in 0..120 {
        st.devices.insert(format!("001565{i:06x}"), "s-2".into());
    }
    st.devices.insert(macs[0].clone(), "s-2".into());
    st.devices.insert(macs[1].clone(), "s-1".into());
    st.foreign.insert(macs[2].clone());
    let fake = Fake::start(st);
    fake.connect(&env);

    // Dry run: the plan, nothing sent, exit 3.
    let (code, out, _) = run(&env, &["ymcs", "register", "--site", "valleywide"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&format!("[DRY RUN] register {} (valleywide): add", macs[5])),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{} (valleywide): skip — registered to YMCS site 'elsewhere'",
            macs[0]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} (valleywide): unchanged", macs[1])),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{VVX_MAC} (valleywide): skip — VVX_450 is not managed through YMCS"
        )),
        "{out}"
    );
    assert!(
        out.contains("[DRY RUN] 149 change(s); nothing was sent"),
        "{out}"
    );
    assert!(fake.with(|s| !s.calls.iter().any(|c| c.contains("addDevices"))));

    // Confirmed: a per-MAC table; the MAC another organisation owns failed, the rest are in.
    let (code, out, _) = run(
        &env,
        &["ymcs", "register", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 1, "a partial failure is not success:\n{out}");
    let failed_line = out.lines().find(|l| l.starts_with(&macs[2])).unwrap();
    assert!(
        failed_line.contains("failed") && failed_line.contains("another organisation (800004)"),
        "{failed_line}"
    );
    assert!(
        out.contains(&format!(
            "1 MAC(s) failed; retry with: phoneprov ymcs register --confirm {}",
            macs[2]
        )),
        "{out}"
    );
    let ours = fake.with(|s| s.devices.values().filter(|v| *v == "s-1").count());
    assert_eq!(ours, 149, "seeded T54W + 150 - elsewhere - foreign");
    assert_eq!(
        fake.with(|s| s
            .calls
            .iter()
            .filter(|c| c.contains("addDevicesByMac"))
            .count()),
        2,
        "two batches of ≤ 100"
    );

    // Again: nothing left to add but the foreign MAC; nothing else changes.
    let v = env.run(&[
        "--json",
        "ymcs",
        "register",
        "--site",
        "valleywide",
        "--confirm",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    let adds: Vec<&str> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "add")
        .map(|x| x["mac"].as_str().unwrap())
        .collect();
    assert_eq!(adds, vec![macs[2].as_str()]);
    assert_eq!(
        fake.with(|s| s.devices.values().filter(|v| *v == "s-1").count()),
        149
    );
    // Registered MACs named one by one: all unchanged, nothing sent, exit 0.
    let before = fake.with(|s| s.calls.len());
    let (code, out, _) = run(&env, &["ymcs", "register", &macs[5], &macs[6], "--confirm"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("unchanged")).count(),
        2,
        "{out}"
    );
    assert!(fake.with(|s| s.calls[before..].iter().all(|c| !c.contains("addDevices"))));
    // What YMCS knows against what we know.
    let d = env.json(&["ymcs", "devices", "--site", "valleywide"]);
    let state = |m: &str| {
        d.as_array()
            .unwrap()
            .iter()
            .find(|x| x["mac"] == m)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&macs[5]), "both");
    assert_eq!(state(&macs[0]), "other-ymcs-site");
    assert_eq!(state(&macs[2]), "ours-only");
    let s = env.json(&["ymcs", "status"]);
    assert_eq!(s["sites"][0]["name"], "valleywide");
    assert_eq!(s["sites"][0]["devices"], 149);
    // The client never reused a nonce nor sent an empty body.
    assert_eq!(
        fake.with(|s| (s.rejected.get(&403).copied(), s.rejected.get(&412).copied())),
        (None, None)
    );
    // Unknown MACs and a missing YMCS site are refused with the reason.
    let e = env.refused(&["ymcs", "register", "805ec0ffffff"]);
    assert!(e.contains("no phone 805ec0ffffff"), "{e}");
    env.ok(&["site", "add", "nowhere", "--sip-server", "pbx"]);
    env.ok(&[
        "phone",
        "add",
        "805ec2000001",
        "--model",
        "T46U",
        "--site",
        "nowhere",
    ]);
    let e = env.refused(&["ymcs", "register", "--site", "nowhere"]);
    assert!(
        e.contains("YMCS has no site named 'nowhere'") && e.contains("--ymcs-site"),
        "{e}"
    );
    env.ok(&["site", "update", "nowhere", "--ymcs-site", "elsewhere"]);
    let (code, _, _) = run(
        &env,
        &["ymcs", "register", "--site", "nowhere", "--confirm"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        fake.with(|s| s.devices.get("805ec2000001").cloned()),
        Some("s-2".into())
    );
}

#[test]
fn rps_points_phones_at_the_site_url_with_its_login() {
    let env = Env::new();
    let key = env.seed();
    let macs = fleet(&env);
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        USER,
        "--auth-password",
        PW,
    ]);
    let mut st = State {
        sites: sites(),
        ..Default::default()
    };
    // One of ours is in RPS on someone else's server.
    st.servers.push(common::ymcs::RpsServer {
        id: "srv-old".into(),
        name: "old".into(),
        url: "http://old.example/".into(),
        auth_name: None,
        password: None,
    });
    st.rps.insert(
        macs[3].clone(),
        common::ymcs::RpsDevice {
            server_id: "srv-old".into(),
            auth_name: None,
            password: None,
        },
    );
    let fake = Fake::start(st);
    fake.connect(&env);
    let url = format!("{PUBLIC_URL}/p/{key}/");

    let (code, out, _) = run(&env, &["ymcs", "rps-add", "--site", "valleywide"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("[DRY RUN] rps-add create RPS server 'pp-valleywide-")
            && out.contains(&format!("→ {url} (with the site's login)")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{} (valleywide): move — from RPS server srv-old",
            macs[3]
        )),
        "{out}"
    );
    assert!(!out.contains(PW), "the password is not printed");
    assert_eq!(fake.with(|s| s.servers.len()), 1);

    let (code, out, err) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(PW) && !err.contains(PW) && !err.contains(SECRET));
    let (server, n, auth) = fake.with(|s| {
        let srv = s
            .servers
            .iter()
            .find(|x| x.id != "srv-old")
            .unwrap()
            .clone();
        let on: Vec<_> = s
            .rps
            .values()
            .filter(|d| d.server_id == srv.id)
            .cloned()
            .collect();
        let auth = on
            .iter()
            .all(|d| d.auth_name.as_deref() == Some(USER) && d.password.as_deref() == Some(PW));
        (srv, on.len(), auth)
    });
    assert_eq!(server.url, url);
    assert_eq!(
        (server.auth_name.as_deref(), server.password.as_deref()),
        (Some(USER), Some(PW))
    );
    assert!(server.name.chars().count() <= 20);
    assert_eq!(n, 151, "every T54W, the moved one included");
    assert!(auth, "each RPS entry carries the site's login");

    // Again: nothing to do.
    let before = fake.with(|s| s.calls.len());
    let (code, out, _) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().filter(|l| l.contains(" unchanged ")).count(),
        151,
        "{out}"
    );
    assert!(
        fake.with(|s| s.calls[before..]
            .iter()
            .all(|c| c.contains("list") || c.ends_with("/token"))),
        "only reads"
    );

    // A new login: RPS gets a new server entry carrying it, and the phones move to it.
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-password",
        "Rotated-Secret-5",
    ]);
    let (code, _, _) = run(
        &env,
        &["ymcs", "rps-add", "--site", "valleywide", "--confirm"],
    );
    assert_eq!(code, 0);
    assert!(
        fake.with(|s| s
            .rps
            .values()
            .filter(|d| d.password.as_deref() == Some("Rotated-Secret-5"))
            .count())
            == 151
    );

    // Remove two.
    let (code, out, _) = run(&env, &["ymcs", "rps-remove", &macs[0], &macs[1]]);
    assert_eq!(code, 3, "{out}");
    let (code, _, _) = run(
        &env,
        &["ymcs", "rps-remove", &macs[0], &macs[1], "--confirm"],
    );
    assert_eq!(code, 0);
    assert!(fake.with(|s| !s.rps.contains_key(&macs[0])
        && !s.rps.contains_key(&macs[1])
        && s.rps.contains_key(&macs[2])));
}

#[test]
fn token_refresh_retries_rate_limit_skew_and_pacing() {
    let env = Env::new();
    env.seed();
    let macs = fleet(&env);
    let mut st = State {
        sites: sites(),
        token_ttl_secs: 1,
        rate: 2,
        ..Default::default()
    };
    for m in macs.iter().take(4) {
        st.devices.insert(m.clone(), "s-1".into());
    }
    let fake = Fake::start(st);
    fake.connect(&env);
    // Our pace (50/s) is above the fake's (2/s): 429s, retried with backoff.
    let s = env.json(&["ymcs", "status"]);
    assert_eq!(s["token"], "ok");
    assert!(
        fake.with(|s| s.rejected.get(&429).copied().unwrap_or(0)) > 0,
        "the rate limit was hit"
    );
    // Paced below the limit (PHONEPROV_YMCS_RATE), no 429 at all.
    let seen = fake.with(|s| s.rejected.get(&429).copied());
    env.set_var("PHONEPROV_YMCS_RATE", "1.5");
    std::thread::sleep(Duration::from_millis(1100)); // the last run's requests leave the window
    env.ok(&["ymcs", "status"]);
    assert_eq!(fake.with(|s| s.rejected.get(&429).copied()), seen);
    env.set_var("PHONEPROV_YMCS_RATE", "50");
    // Two 500s on a read: retried.
    fake.with(|s| s.fail_next.insert("/v2/dm/listSites".into(), 2));
    env.ok(&["ymcs", "status"]);
    assert_eq!(fake.with(|s| s.rejected.get(&500).copied()), Some(2));

    // Reboot four phones at 120/min: half a second apart, over two token lifetimes.
    fake.with(|s| s.rate = 0);
    let (code, out, _) = run(
        &env,
        &[
            "ymcs", "reboot", &macs[0], &macs[1], &macs[2], &macs[3], "--pace", "120/min",
        ],
    );
    assert_eq!(code, 3);
    assert!(
        out.contains(&format!(
            "{} (valleywide): reboot — device dev-{}, at +1.5s",
            macs[3], macs[3]
        )),
        "{out}"
    );
    assert!(fake.with(|s| s.reboots.is_empty()));
    let tokens_before = fake.with(|s| s.token_calls);
    let t0 = Instant::now();
    let (code, out, _) = run(
        &env,
        &[
            "ymcs",
            "reboot",
            &macs[0],
            &macs[1],
            &macs[2],
            &macs[3],
            "--pace",
            "120/min",
            "--confirm",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(t0.elapsed() >= Duration::from_millis(1400));
    let times = fake.with(|s| s.reboots.iter().map(|(_, t)| *t).collect::<Vec<_>>());
    assert_eq!(times.len(), 4);
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(450),
            "paced: {:?}",
            w[1] - w[0]
        );
    }
    assert!(
        fake.with(|s| s.token_calls) - tokens_before >= 2,
        "the token was refreshed"
    );
    // A reboot is not repeated on a 500 (it may have happened): that MAC fails, the others go.
    fake.with(|s| s.fail_next.insert("/v2/dm/device/reboot".into(), 1));
    let (code, out, _) = run(
        &env,
        &[
            "ymcs",
            "reboot",
            &macs[0],
            &macs[1],
            "--pace",
            "600",
            "--confirm",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&macs[0]) && l.contains("failed") && l.contains("HTTP 500")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&macs[1]) && l.contains(" ok ")),
        "{out}"
    );
    // Unregistered phones are not rebooted.
    let (_, out, _) = run(&env, &["ymcs", "reboot", &macs[9]]);
    assert!(out.contains("skip — not registered in YMCS"), "{out}");

    // Clock skew and a wrong key: clear errors with the API's code.
    fake.with(|s| s.skew_ms = 10 * 60 * 1000);
    let (code, _, err) = run(&env, &["ymcs", "status"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("500401") && err.contains("clock skew"),
        "{err}"
    );
    fake.with(|s| s.skew_ms = 0);
    env.set_var("PHONEPROV_YMCS_KEY_SECRET", "wrong-secret");
    let (code, _, err) = run(&env, &["ymcs", "status"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("500101")
            && err.contains("invalid access key")
            && !err.contains("wrong-secret"),
        "{err}"
    );
}

#[tokio::test]
async fn the_fake_is_strict() {
    let fake = Fake::start(State {
        sites: sites(),
        ..Default::default()
    });
    let c = client();
    let tok = |nonce: &str, body: &str| {
        use base64::Engine;
        c.post(format!("{}/v2/token", fake.url()))
            .header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{SECRET}"))
                ),
            )
            .header(
                "timestamp",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    .to_string(),
            )
            .header("nonce", nonce)
            .body(body.to_string())
    };
    let r = tok("n1", r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = tok("n1", r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], 500403);
    assert_eq!(tok("n2", "").send().await.unwrap().status(), 412);
    assert_eq!(
        tok(&"x".repeat(33), "{}").send().await.unwrap().status(),
        400
    );
}

#[test]
fn import_then_register_and_rps() {
    let env = Env::new();
    env.seed();
    let mut st = State {
        sites: sites(),
        ..Default::default()
    };
    st.foreign.insert("805ec1000002".into());
    let fake = Fake::start(st);
    fake.connect(&env);
    let mut csv = String::from("mac,model,site,line1_user,line1_password\n");
    for i in 0..5 {
        csv.push_str(&format!(
            "805ec1{i:06x},T54W,valleywide,{},pw-{i:04}-secret\n",
            300 + i
        ));
    }
    let p = env.data_dir().join("new.csv");
    std::fs::write(&p, csv).unwrap();
    let (code, out, err) = run(
        &env,
        &[
            "import",
            p.to_str().unwrap(),
            "--ymcs",
            "register,rps",
            "--confirm",
        ],
    );
    assert_eq!(code, 1, "one MAC failed in YMCS:\n{out}\n{err}");
    assert!(
        out.contains("created 5") || out.contains("5 created"),
        "{out}"
    );
    assert!(
        out.contains("retry with: phoneprov ymcs register --confirm 805ec1000002"),
        "{out}"
    );
    // The import stands.
    assert_eq!(
        env.json(&["phone", "list", "--site", "valleywide"])
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(fake.with(|s| s.devices.len()), 4);
    assert_eq!(
        fake.with(|s| s.rps.len()),
        4,
        "RPS: all but the foreign one"
    );
    // Bad configuration is refused before anything is imported.
    env.set_var("PHONEPROV_YMCS_BASE_URL", "http://ymcs.example.com");
    let e = env.refused(&[
        "import",
        p.to_str().unwrap(),
        "--ymcs",
        "register",
        "--confirm",
    ]);
    assert!(e.contains("only for loopback"), "{e}");
    env.set_var("PHONEPROV_YMCS_BASE_URL", "");
    env.set_var("PHONEPROV_YMCS_KEY_SECRET", "");
    std::fs::write(
        env.data_dir().join("ymcs.toml"),
        format!(
            "base_url = \"{}\"\nkey_id = \"{KEY_ID}\"\nkey_secret = \"{SECRET}\"\n",
            fake.url()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let f = env.data_dir().join("ymcs.toml");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = env.refused(&["ymcs", "status"]);
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        env.ok(&["ymcs", "status"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_through_the_admin_api() {
    let env = Env::new();
    env.seed();
    let fake = Fake::start(State {
        sites: sites(),
        ..Default::default()
    });
    fake.connect(&env);
    let srv = env.start();
    let token = env.admin_token();
    let c = client();
    let post = |op: &str, body: serde_json::Value| {
        c.post(srv.url(&format!("/api/v1/ymcs/{op}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let plan: serde_json::Value = post("register", serde_json::json!({"site": "valleywide"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "add")
            .count(),
        1
    );
    assert!(fake.with(|s| s.devices.is_empty()), "a plan sends nothing");
    let done: serde_json::Value = post(
        "register",
        serde_json::json!({"site": "valleywide", "confirm": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let ok: Vec<_> = done["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "ok")
        .collect();
    assert_eq!(ok.len(), 1, "{done}");
    assert_eq!(
        fake.with(|s| s.devices.get(T54W_MAC).cloned()),
        Some("s-1".into())
    );
    let r = post("dance", serde_json::json!({"site": "valleywide"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let s: serde_json::Value = c
        .get(srv.url("/api/v1/ymcs/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["token"], "ok");
    assert_eq!(
        c.get(srv.url("/api/v1/ymcs/status"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}
