//! The boot-storm client of `scripts/bench-storm`: phones fetching their whole boot sequence.
//!
//! `storm http PLAN BASE CONCURRENCY` — every phone of PLAN (lines `KEY MAC USER PASSWORD`,
//! `-` for no login) fetches `<mac>.boot`, `y000000000000.boot`, `y000000000096.cfg`,
//! `<mac>.cfg` from `BASE/p/KEY/`, a new connection per file, answering a Digest challenge where
//! asked (on a new connection too; a Basic challenge, as nginx's `auth_basic` gives, the same
//! way), CONCURRENCY phones at a time. Prints one JSON line: total seconds, p50/p99 per file
//! (ms), files, errors.
//!
//! `storm export PLAN BASE DIR` — saves what each phone gets under `DIR/p/KEY/` (for nginx and
//! tftpd-hpa to serve the same bytes).
//!
//! `storm tftp PLAN HOST:PORT PHONES` — the first PHONES phones with no login fetch the same
//! four files by TFTP (lockstep, 512-byte blocks, 1 s retransmission) all at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::net::UdpSocket;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Prints the first few errors only.
fn report_error(e: &dyn std::fmt::Display) {
    static SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
        eprintln!("error: {e}");
    }
}

/// HTTP requests sent (a Digest answer is a second request).
static REQUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Clone)]
struct Phone {
    key: String,
    mac: String,
    login: Option<(String, String)>,
}

fn plan(path: &str) -> Res<Vec<Phone>> {
    let mut out = Vec::new();
    for line in std::fs::read_to_string(path)?.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [key, mac, user, pass] = f.as_slice() else {
            return Err(format!("bad plan line: {line}").into());
        };
        out.push(Phone {
            key: key.to_string(),
            mac: mac.to_string(),
            login: (*user != "-").then(|| (user.to_string(), pass.to_string())),
        });
    }
    Ok(out)
}

fn files(mac: &str) -> [String; 4] {
    [
        format!("{mac}.boot"),
        "y000000000000.boot".into(),
        "y000000000096.cfg".into(),
        format!("{mac}.cfg"),
    ]
}

fn ua(mac: &str) -> String {
    let m: Vec<String> = (0..6).map(|i| mac[2 * i..2 * i + 2].to_string()).collect();
    format!("Yealink SIP-T54W 96.86.0.45 {}", m.join(":"))
}

/// How a 401 asks to be answered: Digest (phoneprov) with its nonce, or Basic (nginx).
enum Challenge {
    Digest(String),
    Basic,
}

fn challenge_of(r: &reqwest::Response) -> Option<Challenge> {
    let headers: Vec<&str> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if let Some(nonce) = headers
        .iter()
        .find(|v| v.starts_with("Digest "))
        .and_then(|h| h.split("nonce=\"").nth(1))
        .and_then(|r| r.split('"').next())
    {
        return Some(Challenge::Digest(nonce.to_string()));
    }
    headers
        .iter()
        .any(|v| v.starts_with("Basic "))
        .then_some(Challenge::Basic)
}

/// Fetches one file as a phone would; the bytes, or why not.
async fn fetch(c: &reqwest::Client, base: &str, p: &Phone, file: &str) -> Res<bytes::Bytes> {
    let path = format!("/p/{}/{file}", p.key);
    let url = format!("{base}{path}");
    REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r = c.get(&url).header("User-Agent", ua(&p.mac)).send().await?;
    if r.status() == 401
        && let (Some(challenge), Some((u, pw))) = (challenge_of(&r), &p.login)
    {
        let _ = r.bytes().await;
        let answer = match challenge {
            Challenge::Digest(nonce) => {
                phoneprov::auth::digest_answer(u, pw, "GET", &path, &nonce, "00000001", "0a1b2c3d")
            }
            Challenge::Basic => {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{pw}"));
                format!("Basic {token}")
            }
        };
        REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = c
            .get(&url)
            .header("User-Agent", ua(&p.mac))
            .header("Authorization", answer)
            .send()
            .await?;
        if r.status() != 200 {
            return Err(format!("{url}: {} after answering the challenge", r.status()).into());
        }
        return Ok(r.bytes().await?);
    }
    if r.status() != 200 {
        return Err(format!("{url}: {}", r.status()).into());
    }
    Ok(r.bytes().await?)
}

