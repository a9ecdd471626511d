//! A real browser for console tests: Debian's headless Chromium driven through its
//! chromedriver (both installed by `scripts/test`), one of each per test, on loopback.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fantoccini::{Client, Locator};

/// A chromedriver process and a browser session on it; both end on drop (call
/// [`Browser::close`] to end the session cleanly).
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    pub async fn start() -> Browser {
        let driver_bin =
            std::env::var("PHONEPROV_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium =
            std::env::var("PHONEPROV_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        use std::os::unix::process::CommandExt;
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            // Its own process group, so the browser it starts goes with it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {driver_bin} ({e}): install chromium and chromium-driver (scripts/test does)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                // Headless, as root in CI, and with none of Chromium's own calls out (the
                // machine has no network beyond loopback).
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-extensions",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display())],
            }),
        );
        let client = fantoccini::ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a browser session");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop ends chromedriver.
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    /// The path of the page shown now.
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.expect("url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// The text of the element `css` matches.
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.expect("text"),
            Err(e) => {
                let body = match self.client.find(Locator::Css("body")).await {
                    Ok(b) => b.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!(
                    "no {css} on {} ({e}); the page says:\n{body}",
                    self.path().await
                )
            }
        }
    }

    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.expect(css);
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    /// Clicks; when the click leads to another page (a link, a form), waits until that page
    /// has loaded, so what is read next is never the page before.
    pub async fn click(&self, css: &str) {
        self.js("window.__phoneprov_before = true; return null")
            .await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"))
            .click()
            .await
            .expect("click");
        let started = Instant::now();
        loop {
            let state = self
                .client
                .execute(
                    "return [window.__phoneprov_before === true, document.readyState]",
                    vec![],
                )
                .await;
            if let Ok(v) = state
                && v == serde_json::json!([false, "complete"])
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "clicking {css} led to no new page"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// The whole page's visible text.
    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// Runs a script in the page; its return value.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// Logs in through the form, by keyboard alone: the name, Tab, the password, Enter.
    pub async fn login(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/ui/sites")).await;
        assert!(
            self.path().await.starts_with("/ui/login"),
            "not sent to the login"
        );
        let focused = self.client.active_element().await.expect("focus");
        let tab: char = fantoccini::key::Key::Tab.into();
        let enter: char = fantoccini::key::Key::Enter.into();
        focused
            .send_keys(&format!("{user}{tab}{password}{enter}"))
            .await
            .expect("type the login");
        let started = Instant::now();
        while self.path().await.starts_with("/ui/login") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the login did not lead on: {}",
                self.body().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Ends chromedriver and every browser process it started.
fn kill_group(driver: &mut Child) {
    // SAFETY: kill(2) on the process group of a child we spawned.
    unsafe {
        libc::kill(-(driver.id() as i32), libc::SIGKILL);
    }
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
