//! `phoneprov pbx sync` against fake PBXes with recorded shapes: NetSapiens v2 (v44 and v45
//! names), v1, SARK V6.

mod common;

use std::time::Duration;

use common::pbx::{self, Fake, Flavor, State};
use common::*;

fn run(env: &Env, args: &[&str]) -> (i32, String, String) {
    let o = env.run(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// The change log's length, read straight from the database.
fn changes(env: &Env) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = common::db(env).await;
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM changes")
            .fetch_one(&mut c)
            .await
            .unwrap()
    })
}

fn setup(flavor: Flavor, oauth: bool) -> (Env, Fake) {
    let env = Env::new();
    env.ok(&["site", "add", "acme", "--sip-server", "core1.pbx.example"]);
    let fake = Fake::start(State::new(flavor));
    let (kind, version) = match flavor {
        Flavor::Sark => ("sark", "auto"),
        Flavor::V1 => ("netsapiens", "auto"),
        _ => ("netsapiens", "auto"),
    };
    env.ok(&[
        "pbx",
        "add",
        "main-pbx",
        "--kind",
        kind,
        "--base-url",
        &fake.url(),
        "--api-version",
        version,
    ]);
    match (flavor, oauth) {
        (Flavor::Sark, _) => env.set_var("PHONEPROV_PBX_MAIN_PBX_TOKEN", pbx::SARK_TOKEN),
        (_, false) => env.set_var("PHONEPROV_PBX_MAIN_PBX_API_KEY", pbx::API_KEY),
        (_, true) => {
            env.set_var("PHONEPROV_PBX_MAIN_PBX_CLIENT_ID", pbx::CLIENT_ID);
            env.set_var("PHONEPROV_PBX_MAIN_PBX_CLIENT_SECRET", pbx::CLIENT_SECRET);
            env.set_var("PHONEPROV_PBX_MAIN_PBX_USERNAME", pbx::USERNAME);
            env.set_var("PHONEPROV_PBX_MAIN_PBX_PASSWORD", pbx::PASSWORD);
        }
    }
    (env, fake)
}

