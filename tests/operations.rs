//! Running under a service manager: readiness and reload told to systemd over `NOTIFY_SOCKET`,
//! SIGHUP applying a changed public URL without a restart, and JSON log lines.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::*;

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_hears_ready_and_sighup_applies_a_new_public_url() {
    let env = Env::bare();
    let settings = env.data_dir().join("phoneprov.toml");
    std::fs::write(&settings, "public_url = \"http://prov-a.example:8080\"\n").unwrap();
    let key = env.seed();
    let notify = env.data_dir().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    env.set_var("NOTIFY_SOCKET", notify.to_str().unwrap());
    let srv = env.start();
    assert_eq!(recv(&sock).trim(), "READY=1");

    // The common file names the provisioning server.
    let url = srv.url(&format!("/p/{key}/y000000000096.cfg"));
    let (st, body) = get(&url, T54W_UA).await;
    assert_eq!(st, 200);
    assert!(body.contains("http://prov-a.example:8080/p/"), "{body}");

    std::fs::write(&settings, "public_url = \"http://prov-b.example:8080\"\n").unwrap();
    let pid = srv.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let reloading = recv(&sock);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(recv(&sock).trim(), "READY=1");
    let (body, _) = eventually(Duration::from_secs(10), || async {
        let (_, b) = get(&url, T54W_UA).await;
        b.contains("http://prov-b.example:8080/p/").then_some(b)
    })
    .await
    .unwrap_or_else(|| panic!("not re-rendered after SIGHUP:\n{}", srv.log()));
    assert!(!body.contains("prov-a.example"), "{body}");
    // The line is written just after the new files are published, so a fetch can see them first.
    eventually(Duration::from_secs(5), || async {
        srv.log().contains("public URLs changed").then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no log line for the change:\n{}", srv.log()));
    // Still the same process: no restart.
    assert_eq!(srv.child.id().to_string(), pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_for_log_shippers() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start_with(&["--log-format", "json"]);
    let (st, _) = get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), T54W_UA).await;
    assert_eq!(st, 200);
    let log = eventually(Duration::from_secs(5), || async {
        let l = srv.log();
        l.contains("\"serving\"").then_some(l)
    })
    .await
    .unwrap_or_else(|| panic!("{}", srv.log()))
    .0;
    let mut lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["message"].is_string(), "{line}");
        lines += 1;
    }
    assert!(lines >= 2, "{log}");
    // Fields are fields, not text: the serving line carries the address.
    assert!(
        log.contains("\"public_url\":\"http://prov.test:8080\""),
        "{log}"
    );
}

#[test]
fn the_systemd_unit_verifies() {
    // The unit as shipped, pointed at this build (systemd-analyze checks the binary exists).
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/phoneprov.service"
    ))
    .unwrap();
    for want in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/phoneprov",
        "NoNewPrivileges=yes",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "User=phoneprov",
    ] {
        assert!(unit.contains(want), "the unit lacks {want}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phoneprov.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/phoneprov", bin())).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd, installed by scripts/test)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && said.trim().is_empty(), "{said}");
}
