//! Phone-facing security with real clients: per-site logins (Basic and Digest, replay refused),
//! rotation, allowed networks, HTTPS only, TFTP rules, misses a scanner cannot tell apart, and
//! the fetch audit.

mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use common::*;

const USER: &str = "prov-valley";
const PW: &str = "Pr0v-Secret-77x";
const PW2: &str = "N3w-Secret-88y";

/// curl with extra arguments: (HTTP status, body).
fn curl(args: &[&str], url: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_string())
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A Digest answer for `path` with a fresh challenge from the server.
async fn digest_header(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    user: &str,
    pw: &str,
) -> String {
    let r = c.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let nonce = nonce_of(&r);
    phoneprov::auth::digest_answer(user, pw, "GET", path, &nonce, "00000001", "0a4f113b")
}

#[tokio::test]
async fn logins_basic_digest_replay_and_what_phones_get() {
    let env = Env::new();
    let key = env.seed();
    let short = env.refused(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        USER,
        "--auth-password",
        "short",
    ]);
    assert!(short.contains("8 to 128"), "{short}");
    let only_user = env.refused(&["site", "update", "valleywide", "--auth-user", USER]);
    assert!(only_user.contains("--auth-password"), "{only_user}");
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        USER,
        "--auth-password",
        PW,
    ]);
    let srv = env.start();
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));

    // No credentials: a challenge offering Digest and Basic.
    let o = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", &url])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(
        head.contains("www-authenticate: digest realm=\"phoneprov\", qop=\"auth\""),
        "{head}"
    );
    assert!(
        head.contains("www-authenticate: basic realm=\"phoneprov\""),
        "{head}"
    );

    // curl speaking Digest and Basic.
    let (code, body) = curl(&["--digest", "-u", &format!("{USER}:{PW}")], &url);
    assert_eq!(code, 200);
    assert!(
        body.contains("account.1.password = Xk29-pq8s-Lm2v"),
        "{body}"
    );
    assert_eq!(
        curl(&["--basic", "-u", &format!("{USER}:{PW}")], &url).0,
        200
    );
    assert_eq!(
        curl(&["--digest", "-u", &format!("{USER}:wrong-password")], &url).0,
        401
    );
    assert_eq!(
        curl(&["--basic", "-u", &format!("{USER}:wrong-password")], &url).0,
        401
    );
    assert_eq!(
        curl(&["--basic", "-u", &format!("someone:{PW}")], &url).0,
        401
    );
    // Every vendor file of the site needs them too.
    let common = srv.url(&format!("/p/{key}/y000000000096.cfg"));
    assert_eq!(curl(&[], &common).0, 401);
    let (code, body) = curl(&["--digest", "-u", &format!("{USER}:{PW}")], &common);
    assert_eq!(code, 200);
    // The login is in the phone's own auto-provision settings, so it keeps authenticating.
    assert!(
        body.contains(&format!("static.auto_provision.server.username = {USER}")),
        "{body}"
    );
    assert!(
        body.contains(&format!("static.auto_provision.server.password = {PW}")),
        "{body}"
    );
    let site = srv.url(&format!("/p/{key}/site.cfg"));
    let (code, body) = curl(
        &["--digest", "-u", &format!("{USER}:{PW}"), "-A", VVX_UA],
        &site,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&format!("device.prov.user=\"{USER}\""))
            && body.contains(&format!("device.prov.password=\"{PW}\"")),
        "{body}"
    );

    // A Digest answer works once; the same answer again is a replay.
    let c = client();
    let base = srv.url("");
    let path = format!("/p/{key}/{T54W_MAC}.cfg");
    let answer = digest_header(&c, &base, &path, USER, PW).await;
    let send = |h: String| {
        let c = c.clone();
        let u = format!("{base}{path}");
        async move {
            c.get(u)
                .header("Authorization", h)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(send(answer.clone()).await, 200);
    assert_eq!(send(answer.clone()).await, 401, "replayed Digest answer");
    // The next count on the same nonce is a new answer; an answer for another file is not.
    assert_eq!(
        send(
            answer
                .replace("nc=00000001", "nc=00000002")
                .replace("response=", "x=")
        )
        .await,
        401
    );
    let nonce = answer
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let next =
        phoneprov::auth::digest_answer(USER, PW, "GET", &path, &nonce, "00000002", "0a4f113b");
    assert_eq!(send(next).await, 200);
    let other =
        phoneprov::auth::digest_answer(USER, PW, "GET", "/p/x/y.cfg", &nonce, "00000003", "c");
    assert_eq!(send(other).await, 401, "answer signed for another URI");

    // The audit: served and refused fetches, with the login's outcome and no secret.
    let token = env.admin_token();
    let audit = eventually(Duration::from_secs(5), || async {
        let v: serde_json::Value = c
            .get(srv.url("/api/v1/audit"))
            .query(&[("mac", T54W_MAC)])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = v.as_array().unwrap().clone();
        let has =
            |res: &str, auth: &str| rows.iter().any(|r| r["result"] == res && r["auth"] == auth);
        (has("served", "current")
            && has("unauthorized", "missing")
            && has("unauthorized", "wrong")
            && has("unauthorized", "replayed"))
        .then_some(v)
    })
    .await
    .expect("audit rows")
    .0;
    let text = audit.to_string();
    assert!(!text.contains(PW) && !text.contains("Xk29"), "{text}");
    assert!(
        audit[0]["peer"] == "127.0.0.1" && audit[0]["site"] == "valleywide",
        "{audit}"
    );
    let cli = env.json(&["audit", "--site", "valleywide", "--result", "unauthorized"]);
    assert!(
        cli.as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "unauthorized")
    );
    assert!(!cli.as_array().unwrap().is_empty());
    // Never in the log either.
    let log = srv.log();
    assert!(
        !log.contains(PW) && !log.contains("Xk29-pq8s"),
        "a secret reached the log"
    );
}

