//! `phoneprov doctor`: each check a line — OK, FAIL with its fix, or SKIP — and exit 1 when
//! anything needs fixing; reads only.

mod common;

use common::ymcs::{Fake, SECRET, State};
use common::*;

fn doctor(env: &Env, args: &[&str]) -> (i32, String, serde_json::Value) {
    let mut a = vec!["doctor"];
    a.extend_from_slice(args);
    let o = env.run(&a);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut j = vec!["--json", "doctor"];
    j.extend_from_slice(args);
    let o2 = env.run(&j);
    let v: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&o2.stdout),
            String::from_utf8_lossy(&o2.stderr)
        )
    });
    (o.status.code().unwrap_or(-1), text, v)
}

fn status<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_else(|| panic!("no check {name}: {v}"))
}

#[test]
fn doctor_says_what_works_and_what_to_fix() {
    let env = Env::new();
    env.seed();
    let srv = env.start();
    env.set_var("PHONEPROV_PUBLIC_URL", &srv.url(""));

    let (code, text, v) = doctor(&env, &["--tftp", &srv.tftp]);
    // Everything answers, but a loopback public URL is no use to phones: that is the one fix.
    assert_eq!(code, 1, "{text}");
    assert_eq!(status(&v, "database"), "ok", "{text}");
    assert_eq!(status(&v, "public URL"), "fail");
    assert!(
        text.contains("loopback address: phones cannot reach it"),
        "{text}"
    );
    assert!(text.contains("fix: set public_url"), "{text}");
    assert_eq!(status(&v, "TFTP"), "ok", "{text}");
    assert_eq!(status(&v, "firmware policy"), "ok");
    assert_eq!(status(&v, "YMCS"), "skip");
    assert_eq!(status(&v, "RPS"), "skip");
    assert_eq!(status(&v, "PBX"), "skip");
    assert_eq!(
        v.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .count(),
        1,
        "{text}"
    );

    // YMCS configured against the fake: the key is tried with a read.
    let fake = Fake::start(State {
        sites: vec![("s-1".into(), "valleywide".into())],
        ..Default::default()
    });
    fake.connect(&env);
    let (_, text, v) = doctor(&env, &["--tftp", &srv.tftp]);
    assert_eq!(status(&v, "YMCS"), "ok", "{text}");
    env.set_var("PHONEPROV_YMCS_KEY_SECRET", "wrong-secret");
    let (_, text, v) = doctor(&env, &["--tftp", &srv.tftp]);
    assert_eq!(status(&v, "YMCS"), "fail", "{text}");
    assert!(
        text.contains("invalid access key") && !text.contains("wrong-secret"),
        "{text}"
    );
    // Clock skew shows as YMCS's own refusal, named.
    env.set_var("PHONEPROV_YMCS_KEY_SECRET", SECRET);
    fake.with(|s| s.skew_ms = 10 * 60 * 1000);
    let (_, text, _) = doctor(&env, &["--tftp", &srv.tftp]);
    assert!(text.contains("clock skew"), "{text}");
    fake.with(|s| s.skew_ms = 0);

    // A broken policy file is named.
    std::fs::write(env.data_dir().join("firmware-policy.toml"), "[[deny]\n").unwrap();
    let (_, text, v) = doctor(&env, &["--tftp", &srv.tftp]);
    assert_eq!(status(&v, "firmware policy"), "fail", "{text}");
    std::fs::remove_file(env.data_dir().join("firmware-policy.toml")).unwrap();

    // With the server stopped: the URL and TFTP fail, each with what to do.
    let tftp = srv.tftp.clone();
    drop(srv);
    let (code, text, v) = doctor(&env, &["--tftp", &tftp]);
    assert_eq!(code, 1);
    assert_eq!(status(&v, "public URL"), "fail");
    assert_eq!(status(&v, "TFTP"), "fail");
    assert!(text.contains("fix: start `phoneprov serve`"), "{text}");
    // It wrote nothing.
    assert!(env.json(&["audit"]).as_array().unwrap().is_empty());
}

/// The certificate phones are given (served by the HTTPS URL, or the operator's file) and this
/// server's clock against YMCS's `Date`.
#[test]
fn doctor_checks_the_certificate_and_the_clock() {
    let env = Env::new();
    env.seed();
    let srv = env.start_with(&["--https", "127.0.0.1:0"]);
    let line = srv
        .stdout()
        .lines()
        .find(|l| l.starts_with("phoneprov: https on https://"))
        .expect("https line")
        .to_string();
    let port = line
        .trim_start_matches("phoneprov: https on https://")
        .split_whitespace()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    env.set_var("PHONEPROV_PUBLIC_URL", &srv.url(""));
    // The generated certificate names localhost: what the HTTPS URL presents is judged.
    env.set_var(
        "PHONEPROV_PUBLIC_HTTPS_URL",
        &format!("https://localhost:{port}"),
    );
    let (_, text, v) = doctor(&env, &["--tftp", "off"]);
    assert_eq!(status(&v, "certificate"), "ok", "{text}");
    assert!(
        text.contains("self-signed: phones must be told to trust it"),
        "{text}"
    );
    assert!(text.contains("days)"), "{text}");

    // An operator's certificate that runs out within two weeks, checked from its file.
    let plain = Env::new();
    plain.seed();
    let soon = chrono::Utc::now().date_naive() + chrono::Days::new(5);
    let before = chrono::Utc::now().date_naive() - chrono::Days::new(30);
    use chrono::Datelike;
    let mut params = rcgen::CertificateParams::new(vec!["prov.example.com".into()]).unwrap();
    params.not_before =
        rcgen::date_time_ymd(before.year(), before.month() as u8, before.day() as u8);
    params.not_after = rcgen::date_time_ymd(soon.year(), soon.month() as u8, soon.day() as u8);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let file = plain.data_dir().join("operator-cert.pem");
    std::fs::write(&file, cert.pem()).unwrap();
    let (code, text, v) = doctor(
        &plain,
        &["--tftp", "off", "--tls-cert", file.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert_eq!(status(&v, "certificate"), "fail", "{text}");
    assert!(
        text.contains("expires in 4 days") || text.contains("expires in 5 days"),
        "{text}"
    );
    assert!(text.contains("fix: renew it before then"), "{text}");
    // Without HTTPS at all there is nothing to check.
    let (_, text, v) = doctor(&plain, &["--tftp", "off"]);
    assert_eq!(status(&v, "certificate"), "skip", "{text}");

    // The clock: two minutes behind YMCS is still accepted by it, but named.
    let fake = Fake::start(State::default());
    for e in [&env, &plain] {
        fake.connect(e);
    }
    let (_, text, v) = doctor(&plain, &["--tftp", "off"]);
    assert_eq!(status(&v, "clock"), "ok", "{text}");
    assert!(text.contains("of YMCS's clock"), "{text}");
    fake.with(|s| s.skew_ms = 2 * 60 * 1000);
    let (_, text, v) = doctor(&plain, &["--tftp", "off"]);
    assert_eq!(status(&v, "YMCS"), "ok", "{text}");
    assert_eq!(status(&v, "clock"), "fail", "{text}");
    assert!(
        text.contains("clock is 120 s behind YMCS's")
            || text.contains("clock is 119 s behind YMCS's"),
        "{text}"
    );
    assert!(text.contains("fix: run NTP here"), "{text}");
    fake.with(|s| s.skew_ms = -3 * 60 * 1000);
    let (_, text, _) = doctor(&plain, &["--tftp", "off"]);
    assert!(text.contains("s ahead of YMCS's"), "{text}");
}
