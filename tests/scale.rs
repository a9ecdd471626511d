//! A node with many phones: rendered files survive a restart (served at once, only what
//! changed while the server was down rendered again), a phone asking before its files exist
//! waits for them instead of missing, and a change that touches every phone renders in the
//! background while phones keep getting their previous files.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const PHONES: usize = 4000;

fn mac(i: usize) -> String {
    format!("805ec1{i:06x}")
}

/// A site `bench` with `n` T54Ws, two lines each, imported from a CSV.
fn fleet(env: &Env, n: usize) -> String {
    env.ok(&["site", "add", "bench", "--sip-server", "pbx.example.com"]);
    let mut csv = String::from(
        "mac,model,site,label,line1_user,line1_password,line1_display_name,line2_user,line2_password\n",
    );
    for i in 0..n {
        csv.push_str(&format!(
            "{},T54W,bench,Desk {i},{},pw-{i:08}-secret,User {i},{},pw2-{i:08}\n",
            mac(i),
            10000 + i,
            900000 + i
        ));
    }
    let path = env.data_dir().join("fleet.csv");
    std::fs::write(&path, csv).unwrap();
    env.ok(&["import", path.to_str().unwrap()]);
    env.site_key("bench")
}

async fn cfg(s: &Server, key: &str, i: usize) -> (u16, String) {
    get(&s.url(&format!("/p/{key}/{}.cfg", mac(i))), T54W_UA).await
}

