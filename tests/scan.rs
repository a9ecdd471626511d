//! A MAC scan learns nothing and gets its address banned; phones behind one NAT address in a
//! boot storm are never refused.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_is_banned_and_a_boot_storm_is_not() {
    let env = Env::new();
    env.ok(&["site", "add", "acme", "--sip-server", "pbx"]);
    let mut csv = String::from("mac,model,site,line1_user,line1_password\n");
    let macs: Vec<String> = (0..500).map(|i| format!("805ec2{i:06x}")).collect();
    for (i, m) in macs.iter().enumerate() {
        csv.push_str(&format!("{m},T54W,acme,{},secret-{i:04}-pw\n", 100 + i));
    }
    let p = env.data_dir().join("phones.csv");
    std::fs::write(&p, csv).unwrap();
    env.ok(&["import", p.to_str().unwrap()]);
    let key = env.site_key("acme");
    let srv = env.start();
    let base = srv.url(&format!("/p/{key}"));

    // 500 phones behind one address boot at once: their own files, then a file that does not
    // exist (a miss each), all from 127.0.0.2.
    let nat = client_from("127.0.0.2");
    let mut tasks = Vec::new();
    for chunk in macs.chunks(25) {
        let (nat, base, chunk) = (nat.clone(), base.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for m in chunk {
                let ua = format!("Yealink SIP-T54W 96.86.0.45 {}", m);
                for f in [
                    format!("{m}.boot"),
                    "y000000000000.boot".into(),
                    "y000000000096.cfg".into(),
                    format!("{m}.cfg"),
                ] {
                    let r = nat
                        .get(format!("{base}/{f}"))
                        .header("User-Agent", &ua)
                        .send()
                        .await
                        .unwrap();
                    if r.status() != 200 {
                        refused += 1;
                    }
                }
                let r = nat
                    .get(format!("{base}/{m}-directory.xml"))
                    .header("User-Agent", &ua)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 404);
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    assert_eq!(refused, 0, "phones behind one address were refused");

    // A scan of 20,000 random MACs from another address, then every real MAC.
    let scanner = client_from("127.0.0.3");
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut batch = Vec::new();
        for _ in 0..1250 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            batch.push(format!("001565{:06x}", x & 0xff_ffff));
        }
        let (scanner, base) = (scanner.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            for m in batch {
                if scanner
                    .get(format!("{base}/{m}.cfg"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    == 200
                {
                    got += 1;
                }
            }
            got
        }));
    }
    let mut harvested = 0;
    for t in tasks {
        harvested += t.await.unwrap();
    }
    assert_eq!(harvested, 0);
    for m in &macs {
        let r = scanner.get(format!("{base}/{m}.cfg")).send().await.unwrap();
        assert_eq!(r.status(), 404, "a banned address got {m}");
    }
    let log = srv.log();
    assert!(
        log.contains("address banned") && log.contains("127.0.0.3"),
        "{log}"
    );
    assert!(
        !log.contains("peer=127.0.0.2 misses"),
        "the NAT address was never banned"
    );
    // The ban holds on TFTP too.
    let sock = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(format!("p/{key}/{}.cfg\0octet\0", macs[0]).as_bytes());
    sock.send_to(&rrq, &srv.tftp).unwrap();
    let mut buf = [0u8; 600];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"\x00\x05\x00\x01File not found\x00");
    // The phones still boot.
    let r = nat
        .get(format!("{base}/{}.cfg", macs[7]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_with_a_login_and_its_network_boots_a_scanner_gets_nothing() {
    const PW: &str = "Pr0v-Secret-77x";
    let env = Env::new();
    env.ok(&["site", "add", "acme", "--sip-server", "pbx"]);
    env.ok(&[
        "site",
        "update",
        "acme",
        "--auth-user",
        "prov",
        "--auth-password",
        PW,
        "--allow-net",
        "127.0.0.4/32",
    ]);
    let mut csv = String::from("mac,model,site,line1_user,line1_password\n");
    let macs: Vec<String> = (0..500).map(|i| format!("805ec4{i:06x}")).collect();
    for (i, m) in macs.iter().enumerate() {
        csv.push_str(&format!("{m},T54W,acme,{},secret-{i:04}-pw\n", 100 + i));
    }
    let p = env.data_dir().join("phones.csv");
    std::fs::write(&p, csv).unwrap();
    env.ok(&["import", p.to_str().unwrap()]);
    let key = env.site_key("acme");
    let srv = env.start();
    let base = srv.url(&format!("/p/{key}"));

    // 500 phones behind 127.0.0.4 (an allowed network), none seen before: each first asks for
    // a file that does not exist (a miss that counts toward a ban, before any of them fetched
    // a file of its own), then boots, answering the Digest challenge like a phone.
    // First every phone's miss (500 misses from one address, more than the ban threshold,
    // before any phone fetched its own file), then every phone's boot.
    let nat = client_from("127.0.0.4");
    let mut refused = 0;
    for phase in [0..1, 1..5] {
        let mut tasks = Vec::new();
        for chunk in macs.chunks(25) {
            let phase = phase.clone();
            let (nat, base, key, chunk) = (nat.clone(), base.clone(), key.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                let mut refused = 0;
                for m in chunk {
                    let ua = format!("Yealink SIP-T54W 96.86.0.45 {m}");
                    let files = [
                        format!("{m}-directory.xml"),
                        format!("{m}.boot"),
                        "y000000000000.boot".into(),
                        "y000000000096.cfg".into(),
                        format!("{m}.cfg"),
                    ];
                    for (i, f) in files.iter().enumerate().filter(|(i, _)| phase.contains(i)) {
                        let url = format!("{base}/{f}");
                        let r = nat
                            .get(&url)
                            .header("User-Agent", &ua)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 401, "the first try carries no credentials");
                        let path = format!("/p/{key}/{f}");
                        let answer = phoneprov::auth::digest_answer(
                            "prov",
                            PW,
                            "GET",
                            &path,
                            &nonce_of(&r),
                            "00000001",
                            "c0ffee",
                        );
                        let r = nat
                            .get(&url)
                            .header("User-Agent", &ua)
                            .header("Authorization", answer)
                            .send()
                            .await
                            .unwrap();
                        let want = if i == 0 { 404 } else { 200 };
                        if r.status() != want {
                            refused += 1;
                        }
                    }
                }
                refused
            }));
        }
        for t in tasks {
            refused += t.await.unwrap();
        }
    }
    assert_eq!(refused, 0, "phones of an allowed network were refused");

    // A scanner from elsewhere, without the login: 20,000 random MACs. It learns no
    // credential and its address is banned (a site's own networks never are).
    let scanner = client_from("127.0.0.6");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut batch = Vec::new();
        for _ in 0..1250 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            batch.push(format!("805ec4{:06x}", x & 0xff_ffff));
        }
        let (scanner, base) = (scanner.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut leaked = 0;
            for m in batch {
                let r = scanner.get(format!("{base}/{m}.cfg")).send().await.unwrap();
                let body = r.text().await.unwrap();
                if body.contains("password") {
                    leaked += 1;
                }
            }
            leaked
        }));
    }
    let mut leaked = 0;
    for t in tasks {
        leaked += t.await.unwrap();
    }
    assert_eq!(leaked, 0);
    let log = srv.log();
    assert!(
        log.contains("address banned") && log.contains("127.0.0.6"),
        "the scanner was not banned"
    );
    assert!(
        !log.contains("peer=127.0.0.4 misses"),
        "the phones' address was banned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_behind_a_phones_address_is_bounded() {
    // One phone behind 127.0.0.7 fetches its own file; a guesser behind the same address then
    // tries passwords. Trust buys that address 20 misses per phone seen there beyond the
    // threshold (50), not a pass: the guesser is stopped after 70 wrong answers, not 20,000.
    const PW: &str = "Pr0v-Secret-88y";
    let env = Env::new();
    env.ok(&["site", "add", "acme", "--sip-server", "pbx"]);
    env.ok(&[
        "site",
        "update",
        "acme",
        "--auth-user",
        "prov",
        "--auth-password",
        PW,
    ]);
    let mac = "805ec5000001";
    env.ok(&["phone", "add", mac, "--model", "T54W", "--site", "acme"]);
    let key = env.site_key("acme");
    let srv = env.start();
    let path = format!("/p/{key}/{mac}.cfg");
    let url = srv.url(&path);
    let nat = client_from("127.0.0.7");
    let ua = format!("Yealink SIP-T54W 96.86.0.45 {mac}");
    let answer = |pw: &str, nonce: &str| {
        phoneprov::auth::digest_answer("prov", pw, "GET", &path, nonce, "00000001", "c0ffee")
    };
    let r = nat
        .get(&url)
        .header("User-Agent", &ua)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = nat
        .get(&url)
        .header("User-Agent", &ua)
        .header("Authorization", answer(PW, &nonce_of(&r)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the phone boots");
    // Its sighting reaches the trust table (flushed about every second).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut stopped_after = None;
    for i in 1..=400 {
        let r = nat.get(&url).send().await.unwrap();
        let nonce = nonce_of(&r);
        let r = nat
            .get(&url)
            .header("Authorization", answer(&format!("guess-{i}"), &nonce))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "a wrong answer is a challenge again");
        if srv.log().contains("peer=127.0.0.7 misses") {
            stopped_after = Some(i);
            break;
        }
    }
    let n = stopped_after.expect("the guesser behind a phone's address was never banned");
    assert!(
        (70..=72).contains(&n),
        "banned after {n} wrong answers; want the threshold plus one phone's allowance (70)"
    );
    let log = srv.log();
    assert!(
        log.contains("beyond its phones' allowance") && log.contains("phones=1"),
        "{log}"
    );
    // The right answer from that address is refused too while the ban lasts (the log says so).
    let r = nat.get(&url).send().await.unwrap();
    let nonce = nonce_of(&r);
    let r = nat
        .get(&url)
        .header("Authorization", answer(PW, &nonce))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "banned: the same answer as any miss");
}