#[tokio::test]
async fn rotation_accepts_old_and_new_for_a_window() {
    let env = Env::new();
    let key = env.seed();
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        USER,
        "--auth-password",
        PW,
    ]);
    let srv = env.start();
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));
    let common = srv.url(&format!("/p/{key}/y000000000096.cfg"));
    let old = format!("{USER}:{PW}");
    let new = format!("{USER}:{PW2}");
    assert_eq!(curl(&["--digest", "-u", &old], &url).0, 200);

    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-password",
        PW2,
        "--rotation-window",
        "1h",
    ]);
    let shown = env.json(&["site", "show", "valleywide"]);
    assert_eq!(shown["phones_on_current_login"], 0, "{shown}");
    assert!(shown["access"]["previous_until"].as_i64().unwrap() > 0);
    assert!(
        !shown.to_string().contains(PW2) && !shown.to_string().contains(PW),
        "{shown}"
    );
    // A phone still on the old login fetches and learns the new one.
    let body = eventually(Duration::from_secs(3), || async {
        let (code, body) = curl(&["--digest", "-u", &old], &common);
        (code == 200 && body.contains(PW2)).then_some(body)
    })
    .await
    .expect("old login works and hands out the new one")
    .0;
    assert!(!body.contains(PW));
    assert_eq!(curl(&["--digest", "-u", &new], &url).0, 200);
    assert_eq!(curl(&["--basic", "-u", &old], &url).0, 200);
    // site show counts the phones that fetched with the new login.
    let n = eventually(Duration::from_secs(5), || async {
        let v = env.json(&["site", "show", "valleywide"]);
        (v["phones_on_current_login"] == 1).then_some(())
    })
    .await;
    assert!(n.is_some(), "one phone on the new login");
    let text = env.ok(&["site", "show", "valleywide"]);
    assert!(
        text.contains("phones that fetched with it: 1 of 2") && text.contains("previous login"),
        "{text}"
    );

    // Ending the window: the old login stops working.
    env.ok(&["site", "update", "valleywide", "--rotation-window", "0"]);
    eventually(Duration::from_secs(3), || async {
        (curl(&["--digest", "-u", &old], &url).0 == 401).then_some(())
    })
    .await
    .expect("old login refused after the window");
    assert_eq!(curl(&["--digest", "-u", &new], &url).0, 200);
    // The same through the admin API; the answer names the user, never the password.
    let token = env.admin_token();
    let r = client()
        .patch(srv.url("/api/v1/sites/valleywide"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"auth_user": "api-user", "auth_password": "Api-Secret-999", "rotation_window": "0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["access"]["auth"]["user"], "api-user");
    assert!(!v.to_string().contains("Api-Secret-999"), "{v}");
    eventually(Duration::from_secs(3), || async {
        (curl(&["--digest", "-u", "api-user:Api-Secret-999"], &url).0 == 200).then_some(())
    })
    .await
    .expect("login set through the API");
    assert_eq!(
        curl(&["--digest", "-u", &new], &url).0,
        401,
        "window 0: old login ends now"
    );
    // No login at all: the site key alone.
    env.ok(&["site", "update", "valleywide", "--no-auth"]);
    eventually(Duration::from_secs(3), || async {
        (curl(&[], &url).0 == 200).then_some(())
    })
    .await
    .expect("no login needed");
}

/// A TFTP read of `name` from a socket bound to `from`: the first packet's opcode.
fn tftp_first_opcode(from: &str, server: &str, name: &str) -> u16 {
    let sock = std::net::UdpSocket::bind(format!("{from}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(format!("{name}\0octet\0").as_bytes());
    sock.send_to(&rrq, server).unwrap();
    let mut buf = [0u8; 1024];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert!(n >= 4);
    u16::from_be_bytes([buf[0], buf[1]])
}

#[tokio::test]
async fn networks_https_only_and_tftp() {
    let env = Env::new();
    let key = env.seed();
    let bad = env.refused(&["site", "update", "valleywide", "--allow-net", "10.0.0.1/8"]);
    assert!(bad.contains("did you mean 10.0.0.0/8"), "{bad}");
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--allow-net",
        "127.0.0.2/32",
        "--allow-net",
        "192.0.2.0/24",
    ]);
    std::fs::write(
        env.data_dir().join("phoneprov.toml"),
        "public_https_url = \"https://prov.test:8443\"\n",
    )
    .unwrap();
    let srv = env.start_with(&["--https", "127.0.0.1:0"]);
    let path = format!("/p/{key}/{T54W_MAC}.cfg");
    let inside = client_from("127.0.0.2");
    let outside = client_from("127.0.0.1");
    let st = |c: &reqwest::Client| {
        let u = srv.url(&path);
        let c = c.clone();
        async move { c.get(u).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(st(&inside).await, 200);
    assert_eq!(
        st(&outside).await,
        404,
        "outside the site's networks: an ordinary miss"
    );
    let tftp_name = format!("p/{key}/{T54W_MAC}.cfg");
    assert_eq!(
        tftp_first_opcode("127.0.0.2", &srv.tftp, &tftp_name),
        3,
        "DATA inside"
    );
    assert_eq!(
        tftp_first_opcode("127.0.0.1", &srv.tftp, &tftp_name),
        5,
        "ERROR outside"
    );

    // With a login, rendered files do not go out over TFTP (it carries no credentials)...
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--any-net",
        "--auth-user",
        USER,
        "--auth-password",
        PW,
    ]);
    eventually(Duration::from_secs(3), || async {
        (tftp_first_opcode("127.0.0.1", &srv.tftp, &tftp_name) == 5).then_some(())
    })
    .await
    .expect("TFTP refused for a site with a login");
    // ...unless the operator allows it for phones that cannot do better.
    env.ok(&["site", "update", "valleywide", "--tftp", "allow"]);
    eventually(Duration::from_secs(3), || async {
        (tftp_first_opcode("127.0.0.1", &srv.tftp, &tftp_name) == 3).then_some(())
    })
    .await
    .expect("TFTP allowed again");

    // HTTPS only: plain HTTP and TFTP refused, HTTPS served, rendered URLs say https.
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--no-auth",
        "--require-https",
    ]);
    let shown = env.json(&["site", "show", "valleywide"]);
    assert_eq!(
        shown["provisioning_url"],
        format!("https://prov.test:8443/p/{key}/")
    );
    eventually(Duration::from_secs(3), || async {
        (st(&outside).await == 404).then_some(())
    })
    .await
    .expect("plain HTTP refused");
    assert_eq!(tftp_first_opcode("127.0.0.1", &srv.tftp, &tftp_name), 5);
    let port = srv
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("phoneprov: https on https://"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .unwrap()
        .to_string();
    let https = format!("https://127.0.0.1:{port}");
    let (code, body) = curl(&["-k"], &format!("{https}/p/{key}/y000000000096.cfg"));
    assert_eq!(code, 200);
    assert!(
        body.contains(&format!(
            "static.auto_provision.server.url = https://prov.test:8443/p/{key}/"
        )),
        "{body}"
    );
    // Without the HTTPS URL configured, a site cannot require HTTPS.
    let env2 = Env::new();
    env2.seed();
    let e = env2.refused(&["site", "update", "valleywide", "--require-https"]);
    assert!(e.contains("public_https_url"), "{e}");
}

