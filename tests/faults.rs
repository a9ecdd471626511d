//! Resource faults: a full disk under the data dir (a small tmpfs of our own) during an import,
//! a PBX sync and a firmware add, and while serving; the database held by another writer; and
//! `kill -9` of `serve` in the middle of a storm. Each fails with a clear message, changes
//! nothing, keeps phones served, and recovers when the fault goes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pbx::{self, Fake, Flavor, Ph, State};
use common::*;

/// A tmpfs of `mb` MiB mounted on a fresh directory, unmounted on drop. Needs root (as CI
/// and this suite's `scripts/test` run); fails loudly otherwise.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(mb: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            o.status.success(),
            "cannot mount a tmpfs for the disk-full test (run the suite as root, as CI does): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left with a file of zeros; returns its path.
    fn fill(&self) -> PathBuf {
        let p = self.path().join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        loop {
            if f.write_all(&chunk).is_err() || f.flush().is_err() {
                break;
            }
        }
        // Whatever partial chunk fit is there too; the disk is full now.
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn phones_csv(dir: &Path, n: usize, prefix: &str) -> PathBuf {
    let mut csv = String::from("mac,model,site,label,line1_user,line1_password\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{prefix}{i:06x},T54W,valleywide,Desk number {i} of the bulk import,{},pw-{i:06}-secret\n",
            1000 + i
        ));
    }
    let p = dir.join(format!("{prefix}.csv"));
    std::fs::write(&p, csv).unwrap();
    p
}

