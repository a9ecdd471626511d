//! The command line: every MAC form, bad input on every command refused with a clear error and
//! nothing changed, broken templates refused, and the admin API.

mod common;

use std::time::Duration;

use common::*;

/// Everything a user can see of the data, to prove a refused command changed nothing.
fn state(env: &Env) -> String {
    let mut out = env.ok(&["--json", "site", "list"]);
    out.push_str(&env.ok(&["--json", "phone", "list"]));
    for p in env.json(&["phone", "list"]).as_array().unwrap() {
        let mac = p["mac"].as_str().unwrap();
        out.push_str(&env.ok(&["render", mac, &format!("{mac}.cfg")]));
    }
    out.push_str(&env.ok(&["--json", "setting", "list", "--site", "valleywide"]));
    out
}

#[test]
fn every_mac_form_is_one_phone() {
    let env = Env::new();
    env.ok(&[
        "site",
        "add",
        "valleywide",
        "--sip-server",
        "pbx.example.com",
    ]);
    for (form, canonical) in [
        ("80:5E:C0:AA:BB:01", "805ec0aabb01"),
        ("80-5e-c0-aa-bb-02", "805ec0aabb02"),
        ("805e.c0aa.bb03", "805ec0aabb03"),
        ("805EC0AABB04", "805ec0aabb04"),
    ] {
        let v = env.json(&[
            "phone",
            "add",
            form,
            "--model",
            "T54W",
            "--site",
            "valleywide",
        ]);
        assert_eq!(v["mac"], canonical, "{form}");
        // Any other form finds the same phone.
        let colon = v["mac_colon"].as_str().unwrap().to_string();
        assert_eq!(env.json(&["phone", "show", &colon])["mac"], canonical);
        assert_eq!(
            env.json(&["phone", "show", &colon.replace(':', "-").to_uppercase()])["mac"],
            canonical
        );
        let err = env.refused(&[
            "phone",
            "add",
            &colon.to_uppercase(),
            "--model",
            "T54W",
            "--site",
            "valleywide",
        ]);
        assert!(
            err.contains("already enrolled in site 'valleywide'"),
            "{err}"
        );
    }
}