/// Status, headers (with the nonce and date masked) and body of a response.
async fn shape(r: reqwest::Response) -> String {
    let mut out = format!("{}\n", r.status());
    let mut hs: Vec<String> = r
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str() != "date")
        .map(|(k, v)| {
            let v = v.to_str().unwrap();
            let v = match v.split_once("nonce=\"") {
                Some((a, b)) => format!("{a}nonce=\"N\"{}", &b[b.find('"').unwrap()..]),
                None => v.to_string(),
            };
            format!("{k}: {v}")
        })
        .collect();
    hs.sort();
    out.push_str(&hs.join("\n"));
    out.push_str(&format!("\n\n{}", r.text().await.unwrap()));
    out
}

#[tokio::test]
async fn a_caller_without_credentials_cannot_tell_misses_apart() {
    let env = Env::new();
    let key = env.seed();
    env.ok(&["site", "add", "open", "--sip-server", "pbx2"]);
    env.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        USER,
        "--auth-password",
        PW,
    ]);
    let srv = env.start();
    let c = client();
    let basic = |u: &str, p: &str| {
        format!("Basic {}", {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        })
    };
    let cases: Vec<(&str, String, Option<String>)> = vec![
        ("unknown MAC", format!("/p/{key}/001565000001.cfg"), None),
        (
            "known MAC, no credentials",
            format!("/p/{key}/{T54W_MAC}.cfg"),
            None,
        ),
        (
            "known MAC, wrong credentials",
            format!("/p/{key}/{T54W_MAC}.cfg"),
            Some(basic(USER, "wrong-pass")),
        ),
        (
            "known MAC, wrong Digest",
            format!("/p/{key}/{T54W_MAC}.cfg"),
            Some(phoneprov::auth::digest_answer(
                USER,
                "nope",
                "GET",
                &format!("/p/{key}/{T54W_MAC}.cfg"),
                &"ab".repeat(24),
                "00000001",
                "x",
            )),
        ),
        (
            "wrong site key",
            format!("/p/ffffffffffffffffffffffff/{T54W_MAC}.cfg"),
            None,
        ),
        (
            "missing file",
            format!("/p/{key}/{T54W_MAC}-missing.cfg"),
            None,
        ),
        (
            "missing file, wrong credentials",
            format!("/p/{key}/nothing.cfg"),
            Some(basic(USER, "x")),
        ),
        (
            "traversal",
            format!("/p/{key}/..%2f..%2fetc%2fpasswd"),
            None,
        ),
        ("bare unknown MAC", "/001565000001.cfg".to_string(), None),
    ];
    let mut shapes = Vec::new();
    for (what, path, auth) in &cases {
        let mut rq = c.get(srv.url(path)).header("User-Agent", T54W_UA);
        if let Some(a) = auth {
            rq = rq.header("Authorization", a);
        }
        shapes.push((what, shape(rq.send().await.unwrap()).await));
    }
    for (what, s) in &shapes {
        assert_eq!(s, &shapes[0].1, "{what} differs from {}", shapes[0].0);
    }
    assert!(shapes[0].1.starts_with("401"), "{}", shapes[0].1);
    // With the login, the phone gets its file.
    let ok = c
        .get(srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")))
        .header("Authorization", basic(USER, PW))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
