//! `run`: binds every transport, starts the background jobs (publisher, last-seen flush),
//! serves until `shutdown` resolves, then drains and flushes.

mod api_errors;
mod firmware_api;
pub mod http;
pub mod tftp;
pub mod tls;
mod ymcs_api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};

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
}

/// Where the server listens, once bound.
#[derive(Debug, Clone)]
pub struct Bound {
    pub http: SocketAddr,
    pub tftp: Option<SocketAddr>,
    /// The HTTPS address and the certificate's SHA-256 fingerprint.
    pub https: Option<(SocketAddr, String)>,
}

type SettingsPrint = Option<(u64, Option<std::time::SystemTime>)>;

fn settings_print(f: &std::path::Path) -> SettingsPrint {
    std::fs::metadata(f)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// Says, once per change, that the settings file changed and `serve` must restart to apply it:
/// public URLs and listen addresses are read at start (data, templates, the firmware policy and
/// certificates are picked up live).
async fn watch_settings(
    file: std::path::PathBuf,
    first: SettingsPrint,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut last = first;
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let now = settings_print(&file);
        if now != last {
            last = now;
            tracing::warn!(file = %file.display(),
                "the settings file changed: restart `phoneprov serve` to apply it (public URLs and listen addresses are read at start; sites, phones, templates, the firmware policy and certificates need no restart)");
        }
    }
}

/// A listener that could not be bound, with the flag that chooses another address.
fn bind_error(addr: String, source: std::io::Error, flag: &str) -> ServeError {
    let hint = match source.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!(" (another server, or another phoneprov, holds it: choose another with {flag})")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; or choose another with {flag})"
        ),
        _ => String::new(),
    };
    ServeError::Bind { addr, source, hint }
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
}

/// The host of a URL, `http://host:port/...` → `host`.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split("://").nth(1)?;
    let host = rest.split('/').next()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Runs the server. `on_ready` is called with the bound address once phones can be served.
