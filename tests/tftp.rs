//! TFTP: real clients (tftp-hpa, atftp, curl) and raw-socket scenarios after FreeBSD's tftpd
//! functional tests: options, rollover, lost and duplicated packets, vanishing clients,
//! refused writes and paths, identical misses, malformed packets, 200 concurrent transfers.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

/// A deterministic pseudo-random image of `len` bytes.
fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A seeded server with fast retransmission for raw tests.
fn setup(extra: &[&str]) -> (Env, String, Server) {
    let env = Env::new();
    let key = env.seed();
    let files = env.data_dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("empty.dat"), b"").unwrap();
    std::fs::write(files.join("k1024.dat"), image(1024, 1)).unwrap();
    std::fs::write(files.join("b5000.dat"), image(5000, 2)).unwrap();
    std::fs::write(files.join("m256k.dat"), image(256 * 1024, 3)).unwrap();
    let mut args = vec!["--tftp-timeout-ms", "300", "--tftp-retries", "2"];
    args.extend_from_slice(extra);
    let srv = env.start_with(&args);
    (env, key, srv)
}

/// A server whose TFTP timer is `ms` (and its default retries) with one 5,000-byte file; its
/// name as a client asks for it.
fn one_file_with_timeout(ms: &str) -> (Env, Server, String) {
    let env = Env::new();
    let key = env.seed();
    let files = env.data_dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("b5000.dat"), image(5000, 2)).unwrap();
    let srv = env.start_with(&["--tftp-timeout-ms", ms]);
    (env, srv, format!("p/{key}/b5000.dat"))
}

/// Waits up to 5 s for the server log to satisfy `f` (lines land after the client is done).
fn wait_log(srv: &Server, f: impl Fn(&str) -> bool) -> Option<()> {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if f(&srv.log()) {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

// ---- a raw client -------------------------------------------------------------------------

fn rrq(name: &str, mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 1];
    for s in [name, mode]
        .into_iter()
        .chain(opts.iter().flat_map(|(k, v)| [*k, *v]))
    {
        p.extend_from_slice(s.as_bytes());
        p.push(0);
    }
    p
}

fn ack(n: u16) -> Vec<u8> {
    let mut p = vec![0, 4];
    p.extend_from_slice(&n.to_be_bytes());
    p
}

struct Raw {
    sock: UdpSocket,
    server: String,
}

impl Raw {
    fn new(server: &str) -> Raw {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Raw {
            sock,
            server: server.to_string(),
        }
    }

    fn send_to_listener(&self, p: &[u8]) {
        self.sock.send_to(p, &self.server).unwrap();
    }

    /// Receives one packet: (opcode, second field, payload, from).
    fn recv(&self) -> Option<(u16, u16, Vec<u8>, std::net::SocketAddr)> {
        let mut buf = vec![0u8; 70000];
        let (n, from) = self.sock.recv_from(&mut buf).ok()?;
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        let second = if n >= 4 {
            u16::from_be_bytes([buf[2], buf[3]])
        } else {
            0
        };
        Some((op, second, buf[4.min(n)..n].to_vec(), from))
    }

    fn recv_within(&self, d: Duration) -> Option<(u16, u16, Vec<u8>, std::net::SocketAddr)> {
        self.sock.set_read_timeout(Some(d)).unwrap();
        let r = self.recv();
        self.sock
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        r
    }

    /// The whole ERROR packet the server sends for `name`.
    fn error_for(&self, name: &str) -> Vec<u8> {
        self.send_to_listener(&rrq(name, "octet", &[]));
        let (op, code, msg, _) = self.recv().expect("an answer");
        assert_eq!(op, 5, "{name:?} should be refused, got opcode {op}");
        let mut p = vec![0, 5];
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(&msg);
        p
    }
}

fn oack_options(payload: &[u8], second: u16) -> Vec<(String, String)> {
    // For OACK the "second field" is the start of the first option name.
    let mut all = second.to_be_bytes().to_vec();
    all.extend_from_slice(payload);
    let parts: Vec<String> = all
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into())
        .collect();
    parts
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect()
}

