//! The web console over real HTTP without a browser: the session cookie's flags, CSRF on every
//! form, roles, secrets masked for non-admins, sessions ended by `user rm`, idle and absolute
//! expiry, failed logins slowed per name and per address, HTTPS only off the host, and every
//! change recorded with who made it.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::console::{Console, csrf_in};
use common::{Env, T54W_MAC, VVX_MAC};

const ADMIN_PW: &str = "correct horse battery";
const TECH_PW: &str = "tech tech tech tech";
const VIEWER_PW: &str = "viewer viewer viewer";
const LINE_PASSWORDS: [&str; 3] = ["Xk29-pq8s-Lm2v", "Second-Pw-22", "Mm18<tt4w>&\"Ee9r"];
const PROV_PW: &str = "Prov-Login-Pass-77";

/// A seeded install (two phones, a provisioning login) with an admin, a tech and a viewer.
fn install() -> Env {
    let env = Env::new();
    env.seed();
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        "prov",
        "--auth-password",
        PROV_PW,
    ]);
    env.user_add("alice", "admin", ADMIN_PW);
    env.user_add("tom", "tech", TECH_PW);
    env.user_add("vera", "viewer", VIEWER_PW);
    env
}

fn base(srv: &common::Server) -> String {
    srv.url("")
}

