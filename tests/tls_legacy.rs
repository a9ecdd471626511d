//! TLS to a server without RFC 5746 secure renegotiation, as some of Yealink's cloud hosts
//! were seen to be (domain.md §5): OpenSSL 3 refuses such a server ("unsafe legacy
//! renegotiation disabled"); rustls — which phoneprov's outbound client uses — sends the
//! renegotiation SCSV but does not require the server's `renegotiation_info`, and never
//! renegotiates (rustls 0.23 `client/hs.rs`, `common_state.rs`). A real TLS 1.2 server that omits
//! the extension (GnuTLS `gnutls-serv` with `%DISABLE_SAFE_RENEGOTIATION`) shows both.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

fn openssl(args: &[&str], dir: &std::path::Path) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test]
async fn rustls_connects_where_openssl_3_refuses_legacy_renegotiation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A CA and a leaf for localhost.
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
        d,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
        d,
    );
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
        d,
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("gnutls-serv")
        .args([
            "--http",
            "--priority",
            "NORMAL:-VERS-TLS1.3:%DISABLE_SAFE_RENEGOTIATION",
            "--x509certfile",
            "leaf.pem",
            "--x509keyfile",
            "leaf.key",
            "-p",
            &port.to_string(),
        ])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnutls-serv (gnutls-bin, installed by scripts/test)");
    std::thread::sleep(Duration::from_millis(700));

    // The server is the legacy kind: OpenSSL 3 refuses it.
    let o = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_2",
            "-CAfile",
            "ca.pem",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("unsafe legacy renegotiation disabled"),
        "{said}"
    );

    // rustls, through reqwest as phoneprov's YMCS, RPS and PBX clients use it, connects.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(d.join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{port}/"))
        .send()
        .await;
    let _ = server.kill();
    let _ = server.wait();
    let r = r.expect("a TLS 1.2 handshake without renegotiation_info succeeds");
    assert_eq!(r.status(), 200);
}