/// Fetches `name` lockstep or windowed, as a well-behaved client; returns the bytes.
async fn fetch(server: &str, name: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&rrq(name, "octet", opts), server)
        .await
        .unwrap();
    let blksize: usize = opts
        .iter()
        .find(|(k, _)| *k == "blksize")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(512);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70000];
    let mut expect: u16 = 1;
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .expect("timely")
            .unwrap();
        match u16::from_be_bytes([buf[0], buf[1]]) {
            6 => {
                sock.send_to(&ack(0), from).await.unwrap();
            }
            3 => {
                let block = u16::from_be_bytes([buf[2], buf[3]]);
                if block == expect {
                    out.extend_from_slice(&buf[4..n]);
                    expect = expect.wrapping_add(1);
                    sock.send_to(&ack(block), from).await.unwrap();
                    if n - 4 < blksize {
                        return out;
                    }
                }
            }
            op => panic!("unexpected opcode {op}"),
        }
    }
}

// ---- real clients ---------------------------------------------------------------------------

fn run_client(cmd: &mut Command) {
    let o = cmd
        .output()
        .expect("client runs (installed by scripts/test)");
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn three_real_clients_fetch_rendered_files_and_a_43_mb_image() {
    let env = Env::new();
    let key = env.seed();
    // The image goes through the firmware store, as an operator's would.
    let img = image(43_000_000, 42);
    let rom = "T54W(T57W,T53W,T53,T53C,T54,T57)-96.86.0.70(20211130).rom";
    let upload = tempfile::tempdir().unwrap();
    std::fs::write(upload.path().join(rom), &img).unwrap();
    env.ok(&["firmware", "add", upload.path().join(rom).to_str().unwrap()]);
    // Served only to phones sent to it: the site's.
    env.ok(&["firmware", "assign", "96.86.0.70", "--site", "valleywide"]);
    let srv = env.start();
    let (host, port) = srv.tftp.split_once(':').unwrap();
    let (host, port) = (host.to_string(), port.to_string());
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_path_buf();
    let remote = format!("p/{key}/{rom}");

    // The three clients at once, each on its own settings.
    let jobs: Vec<(String, Command)> = {
        let mut hpa = Command::new("tftp");
        hpa.args([
            "-m",
            "binary",
            &host,
            &port,
            "-c",
            "get",
            &remote,
            o.join("hpa.rom").to_str().unwrap(),
        ]);
        let mut at = Command::new("atftp");
        at.args([
            "--option",
            "blksize 1468",
            "--option",
            "windowsize 8",
            "-g",
            "-r",
            &remote,
            "-l",
            o.join("atftp.rom").to_str().unwrap(),
            &host,
            &port,
        ]);
        let mut curl = Command::new("curl");
        curl.args([
            "-sS",
            "--tftp-blksize",
            "512",
            "-o",
            o.join("curl.rom").to_str().unwrap(),
            &format!("tftp://{host}:{port}/{remote}"),
        ]);
        vec![
            ("hpa".into(), hpa),
            ("atftp".into(), at),
            ("curl".into(), curl),
        ]
    };
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(n, mut c)| {
            std::thread::spawn(move || {
                run_client(&mut c);
                n
            })
        })
        .collect();
    for h in handles {
        let n = h.join().expect("client thread");
        let got = std::fs::read(o.join(format!("{n}.rom"))).unwrap();
        assert_eq!(got.len(), img.len(), "{n}");
        assert_eq!(sha(&got), sha(&img), "{n}: sha256 differs");
    }
    if wait_log(&srv, |l| {
        l.matches("bytes=43000000 blksize=512").count() == 2
    })
    .is_none()
    {
        panic!(
            "two transfers should run at 512-byte blocks (84,000 blocks: rollover):\n{}",
            srv.log()
                .lines()
                .filter(|l| l.contains("tftp"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Rendered files: the same bytes as over HTTP, by each client, bare, '/'-prefixed and keyed.
    let (_, http_cfg) = get(&srv.url(&format!("/p/{key}/{T54W_MAC}.cfg")), T54W_UA).await;
    let name = format!("p/{key}/{T54W_MAC}.cfg");
    run_client(Command::new("tftp").args([
        "-m",
        "binary",
        &host,
        &port,
        "-c",
        "get",
        &name,
        o.join("a.cfg").to_str().unwrap(),
    ]));
    run_client(Command::new("atftp").args([
        "-g",
        "-r",
        &format!("/{name}"),
        "-l",
        o.join("b.cfg").to_str().unwrap(),
        &host,
        &port,
    ]));
    run_client(Command::new("curl").args([
        "-sS",
        "-o",
        o.join("c.cfg").to_str().unwrap(),
        &format!("tftp://{host}:{port}/{name}"),
    ]));
    for f in ["a.cfg", "b.cfg", "c.cfg"] {
        assert_eq!(std::fs::read_to_string(o.join(f)).unwrap(), http_cfg, "{f}");
    }
    // Netascii mode (tftp-hpa's default) gets CR LF line ends.
    run_client(Command::new("tftp").args([
        "-m",
        "netascii",
        &host,
        &port,
        "-c",
        "get",
        &name,
        o.join("n.cfg").to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(o.join("n.cfg")).unwrap(),
        http_cfg,
        "tftp-hpa converts back to LF"
    );

    // Last-seen says TFTP.
    let (seen, _) = eventually(Duration::from_secs(5), || async {
        let v = env.json(&["phone", "show", T54W_MAC]);
        (v["last_seen"]["transport"] == "tftp").then_some(v)
    })
    .await
    .expect("last-seen over tftp");
    assert_eq!(seen["last_seen"]["peer"], "127.0.0.1");

    // The same image over HTTP, streamed.
    let r = reqwest::Client::new()
        .get(format!("http://{}/p/{key}/{rom}", srv.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&img));
}

#[test]
fn options_are_acknowledged_only_when_asked() {
    let (_env, key, srv) = setup(&[]);
    let c = Raw::new(&srv.tftp);
    let http = std::fs::read(_env.data_dir().join("files/b5000.dat")).unwrap();

    // No options: straight to DATA 1, 512 bytes.
    c.send_to_listener(&rrq(&format!("p/{key}/b5000.dat"), "octet", &[]));
    let (op, block, data, from) = c.recv().unwrap();
    assert_eq!((op, block, data.len()), (3, 1, 512));
    assert_ne!(
        from.to_string(),
        srv.tftp,
        "a transfer answers from its own port"
    );
    c.sock.send_to(&ack(99), from).unwrap(); // garbage ACK: ignored

    // Options: OACK with exactly the known, asked ones; tsize is the real size.
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(
        &format!("p/{key}/b5000.dat"),
        "octet",
        &[("blksize", "1024"), ("tsize", "0"), ("nonsense", "1")],
    ));
    let (op, second, payload, from) = c.recv().unwrap();
    assert_eq!(op, 6);
    assert_eq!(
        oack_options(&payload, second),
        vec![
            ("blksize".into(), "1024".into()),
            ("tsize".into(), "5000".into())
        ]
    );
    c.sock.send_to(&ack(0), from).unwrap();
    let (op, block, data, _) = c.recv().unwrap();
    assert_eq!((op, block), (3, 1));
    assert_eq!(data, http[..1024]);

    // Out of range: clamped down; below 8: refused with error 8.
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(
        &format!("p/{key}/b5000.dat"),
        "octet",
        &[("blksize", "70000")],
    ));
    let (op, second, payload, _) = c.recv().unwrap();
    assert_eq!(op, 6);
    assert_eq!(
        oack_options(&payload, second),
        vec![("blksize".into(), "65464".into())]
    );
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(
        &format!("p/{key}/b5000.dat"),
        "octet",
        &[("blksize", "7")],
    ));
    let (op, code, _, _) = c.recv().unwrap();
    assert_eq!((op, code), (5, 8));

    // tsize of a rendered file is its real size.
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(
        &format!("p/{key}/{T54W_MAC}.cfg"),
        "octet",
        &[("tsize", "0"), ("blksize", "8192")],
    ));
    let (op, second, payload, from) = c.recv().unwrap();
    assert_eq!(op, 6);
    let opts = oack_options(&payload, second);
    let tsize: usize = opts
        .iter()
        .find(|(k, _)| k == "tsize")
        .unwrap()
        .1
        .parse()
        .unwrap();
    c.sock.send_to(&ack(0), from).unwrap();
    let (_, _, data, _) = c.recv().unwrap();
    assert!(data.starts_with(b"#!version:1.0.0.1"));
    assert_eq!(
        tsize,
        data.len(),
        "the whole rendered file fits one 8192-byte block"
    );
    // A client that refuses the OACK ends the transfer.
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(
        &format!("p/{key}/b5000.dat"),
        "octet",
        &[("blksize", "1024")],
    ));
    let (_, _, _, from) = c.recv().unwrap();
    c.sock
        .send_to(b"\x00\x05\x00\x08refused\x00", from)
        .unwrap();
    assert!(
        c.recv_within(Duration::from_millis(800)).is_none(),
        "nothing more after the client's ERROR"
    );
}

#[test]
fn lost_and_duplicated_packets() {
    let (_env, key, srv) = setup(&[]);
    // Dropped DATA / lost ACK: the server retransmits the same block after its timeout.
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(&format!("p/{key}/k1024.dat"), "octet", &[]));
    let (_, b1, d1, from) = c.recv().unwrap();
    assert_eq!(b1, 1);
    let (op, again, d1b, _) = c.recv().expect("retransmitted after the timeout");
    assert_eq!((op, again), (3, 1));
    assert_eq!(d1, d1b);
    // Duplicated ACK: answered once, never twice (no sorcerer's apprentice).
    c.sock.send_to(&ack(1), from).unwrap();
    c.sock.send_to(&ack(1), from).unwrap();
    let (_, b2, _, _) = c.recv().unwrap();
    assert_eq!(b2, 2);
    assert!(
        c.recv_within(Duration::from_millis(200)).is_none(),
        "a duplicate ACK got its own DATA"
    );
    // Exact multiple of the block size: a final empty block.
    c.sock.send_to(&ack(2), from).unwrap();
    let (_, b3, d3, _) = c.recv().unwrap();
    assert_eq!((b3, d3.len()), (3, 0));
    c.sock.send_to(&ack(3), from).unwrap();

    // Empty file: one empty DATA.
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(&format!("p/{key}/empty.dat"), "octet", &[]));
    let (op, b, d, from) = c.recv().unwrap();
    assert_eq!((op, b, d.len()), (3, 1, 0));
    c.sock.send_to(&ack(1), from).unwrap();
    assert!(c.recv_within(Duration::from_millis(500)).is_none());
}

