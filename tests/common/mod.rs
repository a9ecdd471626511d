//! Test harness: the real `phoneprov` binary, a temporary data dir, a server on 127.0.0.1:0.
#![allow(dead_code)]

pub mod browser;
pub mod console;
pub mod images;
pub mod lossy;
pub mod pbx;
pub mod rng;
pub mod rps_v1;
pub mod ymcs;

/// Serves `app` on 127.0.0.1 from a thread of its own (fakes of services we cannot reach).
pub fn serve_fake(app: axum::Router) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(l.local_addr().expect("addr")).expect("send");
            axum::serve(l, app).await.expect("serve");
        });
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("fake started")
}

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PUBLIC_URL: &str = "http://prov.test:8080";
pub const T54W_UA: &str = "Yealink SIP-T54W 96.86.0.45 80:5e:c0:aa:bb:cc";
pub const T54W_MAC: &str = "805ec0aabbcc";
pub const VVX_UA: &str = "FileTransport PolycomVVX-VVX_450-UA/6.4.3.5156 Type/Application";
pub const VVX_MAC: &str = "0004f2a1b2c3";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoneprov")
}

/// The PostgreSQL server the suite runs on, when it runs on one: `scripts/test` runs the suite
/// once on SQLite and once with this set to a throwaway server (`scripts/pg-throwaway`).
pub fn postgres() -> Option<String> {
    std::env::var("PHONEPROV_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Whether this run's databases are PostgreSQL ones.
pub fn on_postgres() -> bool {
    postgres().is_some()
}

/// A new empty PostgreSQL database on the test server: its URL.
pub fn fresh_postgres_db(base: &str) -> String {
    fresh_postgres_db_in(base, None)
}

/// A new empty PostgreSQL database whose files are kept under `dir` (a tablespace there), when
/// given: so a test's small disk holds the database, as it holds an SQLite file.
pub fn fresh_postgres_db_in(base: &str, dir: Option<&Path>) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "t{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    match dir {
        None => psql(base, &format!("CREATE DATABASE {name}")),
        Some(d) => {
            let ts = d.join(format!("pg-{name}"));
            std::fs::create_dir_all(&ts).expect("tablespace dir");
            // The server runs as the package's `postgres` user when the suite runs as root.
            let _ = Command::new("chown").arg("postgres").arg(&ts).status();
            psql(
                base,
                &format!("CREATE TABLESPACE {name} LOCATION '{}'", ts.display()),
            );
            psql(base, &format!("CREATE DATABASE {name} TABLESPACE {name}"));
        }
    }
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// Runs one statement on the test server's `postgres` database with psql.
pub fn psql(base: &str, sql: &str) {
    let o = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!("{}/postgres", base.trim_end_matches('/')))
        .args(["-c", sql])
        .output()
        .expect("run psql");
    assert!(
        o.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A connection to the database an `Env` runs on, whichever engine it is.
pub async fn db(env: &Env) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&env.db_url())
        .await
        .expect("connect to the test database")
}

/// A store for library-level tests: SQLite in `dir`, or a fresh database on the test
/// PostgreSQL server when the suite runs on one. Firmware images live in `dir` either way.
pub async fn open_store(dir: &Path) -> phoneprov::store::Store {
    use phoneprov::store::{Location, Store};
    let loc = match postgres() {
        Some(b) => Location::Postgres(fresh_postgres_db(&b)),
        None => Location::Sqlite(dir.join("phoneprov.sqlite")),
    };
    Store::connect(&loc, Some(dir))
        .await
        .expect("open the test store")
}

/// A direct connection to a store's database (for tests that force rows in).
pub async fn db_of(store: &phoneprov::store::Store) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let url = match store.location() {
        phoneprov::store::Location::Postgres(u) => u.clone(),
        phoneprov::store::Location::Sqlite(p) => format!("sqlite://{}", p.display()),
    };
    sqlx::AnyConnection::connect(&url).await.expect("connect")
}

/// The nonce of a response's Digest challenge.
pub fn nonce_of(r: &reqwest::Response) -> String {
    let h = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("Digest "))
        .expect("a Digest challenge")
        .to_string();
    h.split("nonce=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a nonce in the Digest challenge")
        .to_string()
}

