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
        let result = match seen.flush(&store).await {
            Ok(_) => audit
                .flush(&store, crate::store::now_ms(), stopping)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
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
                tracing::warn!(error = %e,
                    "last-seen and fetch audit not written: kept in memory and retried every second (phones are still served)");
                failing_since = Some(std::time::Instant::now());
            }
            (Err(e), Some(_)) => tracing::debug!(error = %e, "last-seen and audit: still failing"),
        }
        if stopping {
            return;
        }
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
                "the settings file changed: restart `phoneprov serve` to apply it (public URLs and listen addresses are read at start; sites, phones, templates, the firmware policy and certificates need no restart)");
        }
    }
}
