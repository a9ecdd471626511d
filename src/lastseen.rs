//! Last-seen bookkeeping off the request path. A request only updates a small raw record in
//! memory (in place, without allocating when the phone fetches the same file again); a
//! background flush parses the User-Agents and writes the batch in one transaction about once
//! a second. A sighting that only repeats the last written one (same file, peer, transport and
//! User-Agent) is written again only after [`REWRITE_AFTER_MS`], so a phone polling in a loop
//! or a boot storm costs at most one small write per phone per flush, usually none; such a
//! repeat is told apart on the request itself (a hash and a lookup) and not even held.

use foldhash::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::catalog::UserAgent;
use crate::mac::Mac;
use crate::model::Seen;
use crate::store::{Store, StoreError, record_seen};

/// How stale the stored time of an otherwise unchanged sighting may get.
pub const REWRITE_AFTER_MS: i64 = 30_000;

/// Longest User-Agent kept.
const MAX_UA: usize = 512;

/// A fetch as it happened, before anything is parsed.
#[derive(Debug, Clone)]
struct Sighting {
    at: i64,
    peer: IpAddr,
    transport: &'static str,
    file: String,
    user_agent: Option<String>,
}

/// Everything about a sighting but its time, to tell a repeat from a change.
fn fingerprint(peer: IpAddr, transport: &str, file: &str, user_agent: Option<&str>) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::default().hash_one((peer, transport, file, user_agent))
}

impl Sighting {
    fn fingerprint(&self) -> u64 {
        fingerprint(
            self.peer,
            self.transport,
            &self.file,
            self.user_agent.as_deref(),
        )
    }

    fn into_seen(self) -> Seen {
        let ua = self
            .user_agent
            .as_deref()
            .map(UserAgent::parse)
            .unwrap_or_default();
        Seen {
            at: self.at,
            peer: self.peer.to_string(),
            transport: self.transport.to_string(),
            file: self.file,
            user_agent: self.user_agent,
            model: ua.model,
            firmware: ua.firmware,
        }
    }
}

/// Pending last-seen records, newest per phone.
#[derive(Debug, Default)]
pub struct SeenBuffer {
    /// Per phone, what was last written and what waits for the flush: one lock and one
    /// lookup a request (two maps cost a lock and a cache miss more).
    phones: Mutex<Phones>,
    /// Addresses known phones fetched their own files from: when last, and which phones
    /// (updated by the flush).
    peers: Mutex<HashMap<IpAddr, PeerPhones>>,
}

/// Every phone seen since the start, and which of them hold a sighting.
#[derive(Debug, Default)]
struct Phones {
    slots: HashMap<Mac, Slot>,
    /// The phones whose slot holds a sighting, in the order they were first held.
    held: Vec<Mac>,
}

/// One phone's last-seen state.
#[derive(Debug, Default)]
struct Slot {
    /// When the last written sighting happened, and its fingerprint.
    written: Option<(i64, u64)>,
    /// The newest sighting not yet written (boxed: most phones hold none).
    held: Option<Box<Sighting>>,
}

impl Slot {
    /// Whether a sighting with fingerprint `fp` at `at` only repeats what was written lately.
    fn repeats(&self, at: i64, fp: u64) -> bool {
        self.written.is_some_and(|(written_at, written_fp)| {
            written_fp == fp && at - written_at < REWRITE_AFTER_MS
        })
    }
}

/// The phones seen behind one address.
#[derive(Debug, Default)]
struct PeerPhones {
    at: i64,
    phones: foldhash::HashSet<Mac>,
}

/// Phones remembered per address; beyond this an address's allowance stops growing.
const MAX_PHONES_PER_PEER: usize = 10_000;

/// How long an address stays trusted after a known phone fetched from it.
pub const TRUST_MS: i64 = 60 * 60 * 1000;

fn clip(ua: &str) -> &str {
    // Fewer bytes than the limit in characters: nothing to count (every User-Agent seen).
    if ua.len() <= MAX_UA {
        return ua;
    }
    match ua.char_indices().nth(MAX_UA) {
        Some((i, _)) => &ua[..i],
        None => ua,
    }
}