fn phone_count(env: &Env) -> usize {
    env.json(&["phone", "list"]).as_array().unwrap().len()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_changes_nothing_keeps_serving_and_recovers() {
    // Room for the database, the rendered files of a few thousand phones and one image.
    let disk = SmallDisk::new(16);
    let env = Env::in_dir(disk.path());
    let key = env.seed();
    let outside = tempfile::tempdir().unwrap();
    // A PBX with many phones, so its sync needs room.
    let fake = Fake::start(State::new(Flavor::V2v45));
    fake.with(|s| {
        s.phones = (0..1500)
            .map(|i| Ph {
                mac: format!("805ec7{i:06x}"),
                model: "Yealink SIP-T54W".into(),
                lines: vec![(
                    format!("{}", 3000 + i),
                    format!("pw-{i:06}-pbx"),
                    format!("Desk {i}"),
                )],
            })
            .collect()
    });
    env.ok(&[
        "pbx",
        "add",
        "main-pbx",
        "--kind",
        "netsapiens",
        "--base-url",
        &fake.url(),
    ]);
    env.set_var("PHONEPROV_PBX_MAIN_PBX_API_KEY", pbx::API_KEY);
    let srv = env.start();
    let url = srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"));
    let (st, before) = get(&url, T54W_UA).await;
    assert_eq!(st, 200);
    let phones_before = phone_count(&env);
    let changes = || {
        env.json(&["audit", "--limit", "1"]); // reads work on a full disk
    };

    let filler = disk.fill();
    changes();

    // An import: refused whole, with the reason.
    let csv = phones_csv(outside.path(), 3000, "805ec6");
    let o = env.run(&["import", csv.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("disk holding the database is full")
            && stderr(&o).contains("nothing was changed"),
        "{}",
        stderr(&o)
    );
    // A PBX sync: the same.
    let o = env.run(&[
        "pbx",
        "sync",
        "main-pbx",
        "--domain",
        pbx::DOMAIN,
        "--site",
        "valleywide",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("disk holding the database is full"),
        "{}",
        stderr(&o)
    );
    // A firmware add: no space for the image; no file and no row left behind.
    let rom = outside
        .path()
        .join("T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.70(20211130).rom");
    std::fs::write(&rom, vec![7u8; 2 * 1024 * 1024]).unwrap();
    let o = env.run(&["firmware", "add", rom.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No space left on device")
            || stderr(&o).contains("disk holding the database is full"),
        "{}",
        stderr(&o)
    );
    let fw_dir = env.data_dir().join("firmware");
    let left: Vec<_> = std::fs::read_dir(&fw_dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "half-written image files: {left:?}");
    assert_eq!(env.json(&["firmware", "list"]).as_array().unwrap().len(), 0);
    assert_eq!(phone_count(&env), phones_before, "nothing was imported");

    // Phones are served from memory all along, and fetch after fetch is recorded for later.
    for _ in 0..20 {
        let (st, body) = get(&url, T54W_UA).await;
        assert_eq!((st, &body), (200, &before));
    }

    // Space returns: the retried commands work, the server writes what it kept.
    std::fs::remove_file(&filler).unwrap();
    let o = env.run(&["import", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(phone_count(&env), phones_before + 3000);
    env.ok(&[
        "pbx",
        "sync",
        "main-pbx",
        "--domain",
        pbx::DOMAIN,
        "--site",
        "valleywide",
    ]);
    env.ok(&["firmware", "add", rom.to_str().unwrap()]);
    let (seen, _) = eventually(Duration::from_secs(10), || async {
        let v = env.json(&["phone", "show", T54W_MAC]);
        (!v["last_seen"].is_null()).then_some(v)
    })
    .await
    .unwrap_or_else(|| {
        let df = std::process::Command::new("df")
            .arg(disk.path())
            .output()
            .unwrap();
        panic!(
            "last-seen not written once there is room:\n{}\n{}",
            String::from_utf8_lossy(&df.stdout),
            srv.log()
        )
    });
    assert_eq!(seen["last_seen"]["transport"], "http");
    let (audit, _) = eventually(Duration::from_secs(10), || async {
        let a = env.json(&["audit", "--mac", T54W_MAC]);
        a.as_array().is_some_and(|a| !a.is_empty()).then_some(a)
    })
    .await
    .expect("the fetch audit written once there is room");
    assert!(audit[0]["count"].as_i64().unwrap_or(0) >= 1, "{audit}");
    // A new phone from the import is served by the same running server.
    let (st, _) = get(
        &srv.url(&format!("/p/{key}/805ec6000001.cfg")),
        "Yealink SIP-T54W 96.86.0.45 80:5e:c6:00:00:01",
    )
    .await;
    assert_eq!(st, 200);
}

#[test]
fn a_database_held_by_another_writer_makes_commands_wait_then_say_so() {
    let env = Env::new();
    env.seed();
    // Another process opens a write transaction and holds it: on SQLite the file's write lock;
    // on PostgreSQL the advisory lock every phoneprov writer takes (store::WRITE_LOCK).
    let mut holder = match &env.postgres {
        None => Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys,time\n\
                 c=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
                 c.execute('BEGIN IMMEDIATE')\n\
                 print('held',flush=True)\n\
                 time.sleep(float(sys.argv[2]))\n\
                 c.execute('ROLLBACK')",
            ])
            .arg(env.data_dir().join("phoneprov.sqlite"))
            .arg("30")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3"),
        Some(url) => Command::new("psql")
            .args(["-X", "-q", "-t", "-A", "-d", url])
            .args(["-c", "BEGIN"])
            .args([
                "-c",
                "SELECT 'held' FROM (SELECT pg_advisory_xact_lock(8099846449764790902)) AS l",
            ])
            .args(["-c", "SELECT pg_sleep(30)"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("psql"),
    };
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held");
    // Reads go on.
    let t = Instant::now();
    env.ok(&["site", "list"]);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "a read waited {:?}",
        t.elapsed()
    );
    // A write waits its bounded time, then says what holds it.
    let t = Instant::now();
    let o = env.run(&["site", "add", "other", "--sip-server", "pbx.example.com"]);
    let waited = t.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    if let Some(url) = &env.postgres {
        // PostgreSQL keeps a killed client's session (and its lock) until it next writes to
        // it: end it, as an operator would (pg_terminate_backend).
        let o = Command::new("psql")
            .args(["-X", "-q", "-d", url, "-c"])
            .arg("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()")
            .output()
            .expect("psql");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("locked by another writer (waited 10 s)"),
        "{}",
        stderr(&o)
    );
    assert!(
        (Duration::from_secs(9)..Duration::from_secs(25)).contains(&waited),
        "waited {waited:?}"
    );
    // Once the other writer is gone, the same command works.
    env.ok(&["site", "add", "other", "--sip-server", "pbx.example.com"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_storm_restarts_clean_and_loses_at_most_the_last_second() {
    let env = Env::new();
    env.ok(&["site", "add", "acme", "--sip-server", "pbx.example.com"]);
    let csv = tempfile::tempdir().unwrap();
    let mut rows = String::from("mac,model,site,line1_user,line1_password\n");
    let macs: Vec<String> = (0..300).map(|i| format!("805ec8{i:06x}")).collect();
    for (i, m) in macs.iter().enumerate() {
        rows.push_str(&format!("{m},T54W,acme,{},pw-{i:04}-secret\n", 100 + i));
    }
    std::fs::write(csv.path().join("p.csv"), rows).unwrap();
    env.ok(&["import", csv.path().join("p.csv").to_str().unwrap()]);
    let key = env.site_key("acme");
    let mut srv = env.start();
    let base = srv.url(&format!("/p/{key}"));

    // The first half boots, then time for a flush; then a storm, killed in the middle.
    let c = client();
    for m in &macs[..150] {
        let r = c
            .get(format!("{base}/{m}.cfg"))
            .header("User-Agent", format!("Yealink SIP-T54W 96.86.0.45 {m}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let storm = {
        let (c, base, rest) = (c.clone(), base.clone(), macs[150..].to_vec());
        tokio::spawn(async move {
            for m in rest.iter().cycle().take(5000) {
                let _ = c
                    .get(format!("{base}/{m}.cfg"))
                    .header("User-Agent", format!("Yealink SIP-T54W 96.86.0.45 {m}"))
                    .send()
                    .await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    srv.child.kill().unwrap(); // SIGKILL
    let _ = srv.child.wait();
    storm.abort();

    let srv = env.start();
    assert!(
        srv.log().contains("database integrity check passed"),
        "{}",
        srv.log()
    );
    // Everything flushed before the last second survived.
    let listed = env.json(&["phone", "list", "--site", "acme"]);
    let seen: std::collections::HashSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["last_seen"].is_null())
        .map(|p| p["mac"].as_str().unwrap().to_string())
        .collect();
    for m in &macs[..150] {
        assert!(
            seen.contains(m),
            "{m}'s last-seen from 2.5 s before the kill was lost"
        );
    }
    // And it serves.
    let (st, _) = get(
        &srv.url(&format!("/p/{key}/{}.cfg", macs[0])),
        &format!("Yealink SIP-T54W 96.86.0.45 {}", macs[0]),
    )
    .await;
    assert_eq!(st, 200);
}
