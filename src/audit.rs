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

/// An event's identity in the merge maps: 128 bits of two independently keyed SipHashes of it,
/// so a minute of distinct fetches costs a few dozen bytes each, not a copy of each event
/// (a chance collision would put one fetch's count on another's row: about 2^-100 a minute).
type Key = u128;

/// Most open rows remembered for merging; beyond it a repeat opens a row of its own (more
/// writes, no more memory).
const MAX_OPEN_ROWS: usize = 500_000;

/// What the buffer holds between flushes.
#[derive(Debug, Default)]
struct Held {
    /// Events with no open row: written as new rows at the next flush.
    fresh: HashMap<Key, (Event, Tally)>,
    /// Further fetches of an open row's event: added to it when its minute is over.
    bumps: HashMap<Key, Tally>,
    /// Rows of the last minute: id and when the row was opened.
    open: HashMap<Key, (i64, i64)>,
}

impl Held {
    /// Gives back table memory after a storm: a map keeps its largest size otherwise.
    fn shrink(&mut self) {
        fn fit<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
            if m.capacity() > 4 * m.len() + 1024 {
                m.shrink_to(2 * m.len());
            }
        }
        fit(&mut self.fresh);
        fit(&mut self.bumps);
        fit(&mut self.open);
    }
}

/// Pending audit events and the rows recent ones went to.
#[derive(Debug, Default)]
pub struct AuditBuffer {
    held: Mutex<Held>,
    keys: (std::hash::RandomState, std::hash::RandomState),
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
    fn key(&self, e: &Event) -> Key {
        use std::hash::BuildHasher;
        let (a, b) = (self.keys.0.hash_one(e), self.keys.1.hash_one(e));
        (u128::from(a) << 64) | u128::from(b)
    }

    pub fn note(&self, e: Event, now: i64) {
        let k = self.key(&e);
        let mut g = lock(&self.held);
        let h = &mut *g;
        if let Some((_, t)) = h.fresh.get_mut(&k) {
            t.last = now;
            t.count += 1;
            return;
        }
        let full = h.fresh.len() + h.bumps.len() >= MAX_PENDING;
        if h.open.contains_key(&k) {
            match h.bumps.get_mut(&k) {
                Some(t) => {
                    t.last = now;
                    t.count += 1;
                }
                None if full => {
                    self.dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                None => {
                    h.bumps.insert(
                        k,
                        Tally {
                            first: now,
                            last: now,
                            count: 1,
                        },
                    );
                }
            }
            return;
        }
        if full {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        h.fresh.insert(
            k,
            (
                e,
                Tally {
                    first: now,
                    last: now,
                    count: 1,
                },
            ),
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
            let mut g = lock(&self.held);
            let h = &mut *g;
            let fresh: Vec<(Key, Event, Tally)> =
                h.fresh.drain().map(|(k, (e, t))| (k, e, t)).collect();
            let mut bumps: Vec<(Key, Tally, i64, i64)> = Vec::new();
            let open = &mut h.open;
            h.bumps.retain(|k, t| match open.get(k) {
                Some(&(id, opened)) if closing || now - opened >= MERGE_MS => {
                    bumps.push((*k, *t, id, opened));
                    false
                }
                Some(_) => true,
                // Cannot happen (a bump's row stays open until the bump is written); kept
                // rather than lost.
                None => true,
            });
            for (k, ..) in &bumps {
                open.remove(k);
            }
            // Rows whose minute is over and that saw nothing more.
            let bumps_held = &h.bumps;
            open.retain(|k, (_, opened)| now - *opened < MERGE_MS || bumps_held.contains_key(k));
            h.shrink();
            (fresh, bumps)
        };
        if fresh.is_empty() && bumps.is_empty() {
            return Ok(0);
        }
        let res: Result<Vec<(Key, i64, i64)>, StoreError> = async {
            let mut tx = store.begin().await?;
            for (_, t, id, _) in &bumps {
                crate::store::bump_audit(&mut tx, *id, t.count, t.last).await?;
            }
            let mut opened = Vec::new();
            for (k, e, t) in &fresh {
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
                opened.push((*k, id, t.first));
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
        let mut g = lock(&self.held);
        let h = &mut *g;
        match res {
            Ok(opened) => {
                for (k, id, at) in opened {
                    if h.open.len() < MAX_OPEN_ROWS {
                        h.open.insert(k, (id, at));
                    }
                }
                Ok(written)
            }
            Err(err) => {
                for (k, t, id, opened) in bumps {
                    h.open.insert(k, (id, opened));
                    merge(h.bumps.entry(k).or_insert(Tally { count: 0, ..t }), t);
                }
                for (k, e, t) in fresh {
                    let slot = h.fresh.entry(k).or_insert((e, Tally { count: 0, ..t }));
                    merge(&mut slot.1, t);
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

    /// A storm's distinct fetches are held as 128-bit keys for their minute, then let go: the
    /// tables shrink back instead of keeping the storm's size for good.
    #[tokio::test]
    async fn a_storm_is_remembered_compactly_and_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.sqlite")).await.unwrap();
        let b = AuditBuffer::default();
        let ev = |i: u32| Event {
            peer: "10.0.0.1".parse().unwrap(),
            transport: "http",
            site_id: Some(1),
            mac: format!("805ec0{i:06x}").parse().ok(),
            file: format!("805ec0{i:06x}.cfg"),
            result: FetchResult::Served,
            auth: "none",
            auth_generation: None,
        };
        let t0 = 5_000_000;
        for i in 0..20_000 {
            b.note(ev(i), t0);
        }
        assert_eq!(b.flush(&store, t0 + 1, false).await.unwrap(), 20_000);
        // The same storm again within the minute: counts only, no copies of the events.
        for i in 0..20_000 {
            b.note(ev(i), t0 + 10);
        }
        {
            let h = lock(&b.held);
            assert_eq!(
                (h.fresh.len(), h.bumps.len(), h.open.len()),
                (0, 20_000, 20_000)
            );
        }
        assert_eq!(b.flush(&store, t0 + 20, false).await.unwrap(), 0);
        assert_eq!(
            b.flush(&store, t0 + MERGE_MS + 1, false).await.unwrap(),
            20_000,
            "each row's second count, once its minute is over"
        );
        b.flush(&store, t0 + 2 * MERGE_MS + 2, false).await.unwrap();
        {
            let h = lock(&b.held);
            assert_eq!((h.fresh.len(), h.bumps.len(), h.open.len()), (0, 0, 0));
            assert!(
                h.fresh.capacity() + h.bumps.capacity() + h.open.capacity() < 4096,
                "tables shrink back after the storm"
            );
        }
        let mut c = store.conn().await.unwrap();
        let rows = crate::store::query_audit(
            &mut c,
            &crate::store::AuditFilter {
                limit: Some(10_000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(
            rows.iter().all(|r| r.count == 2),
            "every row counted both fetches"
        );
    }
}