#[test]
fn a_resent_ack_or_request_is_answered_at_once_and_a_new_start_takes_over() {
    // A slow server timer (2 s), so what answers in time is the client's own resend.
    let (_env, srv, name) = one_file_with_timeout("2000");

    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(&name, "octet", &[]));
    let (_, b1, _, from) = c.recv().unwrap();
    assert_eq!(b1, 1);
    c.sock.send_to(&ack(1), from).unwrap();
    let (_, b2, d2, _) = c.recv().unwrap();
    assert_eq!(b2, 2);
    // Block 2 "lost": the client resends ACK 1 after a second, as tftp-hpa does.
    std::thread::sleep(Duration::from_millis(1100));
    let asked = std::time::Instant::now();
    c.sock.send_to(&ack(1), from).unwrap();
    let (_, again, d2b, _) = c.recv().expect("block 2 again");
    assert_eq!((again, &d2b), (2, &d2));
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "answered by the resent ACK, not by the server's 2 s timer ({:?})",
        asked.elapsed()
    );
    // A second resent ACK right away is ours crossing: ignored.
    c.sock.send_to(&ack(1), from).unwrap();
    assert!(
        c.recv_within(Duration::from_millis(500)).is_none(),
        "a duplicate right after a resend got a packet"
    );

    // The same port asks again before acknowledging anything (its first answer was lost): the
    // running transfer answers, from its own port, by the rules of a duplicate ACK. A repeat
    // right after the answer went out crossed it: ignored.
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(&name, "octet", &[]));
    let (_, b, first_block, first) = c.recv().unwrap();
    assert_eq!(b, 1);
    c.send_to_listener(&rrq(&name, "octet", &[]));
    assert!(
        c.recv_within(Duration::from_millis(500)).is_none(),
        "a repeat that crossed the answer got a packet"
    );
    std::thread::sleep(Duration::from_millis(700));
    let asked = std::time::Instant::now();
    c.send_to_listener(&rrq(&name, "octet", &[]));
    let (_, b, again, from) = c.recv().expect("block 1 again");
    assert_eq!(
        (b, &again, from),
        (1, &first_block, first),
        "from the same transfer"
    );
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "answered by the repeated request, not by the server's 2 s timer ({:?})",
        asked.elapsed()
    );
    wait_log(&srv, |l| l.contains("the running transfer answers it")).expect("logged");

    // Once it acknowledged a block, the same request again is a new start: a transfer of its
    // own from block 1, and the old one stops.
    c.sock.send_to(&ack(1), first).unwrap();
    let (_, b2, _, _) = c.recv().unwrap();
    assert_eq!(b2, 2);
    c.send_to_listener(&rrq(&name, "octet", &[]));
    let (_, b, _, second) = c.recv().unwrap();
    assert_eq!(b, 1);
    assert_ne!(first, second, "a transfer of its own");
    let mut from_first = 0;
    let until = std::time::Instant::now() + Duration::from_millis(4500);
    while let Some((_, _, _, f)) = c.recv_within(
        until
            .saturating_duration_since(std::time::Instant::now())
            .max(Duration::from_millis(1)),
    ) {
        if f == first {
            from_first += 1;
        }
        if std::time::Instant::now() >= until {
            break;
        }
    }
    assert_eq!(from_first, 0, "the replaced transfer kept sending");
    wait_log(&srv, |l| l.contains("tftp transfer superseded")).expect("logged as superseded");
}

