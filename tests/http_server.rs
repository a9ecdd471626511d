//! The plain-HTTP server itself (`src/serve/http_server.rs`): a client that never finishes its
//! headers is cut off without holding up anyone else, phones' fetches and the API are served
//! side by side on every serving thread, and a stop lets idle keep-alive connections go at once
//! while a request in flight still gets its answer.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::images::sigint;
use common::*;

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out
}

#[tokio::test]
async fn a_client_that_dribbles_its_headers_is_cut_off_and_holds_up_no_one() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let mut slow = TcpStream::connect(&srv.addr).await.unwrap();
    slow.write_all(format!("GET /p/{key}/{T54W_MAC}.cfg HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();

    // Meanwhile phones are served as usual.
    for _ in 0..20 {
        let (st, _) = get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), T54W_UA).await;
        assert_eq!(st, 200);
    }

    // The headers never end: after the header timeout (30 s) the server lets the socket go.
    let said = tokio::time::timeout(Duration::from_secs(45), read_to_close(&mut slow))
        .await
        .expect("the server still held a connection whose headers never ended after 45 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(25),
        "cut off after {took:?}, before the 30 s header timeout"
    );
    let said = String::from_utf8_lossy(&said);
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "a cut-off client got {said:?}"
    );
}

#[tokio::test]
async fn fetches_and_the_api_are_answered_side_by_side() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let client = client.clone();
        let url = if i % 2 == 0 {
            srv.url(&format!("/p/{key}/{T54W_MAC}.cfg"))
        } else {
            srv.url("/healthz")
        };
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..10 {
                let r = client
                    .get(&url)
                    .header("User-Agent", T54W_UA)
                    .send()
                    .await
                    .unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().iter().all(|&s| s == 200));
    }
    // Not a phone's path and not a GET: the router still answers it (here, a refusal).
    let r = client
        .post(srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

/// `systemctl stop` sends SIGTERM: it drains and exits cleanly as Ctrl-C does, even at once
/// after start (the signal was not caught at all, and SIGINT only once the main runtime had
/// first polled its wait, so a signal in that window killed the process outright).
#[tokio::test]
async fn sigterm_stops_cleanly_even_right_after_start() {
    let env = Env::new();
    let key = env.seed();
    for signal in ["-TERM", "-INT"] {
        let mut srv = env.start();
        // One fetch, so there is last-seen and audit to flush on the way out.
        let r = reqwest::Client::new()
            .get(srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")))
            .header("User-Agent", T54W_UA)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        std::process::Command::new("kill")
            .args([signal, &srv.child.id().to_string()])
            .status()
            .unwrap();
        let status = tokio::task::spawn_blocking(move || srv.child.wait().unwrap())
            .await
            .unwrap();
        assert!(
            status.success(),
            "kill {signal}: serve exited with {status}"
        );
    }
}

#[tokio::test]
async fn a_stop_lets_idle_connections_go_at_once() {
    let env = Env::new();
    let key = env.seed();
    let mut srv = env.start();
    // A keep-alive connection, idle after one answer (a phone that has fetched and not closed).
    let mut idle = TcpStream::connect(&srv.addr).await.unwrap();
    let req =
        format!("GET /p/{key}/{T54W_MAC}.cfg HTTP/1.1\r\nHost: x\r\nUser-Agent: {T54W_UA}\r\n\r\n");
    idle.write_all(req.as_bytes()).await.unwrap();
    let mut first = [0u8; 64];
    let n = idle.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));

    let started = Instant::now();
    sigint(srv.child.id());
    let status = tokio::task::spawn_blocking(move || {
        let s = srv.child.wait().unwrap();
        (s, srv)
    })
    .await
    .unwrap()
    .0;
    let took = started.elapsed();
    assert!(status.success(), "serve exited with {status}");
    // The drain bound is 5 s; an idle connection must not hold a stop that long.
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
}

#[tokio::test]
async fn oversized_headers_get_431_on_the_fast_path_and_through_the_router() {
    let env = Env::new();
    let key = env.seed();
    let srv = env.start();
    let client = reqwest::Client::new();
    // Two 20 KB headers: 40 KB in all, over the 32 KiB limit; each alone is within hyper's.
    let big = "a".repeat(20 * 1024);
    for path in [format!("/p/{key}/{T54W_MAC}.cfg"), "/healthz".to_string()] {
        let r = client
            .get(srv.url(&path))
            .header("User-Agent", T54W_UA)
            .header("X-One", &big)
            .header("X-Two", &big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 431, "{path}");
    }
}

/// Raises this process's open-file limit to at least `n` (up to the hard limit): the test
/// below holds that many sockets.
fn allow_open_files(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads and sets this process's own limit through a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    assert!(
        lim.rlim_cur >= n,
        "this test needs {n} open files; the hard limit is {}",
        lim.rlim_max
    );
}

/// How many of `n` connections to `addr` complete within a few seconds while nothing accepts
/// them: the ones the listener's backlog holds. The sockets are returned open.
async fn connections_held(addr: &str, n: usize) -> (usize, Vec<TcpStream>) {
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..n {
        let addr = addr.to_string();
        tries.spawn(async move {
            tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
                .await
                .ok()
                .and_then(Result::ok)
        });
    }
    let mut held = Vec::new();
    while let Some(r) = tries.join_next().await {
        if let Some(s) = r.unwrap() {
            held.push(s);
        }
    }
    (held.len(), held)
}

#[tokio::test]
async fn a_boot_storm_s_connections_wait_in_the_backlog_rather_than_being_dropped() {
    // 1,500 connections that nobody accepts (the server is stopped): with the backlog of 128
    // that tokio's `bind` listens with, 129 were held and the rest had their SYNs dropped,
    // each phone retrying a second later (scripts/bench-storm: 64-205 a round at 500 phones
    // at a time). Linux caps the backlog at net.core.somaxconn (4096 by default).
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("net.core.somaxconn")
        .trim()
        .parse()
        .expect("a number");
    assert!(
        somaxconn >= 1500,
        "net.core.somaxconn is {somaxconn}: this test needs at least 1500"
    );
    const N: usize = 1500;
    allow_open_files(2 * N as u64 + 256);
    let env = Env::new();
    let key = env.seed();
    let srv = env.start_with(&["--https", "127.0.0.1:0"]);
    let https = srv
        .stdout()
        .lines()
        .find_map(|l| {
            l.strip_prefix("phoneprov: https on https://")
                .map(str::to_string)
        })
        .expect("the HTTPS address")
        .split_whitespace()
        .next()
        .expect("an address")
        .to_string();
    let pid = srv.child.id() as libc::pid_t;
    // SAFETY: signals the server this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let (http_held, a) = connections_held(&srv.addr, N).await;
    let (https_held, b) = connections_held(&https, N).await;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    assert_eq!(
        http_held, N,
        "HTTP connections held while none was accepted"
    );
    assert_eq!(
        https_held, N,
        "HTTPS connections held while none was accepted"
    );
    drop((a, b));
    // And the server, going on, serves as before.
    let (st, _) = get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), T54W_UA).await;
    assert_eq!(st, 200);
}
