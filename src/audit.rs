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
    pub const ALL: [FetchResult; 6] = [
        FetchResult::Served,
        FetchResult::NotFound,
        FetchResult::Unauthorized,
        FetchResult::RefusedNetwork,
        FetchResult::RefusedTransport,
        FetchResult::Banned,
    ];

    /// A result by its name, or an error listing the names.
    pub fn parse(s: &str) -> Result<FetchResult, String> {
        let t = s.trim().to_ascii_lowercase();
        FetchResult::ALL
            .into_iter()
            .find(|r| r.as_str() == t)
            .ok_or_else(|| {
                format!(
                    "result '{s}' must be one of {}",
                    FetchResult::ALL.map(|r| r.as_str()).join(", ")
                )
            })
    }

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

    /// Writes what is due in one transaction: new events at once (a first sighting is on
    /// record within a second), further counts of an open row when its minute is over (or
    /// `closing`), so a boot storm costs one write per distinct fetch per minute. On failure
    /// everything stays pending.
    pub async fn flush(&self, store: &Store, now: i64, closing: bool) -> Result<usize, StoreError> {
        let dropped = self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            crate::telemetry::audit_dropped(dropped);
            tracing::warn!(target: "phoneprov::audit", dropped, "audit events dropped: too many distinct fetches at once");
        }
        let (fresh, bumps) = {
            let mut pending = lock(&self.pending);
            let mut rows = lock(&self.rows);
            let mut fresh: Vec<(Event, Tally)> = Vec::new();
            let mut bumps: Vec<(Event, Tally, i64, i64)> = Vec::new();
            pending.retain(|e, t| match rows.get(e) {
                None => {
                    fresh.push((e.clone(), *t));
                    false
                }
                Some((id, opened)) if closing || now - *opened >= MERGE_MS => {
                    bumps.push((e.clone(), *t, *id, *opened));
                    false
                }
                Some(_) => true,
            });
            for (e, ..) in &bumps {
                rows.remove(e);
            }
            // Rows whose minute is over and that saw nothing more.
            rows.retain(|_, (_, opened)| now - *opened < MERGE_MS);
            (fresh, bumps)
        };
        if fresh.is_empty() && bumps.is_empty() {
            return Ok(0);
        }
        let res: Result<Vec<(Event, i64, i64)>, StoreError> = async {
            let mut tx = store.begin().await?;
            for (_, t, id, _) in &bumps {
                crate::store::bump_audit(&mut tx, *id, t.count, t.last).await?;
            }
            let mut opened = Vec::new();
            for (e, t) in &fresh {
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
        let written = fresh.len() + bumps.len();
        match res {
            Ok(opened) => {
                let mut rows = lock(&self.rows);
                for (e, id, at) in opened {
                    rows.insert(e, (id, at));
                }
                Ok(written)
            }
            Err(err) => {
                let mut pending = lock(&self.pending);
                let mut rows = lock(&self.rows);
                for (e, t, id, opened) in bumps {
                    rows.insert(e.clone(), (id, opened));
                    merge(pending.entry(e).or_insert(Tally { count: 0, ..t }), t);
                }
                for (e, t) in fresh {
                    merge(pending.entry(e).or_insert(Tally { count: 0, ..t }), t);
                }
                Err(err)
            }
        }
    }
}

fn merge(slot: &mut Tally, t: Tally) {
    slot.count += t.count;
    slot.first = slot.first.min(t.first);
    slot.last = slot.last.max(t.last);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn identical_fetches_share_a_row_written_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.sqlite")).await.unwrap();
        let b = AuditBuffer::default();
        let ev = |file: &str| Event {
            peer: "127.0.0.9".parse().unwrap(),
            transport: "http",
            site_id: None,
            mac: "805ec0aabbcc".parse().ok(),
            file: file.into(),
            result: FetchResult::NotFound,
            auth: "none",
            auth_generation: None,
        };
        let t0 = 1_000_000;
        b.note(ev("a.cfg"), t0);
        b.note(ev("a.cfg"), t0 + 1);
        b.note(ev("b.cfg"), t0 + 2);
        assert_eq!(
            b.flush(&store, t0 + 10, false).await.unwrap(),
            2,
            "two new rows"
        );
        b.note(ev("a.cfg"), t0 + 20);
        assert_eq!(
            b.flush(&store, t0 + 30, false).await.unwrap(),
            0,
            "a repeat waits for its minute"
        );
        b.note(ev("a.cfg"), t0 + 40);
        assert_eq!(
            b.flush(&store, t0 + MERGE_MS + 1, false).await.unwrap(),
            1,
            "the minute is over: one update"
        );
        let rows = {
            let mut c = store.conn().await.unwrap();
            crate::store::query_audit(&mut c, &Default::default())
                .await
                .unwrap()
        };
        let a = rows.iter().find(|r| r.file == "a.cfg").unwrap();
        assert_eq!((a.count, a.at, a.last_at), (4, t0, t0 + 40));
        // After the minute, the same fetch opens a new row; closing writes what is pending.
        b.note(ev("a.cfg"), t0 + MERGE_MS + 5);
        b.flush(&store, t0 + MERGE_MS + 6, false).await.unwrap();
        b.note(ev("a.cfg"), t0 + MERGE_MS + 7);
        assert_eq!(b.flush(&store, t0 + MERGE_MS + 8, true).await.unwrap(), 1);
        let mut c = store.conn().await.unwrap();
        let rows = crate::store::query_audit(&mut c, &Default::default())
            .await
            .unwrap();
        let counts: Vec<i64> = rows
            .iter()
            .filter(|r| r.file == "a.cfg")
            .map(|r| r.count)
            .collect();
        assert_eq!(counts, vec![2, 4]);
    }
}