#[test]
fn a_request_repeated_as_its_lost_answer_is_resent_is_served_once() {
    // curl's race (tftp_loss: the OACK lost): curl resends its request when its timeout ends,
    // just as the server, on the same timeout, resends the OACK; curl takes that OACK, pins
    // the port it came from and acknowledges it. The repeat that crossed it must not start a
    // second transfer that stops the one curl pinned (before the fix: curl waited for ever).
    let (_env, srv, name) = one_file_with_timeout("1000");
    let want = image(5000, 2);
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(&name, "octet", &[("blksize", "512")]));
    let (op, _, _, first) = c.recv().unwrap();
    assert_eq!(op, 6, "an OACK");
    // That one "lost"; the server resends it after its second, and the client's repeat is
    // already on its way.
    let (op, _, _, from) = c.recv().expect("the OACK resent");
    assert_eq!((op, from), (6, first));
    c.send_to_listener(&rrq(&name, "octet", &[("blksize", "512")]));
    c.sock.send_to(&ack(0), first).unwrap();
    let mut got = Vec::new();
    for n in 1..=10u16 {
        let (op, b, d, f) = c.recv().unwrap_or_else(|| panic!("block {n} never came"));
        if op == 6 {
            panic!("a second OACK from {f} (the first transfer's port: {first})");
        }
        assert_eq!(
            (op, b, f),
            (3, n, first),
            "block {n} from the pinned transfer"
        );
        got.extend_from_slice(&d);
        c.sock.send_to(&ack(n), first).unwrap();
        if d.len() < 512 {
            break;
        }
    }
    assert_eq!(got, want);
    assert!(
        c.recv_within(Duration::from_millis(1500)).is_none(),
        "nothing else came (no second transfer)"
    );
}