#[tokio::test]
async fn pages_need_a_session_and_the_cookie_is_locked_down() {
    let env = install();
    let srv = env.start();
    let anon = Console::new(&base(&srv));

    // Without a session a page sends the browser to the login, and back afterwards.
    let p = anon.get("/ui/phones?q=805e").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location, "/ui/login?next=/ui/phones%3Fq%3D805e");
    assert_eq!(anon.get("/ui/login").await.status, 200);

    // A wrong password and an unknown name get the same answer, and no cookie.
    let mut c = Console::new(&base(&srv));
    let wrong = c.login("alice", "not the password").await;
    let unknown = c.login("nobody", "not the password").await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert!(wrong.set_cookie.is_empty() && unknown.set_cookie.is_empty());
    assert!(wrong.body.contains("Wrong name or password"));
    assert_eq!(
        wrong.body.replace("alice", "nobody"),
        unknown.body,
        "the page tells which names exist"
    );

    let ok = c.login("alice", ADMIN_PW).await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location, "/ui/sites");
    for flag in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/ui",
        "Max-Age=43200",
    ] {
        assert!(
            ok.set_cookie.contains(flag),
            "{flag} missing: {}",
            ok.set_cookie
        );
    }
    let p = c.get("/ui/sites").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("valleywide") && p.body.contains("alice (admin)"));
    let h = |n: &str| {
        p.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(h("content-security-policy").contains("default-src 'none'"));
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("cache-control"), "no-store");
    // Nothing is fetched from anywhere else: no CDN, no external font.
    for page in [
        "/ui/sites",
        "/ui/phones",
        "/ui/import",
        "/ui/firmware",
        "/ui/audit",
        "/ui/users",
    ] {
        let b = c.get(page).await.body;
        for outside in [
            "src=\"http",
            "href=\"http",
            "href=\"//",
            "url(",
            "@import",
            "<script",
        ] {
            assert!(
                !b.contains(outside),
                "{page} loads something from elsewhere ({outside})"
            );
        }
    }

    // A login never leads off the console.
    let mut d = Console::new(&base(&srv));
    let p = d
        .post(
            "/ui/login",
            &[
                ("user", "alice"),
                ("password", ADMIN_PW),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    assert_eq!(p.location, "/ui/sites");
    let _ = d.login("alice", ADMIN_PW).await;

    // Logout ends the session on the server: the old cookie no longer opens a page.
    let token = c.csrf().await;
    let out = c.post("/ui/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, 303);
    assert!(out.set_cookie.contains("Max-Age=0"));
    assert_eq!(c.get("/ui/sites").await.status, 303);
    assert_eq!(
        d.get("/ui/sites").await.status,
        200,
        "another session stays"
    );

    // No password reached the log.
    let log = srv.log();
    assert!(log.contains("console login failed"));
    assert!(
        !log.contains(ADMIN_PW) && !log.contains("not the password"),
        "a password was logged"
    );
}

#[tokio::test]
async fn every_form_needs_its_session_s_csrf_token_and_changes_are_attributed() {
    let env = install();
    let srv = env.start();
    let alice = Console::logged_in(&base(&srv), "alice", ADMIN_PW).await;
    let tom = Console::logged_in(&base(&srv), "tom", TECH_PW).await;
    let others = tom.csrf().await;
    let mine = alice.csrf().await;
    assert_ne!(mine, others, "each session has its own token");

    let phone = format!("/ui/phones/{T54W_MAC}");
    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (phone.as_str(), vec![("label", "Hacked"), ("sn", "")]),
        (
            "/ui/import/apply",
            vec![("csv", "mac,model,site\n805ec0000001,T54W,valleywide\n")],
        ),
        (
            "/ui/firmware/assign",
            vec![("image", "x"), ("site", "valleywide")],
        ),
        (
            "/ui/ymcs/plan",
            vec![
                ("op", "register"),
                ("site", "valleywide"),
                ("confirm", "yes"),
            ],
        ),
        (
            "/ui/users",
            vec![
                ("name", "mallory"),
                ("role", "admin"),
                ("password", "mallory mallory"),
            ],
        ),
        ("/ui/users/tom/rm", vec![]),
        ("/ui/logout", vec![]),
    ];
    for (path, fields) in &forms {
        for token in [None, Some(""), Some(others.as_str())] {
            let mut f = fields.clone();
            if let Some(t) = token {
                f.push(("csrf", t));
            }
            let p = alice.post(path, &f).await;
            assert_eq!(p.status, 403, "{path} with csrf {token:?}: {}", p.body);
            assert!(p.body.contains("security token"), "{path}: {}", p.body);
        }
    }
    let p = alice
        .post_multipart("/ui/import/preview", &[("csv", "mac,model,site\n")])
        .await;
    assert_eq!(p.status, 403, "a multipart form without its token");
    // A form from another site is refused even with the token (the Origin says so).
    let p = alice
        .post_with(
            &phone,
            &[("csrf", &mine), ("label", "Hacked")],
            ("Origin", "https://evil.example"),
        )
        .await;
    assert_eq!(p.status, 403);

    // Nothing of it happened.
    assert_eq!(
        env.json(&["phone", "show", T54W_MAC])["label"],
        "Front Desk"
    );
    assert_eq!(env.json(&["phone", "list"]).as_array().unwrap().len(), 2);
    let users = env.json(&["user", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 3, "{users}");
    assert_eq!(alice.get("/ui/sites").await.status, 200, "still logged in");

    // With the token the change is made, and recorded with who made it and from where.
    let p = alice
        .post(
            &phone,
            &[
                ("csrf", &mine),
                ("label", "Reception"),
                ("sn", "SN12345678"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(env.json(&["phone", "show", T54W_MAC])["label"], "Reception");
    let changes = alice.get("/ui/changes").await.body;
    assert!(changes.contains("phone.update"), "{changes}");
    assert!(
        changes.contains("alice (admin)") && changes.contains("127.0.0.1"),
        "{changes}"
    );
    assert!(
        changes.contains("label &#39;Reception&#39;") || changes.contains("label 'Reception'"),
        "{changes}"
    );
}

#[tokio::test]
async fn roles_decide_what_is_shown_and_what_is_allowed() {
    let env = install();
    let key = env.site_key("valleywide");
    let srv = env.start();
    let alice = Console::logged_in(&base(&srv), "alice", ADMIN_PW).await;
    let tom = Console::logged_in(&base(&srv), "tom", TECH_PW).await;
    let vera = Console::logged_in(&base(&srv), "vera", VIEWER_PW).await;

    // A tech sees every file of a phone with its passwords masked; an admin sees them.
    for mac in [T54W_MAC, VVX_MAC] {
        let files = env.json(&["render", mac]);
        let names: Vec<String> = files
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().or(f["name"].as_str()).unwrap().to_string())
            .collect();
        assert!(!names.is_empty());
        let mut admin_saw = String::new();
        for n in &names {
            let path = format!("/ui/phones/{mac}/files/{n}");
            let t = tom.get(&path).await;
            assert_eq!(t.status, 200, "{path}");
            for pw in LINE_PASSWORDS.iter().chain([&PROV_PW]) {
                let escaped = pw
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;");
                assert!(
                    !t.body.contains(pw) && !t.body.contains(&escaped),
                    "{path} shows a password to a tech"
                );
            }
            admin_saw.push_str(&alice.get(&path).await.body);
            assert!(vera.get(&path).await.status == 200);
        }
        assert!(
            admin_saw.contains("Xk29-pq8s-Lm2v") || mac == VVX_MAC,
            "an admin sees the passwords"
        );
        assert!(
            tom.get(&format!("/ui/phones/{mac}/files/{}", names[0]))
                .await
                .body
                .contains("********")
        );
    }

    // Only admins manage users.
    for c in [&tom, &vera] {
        let p = c.get("/ui/users").await;
        assert_eq!(p.status, 403);
        assert!(
            !p.body.contains("href=\"/ui/users\""),
            "the nav offers users to a non-admin"
        );
    }
    assert_eq!(alice.get("/ui/users").await.status, 200);
    let tok = tom.csrf().await;
    let p = tom
        .post(
            "/ui/users",
            &[
                ("csrf", &tok),
                ("name", "x"),
                ("role", "admin"),
                ("password", "xxxxxxxxxxxxxx"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);

    // A viewer reads and changes nothing; the site key (a capability) is masked for them.
    let tok = vera.csrf().await;
    let p = vera
        .post(
            &format!("/ui/phones/{T54W_MAC}"),
            &[("csrf", &tok), ("label", "Nope")],
        )
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(
        env.json(&["phone", "show", T54W_MAC])["label"],
        "Front Desk"
    );
    assert_eq!(vera.get("/ui/import").await.status, 403);
    let sites = vera.get("/ui/sites").await.body;
    assert!(!sites.contains(&key) && !sites.contains("href=\"/ui/import\""));
    assert!(
        tom.get("/ui/sites").await.body.contains(&key),
        "a tech needs the URL"
    );
    let phone = vera.get(&format!("/ui/phones/{T54W_MAC}")).await.body;
    assert!(
        !phone.contains("name=\"label\""),
        "a viewer is offered a form"
    );
}

#[tokio::test]
async fn a_removed_user_s_session_ends_at_once() {
    let env = install();
    let srv = env.start();
    let tom = Console::logged_in(&base(&srv), "tom", TECH_PW).await;
    let tok = tom.csrf().await;
    env.ok(&["user", "rm", "tom"]);
    let p = tom.get("/ui/sites").await;
    assert_eq!(p.status, 303);
    assert!(p.location.starts_with("/ui/login"));
    let p = tom
        .post(
            &format!("/ui/phones/{T54W_MAC}"),
            &[("csrf", &tok), ("label", "x")],
        )
        .await;
    assert_eq!(p.status, 403);
    assert_eq!(
        env.json(&["phone", "show", T54W_MAC])["label"],
        "Front Desk"
    );
    // The same for a new password; and the last admin stays.
    let alice = Console::logged_in(&base(&srv), "alice", ADMIN_PW).await;
    let o = env.run_with_input(
        &["user", "passwd", "alice", "--password", "-"],
        "a new long password\n",
    );
    assert!(o.status.success());
    assert_eq!(alice.get("/ui/sites").await.status, 303);
    Console::logged_in(&base(&srv), "alice", "a new long password").await;
    assert!(env.refused(&["user", "rm", "alice"]).contains("last admin"));
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_lifetime() {
    let env = install();
    let srv = env.start_with(&["--session-idle", "1s", "--session-lifetime", "1h"]);
    let c = Console::logged_in(&base(&srv), "tom", TECH_PW).await;
    assert_eq!(c.get("/ui/sites").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        c.get("/ui/sites").await.status,
        303,
        "an idle session lives on"
    );
    drop(srv);

    let srv = env.start_with(&["--session-idle", "2s", "--session-lifetime", "2s"]);
    let c = Console::logged_in(&base(&srv), "tom", TECH_PW).await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            c.get("/ui/sites").await.status,
            200,
            "a busy session ended early"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        c.get("/ui/sites").await.status,
        303,
        "a session outlived its lifetime"
    );
}

#[tokio::test]
async fn failed_logins_are_slowed_per_name_and_per_address() {
    let env = install();
    let srv = env.start();
    let one: IpAddr = "127.0.0.1".parse().unwrap();
    let two: IpAddr = "127.0.0.2".parse().unwrap();
    let mut from_one = Console::from_address(&base(&srv), Some(one));
    let mut from_two = Console::from_address(&base(&srv), Some(two));
    // Five mistakes are free; then each try waits twice as long as the last.
    for _ in 0..5 {
        assert_eq!(from_one.login("tom", "wrong wrong wrong").await.status, 401);
    }
    let p = from_one.login("tom", TECH_PW).await;
    assert_eq!(p.status, 429, "the sixth try came at once: {}", p.body);
    assert!(p.headers.contains_key("retry-after"));
    assert!(p.set_cookie.is_empty(), "a refused try logged in");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(from_one.login("tom", "wrong wrong wrong").await.status, 401);
    // Now a 2 s wait: for the name from any address, and for the address under any name.
    assert_eq!(from_two.login("tom", TECH_PW).await.status, 429, "per name");
    assert_eq!(
        from_one.login("alice", ADMIN_PW).await.status,
        429,
        "per address"
    );
    assert_eq!(
        from_two.login("alice", ADMIN_PW).await.status,
        303,
        "others are not slowed"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        from_two.login("tom", TECH_PW).await.status,
        303,
        "the wait ends"
    );
    assert!(
        srv.log()
            .contains("console login refused: too many failures")
    );
}

#[tokio::test]
async fn the_console_is_https_only_off_the_host() {
    let env = install();
    let srv = env.start_with(&["--http", "0.0.0.0:0", "--https", "127.0.0.1:0"]);
    let port = srv.addr.rsplit(':').next().unwrap().to_string();
    // Over HTTPS a login works (the generated certificate).
    let line = srv
        .stdout()
        .lines()
        .find(|l| l.starts_with("phoneprov: https on https://"))
        .map(str::to_string)
        .expect("https line");
    let https = line.split_whitespace().nth(3).unwrap().to_string();
    Console::logged_in(&https, "alice", ADMIN_PW).await;
    // Plain HTTP from the host itself works (an SSH tunnel); from another address it does not.
    Console::logged_in(&format!("http://127.0.0.1:{port}"), "alice", ADMIN_PW).await;
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(addr) = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
    else {
        println!("no non-loopback address on this machine: the off-host case is not checked here");
        return;
    };
    let mut off = Console::new(&format!("http://{addr}:{port}"));
    let p = off.login("alice", ADMIN_PW).await;
    assert_eq!(
        p.status, 403,
        "a password crossed the network in clear text"
    );
    assert!(p.body.contains("HTTPS only"));
    assert!(off.cookie.is_none());
    // Phones and health checks are not affected.
    assert_eq!(off.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn a_forged_or_stale_cookie_opens_nothing() {
    let env = install();
    let srv = env.start();
    let mut c = Console::new(&base(&srv));
    for forged in ["", "x", &"A".repeat(43), &"A".repeat(4000)] {
        c.cookie = Some(forged.to_string());
        assert_eq!(c.get("/ui/sites").await.status, 303, "cookie {forged:?}");
    }
    let real = Console::logged_in(&base(&srv), "tom", TECH_PW).await;
    let page = real.get("/ui/sites").await.body;
    assert!(csrf_in(&page).is_some());
    // The database holds only the token's hash: a copy of it opens no session.
    let mut db = common::db(&env).await;
    let stored: String = sqlx::query_scalar("SELECT token_sha256 FROM sessions")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_ne!(Some(&stored), real.cookie.as_ref());
    c.cookie = Some(stored);
    assert_eq!(c.get("/ui/sites").await.status, 303);
}

#[tokio::test]
async fn firmware_verdicts_rollout_and_a_denied_phone_are_shown_in_words() {
    use common::images::{blob, put};
    let env = Env::new();
    let key = env.seed();
    env.user_add("tom", "tech", TECH_PW);
    let up = tempfile::tempdir().unwrap();
    let good = "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.70(20211130).rom";
    let image = env.json(&[
        "firmware",
        "add",
        put(up.path(), good, &blob(300_000, 7)).to_str().unwrap(),
    ]);
    let sha = image["sha256"].as_str().unwrap().to_string();
    let srv = env.start();
    let tom = Console::logged_in(&base(&srv), "tom", TECH_PW).await;

    let page = tom.get("/ui/firmware").await.body;
    assert!(
        page.contains("96.86.0.70") && page.contains("Allowed") && page.contains("not assigned"),
        "{page}"
    );
    let tok = tom.csrf().await;
    // An image that does not fit is refused with the reason on the page.
    let p = tom
        .post(
            "/ui/firmware/assign",
            &[("csrf", &tok), ("image", &sha), ("phone", VVX_MAC)],
        )
        .await;
    assert_eq!(p.status, 303);
    let refused = tom.get(&p.location).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("does not fit a VVX_450"),
        "{}",
        refused.body
    );
    let p = tom
        .post(
            "/ui/firmware/assign",
            &[
                ("csrf", &tok),
                ("image", &sha),
                ("site", "valleywide"),
                ("model", "T54W"),
            ],
        )
        .await;
    assert_eq!(p.status, 303);
    assert!(
        tom.get(&p.location)
            .await
            .body
            .contains("Assigned 96.86.0.70")
    );
    assert!(
        tom.get("/ui/firmware")
            .await
            .body
            .contains("0 of 1 assigned phones run it")
    );

    // The phone reports the bricking build: flagged in words, not only by colour.
    let ua = |v: &str| format!("Yealink SIP-T54W {v} 80:5e:c0:aa:bb:cc");
    let (st, _) = common::get(
        &srv.url(&format!("/p/{key}/{T54W_MAC}.boot")),
        &ua("96.86.0.20"),
    )
    .await;
    assert_eq!(st, 200);
    let flagged = common::eventually(Duration::from_secs(5), || async {
        let b = tom.get(&format!("/ui/phones/{T54W_MAC}")).await.body;
        b.contains("DENIED!").then_some(b)
    })
    .await
    .expect("the phone page flags the denied build")
    .0;
    assert!(flagged.contains("role=\"alert\"") && flagged.contains("96.86.0.20"));
    assert!(tom.get("/ui/phones").await.body.contains("DENIED!"));

    // It upgrades to the assigned image: the rollout counts it.
    let (st, _) = common::get(
        &srv.url(&format!("/p/{key}/{T54W_MAC}.boot")),
        &ua("96.86.0.70"),
    )
    .await;
    assert_eq!(st, 200);
    common::eventually(Duration::from_secs(5), || async {
        tom.get("/ui/firmware")
            .await
            .body
            .contains("1 of 1 assigned phones run it")
            .then_some(())
    })
    .await
    .expect("the rollout counts the phone");
    let changes = tom.get("/ui/changes").await.body;
    assert!(
        changes.contains("firmware.assign") && changes.contains("tom (tech)"),
        "{changes}"
    );
}

#[test]
fn the_user_command_says_what_is_wrong() {
    let env = Env::new();
    let add = |name: &str, role: &str, pw: &str, input: &str| {
        env.run_with_input(
            &["user", "add", name, "--role", role, "--password", pw],
            input,
        )
    };
    let refused = |o: std::process::Output, why: &str| {
        assert_eq!(o.status.code(), Some(2), "{why}");
        let e = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(e.contains(why), "{e}");
    };
    refused(add("alice", "admin", "hunter2hunter2", ""), "only '-'");
    refused(
        add("alice", "admin", "-", "short\n"),
        "at least 12 characters",
    );
    refused(
        add("alice", "boss", "-", "long enough pass\n"),
        "no role 'boss'",
    );
    refused(
        add("a b", "admin", "-", "long enough pass\n"),
        "user name 'a b'",
    );
    assert!(
        add("alice", "admin", "-", "long enough pass\n")
            .status
            .success()
    );
    refused(
        add("alice", "tech", "-", "long enough pass\n"),
        "already exists",
    );
    let list = env.json(&["user", "list"]);
    assert_eq!(list[0]["name"], "alice");
    assert_eq!(list[0]["role"], "admin");
    assert!(
        !list.to_string().contains("argon2"),
        "the hash is shown: {list}"
    );
    assert!(
        env.refused(&["user", "rm", "nobody"])
            .contains("no user 'nobody'")
    );
    assert!(env.refused(&["user", "rm", "alice"]).contains("last admin"));
    for (times, why) in [
        (
            &["--session-idle", "0"][..],
            "--session-idle: must be more than 0",
        ),
        (
            &["--session-idle", "2h", "--session-lifetime", "1h"][..],
            "longer than --session-lifetime",
        ),
    ] {
        let mut args = vec!["serve", "--http", "127.0.0.1:0", "--tftp", "off"];
        args.extend_from_slice(times);
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(2), "{times:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(why),
            "{times:?}"
        );
    }
}

/// YMCS through the console against the strict fake: status, a plan that sends nothing, the
/// confirmed operation, and an import whose YMCS step is planned with it and sent on apply.
#[tokio::test]
async fn ymcs_is_planned_first_and_sent_only_on_confirm() {
    use common::ymcs::{Fake, State};
    let env = Env::new();
    env.seed();
    env.user_add("tom", "tech", TECH_PW);
    let fake = Fake::start(State {
        sites: vec![("s-1".into(), "valleywide".into())],
        ..Default::default()
    });
    fake.connect(&env);
    let srv = env.start();
    let tom = Console::logged_in(&base(&srv), "tom", TECH_PW).await;
    let adds = || fake.with(|s| s.calls.iter().filter(|c| c.contains("addDevices")).count());

    let page = tom.get("/ui/ymcs?site=valleywide").await.body;
    assert!(
        page.contains("valleywide") && page.contains("ours-only"),
        "{page}"
    );
    let tok = tom.csrf().await;
    let plan = tom
        .post(
            "/ui/ymcs/plan",
            &[("csrf", &tok), ("op", "register"), ("site", "valleywide")],
        )
        .await;
    assert_eq!(plan.status, 200, "{}", plan.body);
    assert!(plan.body.contains("dry run: nothing was sent") && plan.body.contains("ymcs-confirm"));
    assert!(plan.body.contains("805ec0aabbcc") || plan.body.contains(T54W_MAC));
    assert_eq!(adds(), 0, "a plan sent something");
    let done = tom
        .post(
            "/ui/ymcs/plan",
            &[
                ("csrf", &tok),
                ("op", "register"),
                ("site", "valleywide"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("register for valleywide: done"),
        "{}",
        done.body
    );
    assert_eq!(adds(), 1);
    assert_eq!(
        fake.with(|s| s.devices.get(T54W_MAC).cloned()),
        Some("s-1".into())
    );

    // An import with "register" ticked: the preview plans it, the apply sends it.
    let csv = "mac,model,site\n805ec0000077,T54W,valleywide\n";
    let preview = tom
        .post_multipart(
            "/ui/import/preview",
            &[("csrf", &tok), ("csv", csv), ("register", "on")],
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview
            .body
            .contains("YMCS register (dry run: nothing sent yet)"),
        "{}",
        preview.body
    );
    assert_eq!(adds(), 1, "the preview sent something");
    assert!(
        env.run(&["phone", "show", "805ec0000077"]).status.code() != Some(0),
        "the preview imported"
    );
    let applied = tom
        .post(
            "/ui/import/apply",
            &[
                ("csrf", &tok),
                ("csv", csv),
                ("site", ""),
                ("register", "on"),
            ],
        )
        .await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert!(applied.body.contains("1 created"), "{}", applied.body);
    assert_eq!(
        fake.with(|s| s.devices.get("805ec0000077").cloned()),
        Some("s-1".into())
    );
    let changes = tom.get("/ui/changes").await.body;
    assert!(
        changes.contains("ymcs.register") && changes.contains("import.apply"),
        "{changes}"
    );
}

#[tokio::test]
async fn the_fetch_audit_filters_by_mac_and_result() {
    let env = Env::new();
    let key = env.seed();
    env.user_add("vera", "viewer", VIEWER_PW);
    let srv = env.start();
    let ua = "Yealink SIP-T54W 96.86.0.70 80:5e:c0:aa:bb:cc";
    assert_eq!(
        common::get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), ua)
            .await
            .0,
        200
    );
    assert_eq!(
        common::get(
            &srv.url(&format!("/p/{key}/{VVX_MAC}.cfg")),
            "PolycomVVX-VVX_450-UA/6.4.3.5156"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        common::get(&srv.url(&format!("/p/{key}/805ec0000099.cfg")), ua)
            .await
            .0,
        404
    );
    let vera = Console::logged_in(&base(&srv), "vera", VIEWER_PW).await;
    common::eventually(Duration::from_secs(5), || async {
        vera.get("/ui/audit")
            .await
            .body
            .contains(VVX_MAC)
            .then_some(())
    })
    .await
    .expect("the audit shows the fetches");
    let t54 = vera.get("/ui/audit?mac=80:5E:C0:AA:BB:CC").await.body;
    assert!(
        t54.contains(&format!("{T54W_MAC}.cfg")) && !t54.contains(&format!("{VVX_MAC}.cfg")),
        "{t54}"
    );
    let all = vera.get("/ui/audit").await.body;
    assert!(all.contains("<td>not-found</td>"), "{all}");
    let served = vera.get("/ui/audit?result=served").await.body;
    assert!(
        served.contains(VVX_MAC) && !served.contains("<td>not-found</td>"),
        "{served}"
    );
    let bad = vera.get("/ui/audit?mac=nonsense").await;
    assert_eq!(bad.status, 422, "{}", bad.body);
}

#[tokio::test]
async fn search_finds_phones_by_part_of_a_mac_a_label_or_a_site_and_api_changes_are_logged() {
    let env = Env::new();
    env.seed();
    env.user_add("vera", "viewer", VIEWER_PW);
    let token = env.admin_token();
    let srv = env.start();
    let vera = Console::logged_in(&base(&srv), "vera", VIEWER_PW).await;
    let rows = |b: &str| b.matches("class=\"mac\" href=").count();
    let p = vera.get("/ui/phones?q=C0-AA-BB").await.body;
    assert!(p.contains("80:5e:c0:aa:bb:cc") && rows(&p) == 1, "{p}");
    let p = vera.get("/ui/phones?q=conference").await.body;
    assert!(p.contains("00:04:f2:a1:b2:c3") && rows(&p) == 1, "{p}");
    assert_eq!(rows(&vera.get("/ui/phones?q=valley").await.body), 2);
    assert!(
        vera.get("/ui/phones?q=zzzz")
            .await
            .body
            .contains("No phones match")
    );
    // A whole MAC leads to the phone; a site that does not exist is said to be missing.
    let p = vera.get("/ui/phones?q=0004.F2A1.B2C3").await;
    assert_eq!(p.location, format!("/ui/phones/{VVX_MAC}"));
    assert_eq!(vera.get("/ui/phones?site=nowhere").await.status, 404);

    // A change through the admin API is on record with the token's name.
    let r = common::client()
        .patch(srv.url(&format!("/api/v1/phones/{VVX_MAC}")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"label": "Boardroom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let changes = vera.get("/ui/changes").await.body;
    assert!(
        changes.contains("test0 (api)") && changes.contains("api.patch"),
        "{changes}"
    );
    assert!(
        changes.contains(&format!("/api/v1/phones/{VVX_MAC} (200)")),
        "{changes}"
    );
}
