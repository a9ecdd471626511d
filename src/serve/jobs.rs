//! The server's background jobs: each one a task that runs until the shared stop signal, then
//! finishes what it holds (the flush writes the last records). Also two of the jobs themselves:
//! the last-seen and audit flush, and the settings-file watch.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::AuditBuffer;
use crate::lastseen::SeenBuffer;
use crate::store::Store;

/// Running jobs and the signal that stops them.
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Resolves once the jobs are told to stop.
pub type Stop = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl Jobs {
    pub fn new() -> Jobs {
        Jobs {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Starts `job`, handing it the stop signal.
    pub fn spawn<F, Fut>(&mut self, job: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut rx = self.stop.subscribe();
        let stop: Stop = Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        });
        self.tasks.push(tokio::spawn(job(stop)));
    }

    /// Tells every job to stop and waits for each to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Tells systemd (when it started us with `NOTIFY_SOCKET`) how the server is doing.
pub fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(states)
    {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

/// On SIGHUP (`systemctl reload phoneprov`): reads the settings again and applies what can
/// change live — the public URLs, by re-rendering every site — says which changes need a
/// restart (listen addresses), and has the publisher look for template, policy and data
/// changes at once. Certificates are re-read within a second of changing, signal or not.
pub async fn on_hangup(
    reread: Option<super::Reread>,
    mut now: super::Reloaded,
    bound_url: String,
    control: tokio::sync::mpsc::Sender<crate::publish::Control>,
    stop: Stop,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("SIGHUP cannot be handled here: reload by restarting");
        return;
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            got = hup.recv() => if got.is_none() { return },
        }
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(t) => notify_systemd(&[sd_notify::NotifyState::Reloading, t]),
            Err(_) => notify_systemd(&[sd_notify::NotifyState::Reloading]),
        }
        tracing::info!("SIGHUP: reloading");
        if let Some(r) = &reread {
            match (r.0)() {
                Ok(new) => {
                    if new.listen != now.listen {
                        tracing::warn!(now = ?now.listen, wanted = ?new.listen,
                            "listen addresses changed in the settings: restart `phoneprov serve` to apply them");
                    }
                    if (&new.public_url, &new.public_https_url)
                        != (&now.public_url, &now.public_https_url)
                    {
                        let http = new.public_url.clone().unwrap_or_else(|| bound_url.clone());
                        let urls = crate::render::Urls::new(&http, new.public_https_url.as_deref());
                        let _ = control.send(crate::publish::Control::Urls(urls)).await;
                    }
                    now = new;
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the settings could not be read; nothing changed")
                }
            }
        }
        let _ = control.send(crate::publish::Control::Poll).await;
        notify_systemd(&[sd_notify::NotifyState::Ready]);
    }
}

/// How often the exporter folds recorded samples into its histograms. Until then it holds
/// every sample (8 bytes each, in blocks allocated as they fill): at 100,000 requests a second
/// five seconds of them were 4 MiB of memory rising and falling (`scripts/bench-http`, 10,000
/// phones: live heap 18-25 MiB, flat at 18 with a second).
const METRICS_UPKEEP: Duration = Duration::from_secs(1);

/// Keeps the Prometheus histograms bounded (the exporter's periodic upkeep).
pub async fn metrics_upkeep(h: metrics_exporter_prometheus::PrometheusHandle, stop: Stop) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(METRICS_UPKEEP);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => h.run_upkeep(),
        }
    }
}

/// Removes expired console sessions every ten minutes (a session is checked on use anyway:
/// this only keeps the table small).
pub async fn sweep_sessions(sessions: crate::users::sessions::Sessions, stop: Stop) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => match sessions.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(sessions = n, "expired console sessions removed"),
                Err(e) => tracing::warn!(error = %e, "cannot remove expired console sessions"),
            },
        }
    }
}

/// Writes pending last-seen and audit records every second, and once more when stopping. A
/// failure (a full disk, a locked database) keeps the records for the next try and is logged
/// once when it starts, with the error, and once when writing works again.
pub async fn flush(seen: Arc<SeenBuffer>, audit: Arc<AuditBuffer>, store: Store, stop: Stop) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        let stopping = tokio::select! {
            _ = &mut stop => true,
            _ = tick.tick() => false,
        };
        let started = std::time::Instant::now();
        let result = write_pending(&seen, &audit, &store, stopping).await;
        if let Ok((seen_rows, audit_rows)) = &result
            && seen_rows + audit_rows > 0
        {
            tracing::debug!(
                seen_rows,
                audit_rows,
                ms = started.elapsed().as_millis() as u64,
                "last-seen and fetch audit written"
            );
        }
        let result = result.map(|_| ());
        match (result, failing_since) {
            (Ok(()), Some(t)) => {
                tracing::warn!(
                    after_s = t.elapsed().as_secs(),
                    "last-seen and fetch audit written again: nothing was lost"
                );
                failing_since = None;
            }
            (Ok(()), None) => {}
            (Err(e), None) => {
                crate::telemetry::flush_failed();
                tracing::warn!(error = %e,
                    "last-seen and fetch audit not written: kept in memory and retried every second (phones are still served)");
                failing_since = Some(std::time::Instant::now());
            }
            (Err(e), Some(_)) => {
                crate::telemetry::flush_failed();
                tracing::debug!(error = %e, "last-seen and audit: still failing")
            }
        }
        if stopping {
            return;
        }
    }
}

/// One flush of last-seen and the audit: (last-seen rows, audit rows). Driven on a blocking
/// thread of its own, not as one more task on the workers: during a boot storm each of its
/// thousands of statements would otherwise wait its turn behind every connection's task, a
/// flush took seconds, and what was pending meanwhile piled up in memory.
async fn write_pending(
    seen: &Arc<SeenBuffer>,
    audit: &Arc<AuditBuffer>,
    store: &Store,
    stopping: bool,
) -> Result<(usize, usize), crate::store::StoreError> {
    let (seen, audit, store) = (seen.clone(), audit.clone(), store.clone());
    let rt = tokio::runtime::Handle::current();
    let job = tokio::task::spawn_blocking(move || {
        rt.block_on(async {
            let seen_rows = seen.flush(&store).await?;
            let audit_rows = audit
                .flush(&store, crate::store::now_ms(), stopping)
                .await?;
            Ok((seen_rows, audit_rows))
        })
    });
    match job.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(crate::store::StoreError::Stopped(format!(
            "last-seen and audit writer did not run: {e}"
        ))),
    }
}

pub type SettingsPrint = Option<(u64, Option<std::time::SystemTime>)>;

pub fn settings_print(f: &std::path::Path) -> SettingsPrint {
    std::fs::metadata(f)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// Says, once per change, that the settings file changed and `serve` must restart to apply it:
/// public URLs and listen addresses are read at start (data, templates, the firmware policy and
/// certificates are picked up live).
pub async fn watch_settings(
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
                "the settings file changed: `systemctl reload phoneprov` (SIGHUP) applies public URLs; listen addresses need a restart (sites, phones, templates, the firmware policy and certificates need neither)");
        }
    }
}