#[test]
fn at_the_transfer_limit_a_slot_being_freed_is_waited_for_and_overload_is_busy() {
    let (_env, key, srv) = setup(&["--tftp-max-transfers", "1"]);
    let name = format!("p/{key}/k1024.dat");
    // One transfer holds the only slot (its client never ACKs).
    let holder = Raw::new(&srv.tftp);
    holder.send_to_listener(&rrq(&name, "octet", &[]));
    let (op, _, _, holder_tid) = holder.recv().unwrap();
    assert_eq!(op, 3);
    // A second client meanwhile: refused as busy, after the short grace.
    let other = Raw::new(&srv.tftp);
    let t = std::time::Instant::now();
    other.send_to_listener(&rrq(&name, "octet", &[]));
    let (op, _, msg, _) = other.recv().unwrap();
    assert_eq!(op, 5);
    assert!(String::from_utf8_lossy(&msg).contains("server busy"));
    assert!(
        t.elapsed() >= Duration::from_millis(90),
        "{:?}",
        t.elapsed()
    );
    // A request sent just before the holder finishes gets the slot instead of "busy".
    let next = Raw::new(&srv.tftp);
    next.send_to_listener(&rrq(&name, "octet", &[]));
    std::thread::sleep(Duration::from_millis(20));
    holder.sock.send_to(&ack(1), holder_tid).unwrap();
    let (_, b, _, _) = holder.recv().unwrap();
    assert_eq!(b, 2);
    holder.sock.send_to(&ack(2), holder_tid).unwrap();
    let (_, b, d, _) = holder.recv().unwrap();
    assert_eq!((b, d.len()), (3, 0));
    holder.sock.send_to(&ack(3), holder_tid).unwrap();
    let (op, block, _, _) = next.recv().expect("served once the slot was free");
    assert_eq!((op, block), (3, 1), "not refused");
}

