//! The fetch audit, off the request path: every fetch of a sensitive file (anything rendered for
//! a site, and any per-MAC name) is noted in memory and written about once a second. Identical
//! fetches (same peer, transport, site, MAC, file, result and credential) within a minute share
//! one row with a count, so a boot storm or a scan costs a few writes, not one per request.
//! Rows hold no secret: which credential was proved is a word (`current`, `wrong`, ...).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::mac::Mac;
use crate::store::{AuditInsert, Store, StoreError};

/// Identical fetches within this window share a row.
pub const MERGE_MS: i64 = 60_000;
/// Rows older than this are forgotten.
pub const KEEP_MS: i64 = 30 * 24 * 3600 * 1000;
/// Most distinct pending events; beyond it new ones are counted as dropped (a flood).
const MAX_PENDING: usize = 200_000;

/// What happened to a sensitive fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchResult {
    Served,
    NotFound,
    Unauthorized,
    RefusedNetwork,
    RefusedTransport,
    Banned,
}

impl FetchResult {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchResult::Served => "served",
            FetchResult::NotFound => "not-found",
            FetchResult::Unauthorized => "unauthorized",
            FetchResult::RefusedNetwork => "refused-network",
            FetchResult::RefusedTransport => "refused-transport",
            FetchResult::Banned => "banned",
        }
    }
}

/// One fetch, as the resolver saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    pub peer: IpAddr,
    pub transport: &'static str,
    pub site_id: Option<i64>,
    pub mac: Option<Mac>,
    pub file: String,
    pub result: FetchResult,
    /// `current`, `previous`, `missing`, `wrong`, `replayed`, or `none` (site without login).
    pub auth: &'static str,
    pub auth_generation: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    first: i64,
    last: i64,
    count: i64,
}

/// Pending audit events and the rows recent ones went to.
#[derive(Debug, Default)]
pub struct AuditBuffer {
    pending: Mutex<HashMap<Event, Tally>>,
    /// Row id and the time the row was opened, per event, for merging.
    rows: Mutex<HashMap<Event, (i64, i64)>>,
    dropped: std::sync::atomic::AtomicU64,
    last_prune: std::sync::atomic::AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl AuditBuffer {
    pub fn note(&self, e: Event, now: i64) {
        let mut g = lock(&self.pending);
        if let Some(t) = g.get_mut(&e) {
            t.last = now;
            t.count += 1;
            return;
        }
        if g.len() >= MAX_PENDING {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        g.insert(
            e,
            Tally {
                first: now,
                last: now,
                count: 1,
            },
        );
    }

    /// Writes what is pending in one transaction; on failure it stays pending.
    pub async fn flush(&self, store: &Store, now: i64) -> Result<usize, StoreError> {
        let batch: Vec<(Event, Tally)> = lock(&self.pending).drain().collect();
        let dropped = self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(target: "phoneprov::audit", dropped, "audit events dropped: too many distinct fetches at once");
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let open: HashMap<Event, (i64, i64)> = {
            let mut rows = lock(&self.rows);
            rows.retain(|_, (_, opened)| now - *opened < MERGE_MS);
            batch
                .iter()
                .filter_map(|(e, _)| rows.get(e).map(|r| (e.clone(), *r)))
                .collect()
        };
        let res: Result<Vec<(Event, i64, i64)>, StoreError> = async {
            let mut tx = store.begin().await?;
            let mut opened = Vec::new();
            for (e, t) in &batch {
                match open.get(e) {
                    Some((id, _)) => {
                        crate::store::bump_audit(&mut tx, *id, t.count, t.last).await?
                    }
                    None => {
                        let peer = e.peer.to_string();
                        let mac = e.mac.map(|m| m.to_string());
                        let id = crate::store::insert_audit(
                            &mut tx,
                            &AuditInsert {
                                at: t.first,
                                last_at: t.last,
                                count: t.count,
                                peer: &peer,
                                transport: e.transport,
                                site_id: e.site_id,
                                mac: mac.as_deref(),
                                file: &e.file,
                                result: e.result.as_str(),
                                auth: e.auth,
                                auth_generation: e.auth_generation,
                            },
                        )
                        .await?;
                        opened.push((e.clone(), id, t.first));
                    }
                }
            }
            let last = self.last_prune.load(std::sync::atomic::Ordering::Relaxed);
            if now - last > 3600 * 1000 {
                crate::store::prune_audit(&mut tx, now - KEEP_MS).await?;
                self.last_prune
                    .store(now, std::sync::atomic::Ordering::Relaxed);
            }
            crate::store::commit(tx).await?;
            Ok(opened)
        }
        .await;
        match res {
            Ok(opened) => {
                let mut rows = lock(&self.rows);
                for (e, id, at) in opened {
                    rows.insert(e, (id, at));
                }
                Ok(batch.len())
            }
            Err(err) => {
                let mut g = lock(&self.pending);
                for (e, t) in batch {
                    let slot = g.entry(e).or_insert(Tally { count: 0, ..t });
                    slot.count += t.count;
                    slot.first = slot.first.min(t.first);
                    slot.last = slot.last.max(t.last);
                }
                Err(err)
            }
        }
    }
}