/// A data dir and the CLI pointed at it.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// This Env's own PostgreSQL database, when the suite runs on PostgreSQL.
    pub postgres: Option<String>,
    /// Whether that database lives in a tablespace of its own.
    in_tablespace: bool,
    pub public_url: Option<&'static str>,
    admin_tokens: std::sync::atomic::AtomicUsize,
    /// Extra environment for every command (e.g. PHONEPROV_YMCS_*).
    pub vars: std::sync::Mutex<Vec<(String, String)>>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            postgres: postgres().map(|b| fresh_postgres_db(&b)),
            in_tablespace: false,
            public_url: Some(PUBLIC_URL),
            admin_tokens: Default::default(),
            vars: Default::default(),
        }
    }

    /// A data dir inside `parent` (a small file system, say).
    pub fn in_dir(parent: &Path) -> Env {
        Env {
            dir: tempfile::tempdir_in(parent).expect("temp dir"),
            postgres: postgres().map(|b| fresh_postgres_db_in(&b, Some(parent))),
            in_tablespace: true,
            public_url: Some(PUBLIC_URL),
            admin_tokens: Default::default(),
            vars: Default::default(),
        }
    }

    /// No public URL configured: the server derives it from the address it binds.
    pub fn bare() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            postgres: postgres().map(|b| fresh_postgres_db(&b)),
            in_tablespace: false,
            public_url: None,
            admin_tokens: Default::default(),
            vars: Default::default(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A second install's data dir on `primary`'s database, as a replica behind the same name
    /// runs: its own rendered files, tokens and logs; the database and the firmware folder
    /// (a link to the primary's) shared. On SQLite the shared database is the primary's file.
    pub fn replica_of(primary: &Env) -> Env {
        let fw = primary.data_dir().join("firmware");
        std::fs::create_dir_all(&fw).expect("firmware dir");
        let e = Env {
            dir: tempfile::tempdir().expect("temp dir"),
            postgres: None,
            in_tablespace: false,
            public_url: primary.public_url,
            admin_tokens: Default::default(),
            vars: Default::default(),
        };
        std::os::unix::fs::symlink(&fw, e.data_dir().join("firmware")).expect("link firmware");
        e.set_var("PHONEPROV_DATABASE_URL", &primary.db_url());
        for (k, v) in primary.vars.lock().expect("vars").iter() {
            e.set_var(k, v);
        }
        e
    }

    /// The database's URL: this Env's PostgreSQL database, or the SQLite file in the data dir.
    pub fn db_url(&self) -> String {
        match &self.postgres {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir().join("phoneprov.sqlite").display()
            ),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env_clear()
            .env("PHONEPROV_DATA_DIR", self.data_dir())
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        if let Some(u) = self.public_url {
            c.env("PHONEPROV_PUBLIC_URL", u);
        }
        if let Some(u) = &self.postgres {
            c.env("PHONEPROV_DATABASE_URL", u);
        }
        for (k, v) in self.vars.lock().expect("vars").iter() {
            c.env(k, v);
        }
        c
    }

    /// The environment that points a command at this Env's database (empty on SQLite: the
    /// data dir's file is the default).
    pub fn db_env(&self) -> Vec<(&'static str, String)> {
        self.postgres
            .iter()
            .map(|u| ("PHONEPROV_DATABASE_URL", u.clone()))
            .collect()
    }

    /// Sets an environment variable for every later command.
    pub fn set_var(&self, k: &str, v: &str) {
        let mut g = self.vars.lock().expect("vars");
        g.retain(|(x, _)| x != k);
        g.push((k.to_string(), v.to_string()));
    }

    /// Runs the CLI; returns its output whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run phoneprov")
    }

    /// Runs the CLI and insists it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "phoneprov {args:?} failed ({:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8 stdout")
    }

    /// Runs the CLI and insists it fails with exit code 2; returns stderr.
    pub fn refused(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "phoneprov {args:?} should be refused:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).expect("utf-8 stderr")
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("JSON output")
    }

    /// Runs the CLI with `input` on standard input; returns its output.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run phoneprov");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("phoneprov output")
    }

    /// A console user (`phoneprov user add NAME --role ROLE --password -`).
    pub fn user_add(&self, name: &str, role: &str, password: &str) {
        let o = self.run_with_input(
            &["user", "add", name, "--role", role, "--password", "-"],
            &format!("{password}\n"),
        );
        assert!(
            o.status.success(),
            "user add {name} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// A new admin API bearer token (`phoneprov token new`).
    pub fn admin_token(&self) -> String {
        let n = self
            .admin_tokens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.json(&["token", "new", &format!("test{n}")])["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// The site's key, from its provisioning URL.
    pub fn site_key(&self, site: &str) -> String {
        let v = self.json(&["site", "show", site]);
        let url = v["provisioning_url"].as_str().expect("url").to_string();
        url.trim_end_matches('/')
            .rsplit('/')
            .next()
            .expect("key")
            .to_string()
    }

    /// A site with a T54W (two lines, TLS) and a VVX 450 (one line).
    pub fn seed(&self) -> String {
        self.ok(&[
            "site",
            "add",
            "valleywide",
            "--sip-server",
            "pbx.example.com",
            "--transport",
            "tls",
            "--time-zone",
            "America/Denver",
            "--ntp",
            "ntp.example.com",
        ]);
        self.ok(&[
            "phone",
            "add",
            "80:5E:C0:AA:BB:CC",
            "--model",
            "T54W",
            "--site",
            "valleywide",
            "--label",
            "Front Desk",
        ]);
        self.ok(&[
            "line",
            "set",
            T54W_MAC,
            "1",
            "--user",
            "201",
            "--password",
            "Xk29-pq8s-Lm2v",
            "--display-name",
            "Front Desk",
        ]);
        self.ok(&[
            "line",
            "set",
            T54W_MAC,
            "2",
            "--user",
            "209",
            "--auth-user",
            "a209",
            "--password",
            "Second-Pw-22",
        ]);
        self.ok(&[
            "phone",
            "add",
            "0004.f2a1.b2c3",
            "--model",
            "VVX_450",
            "--site",
            "valleywide",
            "--label",
            "Conference",
        ]);
        self.ok(&[
            "line",
            "set",
            VVX_MAC,
            "1",
            "--user",
            "204",
            "--password",
            "Mm18<tt4w>&\"Ee9r",
            "--display-name",
            "Conference Room",
        ]);
        self.site_key("valleywide")
    }

    pub fn start(&self) -> Server {
        self.start_with(&[])
    }

    pub fn start_with(&self, extra: &[&str]) -> Server {
        let mut c = self.cmd();
        c.arg("serve");
        // The defaults, unless the test names its own.
        for (flag, default) in [("--http", "127.0.0.1:0"), ("--tftp", "127.0.0.1:0")] {
            if !extra.contains(&flag) {
                c.args([flag, default]);
            }
        }
        c.args(extra);
        c.env("PHONEPROV_LOG", "info,phoneprov=debug");
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log_path = self.data_dir().join("server.log");
        let log_file = std::fs::File::create(&log_path).expect("log file");
        std::thread::spawn(move || {
            let mut w = std::io::BufWriter::new(log_file);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(w, "{line}");
                let _ = w.flush();
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out2 = out.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            let mut tftp = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                out2.lock().expect("stdout lock").push(line.clone());
                if let Some(a) = line.strip_prefix("phoneprov: tftp on udp://") {
                    tftp = a.trim().to_string();
                }
                if !sent && line.starts_with("phoneprov: listening on http://") {
                    let addr = line["phoneprov: listening on http://".len()..]
                        .split(' ')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send((addr, tftp.clone()));
                    sent = true;
                }
            }
        });
        let (addr, tftp) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            addr,
            tftp,
            stdout: out,
            log: log_path,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // The test server is thrown away at the end of the run; its databases go sooner so a
        // whole suite's worth never piles up on disk.
        if let (Some(base), Some(url)) = (postgres(), &self.postgres)
            && let Some(name) = url.rsplit('/').next()
        {
            // A database in a tablespace of its own (on a test's small disk) goes with it,
            // before the disk does.
            let mut c = Command::new("psql");
            c.args(["-X", "-q", "-d"])
                .arg(format!("{}/postgres", base.trim_end_matches('/')))
                .args([
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .args(["-c", &format!("DROP TABLESPACE IF EXISTS {name}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = c.spawn()
                && self.in_tablespace
            {
                let _ = child.wait();
            }
        }
    }
}

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The TFTP address (`127.0.0.1:PORT`).
    pub tftp: String,
    /// Everything the server printed on stdout so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub log: PathBuf,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").join("\n")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// GET with a User-Agent; returns status and body.
pub async fn get(url: &str, ua: &str) -> (u16, String) {
    let r = client()
        .get(url)
        .header("User-Agent", ua)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// Polls `f` until it returns Some or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Some((v, start.elapsed()));
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of `key = value` in a Yealink file.
pub fn yealink_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
        // Yealink applies the last value of a key.
        .next_back()
}

/// The value of attribute `name="..."` in a Polycom file (XML-escaped as sent).
pub fn xml_attr<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!(" {name}=\"");
    let start = text.find(&pat)? + pat.len();
    let end = text[start..].find('"')? + start;
    Some(&text[start..end])
}
