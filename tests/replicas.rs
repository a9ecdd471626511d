//! Several `serve` processes on one database are interchangeable (run on both backends: on
//! SQLite they share the file; on PostgreSQL the database, and changes arrive by LISTEN/NOTIFY
//! with the change-log poll as the floor): a change made by the CLI or through either
//! replica's API is served by both within 2 s; a Digest nonce one minted is good at the other;
//! a firmware image added through one (into the firmware folder they share) is served by the
//! other, byte for byte.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};

const USER: &str = "prov";
const PW: &str = "Prov-Secret-77";
const GOOD: &str = "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.70(20211130).rom";

/// How long both replicas take to serve `want` in the T54W's file, or panics after 2 s.
async fn both_serve(urls: [&str; 2], want: &str) -> Duration {
    let t = Instant::now();
    for url in urls {
        let seen = eventually(Duration::from_secs(2), || async {
            let (st, body) = get(url, T54W_UA).await;
            (st == 200 && body.contains(want)).then_some(())
        })
        .await;
        assert!(
            seen.is_some(),
            "{url} did not serve '{want}' within 2 s of the change"
        );
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_one_database_serve_alike() {
    let a = Env::new();
    let key = a.seed();
    let b = Env::replica_of(&a);
    let (ra, rb) = (a.start(), b.start());
    let path = format!("/p/{key}/{T54W_MAC}.cfg");
    let (ua, ub) = (ra.url(&path), rb.url(&path));
    let (sa, fa) = get(&ua, T54W_UA).await;
    let (sb, fb) = get(&ub, T54W_UA).await;
    assert_eq!((sa, sb), (200, 200));
    assert_eq!(fa, fb, "the replicas render one truth alike");

    // A change by the CLI (any host pointed at the database).
    a.ok(&[
        "setting",
        "set",
        "--site",
        "valleywide",
        "lang.gui",
        "Deutsch",
    ]);
    let took = both_serve([&ua, &ub], "Deutsch").await;
    eprintln!("a CLI change served by both replicas in {took:?}");
    if on_postgres() {
        // Told by the database, not found by the poll.
        for r in [&ra, &rb] {
            assert!(
                r.log().contains("listening for change notifications"),
                "{}",
                r.log()
            );
        }
    }

    // A change through replica B's API reaches replica A.
    let token = b.admin_token();
    let c = client();
    let r = c
        .put(rb.url("/api/v1/settings"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"site": "valleywide", "key": "lang.wui", "value": "Italian"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let took = both_serve([&ua, &ub], "Italian").await;
    eprintln!("an API change through one replica served by both in {took:?}");

    // A login on the site; a nonce minted by A is answered at B.
    a.ok(&[
        "site",
        "update",
        "valleywide",
        "--auth-user",
        USER,
        "--auth-password",
        PW,
    ]);
    let challenged = eventually(Duration::from_secs(2), || async {
        let r = c
            .get(&ua)
            .header("User-Agent", T54W_UA)
            .send()
            .await
            .unwrap();
        (r.status() == 401).then(|| nonce_of(&r))
    })
    .await;
    let (nonce, _) = challenged.expect("replica A asks for the new login");
    eventually(Duration::from_secs(2), || async {
        let r = c
            .get(&ub)
            .header("User-Agent", T54W_UA)
            .send()
            .await
            .unwrap();
        (r.status() == 401).then_some(())
    })
    .await
    .expect("replica B asks for the new login");
    let answer =
        phoneprov::auth::digest_answer(USER, PW, "GET", &path, &nonce, "00000001", "0a4f113b");
    let r = c
        .get(&ub)
        .header("User-Agent", T54W_UA)
        .header("Authorization", &answer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a nonce from replica A is good at replica B"
    );

    // An image added and assigned through replica A's API is served by replica B.
    let image = common::images::blob(300_000, 7);
    let token_a = a.admin_token();
    let r = c
        .post(ra.url("/api/v1/firmware"))
        .query(&[("name", GOOD)])
        .bearer_auth(&token_a)
        .body(image.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = c
        .put(ra.url("/api/v1/firmware/assign"))
        .bearer_auth(&token_a)
        .json(&serde_json::json!({"image": "96.86.0.70", "phone": T54W_MAC}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let img = rb.url(&format!("/p/{key}/{GOOD}"));
    let got = eventually(Duration::from_secs(2), || async {
        let r = c
            .get(&img)
            .header("User-Agent", T54W_UA)
            .header("Authorization", basic(USER, PW))
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        r.bytes().await.ok()
    })
    .await;
    let (bytes, _) = got.expect("replica B serves the image added through replica A");
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        hex::encode(Sha256::digest(&image)),
        "the image by content"
    );
}

fn basic(user: &str, pw: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}