/// Waits until phone `i`'s file contains `text`.
async fn until_contains(s: &Server, key: &str, i: usize, text: &str) -> String {
    let (body, _) = eventually(Duration::from_secs(60), || async {
        let (st, body) = cfg(s, key, i).await;
        (st == 200 && body.contains(text)).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("phone {i} never got '{text}':\n{}", s.log()));
    body
}

fn override_template(env: &Env, marker: &str) {
    let shipped = include_str!("../templates/yealink/mac.cfg");
    let dir = env.data_dir().join("templates").join("yealink");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mac.cfg"), format!("{shipped}\n# {marker}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_serves_the_files_on_disk_at_once_and_renders_only_what_changed() {
    let env = Env::new();
    let key = fleet(&env, PHONES);
    let first = env.start();
    let before = until_contains(&first, &key, PHONES - 1, "User").await;
    drop(first); // killed, as by a crash or an upgrade

    // While it is down: one phone's line changes and a phone is added.
    env.ok(&[
        "line",
        "set",
        &mac(7),
        "1",
        "--user",
        "10007",
        "--password",
        "Changed-Secret-77",
        "--display-name",
        "Renamed While Down",
    ]);
    env.ok(&[
        "phone",
        "add",
        &mac(PHONES),
        "--model",
        "T54W",
        "--site",
        "bench",
    ]);

    let started = Instant::now();
    let second = env.start();
    let (st, body) = cfg(&second, &key, PHONES - 1).await;
    let took = started.elapsed();
    assert_eq!((st, &body), (200, &before), "the file on disk, as before");
    assert!(took < Duration::from_secs(3), "served {took:?} after start");
    let log = second.log();
    assert!(log.contains("serving the rendered files on disk"), "{log}");
    until_contains(&second, &key, 7, "Renamed While Down").await;
    let (st, _) = cfg(&second, &key, PHONES).await;
    assert_eq!(st, 200, "the phone added while down is served");
    assert!(
        !second.log().contains("rendered all sites"),
        "only the changed phones were rendered again:\n{}",
        second.log()
    );

    // Templates changed while down: the previous files are served at once, the new ones
    // follow from a background render.
    drop(second);
    override_template(&env, "changed while down");
    let started = Instant::now();
    let third = env.start();
    let (st, body) = cfg(&third, &key, 3).await;
    assert_eq!(st, 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        third.log().contains("re-rendered in the background"),
        "{}",
        third.log()
    );
    let after = until_contains(&third, &key, 3, "changed while down").await;
    assert!(!body.contains("changed while down") || body == after);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_asking_before_its_files_exist_waits_for_them() {
    let env = Env::new();
    let key = fleet(&env, PHONES);
    // Nothing has been rendered yet (a fresh install, an upgrade from a build without
    // rendered files, a restored backup): the server answers at once...
    let s = env.start();
    let (st, _) = get(&s.url("/healthz"), "curl").await;
    assert_eq!(st, 200);
    let rendered_before = s.log().contains("rendered all sites");
    // ...and the last phone, rendered last, gets its file rather than a miss.
    let (st, body) = cfg(&s, &key, PHONES - 1).await;
    assert_eq!(st, 200, "{}", s.log());
    assert!(body.contains(&format!("User {}", PHONES - 1)));
    assert!(
        !rendered_before,
        "inconclusive: rendering ended before the request was sent"
    );
    assert!(
        s.log().contains("a phone asking meanwhile waits"),
        "{}",
        s.log()
    );
    // An unknown phone is still a miss, and at once.
    let t = Instant::now();
    let (st, _) = cfg(&s, &key, PHONES + 5).await;
    assert_eq!(st, 404);
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_to_every_phone_renders_in_the_background_while_phones_keep_their_files() {
    let env = Env::new();
    let key = fleet(&env, PHONES);
    let s = env.start();
    until_contains(&s, &key, PHONES - 1, "User").await;
    let old: Vec<String> = {
        let mut v = Vec::new();
        for i in [0, PHONES / 2, PHONES - 1] {
            v.push(cfg(&s, &key, i).await.1);
        }
        v
    };
    let renders = || s.log().matches("rendered all sites").count();
    let before = renders();
    override_template(&env, "site-wide change");
    // Until the render ends, every phone gets a whole file, old or new; never a miss.
    let mut fetched = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while renders() == before || fetched == 0 {
        assert!(Instant::now() < deadline, "{}", s.log());
        for (n, i) in [0, PHONES / 2, PHONES - 1].into_iter().enumerate() {
            let (st, body) = cfg(&s, &key, i).await;
            assert_eq!(st, 200, "phone {i} during the re-render");
            assert!(
                body == old[n] || body.contains("site-wide change"),
                "phone {i} got a file that is neither the old nor the new one:\n{body}"
            );
            fetched += 1;
        }
    }
    until_contains(&s, &key, PHONES - 1, "site-wide change").await;
    let log = s.log();
    assert!(log.contains("templates changed; re-rendering"), "{log}");
    let line = log
        .lines()
        .rfind(|l| l.contains("rendered all sites"))
        .unwrap();
    assert!(
        line.contains(&format!("phones={PHONES}")) && line.contains("ms="),
        "{line}"
    );
}

/// The background writer puts a storm's sightings in multi-row statements: every fetch is still
/// on record (a row per phone and file, a repeat counted on its row, each row's own id bumped)
/// and so is every phone's last-seen, on either database.
#[tokio::test(flavor = "multi_thread")]
async fn every_fetch_of_a_storm_is_on_record() {
    let env = Env::new();
    // More rows than two of the writer's statements hold (128 each), and a remainder.
    let n = 300;
    let key = fleet(&env, n);
    let mut s = env.start();
    // Phones fetch in parallel, on kept-alive connections as phones do.
    let fetch = |times: fn(usize) -> usize| {
        let (base, c) = (s.url(&format!("/p/{key}")), client());
        async move {
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let (base, c) = (base.clone(), c.clone());
                    tokio::spawn(async move {
                        for i in (t..n).step_by(8) {
                            for _ in 0..times(i) {
                                let r = c
                                    .get(format!("{base}/{}.cfg", mac(i)))
                                    .header("User-Agent", T54W_UA)
                                    .send()
                                    .await
                                    .unwrap();
                                assert_eq!(r.status(), 200);
                                r.bytes().await.unwrap();
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    fetch(|_| 1).await;
    let audit = || env.json(&["audit", "--site", "bench", "--limit", "1000"]);
    // First sightings are written within about a second.
    eventually(Duration::from_secs(20), || async {
        (audit().as_array().unwrap().len() >= n).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the first fetches were not all written:\n{}", s.log()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The repeats are counted on the open rows, written when a row's minute ends or, as here,
    // when the server stops. Phone i fetches again 1 + i % 3 times: a count that landed on
    // another phone's row would show.
    fetch(|i| 1 + i % 3).await;
    let stopped = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let exit = s.child.wait().unwrap();
    assert!(exit.success(), "serve exited with {exit}:\n{}", s.log());

    let rows = audit();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), n, "{rows:#?}");
    let mut macs = std::collections::BTreeSet::new();
    for r in rows {
        let m = r["mac"].as_str().unwrap().to_string();
        let i = (0..n).find(|i| mac(*i) == m).unwrap();
        assert_eq!(r["count"], 2 + i % 3, "{r}");
        assert_eq!(r["result"], "served", "{r}");
        assert_eq!(r["file"], format!("{m}.cfg"), "{r}");
        macs.insert(m);
    }
    let want: std::collections::BTreeSet<String> = (0..n).map(mac).collect();
    assert_eq!(macs, want);

    let phones = env.json(&["phone", "list", "--site", "bench"]);
    let phones = phones.as_array().unwrap();
    assert_eq!(phones.len(), n);
    for p in phones {
        let m = p["mac"].as_str().unwrap();
        assert_eq!(p["last_seen"]["file"], format!("{m}.cfg"), "{p}");
        assert_eq!(p["last_seen"]["user_agent"], T54W_UA, "{p}");
    }
}