fn client() -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(0) // a new connection per request, as phones do
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// `base` may list several servers, comma-separated (replicas): phone i fetches from the
/// i-th, round robin, its whole sequence from the one server.
async fn http(plan: Vec<Phone>, base: String, conc: usize) -> Res<()> {
    let c = client()?;
    let bases: Vec<String> = base.split(',').map(str::to_string).collect();
    let started = Instant::now();
    let results: Vec<(Vec<f64>, usize)> = futures_util::stream::iter(plan.into_iter().enumerate())
        .map(|(i, p)| {
            let (c, base) = (c.clone(), bases[i % bases.len()].clone());
            async move {
                let mut times = Vec::with_capacity(4);
                let mut errors = 0;
                for f in files(&p.mac) {
                    let t = Instant::now();
                    match fetch(&c, &base, &p, &f).await {
                        Ok(_) => times.push(t.elapsed().as_secs_f64() * 1000.0),
                        Err(e) => {
                            errors += 1;
                            report_error(&e);
                        }
                    }
                }
                (times, errors)
            }
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    let total = started.elapsed().as_secs_f64();
    let mut times: Vec<f64> = results.iter().flat_map(|(t, _)| t.clone()).collect();
    let errors: usize = results.iter().map(|(_, e)| e).sum();
    println!(
        "{{\"seconds\": {total:.3}, \"files\": {}, \"requests\": {}, \"errors\": {errors}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}}}",
        times.len(),
        REQUESTS.load(std::sync::atomic::Ordering::Relaxed),
        pct(&mut times, 0.5),
        pct(&mut times, 0.99)
    );
    Ok(())
}

async fn export(plan: Vec<Phone>, base: String, dir: String) -> Res<()> {
    let c = reqwest::Client::new();
    let mut common_done = std::collections::HashSet::new();
    for p in plan {
        let d = format!("{dir}/p/{}", p.key);
        std::fs::create_dir_all(&d)?;
        for f in files(&p.mac) {
            if !f.contains(&p.mac) && !common_done.insert((p.key.clone(), f.clone())) {
                continue;
            }
            let b = fetch(&c, &base, &p, &f).await?;
            std::fs::write(format!("{d}/{f}"), b)?;
        }
    }
    Ok(())
}

/// One lockstep TFTP read; the bytes.
async fn tftp_get(from: std::net::IpAddr, server: SocketAddr, name: &str) -> Res<Vec<u8>> {
    let sock = UdpSocket::bind((from, 0)).await?;
    let mut rrq = vec![0, 1];
    rrq.extend_from_slice(name.as_bytes());
    rrq.extend_from_slice(b"\0octet\0");
    sock.send_to(&rrq, server).await?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 600];
    let mut expect: u16 = 1;
    let mut last_sent = rrq.clone();
    let mut peer = server;
    let mut tries = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf)).await {
            Err(_) => {
                tries += 1;
                if tries > 10 {
                    return Err(format!("{name}: no answer").into());
                }
                sock.send_to(&last_sent, peer).await?;
            }
            Ok(r) => {
                let (n, from) = r?;
                tries = 0;
                match u16::from_be_bytes([buf[0], buf[1]]) {
                    3 => {
                        let block = u16::from_be_bytes([buf[2], buf[3]]);
                        peer = from;
                        if block == expect {
                            out.extend_from_slice(&buf[4..n]);
                            expect = expect.wrapping_add(1);
                        }
                        last_sent = vec![0, 4, buf[2], buf[3]];
                        sock.send_to(&last_sent, from).await?;
                        if block == expect.wrapping_sub(1) && n - 4 < 512 {
                            return Ok(out);
                        }
                    }
                    5 => {
                        return Err(format!(
                            "{name}: {}",
                            String::from_utf8_lossy(&buf[4..n.saturating_sub(1)])
                        )
                        .into());
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn tftp(plan: Vec<Phone>, server: SocketAddr, phones: usize) -> Res<()> {
    let chosen: Vec<Phone> = plan
        .into_iter()
        .filter(|p| p.login.is_none())
        .take(phones)
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, p) in chosen.into_iter().enumerate() {
        // Each phone from an address of its own (127.0.x.y), as on a LAN: names without a MAC
        // (`y000000000000.boot`) are known by the address that fetched its own file.
        let from = std::net::IpAddr::from([127, 0, 1 + (i / 250) as u8, 2 + (i % 250) as u8]);
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0;
            for f in files(&p.mac) {
                let t = Instant::now();
                match tftp_get(from, server, &format!("p/{}/{f}", p.key)).await {
                    Ok(_) => times.push(t.elapsed().as_secs_f64() * 1000.0),
                    Err(e) => {
                        errors += 1;
                        report_error(&e);
                    }
                }
            }
            (times, errors)
        }));
    }
    let mut times = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (ts, e) = t.await?;
        times.extend(ts);
        errors += e;
    }
    let total = started.elapsed().as_secs_f64();
    println!(
        "{{\"seconds\": {total:.3}, \"files\": {}, \"errors\": {errors}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}}}",
        times.len(),
        pct(&mut times, 0.5),
        pct(&mut times, 0.99)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["http", p, base, conc] => http(plan(p)?, base.to_string(), conc.parse()?).await,
        ["export", p, base, dir] => export(plan(p)?, base.to_string(), dir.to_string()).await,
        ["tftp", p, server, n] => tftp(plan(p)?, server.parse()?, n.parse()?).await,
        _ => Err("usage: storm http PLAN BASE CONCURRENCY | export PLAN BASE DIR | tftp PLAN HOST:PORT PHONES".into()),
    }
}