#[test]
fn window_of_blocks_and_partial_acks() {
    let (env, key, srv) = setup(&[]);
    let want = std::fs::read(env.data_dir().join("files/b5000.dat")).unwrap(); // 10 blocks of 512
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(
        &format!("p/{key}/b5000.dat"),
        "octet",
        &[("windowsize", "4")],
    ));
    let (op, _, _, from) = c.recv().unwrap();
    assert_eq!(op, 6);
    c.sock.send_to(&ack(0), from).unwrap();
    let blocks = |n: usize| (0..n).map(|_| c.recv().unwrap().1).collect::<Vec<u16>>();
    assert_eq!(blocks(4), [1, 2, 3, 4], "a window without waiting");
    c.sock.send_to(&ack(4), from).unwrap();
    assert_eq!(blocks(4), [5, 6, 7, 8]);
    // Only 5 and 6 arrived: the next window starts at 7.
    c.sock.send_to(&ack(6), from).unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        let (_, b, d, _) = c.recv().unwrap();
        got.push((b, d));
    }
    assert_eq!(
        got.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
        [7, 8, 9, 10]
    );
    assert_eq!(got[3].1, want[9 * 512..], "the last block holds the tail");
    c.sock.send_to(&ack(10), from).unwrap();
    assert!(
        c.recv_within(Duration::from_millis(500)).is_none(),
        "done after the last ACK"
    );
}

