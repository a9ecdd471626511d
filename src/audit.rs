//! The fetch audit, off the request path: every fetch of a sensitive file (anything rendered for
//! a site, and any per-MAC name) is noted in memory and written about once a second. Identical
//! fetches (same peer, transport, site, MAC, file, result and credential) within a minute share
//! one row with a count, so a boot storm or a scan costs a few writes, not one per request.
//! Rows hold no secret: which credential was proved is a word (`current`, `wrong`, ...).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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

/// One fetch, as the resolver saw it. The file name is borrowed from the request: it is
/// copied only when the event opens a row, not on every repeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event<'a> {
    pub peer: IpAddr,
    pub transport: &'static str,
    pub site_id: Option<i64>,
    pub mac: Option<Mac>,
    pub file: Cow<'a, str>,
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

/// An event's identity in the merge maps: 128 bits of two independently keyed hashes of it,
/// so a minute of distinct fetches costs a few dozen bytes each, not a copy of each event
/// (a chance collision would put one fetch's count on another's row: about 2^-100 a minute).
type Key = u128;

/// Maps of [`Key`]s hash one by taking 64 of its bits: it is already a keyed hash, and hashing
/// it again was three more SipHash runs on every fetch.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, k: u128) {
        self.0 = k as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// A row of the last minute: its id, when it was opened, and the fetches of its event since
/// (added to it when its minute is over).
#[derive(Debug, Clone, Copy)]
struct Open {
    id: i64,
    opened: i64,
    bump: Option<Tally>,
}

/// Most open rows remembered for merging; beyond it a repeat opens a row of its own (more
/// writes, no more memory).
const MAX_OPEN_ROWS: usize = 500_000;

