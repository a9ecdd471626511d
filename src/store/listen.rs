//! Being told of changes as they commit: PostgreSQL's LISTEN on the channel the change log's
//! trigger notifies (migration 0011). Notifications sent while the listener is reconnecting
//! are lost, so every (re)connect wakes the follower too: it re-reads the log, which is the
//! truth; the follower's own poll stays as the floor under both.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use super::{Location, Store};

/// The channel `changes_notify` sends on.
const CHANNEL: &str = "phoneprov_changes";

impl Store {
    /// Whether this database can tell of its changes (PostgreSQL); SQLite has only the poll.
    pub fn notifies(&self) -> bool {
        matches!(self.location(), Location::Postgres(_))
    }

    /// Wakes `wake` whenever a change commits, until `stop` resolves. Returns at once on a
    /// database that does not notify.
    pub async fn follow_notifications(
        &self,
        wake: Arc<Notify>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let Location::Postgres(url) = self.location() else {
            return;
        };
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(250);
        loop {
            let connected = async {
                let mut l = PgListener::connect(url).await?;
                // A lost connection is ours to re-establish (below), not try_recv's.
                l.eager_reconnect(false);
                l.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            };
            let mut listener = tokio::select! {
                _ = &mut stop => return,
                l = connected => match l {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                            "cannot listen for change notifications; following the change log by polling meanwhile");
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            tracing::info!("listening for change notifications");
            backoff = Duration::from_millis(250);
            // Whatever was sent before this connection listened: read the log now.
            wake.notify_one();
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    n = listener.try_recv() => match n {
                        Ok(Some(_)) => wake.notify_one(),
                        // The connection went. PgListener would reconnect by itself (its
                        // pool retrying until the database is back), silently and with no
                        // wake once it listens again: reconnect here instead, so every
                        // reconnect is logged, backs off while the database is down, and
                        // wakes the follower once listening (what was sent in between is
                        // lost: the log is re-read then).
                        Ok(None) => {
                            tracing::warn!("change notifications: connection lost; reconnecting");
                            wake.notify_one();
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "change notifications failed; reconnecting");
                            wake.notify_one();
                            break;
                        }
                    },
                }
            }
        }
    }
}
