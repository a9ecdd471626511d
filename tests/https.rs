//! HTTPS with a real client (curl, verifying the certificate): a generated certificate, an
//! operator's certificate, and a certificate replaced on disk while serving.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A certificate and key for `localhost`, written to `dir`.
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// The HTTPS port and fingerprint the server printed.
fn https_of(srv: &Server) -> (u16, String) {
    let out = srv.stdout();
    let line = out
        .lines()
        .find(|l| l.starts_with("phoneprov: https on https://"))
        .expect("https line");
    let addr = line
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_start_matches("https://");
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    let fp = line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    (port, fp)
}

/// curl, verifying against `ca`; the body, or None if the TLS check failed.
fn curl(ca: &Path, port: u16, path: &str) -> Option<String> {
    let o = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--cacert",
            ca.to_str().unwrap(),
            &format!("https://localhost:{port}{path}"),
        ])
        .output()
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).to_string())
}

#[test]
fn generated_certificate() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start_with(&["--https", "127.0.0.1:0"]);
    let (port, fp) = https_of(&srv);
    assert_eq!(fp.len(), 95, "SHA-256 as colon hex: {fp}");
    let cert = env.data_dir().join("tls/cert.pem");
    let body = curl(&cert, port, &format!("/p/{key}/{T54W_MAC}.cfg")).expect("verified fetch");
    assert_eq!(yealink_value(&body, "account.1.user_name"), Some("201"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.data_dir().join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The same misses as over HTTP.
    let o = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            cert.to_str().unwrap(),
            &format!("https://localhost:{port}/p/{key}/805ec0000000.cfg"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
    // Generated once: a restart keeps the same certificate.
    drop(srv);
    let srv = env.start_with(&["--https", "127.0.0.1:0"]);
    assert_eq!(https_of(&srv).1, fp);
}

#[test]
fn supplied_certificate_reloaded_without_restart() {
    let env = Env::new();
    let key = env.seed();
    let certs = tempfile::tempdir().unwrap();
    let (a_cert, a_key) = make_cert(certs.path(), "a");
    let (b_cert, b_key) = make_cert(certs.path(), "b");
    let live_cert = certs.path().join("live.pem");
    let live_key = certs.path().join("live.key");
    std::fs::copy(&a_cert, &live_cert).unwrap();
    std::fs::copy(&a_key, &live_key).unwrap();
    let srv = env.start_with(&[
        "--https",
        "127.0.0.1:0",
        "--tls-cert",
        live_cert.to_str().unwrap(),
        "--tls-key",
        live_key.to_str().unwrap(),
    ]);
    let (port, _) = https_of(&srv);
    let path = format!("/p/{key}/{T54W_MAC}.boot");
    assert!(
        curl(&a_cert, port, &path).is_some(),
        "served with the operator's certificate"
    );
    assert!(curl(&b_cert, port, &path).is_none(), "not with another");
    // Replace the files: the server switches without a restart.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::copy(&b_key, &live_key).unwrap();
    std::fs::copy(&b_cert, &live_cert).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while curl(&b_cert, port, &path).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "certificate not reloaded:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        curl(&a_cert, port, &path).is_none(),
        "the old certificate is gone"
    );
    // A broken pair is refused and the running certificate kept.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&live_cert, "not a certificate").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(curl(&b_cert, port, &path).is_some(), "kept serving");
    assert!(
        srv.log().contains("certificate not reloaded"),
        "{}",
        srv.log()
    );
    // Half a pair on the command line is refused.
    let o = env.run(&[
        "serve",
        "--https",
        "127.0.0.1:0",
        "--tls-cert",
        a_cert.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
}