/// The whole contract against one PBX shape.
fn scenario(flavor: Flavor, oauth: bool) {
    let (env, fake) = setup(flavor, oauth);
    let domain = if flavor == Flavor::Sark {
        "acme"
    } else {
        pbx::DOMAIN
    };
    let sync = |extra: &[&str]| {
        let mut a = vec![
            "--json", "pbx", "sync", "main-pbx", "--domain", domain, "--site", "acme",
        ];
        a.extend_from_slice(extra);
        let (code, out, err) = run(&env, &a);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|_| panic!("{flavor:?}: {out}\n{err}"));
        (code, v, err)
    };
    // Dry run: the plan, nothing written; the Cisco is skipped, not fatal.
    let (code, r, err) = sync(&["--dry-run"]);
    assert_eq!(code, 0, "{flavor:?}: {r}\n{err}");
    assert_eq!(
        (r["created"].as_u64(), r["dry_run"].as_bool()),
        (Some(4), Some(true)),
        "{flavor:?}: {r}"
    );
    assert_eq!(
        r["skipped"][0]["mac"].as_str().map(|m| m.to_lowercase()),
        Some("001122aa0004".into()),
        "{r}"
    );
    assert!(
        r["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Cisco SPA504G")
    );
    assert!(env.json(&["phone", "list"]).as_array().unwrap().is_empty());
    // Apply.
    let (code, r, _) = sync(&[]);
    assert_eq!(code, 0);
    assert_eq!(r["created"], 4, "{flavor:?}: {r}");
    let t46 = env.json(&["phone", "show", "805ec0aa0002"]);
    assert_eq!(t46["model"], "T46U");
    let lines = t46["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{t46}");
    let ext = |e: &str| {
        if flavor == Flavor::Sark {
            e.trim_end_matches('x').to_string()
        } else {
            e.to_string()
        }
    };
    assert_eq!(lines[0]["user"], ext("102x"));
    assert_eq!(lines[0]["display_name"], "Sales");
    assert_eq!(lines[1]["user"], ext("103x"));
    let cfg = env.ok(&["render", "805ec0aa0001", "805ec0aa0001.cfg"]);
    assert!(cfg.contains("account.1.password = pw-101-aaaa"), "{cfg}");
    // NetSapiens: the line registers in the domain of its device URI, not at the core server;
    // SARK's extensions register to the PBX itself.
    let want_domain = match flavor {
        Flavor::Sark => "core1.pbx.example",
        _ => common::pbx::DOMAIN,
    };
    assert_eq!(
        yealink_value(&cfg, "account.1.sip_server.1.address"),
        Some(want_domain),
        "{flavor:?}: {cfg}"
    );
    assert!(
        cfg.contains(&format!("account.1.user_name = {}", ext("101x"))),
        "{cfg}"
    );
    assert_eq!(
        env.json(&["phone", "show", "0004f2aa0003"])["model"],
        "VVX_450"
    );
    // Again: nothing changes, nothing is re-rendered.
    let before = changes(&env);
    let (code, r, _) = sync(&[]);
    assert_eq!(code, 0);
    assert_eq!(
        (
            r["created"].as_u64(),
            r["updated"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(4)),
        "{r}"
    );
    assert_eq!(changes(&env), before, "an idempotent sync logs no change");
    // A password changed on the PBX reaches the phone's file.
    fake.with(|s| s.phones[0].lines[0].1 = "pw-101-NEW".into());
    let (_, r, _) = sync(&[]);
    assert_eq!(r["updated"], 1, "{r}");
    assert!(
        env.ok(&["render", "805ec0aa0001", "805ec0aa0001.cfg"])
            .contains("account.1.password = pw-101-NEW")
    );
    // A line removed on the PBX is removed here.
    fake.with(|s| s.phones[1].lines.truncate(1));
    let (_, r, _) = sync(&[]);
    assert_eq!(r["updated"], 1, "{r}");
    assert_eq!(
        env.json(&["phone", "show", "805ec0aa0002"])["lines"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A phone gone from the PBX: kept without --prune, removed with it.
    fake.with(|s| s.phones.retain(|p| !p.mac.ends_with("0005")));
    let (_, r, _) = sync(&[]);
    assert_eq!(r["removed"], 0);
    assert_eq!(env.json(&["phone", "list"]).as_array().unwrap().len(), 4);
    let (_, r, _) = sync(&["--prune", "--dry-run"]);
    assert_eq!(r["removed"], 1, "{r}");
    assert_eq!(env.json(&["phone", "list"]).as_array().unwrap().len(), 4);
    let (_, r, _) = sync(&["--prune"]);
    assert_eq!(r["removed"], 1);
    assert_eq!(r["removed_macs"][0], "805ec0aa0005");
    assert_eq!(env.json(&["phone", "list"]).as_array().unwrap().len(), 3);
    // A malformed record refuses the whole sync, naming it; nothing changes.
    fake.with(|s| {
        s.malformed = true;
        s.phones[2].lines[0].1 = "pw-104-CHANGED".into();
    });
    let before = changes(&env);
    let (code, out, err) = run(
        &env,
        &[
            "pbx", "sync", "main-pbx", "--domain", domain, "--site", "acme",
        ],
    );
    assert_eq!(code, 2, "{flavor:?}: {out}{err}");
    assert!(
        err.contains("malformed")
            && (err.contains("mac 805ec0aa0001")
                || err.contains("805ec0aa0009")
                || err.contains("805EC0AA0001")),
        "{flavor:?}: {err}"
    );
    assert_eq!(changes(&env), before);
    assert!(
        !env.ok(&["render", "0004f2aa0003", "0004f2aa0003-lines.cfg"])
            .contains("pw-104-CHANGED")
    );
    // Secrets never reach the output or the log lines.
    assert!(
        !out.contains("pw-10")
            && !err.contains("pw-10")
            && !err.contains(pbx::API_KEY)
            && !err.contains(pbx::PASSWORD)
    );
}

#[test]
fn netsapiens_v2_with_v44_names() {
    scenario(Flavor::V2v44, false);
}

#[test]
fn netsapiens_v2_with_v45_names_and_mixed_records() {
    scenario(Flavor::V2v45, false);
}

#[test]
fn netsapiens_v1() {
    scenario(Flavor::V1, true);
}

#[test]
fn sark_v6() {
    scenario(Flavor::Sark, false);
}

#[test]
fn auth_refresh_paging_and_rate_limits() {
    // A bad key is refused with the PBX's answer; nothing changes.
    let (env, fake) = setup(Flavor::V2v45, false);
    env.set_var("PHONEPROV_PBX_MAIN_PBX_API_KEY", "nsd_wrong");
    let (code, _, err) = run(
        &env,
        &[
            "pbx",
            "sync",
            "main-pbx",
            "--domain",
            pbx::DOMAIN,
            "--site",
            "acme",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("refused our credentials") && err.contains("403"),
        "{err}"
    );
    assert!(!err.contains("nsd_wrong"));
    // OAuth with tokens good for 3 calls: refreshed as it goes; pages of 2 records.
    env.set_var("PHONEPROV_PBX_MAIN_PBX_API_KEY", "");
    for (k, v) in [
        ("CLIENT_ID", pbx::CLIENT_ID),
        ("CLIENT_SECRET", pbx::CLIENT_SECRET),
        ("USERNAME", pbx::USERNAME),
        ("PASSWORD", pbx::PASSWORD),
    ] {
        env.set_var(&format!("PHONEPROV_PBX_MAIN_PBX_{k}"), v);
    }
    fake.with(|s| s.token_uses = 3);
    env.ok(&[
        "pbx",
        "sync",
        "main-pbx",
        "--domain",
        pbx::DOMAIN,
        "--site",
        "acme",
    ]);
    assert_eq!(env.json(&["phone", "list"]).as_array().unwrap().len(), 4);
    let (refreshes, rejected) =
        fake.with(|s| (s.refreshes, s.rejected.get(&401).copied().unwrap_or(0)));
    assert!(
        refreshes >= 2 && rejected >= 2,
        "refreshed after 401s: {refreshes} {rejected}"
    );
    // A rate-limited v1 core: 429 with RateLimit headers, waited out.
    let (env, fake) = setup(Flavor::V1, true);
    fake.with(|s| s.burst = 2);
    let (code, out, err) = run(
        &env,
        &[
            "--json",
            "pbx",
            "sync",
            "main-pbx",
            "--domain",
            pbx::DOMAIN,
            "--site",
            "acme",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(r["throttled"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["api"], "v1");
    assert_eq!(r["created"], 4);
    // Plain http to another host is refused at `pbx add`.
    let e = env.refused(&[
        "pbx",
        "add",
        "remote",
        "--kind",
        "sark",
        "--base-url",
        "http://pbx.example.com",
    ]);
    assert!(e.contains("only for loopback"), "{e}");
}

#[test]
fn serve_keeps_pairs_in_sync_and_survives_a_failing_pbx() {
    let (env, fake) = setup(Flavor::V2v45, false);
    env.ok(&[
        "pbx",
        "sync",
        "main-pbx",
        "--domain",
        pbx::DOMAIN,
        "--site",
        "acme",
    ]);
    let key = env.site_key("acme");
    let srv = env.start_with(&["--sync-every", "500ms"]);
    let url = srv.url(&format!("/p/{key}/805ec0aa0001.cfg"));
    fake.with(|s| s.phones[0].lines[0].1 = "pw-101-BACKGROUND".into());
    let got = tokio_free_poll(Duration::from_secs(10), || {
        let (code, body) = http_get(&url);
        (code == 200 && body.contains("pw-101-BACKGROUND")).then_some(())
    });
    assert!(
        got.is_some(),
        "the background sync delivered the PBX's change"
    );
    fake.with(|s| s.down = true);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        srv.log().contains("PBX sync failed; serving goes on"),
        "{}",
        srv.log()
    );
    let (code, _) = http_get(&url);
    assert_eq!(code, 200, "serving goes on");
    let shown = env.json(&["pbx", "show", "main-pbx"]);
    assert!(
        shown["syncs"][0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("500"),
        "{shown}"
    );
}

fn http_get(url: &str) -> (u16, String) {
    let o = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn tokio_free_poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = std::time::Instant::now();
    while t.elapsed() < limit {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
