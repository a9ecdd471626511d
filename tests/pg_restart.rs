//! PostgreSQL going away under running replicas (its own test binary: it stops and starts the
//! suite's one throwaway server, which no other test may be using meanwhile). Phones keep
//! getting their last rendered files from both replicas while the database is down, a replica
//! started meanwhile waits and says so, what the CLI committed before is all there after, and
//! changes are followed again once the database is back. SQLite has no server to lose: on the
//! SQLite run this test says so and checks nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;

fn cluster(verb: &str) {
    let dir = std::env::var("PHONEPROV_TEST_POSTGRES_DIR").expect(
        "PHONEPROV_TEST_POSTGRES_DIR: the throwaway server's directory (scripts/test sets it)",
    );
    let o =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-throwaway"))
            .args([verb, &dir])
            .output()
            .expect("pg-throwaway");
    assert!(
        o.status.success(),
        "pg-throwaway {verb}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_outlast_a_database_restart() {
    if !on_postgres() {
        eprintln!("SQLite run: no database server to restart (see the PostgreSQL run)");
        return;
    }
    let a = Env::new();
    let key = a.seed();
    a.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "lang.gui",
        "Deutsch",
    ]);
    let b = Env::replica_of(&a);
    let (ra, rb) = (a.start(), b.start());
    let path = format!("/p/{key}/{T54W_MAC}.cfg");
    let urls = [ra.url(&path), rb.url(&path)];
    let (_, before) = get(&urls[0], T54W_UA).await;
    assert!(before.contains("Deutsch"), "{before}");

    // A storm on both replicas for the whole test: every answer must be the last good file.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, wrong) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let storm = {
        let (stop, served, wrong, urls) =
            (stop.clone(), served.clone(), wrong.clone(), urls.clone());
        tokio::spawn(async move {
            let c = client();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = c
                    .get(&urls[i % 2])
                    .header("User-Agent", T54W_UA)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let body = r.text().await.unwrap_or_default();
                        if body.contains("lang.gui") {
                            served.fetch_add(1, Ordering::Relaxed);
                        } else {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster("pause");
    let during = served.load(Ordering::Relaxed);
    // A replica started while the database is down waits, and says so.
    let c = Env::replica_of(&a);
    let (srv_c, waited) = std::thread::scope(|s| {
        let h = s.spawn(|| c.start());
        let log = c.data_dir().join("server.log");
        let said = (0..40).any(|_| {
            std::thread::sleep(Duration::from_millis(250));
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("waiting for the database to accept connections")
        });
        cluster("resume");
        (h.join().expect("replica C starts"), said)
    });
    assert!(
        waited,
        "{}",
        std::fs::read_to_string(c.data_dir().join("server.log")).unwrap_or_default()
    );
    assert!(
        served.load(Ordering::Relaxed) > during,
        "phones were served while the database was down"
    );

    // What the CLI committed before the restart is there; new changes are followed by all.
    let (_, c_before) = get(&srv_c.url(&path), T54W_UA).await;
    assert!(c_before.contains("Deutsch"), "{c_before}");
    a.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "lang.gui",
        "Italian",
    ]);
    for url in urls.iter().chain([&srv_c.url(&path)]) {
        let seen = eventually(Duration::from_secs(15), || async {
            let (st, body) = get(url, T54W_UA).await;
            (st == 200 && body.contains("Italian")).then_some(())
        })
        .await;
        assert!(seen.is_some(), "{url} follows changes after the restart");
    }
    stop.store(true, Ordering::Relaxed);
    storm.await.unwrap();
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "answers other than the last good file ({} good)",
        served.load(Ordering::Relaxed)
    );
    // Replica A listened at start and again once the database was back. Polling follows the
    // log meanwhile, so the changes above can arrive before the listener's back-off ends:
    // wait for the second line rather than expect it already.
    eventually(Duration::from_secs(15), || async {
        (ra.log()
            .matches("listening for change notifications")
            .count()
            >= 2)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("replica A never listened again:\n{}", ra.log()));
}