/// What the buffer holds between flushes.
#[derive(Debug, Default)]
struct Held {
    /// Events with no open row: written as new rows at the next flush.
    fresh: KeyMap<(Event<'static>, Tally)>,
    /// Rows of the last minute. A repeat of an open row's event is one lookup here.
    open: KeyMap<Open>,
    /// How many open rows hold fetches not yet written.
    bumps: usize,
}

impl Held {
    /// Gives back table memory after a storm: a map keeps its largest size otherwise.
    fn shrink(&mut self) {
        fn fit<V>(m: &mut KeyMap<V>) {
            if m.capacity() > 4 * m.len() + 1024 {
                m.shrink_to(2 * m.len());
            }
        }
        fit(&mut self.fresh);
        fit(&mut self.open);
    }
}

/// Pending audit events and the rows recent ones went to.
#[derive(Debug, Default)]
pub struct AuditBuffer {
    held: Mutex<Held>,
    keys: (
        foldhash::quality::RandomState,
        foldhash::quality::RandomState,
    ),
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
    /// The event's key: its fields laid out in a fixed-width record (the file name after it,
    /// its length in the record), hashed under both keys. Two hasher calls per key instead of
    /// the dozen a derived hash makes, which made this the costliest step of a fetch.
    fn key(&self, e: &Event) -> Key {
        use std::hash::BuildHasher;
        let mut fixed = [0u8; 96];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            fixed[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        match e.peer {
            IpAddr::V4(a) => put(&a.to_ipv6_mapped().octets()),
            IpAddr::V6(a) => put(&a.octets()),
        }
        put(&[u8::from(e.peer.is_ipv4())]);
        put(&word(e.transport));
        put(&e.site_id.map_or([0; 9], |v| tagged(v.to_le_bytes())));
        put(&e.mac.map_or([0; 9], |m| tagged(m.as_u64().to_le_bytes())));
        put(&[e.result as u8]);
        put(&word(e.auth));
        put(&e
            .auth_generation
            .map_or([0; 9], |v| tagged(v.to_le_bytes())));
        put(&(e.file.len() as u64).to_le_bytes());
        let hash = |k: &foldhash::quality::RandomState| {
            let mut h = k.build_hasher();
            h.write(&fixed[..at]);
            h.write(e.file.as_bytes());
            h.finish()
        };
        (u128::from(hash(&self.keys.0)) << 64) | u128::from(hash(&self.keys.1))
    }

    pub fn note(&self, e: Event<'_>, now: i64) {
        let k = self.key(&e);
        let mut g = lock(&self.held);
        let h = &mut *g;
        let full = h.fresh.len() + h.bumps >= MAX_PENDING;
        let first = Tally {
            first: now,
            last: now,
            count: 1,
        };
        if let Some(o) = h.open.get_mut(&k) {
            match &mut o.bump {
                Some(t) => {
                    t.last = now;
                    t.count += 1;
                }
                None if full => {
                    self.dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                None => {
                    o.bump = Some(first);
                    h.bumps += 1;
                }
            }
            return;
        }
        if let Some((_, t)) = h.fresh.get_mut(&k) {
            t.last = now;
            t.count += 1;
            return;
        }
        if full {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let e = Event {
            file: Cow::Owned(e.file.into_owned()),
            ..e
        };
        h.fresh.insert(k, (e, first));
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
            let fresh: Vec<(Key, Event<'static>, Tally)> =
                h.fresh.drain().map(|(k, (e, t))| (k, e, t)).collect();
            let mut bumps: Vec<(Key, Tally, i64, i64)> = Vec::new();
            // Rows whose minute is over close: with their further fetches, if any.
            h.open.retain(|k, o| {
                if !closing && now - o.opened < MERGE_MS {
                    return true;
                }
                if let Some(t) = o.bump {
                    bumps.push((*k, t, o.id, o.opened));
                }
                false
            });
            h.bumps -= bumps.len();
            h.shrink();
            (fresh, bumps)
        };
        if fresh.is_empty() && bumps.is_empty() {
            return Ok(0);
        }
        let res: Result<Vec<(Key, i64, i64)>, StoreError> = async {
            let mut tx = store.begin().await?;
            let bumped: Vec<(i64, i64, i64)> = bumps
                .iter()
                .map(|(_, t, id, _)| (*id, t.count, t.last))
                .collect();
            crate::store::bump_audits(&mut tx, &bumped).await?;
            let strings: Vec<(String, Option<String>)> = fresh
                .iter()
                .map(|(_, e, _)| (e.peer.to_string(), e.mac.map(|m| m.to_string())))
                .collect();
            let rows: Vec<AuditInsert<'_>> = fresh
                .iter()
                .zip(&strings)
                .map(|((_, e, t), (peer, mac))| AuditInsert {
                    at: t.first,
                    last_at: t.last,
                    count: t.count,
                    peer,
                    transport: e.transport,
                    site_id: e.site_id,
                    mac: mac.as_deref(),
                    file: &e.file,
                    result: e.result.as_str(),
                    auth: e.auth,
                    auth_generation: e.auth_generation,
                })
                .collect();
            let ids = crate::store::insert_audits(&mut tx, &rows).await?;
            let opened: Vec<(Key, i64, i64)> = fresh
                .iter()
                .zip(ids)
                .map(|((k, _, t), id)| (*k, id, t.first))
                .collect();
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
                        let row = Open {
                            id,
                            opened: at,
                            bump: None,
                        };
                        h.open.insert(k, row);
                    }
                }
                Ok(written)
            }
            Err(err) => {
                for (k, t, id, opened) in bumps {
                    let o = h.open.entry(k).or_insert(Open {
                        id,
                        opened,
                        bump: None,
                    });
                    match &mut o.bump {
                        Some(held) => merge(held, t),
                        None => {
                            o.bump = Some(t);
                            h.bumps += 1;
                        }
                    }
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

/// One of the resolver's short names (a transport, a credential's outcome: at most 8 bytes)
/// as its length and bytes, cut at 16.
fn word(w: &str) -> [u8; 17] {
    let mut out = [0u8; 17];
    let b = &w.as_bytes()[..w.len().min(16)];
    out[0] = w.len() as u8;
    out[1..1 + b.len()].copy_from_slice(b);
    out
}

/// A present optional value: a tag, then its 8 bytes.
fn tagged(v: [u8; 8]) -> [u8; 9] {
    let mut out = [1u8; 9];
    out[1..].copy_from_slice(&v);
    out
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
        let ev = |file: &'static str| Event {
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

    /// Events that differ in any one field have different keys; equal events, equal keys.
    #[test]
    fn every_field_is_in_the_key() {
        let b = AuditBuffer::default();
        let base = Event {
            peer: "10.0.0.1".parse().unwrap(),
            transport: "http",
            site_id: Some(1),
            mac: "805ec0000001".parse().ok(),
            file: "805ec0000001.cfg".into(),
            result: FetchResult::Served,
            auth: "none",
            auth_generation: None,
        };
        let variants = [
            Event {
                peer: "::ffff:10.0.0.2".parse().unwrap(),
                ..base.clone()
            },
            Event {
                peer: "::ffff:10.0.0.1".parse().unwrap(),
                ..base.clone()
            },
            Event {
                transport: "https",
                ..base.clone()
            },
            Event {
                site_id: None,
                ..base.clone()
            },
            Event {
                site_id: Some(0),
                ..base.clone()
            },
            Event {
                mac: None,
                ..base.clone()
            },
            Event {
                file: "805ec0000001.boot".into(),
                ..base.clone()
            },
            Event {
                result: FetchResult::NotFound,
                ..base.clone()
            },
            Event {
                auth: "current",
                ..base.clone()
            },
            Event {
                auth_generation: Some(1),
                ..base.clone()
            },
        ];
        let mut keys: Vec<Key> = variants.iter().map(|e| b.key(e)).collect();
        keys.push(b.key(&base));
        assert_eq!(b.key(&base.clone()), b.key(&base));
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n, "a changed field changes the key");
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
            file: format!("805ec0{i:06x}.cfg").into(),
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
            assert_eq!((h.fresh.len(), h.bumps, h.open.len()), (0, 20_000, 20_000));
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
            assert_eq!((h.fresh.len(), h.bumps, h.open.len()), (0, 0, 0));
            assert!(
                h.fresh.capacity() + h.open.capacity() < 4096,
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