#[test]
fn a_vanished_client_frees_its_transfer() {
    let (_env, key, srv) = setup(&[]);
    // Silent client: retransmissions, then abandoned (300 ms, backoff, 2 retries: ~2 s).
    let c = Raw::new(&srv.tftp);
    c.send_to_listener(&rrq(&format!("p/{key}/m256k.dat"), "octet", &[]));
    let (_, _, _, from) = c.recv().unwrap();
    let start = std::time::Instant::now();
    let mut copies = 1;
    while c.recv_within(Duration::from_secs(3)).is_some() {
        copies += 1;
    }
    assert_eq!(copies, 3, "first send plus two retries, then silence");
    assert!(start.elapsed() < Duration::from_secs(6));
    wait_log(&srv, |l| l.contains("tftp transfer abandoned")).expect("abandonment logged");
    // Its socket is closed: a late ACK meets a closed port.
    let late = UdpSocket::bind("127.0.0.1:0").unwrap();
    late.connect(from).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    late.send(&ack(1)).unwrap();
    let mut b = [0u8; 16];
    let e = late.recv(&mut b).expect_err("nobody answers");
    assert_eq!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "port closed, ICMP says so"
    );

    // A client that closes its socket: the server learns it from ICMP and stops at once.
    let gone = Raw::new(&srv.tftp);
    gone.send_to_listener(&rrq(&format!("p/{key}/m256k.dat"), "octet", &[]));
    gone.recv().unwrap();
    drop(gone);
    wait_log(&srv, |l| l.contains("client unreachable"))
        .expect("the server noticed the closed port");
}

#[test]
fn writes_traversal_and_misses_are_refused_alike() {
    let (_env, key, srv) = setup(&[]);
    let c = Raw::new(&srv.tftp);
    // Writes: access violation.
    let mut wrq = rrq(&format!("p/{key}/x.cfg"), "octet", &[]);
    wrq[1] = 2;
    c.send_to_listener(&wrq);
    let (op, code, _, _) = c.recv().unwrap();
    assert_eq!((op, code), (5, 2));

    // Unknown MAC, wrong key, missing file, and every refused path: the same bytes.
    let not_found = c.error_for(&format!("p/{key}/805ec0000001.cfg"));
    assert_eq!(not_found, b"\x00\x05\x00\x01File not found\x00");
    let long = "a".repeat(400);
    for name in [
        format!("p/0123456789abcdef0123456789abcdef/{T54W_MAC}.cfg"),
        format!("p/{key}/no-such-file"),
        format!("{T54W_MAC}.cfg"),
        format!("/{T54W_MAC}.cfg"),
        "../etc/passwd".into(),
        "/etc/passwd".into(),
        format!("p/{key}/../../../etc/passwd"),
        format!("p/{key}/..%2f..%2fetc%2fpasswd"),
        format!("p/{key}/..\\..\\etc\\passwd"),
        format!("p/{key}/.hidden"),
        format!("p/{key}/sub/{T54W_MAC}.cfg"),
        format!("p/{key}/{long}"),
        "".into(),
    ] {
        assert_eq!(c.error_for(&name), not_found, "{name:?}");
    }
    // Unknown mode: illegal operation.
    c.send_to_listener(&rrq(&format!("p/{key}/{T54W_MAC}.cfg"), "mail", &[]));
    let (op, code, _, _) = c.recv().unwrap();
    assert_eq!((op, code), (5, 4));
}