#[test]
fn bad_input_on_every_command_is_refused_and_changes_nothing() {
    let env = Env::new();
    env.seed();
    env.ok(&["setting", "set", "--site", "valleywide", "features.x", "1"]);
    let before = state(&env);
    let cases: &[(&[&str], &str)] = &[
        (
            &["site", "add", "valleywide", "--sip-server", "pbx"],
            "already exists",
        ),
        (
            &["site", "add", "Bad Name", "--sip-server", "pbx"],
            "site name 'Bad Name'",
        ),
        (
            &["site", "add", "s2", "--sip-server", "pbx:99999"],
            "SIP server 'pbx:99999'",
        ),
        (
            &[
                "site",
                "add",
                "s2",
                "--sip-server",
                "pbx",
                "--transport",
                "sctp",
            ],
            "transport 'sctp'",
        ),
        (
            &[
                "site",
                "add",
                "s2",
                "--sip-server",
                "pbx",
                "--time-zone",
                "Mars/Base",
            ],
            "time zone 'Mars/Base'",
        ),
        (
            &[
                "site",
                "add",
                "s2",
                "--sip-server",
                "pbx",
                "--ntp",
                "bad host",
            ],
            "NTP server 'bad host'",
        ),
        (&["site", "show", "nosuch"], "no site named 'nosuch'"),
        (
            &["site", "update", "nosuch", "--sip-server", "x"],
            "no site named 'nosuch'",
        ),
        (
            &[
                "site",
                "update",
                "valleywide",
                "--transport",
                "carrier-pigeon",
            ],
            "transport 'carrier-pigeon'",
        ),
        (&["site", "rm", "valleywide"], "still has 2 phone(s)"),
        (&["site", "rm", "nosuch"], "no site named 'nosuch'"),
        (
            &[
                "phone",
                "add",
                "80:5E:C0:11:22:0G",
                "--model",
                "T54W",
                "--site",
                "valleywide",
            ],
            "'G' is not a hex digit",
        ),
        (
            &[
                "phone",
                "add",
                "0:1:2:3:4:5:6:789",
                "--model",
                "T54W",
                "--site",
                "valleywide",
            ],
            "12 hex digits",
        ),
        (
            &[
                "phone",
                "add",
                "805ec0112207",
                "--model",
                "T99X",
                "--site",
                "valleywide",
            ],
            "unknown model 'T99X'",
        ),
        (
            &[
                "phone",
                "add",
                "805ec0112208",
                "--model",
                "T54W",
                "--site",
                "nosuchsite",
            ],
            "no site named 'nosuchsite'",
        ),
        (
            &[
                "phone",
                "add",
                "805ec0112209",
                "--model",
                "T54W",
                "--site",
                "valleywide",
                "--label",
                "a\nb",
            ],
            "control character",
        ),
        (&["phone", "show", "805ec0000000"], "is not enrolled"),
        (&["phone", "show", "xyz"], "not a MAC address"),
        (&["phone", "rm", "805ec0000000"], "is not enrolled"),
        (
            &["phone", "list", "--site", "nosuch"],
            "no site named 'nosuch'",
        ),
        (
            &[
                "line",
                "set",
                T54W_MAC,
                "17",
                "--user",
                "1",
                "--password",
                "p",
            ],
            "line 17 is out of range: a T54W has lines 1 to 16",
        ),
        (
            &[
                "line",
                "set",
                T54W_MAC,
                "0",
                "--user",
                "1",
                "--password",
                "p",
            ],
            "out of range",
        ),
        (
            &[
                "line",
                "set",
                VVX_MAC,
                "13",
                "--user",
                "1",
                "--password",
                "p",
            ],
            "a VVX_450 has lines 1 to 12",
        ),
        (
            &[
                "line",
                "set",
                T54W_MAC,
                "1",
                "--user",
                "201",
                "--password",
                "",
            ],
            "password must not be empty",
        ),
        (
            &[
                "line",
                "set",
                T54W_MAC,
                "1",
                "--user",
                "201",
                "--password",
                "pw\naccount.1.enable = 0",
            ],
            "control character",
        ),
        (
            &[
                "line",
                "set",
                "805ec0000000",
                "1",
                "--user",
                "1",
                "--password",
                "p",
            ],
            "is not enrolled",
        ),
        (&["line", "rm", T54W_MAC, "9"], "has no line 9"),
        (
            &["setting", "set", "--site", "valleywide", "bad key", "1"],
            "setting key 'bad key'",
        ),
        (
            &[
                "setting",
                "set",
                "--site",
                "valleywide",
                "k",
                "v\nstatic.firmware.url = x",
            ],
            "control character",
        ),
        (
            &[
                "setting",
                "set",
                "--phone",
                T54W_MAC,
                "--site",
                "valleywide",
                "k",
                "v",
            ],
            "name one layer",
        ),
        (&["setting", "set", "k", "v"], "name one layer"),
        (
            &["setting", "set", "--model", "T99X", "k", "v"],
            "unknown model 'T99X'",
        ),
        (
            &[
                "setting",
                "set",
                "--site",
                "valleywide",
                "--vendor",
                "cisco",
                "k",
                "v",
            ],
            "unknown vendor 'cisco'",
        ),
        (
            &["setting", "rm", "--site", "valleywide", "not.set"],
            "'not.set' is not set",
        ),
        (&["render", "805ec0000000"], "is not enrolled"),
        (
            &["render", T54W_MAC, "nosuch.cfg"],
            "has no file 'nosuch.cfg'",
        ),
    ];
    for (args, want) in cases {
        let err = env.refused(args);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected '{want}' in: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(state(&env), before, "a refused command changed something");
    // A flag clap itself rejects also exits non-zero.
    let o = env.run(&[
        "line",
        "set",
        T54W_MAC,
        "x",
        "--user",
        "1",
        "--password",
        "p",
    ]);
    assert!(!o.status.success());
}

#[tokio::test]
async fn broken_template_is_refused_and_last_good_render_served() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));
    let (_, good) = get(&url, T54W_UA).await;

    let dir = env.data_dir().join("templates/yealink");
    std::fs::create_dir_all(&dir).unwrap();
    let tpl = dir.join("mac.cfg");
    std::fs::write(
        &tpl,
        "#!version:1.0.0.1\nok = 1\n{% for l in lines %}\naccount = {{ l.user }\n",
    )
    .unwrap();

    // The CLI names the file and the line.
    let err = env.refused(&["render", T54W_MAC, &format!("{T54W_MAC}.cfg")]);
    assert!(err.contains(&tpl.display().to_string()), "{err}");
    assert!(err.contains("4:"), "names line 4: {err}");
    // A data change is refused while a template is broken: nothing half-done.
    let err = env.refused(&[
        "line",
        "set",
        T54W_MAC,
        "1",
        "--user",
        "201",
        "--password",
        "New-Pw-1",
    ]);
    assert!(err.contains("mac.cfg"), "{err}");

    // The running server refuses it too and keeps serving the last good bytes.
    eventually(Duration::from_secs(5), || async {
        srv.log()
            .contains("template override refused")
            .then_some(())
    })
    .await
    .expect("server logs the refusal");
    assert!(
        srv.log().contains(&tpl.display().to_string()),
        "{}",
        srv.log()
    );
    let (st, still) = get(&url, T54W_UA).await;
    assert_eq!((st, still.as_str()), (200, good.as_str()));

    // A template that parses but fails when rendered (unknown variable) is refused likewise.
    std::fs::write(&tpl, "#!version:1.0.0.1\nx = {{ phone.no_such_field }}\n").unwrap();
    let err = env.refused(&["render", T54W_MAC, &format!("{T54W_MAC}.cfg")]);
    assert!(
        err.contains("no_such_field") || err.contains("not found"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (st, still) = get(&url, T54W_UA).await;
    assert_eq!((st, still.as_str()), (200, good.as_str()));

    // A good override is picked up.
    std::fs::write(&tpl, "#!version:1.0.0.1\n## custom\n{% for l in lines %}account.{{ l.n }}.user_name = {{ l.user }}\n{% endfor %}").unwrap();
    let (body, _) = eventually(Duration::from_secs(5), || async {
        let (_, body) = get(&url, T54W_UA).await;
        body.contains("## custom").then_some(body)
    })
    .await
    .expect("override served");
    assert_eq!(yealink_value(&body, "account.2.user_name"), Some("209"));
}

#[tokio::test]
async fn server_refuses_to_start_on_a_broken_template() {
    let env = Env::new();
    env.seed();
    let dir = env.data_dir().join("templates/polycom");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lines.cfg"), "{% if %}").unwrap();
    let o = env.run(&["serve", "--http", "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("polycom/lines.cfg"), "{err}");
}

#[tokio::test]
async fn admin_api() {
    let env = Env::new();
    let srv = env.start();
    let token = env.admin_token();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = env.data_dir().join("admin-tokens");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Only its hash is kept.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "{text}");
    }
    let c = client();
    let api = |p: &str| srv.url(&format!("/api/v1{p}"));

    assert_eq!(
        c.get(srv.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(c.get(api("/sites")).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(api("/sites"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let r = c.post(api("/sites")).bearer_auth(&token)
        .json(&serde_json::json!({"name": "acme", "sip_server": "pbx.acme.example:5070", "transport": "tcp"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let site: serde_json::Value = r.json().await.unwrap();
    assert_eq!(site["sip_port"], 5070);
    let url = site["provisioning_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{PUBLIC_URL}/p/")), "{url}");

    let r = c
        .post(api("/phones"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"mac": "80:5e:c0:aa:bb:cc", "model": "T46U", "site": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(api("/phones"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"mac": "80:5e:c0:aa:bb:cc", "model": "T46U", "site": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let err: serde_json::Value = r.json().await.unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("already enrolled in site 'acme'")
    );
    let r = c
        .post(api("/phones"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"mac": "nope", "model": "T46U", "site": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = c
        .put(api(&format!("/phones/{T54W_MAC}/lines/1")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"user": "301", "password": "Api-Pw-301"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let line: serde_json::Value = r.json().await.unwrap();
    assert!(
        line.get("password").is_none(),
        "passwords are never returned"
    );

    let r = c
        .put(api("/settings"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"site": "acme", "key": "features.dnd.enable", "value": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Preview: the same bytes a phone gets.
    let files: serde_json::Value = c
        .get(api(&format!("/phones/{T54W_MAC}/files")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"805ec0aabbcc.cfg") && names.contains(&"y000000000108.cfg"),
        "{names:?}"
    );
    let preview = c
        .get(api(&format!("/phones/{T54W_MAC}/files/805ec0aabbcc.cfg")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        yealink_value(&preview, "account.1.sip_server.1.transport_type"),
        Some("1")
    );
    assert_eq!(yealink_value(&preview, "features.dnd.enable"), Some("1"));
    let path = url.trim_start_matches(PUBLIC_URL);
    let (served, _) = eventually(Duration::from_secs(3), || async {
        let (st, body) = get(&srv.url(&format!("{path}805ec0aabbcc.cfg")), T54W_UA).await;
        (st == 200 && body == preview).then_some(body)
    })
    .await
    .expect("preview equals what the phone gets");
    assert!(served.contains("Api-Pw-301"));

    let show: serde_json::Value = c
        .get(api("/phones/80-5E-C0-AA-BB-CC"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["lines"][0]["user"], "301");
    assert_eq!(
        c.delete(api("/sites/acme"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(
        c.delete(api("/sites/acme?force=true"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(api("/phones/805ec0aabbcc"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn settings_file_env_and_flags_in_that_order() {
    let env = Env::bare();
    std::fs::write(
        env.data_dir().join("phoneprov.toml"),
        "public_url = \"http://from-file.example:8080\"\n",
    )
    .unwrap();
    let v = env.json(&["site", "add", "s1", "--sip-server", "pbx"]);
    assert!(
        v["provisioning_url"]
            .as_str()
            .unwrap()
            .starts_with("http://from-file.example:8080/p/"),
        "{v}"
    );
    let v = env.json(&["--public-url", "https://flag.example", "site", "show", "s1"]);
    assert!(
        v["provisioning_url"]
            .as_str()
            .unwrap()
            .starts_with("https://flag.example/p/"),
        "{v}"
    );
    let o = std::process::Command::new(bin())
        .envs(env.db_env())
        .env("PHONEPROV_DATA_DIR", env.data_dir())
        .env("PHONEPROV_PUBLIC_URL", "http://from-env.example")
        .args(["--json", "site", "show", "s1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["provisioning_url"]
            .as_str()
            .unwrap()
            .starts_with("http://from-env.example/p/"),
        "{v}"
    );
    // A broken settings file is named, and refused.
    std::fs::write(
        env.data_dir().join("phoneprov.toml"),
        "public_url = \"x\"\nbogus = 1\n",
    )
    .unwrap();
    let err = env.refused(&["site", "list"]);
    assert!(
        err.contains("phoneprov.toml") && err.contains("bogus"),
        "{err}"
    );
    std::fs::write(
        env.data_dir().join("phoneprov.toml"),
        "public_url = \"ftp://x\"\n",
    )
    .unwrap();
    let err = env.refused(&["site", "list"]);
    assert!(err.contains("must start with http:// or https://"), "{err}");
}

/// `-` reads a secret from standard input, for every secret flag (issue: `line set --password -`
/// stored a literal `-`).
#[test]
fn secrets_from_standard_input() {
    use std::io::Write;
    let env = Env::new();
    env.seed();
    let piped = |args: &[&str], input: &str| {
        let mut c = std::process::Command::new(bin())
            .envs(env.db_env())
            .env("PHONEPROV_DATA_DIR", env.data_dir())
            .env("PHONEPROV_PUBLIC_URL", PUBLIC_URL)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    piped(
        &[
            "line",
            "set",
            T54W_MAC,
            "1",
            "--user",
            "201",
            "--password",
            "-",
        ],
        "From-Stdin-77\n",
    );
    let cfg = env.ok(&["render", T54W_MAC, &format!("{T54W_MAC}.cfg")]);
    assert_eq!(
        yealink_value(&cfg, "account.1.password"),
        Some("From-Stdin-77")
    );
    piped(
        &[
            "site",
            "update",
            "valleywide",
            "--auth-user",
            "prov-x",
            "--auth-password",
            "-",
        ],
        "Prov-From-Stdin-9\r\n",
    );
    let common = env.ok(&["render", T54W_MAC, "y000000000096.cfg"]);
    assert_eq!(
        yealink_value(&common, "static.auto_provision.server.password"),
        Some("Prov-From-Stdin-9")
    );
}

/// An error says its cause once, with a hint where one helps (issue: "Address already in use
/// (os error 98): Address already in use (os error 98)").
#[test]
fn errors_say_their_cause_once() {
    let env = Env::new();
    env.seed();
    let srv = env.start();
    let o = env.run(&["serve", "--http", &srv.addr.to_string(), "--tftp", "off"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
    assert!(err.contains("--http"), "{err}");
    drop(srv);
    std::fs::write(
        env.data_dir().join("firmware-policy.toml"),
        "[[deny]]\nvendor = \"yealink\"\nversions = [\"9x\"]\n",
    )
    .unwrap();
    let err = env.refused(&["policy", "show"]);
    assert_eq!(err.matches("is not a version").count(), 1, "{err}");
}

/// A typo in --data-dir, or running from another folder, does not silently read an empty
/// data dir: only commands that create data make one, and they say so.
#[test]
fn only_commands_that_create_data_make_a_data_dir() {
    let env = Env::new();
    let typo = env.data_dir().join("typo");
    let t = typo.to_str().unwrap();
    for args in [
        vec!["site", "list"],
        vec!["phone", "show", T54W_MAC],
        vec!["export"],
        vec!["policy", "show"],
    ] {
        let mut a = vec!["--data-dir", t];
        a.extend(args.iter().copied());
        let err = env.refused(&a);
        assert!(
            err.contains(&format!("no data dir at {t}")),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} made {t}");
    }
    let o = env.run(&[
        "--data-dir",
        t,
        "site",
        "add",
        "x",
        "--sip-server",
        "pbx.example.com",
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("created the data dir {t}")));
    let o = env.run(&["--data-dir", t, "site", "list"]);
    assert!(o.status.success());
}

/// A loopback provisioning URL is shown with a warning (CLI and API JSON), until public_url is set.
#[test]
fn a_loopback_provisioning_url_is_flagged() {
    let env = Env::bare();
    let out = env.ok(&["site", "add", "x", "--sip-server", "pbx.example.com"]);
    assert!(
        out.contains("WARNING:") && out.contains("public_url"),
        "{out}"
    );
    assert!(
        env.json(&["site", "show", "x"])["warnings"][0]
            .as_str()
            .unwrap()
            .contains("loopback")
    );
    std::fs::write(
        env.data_dir().join("phoneprov.toml"),
        "public_url = \"http://prov.example.net:8080\"\n",
    )
    .unwrap();
    let out = env.ok(&["site", "show", "x"]);
    assert!(!out.contains("WARNING"), "{out}");
}

/// A running server says so when its settings file changes: the public URL and listen
/// addresses take a restart.
#[tokio::test]
async fn a_changed_settings_file_is_announced() {
    let env = Env::new();
    env.seed();
    let srv = env.start();
    std::fs::write(
        env.data_dir().join("phoneprov.toml"),
        "public_url = \"http://prov.elsewhere.example\"\n",
    )
    .unwrap();
    eventually(std::time::Duration::from_secs(6), || async {
        srv.log()
            .contains("the settings file changed: `systemctl reload phoneprov` (SIGHUP) applies public URLs")
            .then_some(())
    })
    .await
    .expect("announced in the log");
}

/// Every argument of every command says what it is for (`--help` is the manual).
#[test]
fn every_argument_has_help() {
    use clap::CommandFactory;
    fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in c.get_arguments() {
            let id = a.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if a.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for s in c.get_subcommands() {
            walk(s, &format!("{path} {}", s.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(
        &phoneprov::config::Cli::command(),
        "phoneprov",
        &mut missing,
    );
    assert!(
        missing.is_empty(),
        "arguments without help:\n{}",
        missing.join("\n")
    );
}

/// `phone update`: label, serial number, model, and site with --move.
#[test]
fn phone_update_changes_what_a_tech_gets_wrong() {
    let env = Env::new();
    env.seed();
    env.ok(&["site", "add", "annex", "--sip-server", "pbx.example.com"]);
    env.ok(&[
        "phone",
        "update",
        T54W_MAC,
        "--label",
        "Lobby",
        "--model",
        "Yealink T57W",
    ]);
    let v = env.json(&["phone", "show", T54W_MAC]);
    assert_eq!(
        (v["label"].as_str(), v["model"].as_str()),
        (Some("Lobby"), Some("T57W"))
    );
    assert!(
        env.ok(&["render", T54W_MAC]).contains("y000000000097.cfg"),
        "renders as a T57W"
    );
    // Lines the new model cannot hold are named, nothing changes.
    let err = env.refused(&["phone", "update", T54W_MAC, "--model", "T30"]);
    assert!(err.contains("line 2") && err.contains("T30"), "{err}");
    assert_eq!(env.json(&["phone", "show", T54W_MAC])["model"], "T57W");
    let err = env.refused(&["phone", "update", T54W_MAC, "--site", "annex"]);
    assert!(err.contains("--move"), "{err}");
    env.ok(&["phone", "update", T54W_MAC, "--site", "annex", "--move"]);
    assert_eq!(env.json(&["phone", "show", T54W_MAC])["site"], "annex");
}
