//! The server's lifetime: [`run`] binds every transport ([`bind`]), starts the background jobs
//! ([`jobs`]: publisher, flushes, PBX sync, TFTP, certificate watch), serves until `shutdown`
//! resolves, then drains and flushes.

mod admin_api;
mod api_errors;
mod bind;
mod console;
mod firmware_api;
pub mod http;
mod http_server;
mod import_api;
mod jobs;
mod openapi;
mod phone_api;
mod setting_api;
mod site_api;
mod state;
pub mod tftp;
pub mod tls;
mod ymcs_api;

pub use bind::{LISTEN_BACKLOG, TFTP_RECEIVE_BUFFER};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::lastseen::SeenBuffer;
use crate::manage::Manager;
use crate::publish::{PublishError, Publisher};
use crate::render::Ready;
use crate::resolve::Resolver;
use crate::store::Store;

/// What `run` needs, already resolved by the caller.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub http: String,
    /// `None`: derive from the bound HTTP address.
    pub public_url: Option<String>,
    /// Base HTTPS URL for sites that require HTTPS.
    pub public_https_url: Option<String>,
    /// Keep recorded PBX/site pairs in sync this often.
    pub sync_every: Option<Duration>,
    pub template_dir: std::path::PathBuf,
    /// Operators' static files, served by both transports.
    pub files_dir: std::path::PathBuf,
    /// The data dir (firmware store, operator policy).
    pub data_dir: std::path::PathBuf,
    pub upload_cap: usize,
    /// How often the database and templates are checked for changes.
    pub poll_every: Duration,
    /// TFTP listen address; `None` disables TFTP.
    pub tftp: Option<String>,
    /// HTTPS listen address; `None`: no HTTPS.
    pub https: Option<String>,
    /// The operator's certificate and key; `None`: a self-signed one in `<data-dir>/tls/`.
    pub tls_files: Option<tls::TlsFiles>,
    /// Limits for banning addresses that miss repeatedly; `None`: never ban.
    pub guard: Option<crate::access::GuardConfig>,
    pub tftp_cfg: tftp::TftpConfig,
    /// The settings file read at start: a change to it is announced (it takes a restart).
    pub settings_file: Option<std::path::PathBuf>,
    /// Serve `/metrics` to any address without an admin token.
    pub metrics_open: bool,
    /// Memory for phones' rendered files.
    pub file_cache_bytes: usize,
    /// How long web console sessions live.
    pub sessions: crate::users::sessions::SessionPolicy,
    /// How to read the settings again on SIGHUP; `None`: SIGHUP only polls for changes.
    pub reread: Option<Reread>,
}

/// What a reload can read again: the settings as the command line and file give them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub public_url: Option<String>,
    pub public_https_url: Option<String>,
    /// Listen addresses (HTTP, TFTP, HTTPS): a change takes a restart.
    pub listen: (String, Option<String>, Option<String>),
}

/// Reads the settings again (a closure of the CLI's, so the same precedence applies).
#[derive(Clone)]
pub struct Reread(pub Arc<dyn Fn() -> Result<Reloaded, String> + Send + Sync>);

impl std::fmt::Debug for Reread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reread(..)")
    }
}

/// Where the server listens, once bound.
#[derive(Debug, Clone)]
pub struct Bound {
    pub http: SocketAddr,
    pub tftp: Option<SocketAddr>,
    /// The HTTPS address and the certificate's SHA-256 fingerprint.
    pub https: Option<(SocketAddr, String)>,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: String,
        source: std::io::Error,
        /// What to do about it, where something helps.
        hint: String,
    },
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("HTTPS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "the database failed its integrity check ({0}): restore it from a backup, or run `sqlite3 phoneprov.sqlite .recover` on a copy"
    )]
    Corrupt(String),
    #[error("cannot check the database: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Runs the server: binds every listener ([`bind`]), builds what handlers share, starts the
