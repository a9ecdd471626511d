//! Last-seen bookkeeping off the request path: a request only overwrites an entry in memory;
//! a background flush writes the batch in one transaction about once a second. A boot storm
//! of thousands of requests costs one small write per phone per second, at most.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::mac::Mac;
use crate::model::Seen;
use crate::store::{Store, StoreError, record_seen};

/// Pending last-seen records, newest per phone.
#[derive(Debug, Default)]
pub struct SeenBuffer {
    pending: Mutex<HashMap<Mac, Seen>>,
}

impl SeenBuffer {
    pub fn record(&self, mac: Mac, seen: Seen) {
        let mut g = match self.pending.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.insert(mac, seen);
    }

    /// Writes what is pending; returns how many phones were written. On failure the batch is
    /// put back (newer records win) so nothing is lost to a busy database.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let batch: Vec<(Mac, Seen)> = {
            let mut g = match self.pending.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            g.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let res = async {
            let mut tx = store.begin().await?;
            record_seen(&mut tx, &batch).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(e) = res {
            let mut g = match self.pending.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            for (mac, s) in batch {
                g.entry(mac).or_insert(s);
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}