fn set_if_changed(slot: &mut String, v: &str) {
    if slot != v {
        v.clone_into(slot);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl SeenBuffer {
    /// Notes that `mac` fetched `file` now.
    pub fn record(
        &self,
        mac: Mac,
        at: i64,
        peer: IpAddr,
        transport: &'static str,
        file: &str,
        user_agent: Option<&str>,
    ) {
        let ua = user_agent.map(clip);
        let mut g = lock(&self.phones);
        let Phones { slots, held } = &mut *g;
        let slot = slots.entry(mac).or_default();
        if let Some(s) = &mut slot.held {
            s.at = at;
            s.peer = peer;
            s.transport = transport;
            set_if_changed(&mut s.file, file);
            match (&mut s.user_agent, ua) {
                (Some(slot), Some(v)) => set_if_changed(slot, v),
                (slot, v) => *slot = v.map(str::to_string),
            }
            return;
        }
        // Not held: a repeat of what was written lately needs nothing more.
        if slot.repeats(at, fingerprint(peer, transport, file, ua)) {
            return;
        }
        slot.held = Some(Box::new(Sighting {
            at,
            peer,
            transport,
            file: file.to_string(),
            user_agent: ua.map(str::to_string),
        }));
        held.push(mac);
    }

    /// Phones with a sighting waiting for the next flush.
    #[cfg(test)]
    fn held(&self) -> usize {
        lock(&self.phones).held.len()
    }

    /// How many known phones fetched their own files from `ip` within the trust period
    /// (pending sightings count: a boot storm is trusted before the next flush).
    pub fn phones_from(&self, ip: IpAddr, now: i64) -> u32 {
        let peers = lock(&self.peers);
        let known = peers
            .get(&ip)
            .filter(|p| now - p.at < TRUST_MS)
            .map(|p| &p.phones);
        let g = lock(&self.phones);
        let new = g
            .held
            .iter()
            .filter(|m| {
                g.slots
                    .get(*m)
                    .and_then(|s| s.held.as_ref())
                    .is_some_and(|s| s.peer == ip)
                    && known.is_none_or(|k| !k.contains(*m))
            })
            .count();
        let n = known.map_or(0, |k| k.len()) + new;
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Writes what is pending; returns how many phones were written. On failure the batch is
    /// put back (newer records win) so nothing is lost to a busy database.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        // Every phone and address taken out; the sightings, less repeats of what was written
        // recently.
        let mut raw: Vec<(Mac, IpAddr, i64)> = Vec::new();
        let mut fresh: Vec<(Mac, Sighting, u64)> = Vec::new();
        {
            let mut g = lock(&self.phones);
            let Phones { slots, held } = &mut *g;
            for mac in held.drain(..) {
                let Some(slot) = slots.get_mut(&mac) else {
                    continue;
                };
                let Some(s) = slot.held.take() else {
                    continue;
                };
                raw.push((mac, s.peer, s.at));
                let fp = s.fingerprint();
                if !slot.repeats(s.at, fp) {
                    fresh.push((mac, *s, fp));
                }
            }
            // A storm's list is let go rather than kept at its largest size.
            if held.capacity() > 1024 {
                *held = Vec::new();
            }
        }
        if raw.is_empty() {
            return Ok(0);
        }
        {
            let mut peers = lock(&self.peers);
            for &(mac, peer, at) in &raw {
                let p = peers.entry(peer).or_default();
                if at - p.at >= TRUST_MS {
                    // Trust lapsed since: count afresh.
                    p.phones.clear();
                }
                p.at = p.at.max(at);
                if p.phones.len() < MAX_PHONES_PER_PEER {
                    p.phones.insert(mac);
                }
            }
            if peers.len() > 100_000 {
                let newest = raw.iter().map(|&(_, _, at)| at).max().unwrap_or(0);
                peers.retain(|_, p| newest - p.at < TRUST_MS);
            }
        }
        drop(raw);
        if fresh.is_empty() {
            return Ok(0);
        }
        let batch: Vec<(Mac, Seen)> = fresh
            .iter()
            .map(|(m, s, _)| (*m, s.clone().into_seen()))
            .collect();
        let res = async {
            let mut tx = store.begin().await?;
            record_seen(&mut tx, &batch).await?;
            crate::store::commit(tx).await
        }
        .await;
        let mut g = lock(&self.phones);
        let Phones { slots, held } = &mut *g;
        for (mac, s, fp) in fresh {
            let slot = slots.entry(mac).or_default();
            match &res {
                Ok(()) => slot.written = Some((s.at, fp)),
                // Put back unless a newer sighting came meanwhile.
                Err(_) if slot.held.is_none() => {
                    slot.held = Some(Box::new(s));
                    held.push(mac);
                }
                Err(_) => {}
            }
        }
        res.map(|()| batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Phone, Transport};
    use crate::store::{SiteFields, insert_phone, insert_site, seen};

    #[test]
    fn a_user_agent_is_clipped_to_its_first_characters() {
        let short = "Yealink SIP-T54W 96.86.0.100 80:5e:c0:aa:bb:cc";
        assert_eq!(clip(short), short);
        let exact = "a".repeat(MAX_UA);
        assert_eq!(clip(&exact), exact);
        assert_eq!(clip(&"b".repeat(MAX_UA + 1)), "b".repeat(MAX_UA));
        // Characters, not bytes: 400 two-byte characters (800 bytes) are under the limit,
        // 600 are clipped to 512 characters on a character boundary.
        let wide = "é".repeat(400);
        assert_eq!(clip(&wide), wide);
        let wider = "é".repeat(600);
        assert_eq!(clip(&wider), "é".repeat(MAX_UA));
    }

    /// A store holding one phone, `805ec0aabbcc`, in one site.
    async fn store_with_phone() -> (tempfile::TempDir, Store, Mac) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.sqlite")).await.unwrap();
        let mac: Mac = "805ec0aabbcc".parse().unwrap();
        {
            let mut c = store.conn().await.unwrap();
            let f = SiteFields {
                name: "s".into(),
                sip_server: "pbx".into(),
                sip_port: 5060,
                transport: Transport::Udp,
                time_zone: None,
                ntp: vec![],
                allow_keyless: false,
                recovery_sha256: None,
            };
            let site = insert_site(&mut c, &f, "k").await.unwrap();
            let p = Phone {
                mac,
                model: "T54W".into(),
                site_id: site.id,
                label: String::new(),
                sn: None,
            };
            insert_phone(&mut c, &p).await.unwrap();
        }
        (dir, store, mac)
    }

    #[tokio::test]
    async fn repeats_are_throttled_changes_are_written() {
        let (_dir, store, mac) = store_with_phone().await;
        let buf = SeenBuffer::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let ua = "Yealink SIP-T54W 96.86.0.45 80:5e:c0:aa:bb:cc";
        buf.record(mac, 1_000, ip, "http", "805ec0aabbcc.cfg", Some(ua));
        assert_eq!(buf.flush(&store).await.unwrap(), 1);
        let s = seen(&mut store.conn().await.unwrap(), mac)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.at, s.firmware.as_deref(), s.model.as_deref()),
            (1_000, Some("96.86.0.45"), Some("T54W"))
        );

        // The same sighting a second later: not held, not written again.
        buf.record(mac, 2_000, ip, "http", "805ec0aabbcc.cfg", Some(ua));
        assert_eq!(buf.held(), 0, "a repeat is not held");
        assert_eq!(buf.flush(&store).await.unwrap(), 0);
        // A change, then the written sighting again before the flush: the newest is held.
        buf.record(mac, 2_100, ip, "tftp", "805ec0aabbcc.cfg", Some(ua));
        buf.record(mac, 2_200, ip, "http", "805ec0aabbcc.cfg", Some(ua));
        assert_eq!(buf.held(), 1);
        assert_eq!(
            buf.flush(&store).await.unwrap(),
            0,
            "the newest repeats what is written"
        );
        // Another file: written.
        buf.record(mac, 3_000, ip, "http", "805ec0aabbcc.boot", Some(ua));
        assert_eq!(buf.flush(&store).await.unwrap(), 1);
        // A new firmware in the User-Agent: written.
        buf.record(
            mac,
            4_000,
            ip,
            "http",
            "805ec0aabbcc.boot",
            Some("Yealink SIP-T54W 96.86.0.70 80:5e:c0:aa:bb:cc"),
        );
        assert_eq!(buf.flush(&store).await.unwrap(), 1);
        // An unchanged repeat once the stored time is stale: written.
        buf.record(
            mac,
            4_000 + REWRITE_AFTER_MS,
            ip,
            "http",
            "805ec0aabbcc.boot",
            Some("Yealink SIP-T54W 96.86.0.70 80:5e:c0:aa:bb:cc"),
        );
        assert_eq!(buf.flush(&store).await.unwrap(), 1);
        let s = seen(&mut store.conn().await.unwrap(), mac)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.at, s.firmware.as_deref()),
            (4_000 + REWRITE_AFTER_MS, Some("96.86.0.70"))
        );
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_its_sightings_and_newer_ones_win() {
        let (_dir, store, mac) = store_with_phone().await;
        let buf = SeenBuffer::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let ua = "Yealink SIP-T54W 96.86.0.45 80:5e:c0:aa:bb:cc";
        buf.record(mac, 1_000, ip, "http", "805ec0aabbcc.cfg", Some(ua));
        assert_eq!(
            buf.phones_from(ip, 1_000),
            1,
            "a held sighting counts for its address"
        );
        assert_eq!(buf.phones_from(other, 1_000), 0);

        let rename = |from: &'static str, to: &'static str| {
            let store = store.clone();
            async move {
                let mut c = store.conn().await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER TABLE {from} RENAME TO {to}"
                )))
                .execute(&mut *c)
                .await
                .unwrap();
            }
        };
        rename("phone_seen", "phone_seen_away").await;
        assert!(buf.flush(&store).await.is_err(), "the table is gone");
        assert_eq!(buf.held(), 1, "the failed batch is held again");
        assert_eq!(buf.phones_from(ip, 1_100), 1);
        // A newer sighting replaces the one put back; it is held once, not twice.
        buf.record(mac, 2_000, ip, "http", "805ec0aabbcc.boot", Some(ua));
        assert_eq!(buf.held(), 1);

        rename("phone_seen_away", "phone_seen").await;
        assert_eq!(buf.flush(&store).await.unwrap(), 1);
        assert_eq!(buf.held(), 0);
        let s = seen(&mut store.conn().await.unwrap(), mac)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.at, s.file.as_str()), (2_000, "805ec0aabbcc.boot"));
        // Written now: the same sighting again is a repeat.
        buf.record(mac, 2_500, ip, "http", "805ec0aabbcc.boot", Some(ua));
        assert_eq!(buf.held(), 0);
    }
}