/// background jobs ([`jobs`]), calls `on_ready` with the bound addresses once phones can be
/// served, serves until `shutdown` resolves, then stops the jobs and flushes what is pending.
pub async fn run(
    store: Store,
    cfg: ServeConfig,
    on_ready: impl FnOnce(Bound, &str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // After a crash (kill -9, power loss) SQLite's journal makes the file whole again on
    // open; this says so before a phone is served.
    let checked = std::time::Instant::now();
    store.quick_check().await?.map_err(ServeError::Corrupt)?;
    tracing::info!(
        ms = checked.elapsed().as_millis() as u64,
        "database integrity check passed"
    );
    let listeners = bind::bind(&cfg).await?;
    let metrics = crate::telemetry::install();
    let addr = listeners.http_addr;
    let public_url = bind::public_url(&cfg, addr);

    let ready = Arc::new(Ready::default());
    let publisher = Publisher::start(
        store.clone(),
        ready.clone(),
        &crate::render::Urls::new(&public_url, cfg.public_https_url.as_deref()),
        cfg.template_dir.clone(),
        cfg.data_dir.clone(),
        cfg.file_cache_bytes,
    )
    .await?;
    let seen = Arc::new(SeenBuffer::default());
    let audit = Arc::new(crate::audit::AuditBuffer::default());
    // The nonce key lives in the database, so every server on it (replicas behind one name)
    // accepts the nonces the others minted, and a restart does not void those in flight.
    let nonce_secret = {
        let mut conn = store.conn().await?;
        let s =
            crate::store::shared_secret(&mut conn, "digest-nonce", &crate::auth::fresh_secret())
                .await?;
        <[u8; 32]>::try_from(s.as_slice()).map_err(|_| {
            ServeError::Corrupt("the stored Digest nonce key is not 32 bytes".into())
        })?
    };
    let resolver = {
        let r = Resolver::new(ready.clone(), seen.clone(), Some(cfg.files_dir.clone()))
            .with_nonce_secret(nonce_secret)
            .with_audit(audit.clone());
        r.with_guard(cfg.guard.unwrap_or(crate::access::GuardConfig {
            threshold: u32::MAX,
            ..Default::default()
        }))
    };
    let manager = Manager {
        store: store.clone(),
        renderer: publisher.renderer(),
        policy: publisher.policy(),
        firmware_dir: cfg.data_dir.join("firmware"),
    };
    let admin_tokens = Arc::new(crate::tokens::TokenFile::new(
        cfg.data_dir.join(crate::tokens::FILE),
    ));
    let users = crate::users::Users {
        store: store.clone(),
    };
    let sessions = crate::users::sessions::Sessions::new(store.clone(), cfg.sessions);
    let login_throttle = Arc::new(crate::users::throttle::LoginThrottle::default());
    let state_for = |scheme| {
        state::AppState::new(state::AppInner {
            resolver: resolver.clone(),
            manager: manager.clone(),
            admin_tokens: admin_tokens.clone(),
            upload_cap: cfg.upload_cap,
            scheme,
            data_dir: cfg.data_dir.clone(),
            metrics: metrics.clone(),
            metrics_open: cfg.metrics_open,
            latency: metrics::histogram!("phoneprov_request_duration_seconds",
                "transport" => scheme.as_str()),
            users: users.clone(),
            sessions: sessions.clone(),
            login_throttle: login_throttle.clone(),
            public_https_url: cfg.public_https_url.clone(),
        })
    };

    let mut jobs = jobs::Jobs::new();
    let (control, control_rx) = tokio::sync::mpsc::channel(4);
    if store.notifies() {
        let (st, wake) = (store.clone(), publisher.waker());
        jobs.spawn(|stop| async move { st.follow_notifications(wake, stop).await });
    }
    jobs.spawn(|stop| publisher.run(cfg.poll_every, control_rx, stop));
    let now = Reloaded {
        public_url: cfg.public_url.clone(),
        public_https_url: cfg.public_https_url.clone(),
        listen: (cfg.http.clone(), cfg.tftp.clone(), cfg.https.clone()),
    };
    let reread = cfg.reread.clone();
    jobs.spawn(|stop| jobs::on_hangup(reread, now, public_url.clone(), control, stop));
    if let Some(f) = cfg.settings_file.clone() {
        // Fingerprinted now, before the server says it is ready: a change made after that is
        // always seen.
        let first = jobs::settings_print(&f);
        jobs.spawn(|stop| jobs::watch_settings(f, first, stop));
    }
    jobs.spawn(|stop| jobs::flush(seen, audit, store.clone(), stop));
    if let Some(h) = metrics.clone() {
        jobs.spawn(|stop| jobs::metrics_upkeep(h, stop));
    }
    {
        let sessions = sessions.clone();
        jobs.spawn(|stop| jobs::sweep_sessions(sessions, stop));
    }
    if let Some(every) = cfg.sync_every {
        let (m, dir) = (manager.clone(), cfg.data_dir.clone());
        jobs.spawn(|stop| crate::pbx::keep_in_sync(m, dir, every, stop));
    }
    if let Some(sock) = listeners.tftp {
        let files: Arc<dyn tftp::Files> = Arc::new(resolver.clone());
        let tftp_cfg = cfg.tftp_cfg.clone();
        jobs.spawn(|stop| tftp::run(sock, files, tftp_cfg, stop));
    }
    let https_handle = axum_server::Handle::new();
    let mut https_bound = None;
    let mut https_task = None;
    if let Some(h) = listeners.https {
        let fp = tls::fingerprint(&h.files.cert)?;
        let app = http::router(state_for(crate::resolve::Transport::Https))
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = axum_server::from_tcp_rustls(h.listener, h.config.clone())?
            .handle(https_handle.clone());
        let (config, files) = (h.config, h.files);
        jobs.spawn(|stop| tls::watch(config, files, Duration::from_secs(1), stop));
        https_task = Some(tokio::spawn(async move { server.serve(app).await }));
        https_bound = Some((h.addr, fp));
    }

    on_ready(
        Bound {
            http: addr,
            tftp: listeners.tftp_addr,
            https: https_bound,
        },
        &public_url,
    );
    tracing::info!(%addr, tftp = ?listeners.tftp_addr, %public_url, "serving");
    jobs::notify_systemd(&[sd_notify::NotifyState::Ready]);
    let state = state_for(crate::resolve::Transport::Http);
    let app = http::router(state.clone());
    http_server::serve(listeners.http, app, state, async move {
        shutdown.await;
        jobs::notify_systemd(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutting down");
    })
    .await?;

    // Shutdown: HTTPS drains for up to 5 s, then every job stops (TFTP transfers finish on
    // their own, the last last-seen and audit records are written).
    https_handle.graceful_shutdown(Some(Duration::from_secs(5)));
    if let Some(t) = https_task {
        let _ = t.await;
    }
    jobs.stop().await;
    Ok(())
}