#[test]
fn malformed_packets_never_stop_the_server() {
    let (_env, key, srv) = setup(&[]);
    let c = Raw::new(&srv.tftp);
    let junk: &[&[u8]] = &[
        b"",
        b"\x00",
        b"\x00\x01",
        b"\x00\x01no-terminator",
        b"\x00\x01name\x00",
        b"\x00\x01name\x00octet\x00blksize\x00",
        b"\x00\x01\xff\xfe\xfd\x00octet\x00",
        b"\x00\x03\x00\x01data to the listener",
        b"\x00\x04\x00\x01",
        b"\x00\x05\x00\x01err",
        b"\x00\x09junk",
        b"\xff\xff\xff\xff",
        &[0u8; 1500],
        &[1u8; 9000],
    ];
    for j in junk {
        c.send_to_listener(j);
    }
    // Malformed requests get ERROR 4; other junk gets nothing.
    let mut errors = 0;
    while let Some((op, code, _, _)) = c.recv_within(Duration::from_millis(300)) {
        assert_eq!((op, code), (5, 4));
        errors += 1;
    }
    assert_eq!(errors, 5);
    // And a real request still works.
    c.send_to_listener(&rrq(&format!("p/{key}/{T54W_MAC}.cfg"), "octet", &[]));
    let (op, block, data, _) = c.recv().unwrap();
    assert_eq!((op, block), (3, 1));
    assert!(data.starts_with(b"#!version:1.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_transfers_complete() {
    let (env, key, srv) = setup(&[]);
    let want = sha(&std::fs::read(env.data_dir().join("files/m256k.dat")).unwrap());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let server = srv.tftp.clone();
        let name = format!("p/{key}/m256k.dat");
        tasks.push(tokio::spawn(async move {
            let opts: &[(&str, &str)] = if i % 2 == 0 {
                &[("blksize", "1468")]
            } else {
                &[("blksize", "1468"), ("windowsize", "4")]
            };
            fetch(&server, &name, opts).await
        }));
    }
    let started = std::time::Instant::now();
    for t in tasks {
        assert_eq!(sha(&t.await.unwrap()), want);
    }
    eprintln!("200 transfers of 256 KiB in {:?}", started.elapsed());
    if wait_log(&srv, |l| l.matches("tftp transfer done").count() == 200).is_none() {
        let log = srv.log();
        panic!(
            "done {}, abandoned {}, gone {}, client {}\n{}",
            log.matches("tftp transfer done").count(),
            log.matches("abandoned").count(),
            log.matches("unreachable").count(),
            log.matches("by the client").count(),
            log.lines()
                .filter(|l| l.contains("tftp") && !l.contains("done"))
                .take(10)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn tftp_knows_a_phone_by_its_address() {
    let (env, key, srv) = setup(&[]);
    let fetch_all = |c: &Raw, name: &str| -> Option<Vec<u8>> {
        c.send_to_listener(&rrq(name, "octet", &[]));
        let mut out = Vec::new();
        loop {
            let (op, block, data, from) = c.recv()?;
            if op != 3 {
                return None;
            }
            out.extend_from_slice(&data);
            c.sock.send_to(&ack(block), from).unwrap();
            if data.len() < 512 {
                return Some(out);
            }
        }
    };
    let c = Raw::new(&srv.tftp);
    // No MAC in the name and no User-Agent: unknown until the address fetched its own file.
    assert!(fetch_all(&c, &format!("p/{key}/y000000000000.boot")).is_none());
    let own = fetch_all(&c, &format!("p/{key}/{T54W_MAC}.boot")).expect("own boot file");
    let generic = fetch_all(&c, &format!("p/{key}/y000000000000.boot")).expect("known by address");
    assert_eq!(generic, own);
    // The common file counts toward the phone's last-seen.
    fetch_all(&c, &format!("p/{key}/y000000000096.cfg")).expect("common file");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let v = env.json(&["phone", "show", T54W_MAC]);
        if v["last_seen"]["file"] == "y000000000096.cfg" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A second phone behind the same address: refuse to guess.
    fetch_all(&c, &format!("p/{key}/{VVX_MAC}.cfg")).expect("another phone's file");
    assert!(fetch_all(&c, &format!("p/{key}/y000000000000.boot")).is_none());
}