pub async fn run(
    store: Store,
    cfg: ServeConfig,
    on_ready: impl FnOnce(Bound, &str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(&cfg.http)
        .await
        .map_err(|source| bind_error(cfg.http.clone(), source, "--http ADDR:PORT"))?;
    let addr = listener.local_addr()?;
    let tftp_sock = match &cfg.tftp {
        Some(a) => Some(UdpSocket::bind(a).await.map_err(|source| {
            bind_error(
                format!("udp {a}"),
                source,
                "--tftp ADDR:PORT, or --tftp off",
            )
        })?),
        None => None,
    };
    let tftp_addr = tftp_sock.as_ref().map(|s| s.local_addr()).transpose()?;
    let https = match &cfg.https {
        Some(a) => {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let files = match &cfg.tls_files {
                Some(f) => f.clone(),
                None => {
                    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
                    if let Some(h) = cfg.public_url.as_deref().and_then(url_host) {
                        hosts.push(h);
                    }
                    tls::self_signed(&cfg.data_dir.join("tls"), &hosts)?
                }
            };
            let config = tls::load(&files).await?;
            let std_listener = std::net::TcpListener::bind(a)
                .map_err(|source| bind_error(a.clone(), source, "--https ADDR:PORT"))?;
            std_listener.set_nonblocking(true)?;
            let addr = std_listener.local_addr()?;
            Some((std_listener, config, files, addr))
        }
        None => None,
    };
    let public_url = cfg.public_url.clone().unwrap_or_else(|| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        format!("http://{host}:{}", addr.port())
    });

    let ready = Arc::new(Ready::default());
    let publisher = Publisher::start(
        store.clone(),
        ready.clone(),
        &crate::render::Urls::new(&public_url, cfg.public_https_url.as_deref()),
        cfg.template_dir.clone(),
        cfg.data_dir.clone(),
    )
    .await?;
    let renderer = publisher.renderer();
    let policy = publisher.policy();
    let seen = Arc::new(SeenBuffer::default());
    let audit = Arc::new(crate::audit::AuditBuffer::default());
    let resolver = {
        let r = Resolver::new(ready.clone(), seen.clone(), Some(cfg.files_dir.clone()))
            .with_audit(audit.clone());
        match cfg.guard {
            Some(g) => r.with_guard(g),
            None => r.with_guard(crate::access::GuardConfig {
                threshold: u32::MAX,
                ..Default::default()
            }),
        }
    };
    let manager = Manager {
        store: store.clone(),
        renderer,
        policy,
        firmware_dir: cfg.data_dir.join("firmware"),
    };
    let admin_tokens = Arc::new(crate::tokens::TokenFile::new(
        cfg.data_dir.join(crate::tokens::FILE),
    ));
    let state_for = |scheme| {
        http::AppState::new(http::AppInner {
            resolver: resolver.clone(),
            manager: manager.clone(),
            admin_tokens: admin_tokens.clone(),
            upload_cap: cfg.upload_cap,
            scheme,
            data_dir: cfg.data_dir.clone(),
        })
    };
    let state = state_for(crate::resolve::Transport::Http);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let pub_task = tokio::spawn(publisher.run(cfg.poll_every, wait_stop(stop_rx.clone())));
    if let Some(f) = cfg.settings_file.clone() {
        // Fingerprinted now, before the server says it is ready: a change made after that is
        // always seen.
        let first = settings_print(&f);
        tokio::spawn(watch_settings(f, first, wait_stop(stop_rx.clone())));
    }
    let flush_task = {
        let (seen, audit, store, stop) = (
            seen.clone(),
            audit.clone(),
            store.clone(),
            wait_stop(stop_rx.clone()),
        );
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let stopping = tokio::select! {
                    _ = &mut stop => true,
                    _ = tick.tick() => false,
                };
                if let Err(e) = seen.flush(&store).await {
                    tracing::warn!(error = %e, "last-seen not written yet; will retry");
                }
                if let Err(e) = audit.flush(&store, crate::store::now_ms(), stopping).await {
                    tracing::warn!(error = %e, "fetch audit not written yet; will retry");
                }
                if stopping {
                    return;
                }
            }
        })
    };

    let sync_task = cfg.sync_every.map(|every| {
        tokio::spawn(crate::pbx::keep_in_sync(
            manager.clone(),
            cfg.data_dir.clone(),
            every,
            wait_stop(stop_rx.clone()),
        ))
    });

    let tftp_task = tftp_sock.map(|sock| {
        let files: Arc<dyn tftp::Files> = Arc::new(state.resolver.clone());
        tokio::spawn(tftp::run(
            sock,
            files,
            cfg.tftp_cfg.clone(),
            wait_stop(stop_rx.clone()),
        ))
    });

    let https_handle = axum_server::Handle::new();
    let (https_task, https_bound) = match https {
        Some((listener, config, files, https_addr)) => {
            let fp = tls::fingerprint(&files.cert)?;
            let app = http::router(state_for(crate::resolve::Transport::Https))
                .into_make_service_with_connect_info::<SocketAddr>();
            let server = axum_server::from_tcp_rustls(listener, config.clone())?
                .handle(https_handle.clone());
            let watcher = tokio::spawn(tls::watch(
                config,
                files,
                Duration::from_secs(1),
                wait_stop(stop_rx.clone()),
            ));
            (
                Some((
                    tokio::spawn(async move { server.serve(app).await }),
                    watcher,
                )),
                Some((https_addr, fp)),
            )
        }
        None => (None, None),
    };

    on_ready(
        Bound {
            http: addr,
            tftp: tftp_addr,
            https: https_bound,
        },
        &public_url,
    );
    tracing::info!(%addr, tftp = ?tftp_addr, %public_url, "serving");
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
        })
        .await;
    let _ = stop_tx.send(true);
    https_handle.graceful_shutdown(Some(Duration::from_secs(5)));
    if let Some((server, watcher)) = https_task {
        let _ = server.await;
        let _ = watcher.await;
    }
    let _ = pub_task.await;
    if let Some(t) = tftp_task {
        let _ = t.await;
    }
    let _ = flush_task.await;
    if let Some(t) = sync_task {
        let _ = t.await;
    }
    served?;
    Ok(())
}
