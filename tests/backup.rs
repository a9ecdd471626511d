//! `phoneprov backup` during a boot storm and `phoneprov restore` into an empty dir: the same
//! rows, the same images, the same credentials files with their modes, and the same bytes for
//! every phone; a non-empty target and a damaged archive are refused, leaving nothing behind.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_during_a_storm_restores_to_the_same_install() {
    let env = Env::new();
    let key = env.seed();
    let _token = env.admin_token();
    let work = tempfile::tempdir().unwrap();
    let mut csv = String::from("mac,model,site,line1_user,line1_password\n");
    let macs: Vec<String> = (0..200).map(|i| format!("805ec9{i:06x}")).collect();
    for (i, m) in macs.iter().enumerate() {
        csv.push_str(&format!(
            "{m},T54W,valleywide,{},pw-{i:04}-secret\n",
            300 + i
        ));
    }
    std::fs::write(work.path().join("p.csv"), csv).unwrap();
    env.ok(&["import", work.path().join("p.csv").to_str().unwrap()]);
    let rom = work
        .path()
        .join("T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.70(20211130).rom");
    std::fs::write(&rom, common::images::blob(300_000, 9)).unwrap();
    env.ok(&["firmware", "add", rom.to_str().unwrap()]);
    env.ok(&["firmware", "assign", "96.86.0.70", "--site", "valleywide"]);
    // HTTPS on: the server makes its own certificate and key in the data dir.
    let srv = env.start_with(&["--https", "127.0.0.1:0"]);
    let base = srv.url(&format!("/p/{key}"));

    // A storm runs while the backup is taken.
    let storm = {
        let (c, base, macs) = (client(), base.clone(), macs.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            for m in macs.iter().cycle().take(20_000) {
                let r = c
                    .get(format!("{base}/{m}.cfg"))
                    .header("User-Agent", format!("Yealink SIP-T54W 96.86.0.45 {m}"))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 200) {
                    n += 1;
                }
            }
            n
        })
    };
    // Long enough for the first audit and last-seen rows to be written (every second).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let archive = work.path().join("install.tar");
    let out = env.ok(&["backup", archive.to_str().unwrap()]);
    assert!(out.contains("keep it private"), "{out}");
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600,
        "the archive holds secrets"
    );
    storm.abort();

    // Restore into an empty dir.
    let restored = Env::new();
    let o = restored.run(&["restore", archive.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_slice(&restored.run(&["--json", "site", "list"]).stdout).unwrap();
    assert_eq!(m.as_array().unwrap().len(), 1);
    assert_eq!(
        restored.json(&["phone", "list"]).as_array().unwrap().len(),
        env.json(&["phone", "list"]).as_array().unwrap().len()
    );
    let fw = |e: &Env| {
        e.json(&["firmware", "list"])
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["sha256"].as_str().unwrap().to_string(),
                    i["assigned"].as_u64(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(fw(&restored), fw(&env));
    // Credentials files keep their bytes and modes.
    for f in ["admin-tokens", "tls/cert.pem", "tls/key.pem"] {
        let a = env.data_dir().join(f);
        let b = restored.data_dir().join(f);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{f}"
        );
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode(),
            std::fs::metadata(&b).unwrap().permissions().mode(),
            "{f}'s mode"
        );
    }
    // The audit made before the backup is there.
    assert!(
        !restored
            .json(&["audit", "--limit", "5"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Every phone gets the same bytes from a server on the restored install.
    let srv2 = restored.start();
    let base2 = srv2.url(&format!("/p/{key}"));
    let c = client();
    for m in macs.iter().step_by(7).chain([T54W_MAC.to_string()].iter()) {
        let ua = format!("Yealink SIP-T54W 96.86.0.45 {m}");
        let a = c
            .get(format!("{base}/{m}.cfg"))
            .header("User-Agent", &ua)
            .send()
            .await
            .unwrap();
        let b = c
            .get(format!("{base2}/{m}.cfg"))
            .header("User-Agent", &ua)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (a.status().as_u16(), b.status().as_u16()),
            (200, 200),
            "{m}"
        );
        assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap(), "{m}");
    }
    let img = "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.70(20211130).rom";
    let a = c
        .get(format!("{base}/{img}"))
        .header("User-Agent", T54W_UA)
        .send()
        .await
        .unwrap();
    let b = c
        .get(format!("{base2}/{img}"))
        .header("User-Agent", T54W_UA)
        .send()
        .await
        .unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert_eq!(
        a.bytes().await.unwrap(),
        b.bytes().await.unwrap(),
        "the image"
    );

    // A second restore into the now non-empty dir is refused and changes nothing.
    let o = restored.run(&["restore", archive.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not empty"));

    // A damaged archive: refused, nothing left in the target.
    let mut bytes = std::fs::read(&archive).unwrap();
    let needle = common::images::blob(300_000, 9)[1000..1016].to_vec();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("the image bytes in the archive");
    bytes[at] ^= 0xff;
    let damaged = work.path().join("damaged.tar");
    std::fs::write(&damaged, bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(bin())
        .args(["--data-dir"])
        .arg(target.path())
        .args(["restore"])
        .arg(&damaged)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("damaged"));
    assert_eq!(
        std::fs::read_dir(target.path()).unwrap().count(),
        0,
        "nothing left"
    );
    // Into a database configured elsewhere (PostgreSQL, or a file outside the data dir) that
    // already holds rows: refused before anything is unpacked, and that database untouched.
    let other = Env::new();
    other.seed();
    let before = other.json(&["phone", "list"]);
    let o = std::process::Command::new(bin())
        .args(["--data-dir"])
        .arg(target.path())
        .args(["--database-url", &other.db_url(), "restore"])
        .arg(&archive)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
    assert_eq!(other.json(&["phone", "list"]), before);
}
