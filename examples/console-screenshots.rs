//! Takes screenshots of the web console (run by `scripts/console-screenshots`): starts
//! `phoneprov serve --demo` on a temporary data dir, adds an admin and a tech, makes the demo
//! T54W report the bricking build, then photographs each page at two widths in headless
//! Chromium through chromedriver.
//!
//! Usage: console-screenshots PHONEPROV_BINARY OUTDIR

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};

fn cli(bin: &str, dir: &std::path::Path, args: &[&str], input: &str) {
    let mut c = Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("phoneprov");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("stdin");
    assert!(c.wait().expect("wait").success(), "phoneprov {args:?}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bin, out) = match args.as_slice() {
        [_, bin, out] => (bin.clone(), std::path::PathBuf::from(out)),
        _ => {
            eprintln!("usage: console-screenshots PHONEPROV_BINARY OUTDIR");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().expect("data dir");
    cli(
        &bin,
        dir.path(),
        &["user", "add", "alice", "--role", "admin", "--password", "-"],
        "correct horse battery\n",
    );
    cli(
        &bin,
        dir.path(),
        &["user", "add", "tom", "--role", "tech", "--password", "-"],
        "tech tech tech tech\n",
    );
    let mut server = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--http", "127.0.0.1:0", "--tftp", "off", "--demo"])
        .env("PHONEPROV_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    // Read on in a thread: the demo prints more, and a closed pipe would stop the server.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = server.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("phoneprov: listening on ") {
                let _ = tx.send(a.split(' ').next().unwrap_or("").to_string());
            }
            if line.starts_with("Demo site") {
                let _ = tx.send(String::new());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    // And the demo site is made.
    let _ = rx.recv_timeout(Duration::from_secs(30));
    assert!(!base.is_empty(), "serve did not start");
    // The demo T54W reports the build that bricks phones, so its page shows the flag.
    let http = reqwest::Client::new();
    let shown = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--json", "site", "show", "demo"])
        .output()
        .expect("site show");
    let site: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("site JSON");
    // The CLI names the configured public URL; the path is what counts here.
    let url = site["provisioning_url"].as_str().unwrap_or("");
    let path = url.find("/p/").map(|i| &url[i..]).unwrap_or("/");
    let boot = format!("{base}{path}805ec0de0001.boot");
    let ua = "Yealink SIP-T54W 96.86.0.20 80:5e:c0:de:00:01";
    match http.get(&boot).header("User-Agent", ua).send().await {
        Ok(r) if r.status().is_success() => {}
        other => eprintln!("the demo phone's fetch of {boot} failed: {other:?}"),
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = tempfile::tempdir().expect("profile");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": "/usr/bin/chromium", "args": ["--headless", "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            format!("--user-data-dir={}", profile.path().display())]}),
    );
    let c = ClientBuilder::rustls()
        .expect("tls")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("browser");
    tokio::time::sleep(Duration::from_millis(1500)).await; // the last-seen flush
    let pages = [
        ("login", "/ui/login"),
        ("sites", "/ui/sites"),
        ("site", "/ui/sites/demo"),
        ("phones", "/ui/phones"),
        ("phone", "/ui/phones/805ec0de0001"),
        ("file", "/ui/phones/805ec0de0001/files/805ec0de0001.cfg"),
        ("import", "/ui/import"),
        ("firmware", "/ui/firmware"),
        ("ymcs", "/ui/ymcs"),
        ("audit", "/ui/audit"),
        ("changes", "/ui/changes"),
        ("users", "/ui/users"),
    ];
    for (user, pw) in [
        ("alice", "correct horse battery"),
        ("tom", "tech tech tech tech"),
    ] {
        c.goto(&format!("{base}/ui/login"))
            .await
            .expect("login page");
        c.find(Locator::Css("#user"))
            .await
            .expect("user")
            .send_keys(user)
            .await
            .expect("type");
        c.find(Locator::Css("#password"))
            .await
            .expect("pw")
            .send_keys(pw)
            .await
            .expect("type");
        c.find(Locator::Css("#login"))
            .await
            .expect("button")
            .click()
            .await
            .expect("click");
        for (w, h, tag) in [(1280, 900, "desktop"), (390, 844, "phone")] {
            c.set_window_size(w, h).await.expect("size");
            for (name, path) in pages {
                if name == "login" || (user == "tom" && name == "users") {
                    continue;
                }
                c.goto(&format!("{base}{path}")).await.expect("page");
                if name == "import" {
                    let csv = "mac,model,site,label\n80:5e:c0:00:00:01,T54W,demo,Desk 1\n80:5e:c0:00:00:0Z,T54W,demo,Desk 2\n";
                    c.find(Locator::Css("#csv"))
                        .await
                        .expect("csv")
                        .send_keys(csv)
                        .await
                        .expect("type");
                    c.find(Locator::Css("#check"))
                        .await
                        .expect("check")
                        .click()
                        .await
                        .expect("click");
                }
                let png = c.screenshot().await.expect("screenshot");
                std::fs::write(out.join(format!("{name}-{user}-{tag}.png")), png).expect("write");
            }
        }
        let form = c
            .find(Locator::Css("header form button"))
            .await
            .expect("logout");
        form.click().await.expect("logout");
    }
    c.set_window_size(1280, 900).await.expect("size");
    c.goto(&format!("{base}/ui/login")).await.expect("login");
    std::fs::write(out.join("login.png"), c.screenshot().await.expect("shot")).expect("write");
    let _ = c.close().await;
    for p in [&mut driver, &mut server] {
        let _ = p.kill();
        let _ = p.wait();
    }
}
