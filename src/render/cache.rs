//! A bounded in-memory cache of phones' rendered files read from disk, a phone's files
//! together: the phones that are booting stay memory hits while the fleet's files live on disk
//! (and in the OS page cache), and asking a known phone for a name it does not have costs the
//! same as asking for one it has.
//!
//! Sharded maps under short mutexes, evicting by CLOCK (second chance) when a shard holds
//! more bytes than its share. A phone is kept from its fourth read from disk, not its first: a
//! Yealink's boot reads its phone's record three times (`<mac>.boot`, `y000000000000.boot`,
//! `<mac>.cfg`), so phones that boot once — a storm of them — pass through without pushing out
//! the phones that keep asking, and without growing the cache to its bound. Their reads come
//! from the OS page cache: `scripts/bench-scale` measured the same storm time either way.
//! A phone that answers Digest asks for each file twice (the challenge, then the answer, and
//! both read the record so that they take the same time as for any phone): the answer to a
//! refused read of the same name is not counted again, so a phone with a login also passes
//! through on its first boot. Refused reads count as any other, so asking for a known MAC
//! without its login soon gets memory's answer too, as fast as an unknown MAC's.
//!
//! Kept our own: no cache crate is vendored here, and what is needed — a byte bound, a sync
//! API usable from every transport, no background thread — is this small.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::record::PhoneFiles;

/// A cached phone: which site version it was read under, and the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub site_id: i64,
    /// Bumped whenever the site is published again: entries of older versions are never hit.
    pub version: u64,
    pub mac: crate::mac::Mac,
}

#[derive(Debug)]
struct Entry {
    file: PhoneFiles,
    referenced: bool,
}

#[derive(Debug, Default)]
struct Shard {
    map: foldhash::HashMap<Key, Entry>,
    /// Insertion order, for the clock hand.
    order: VecDeque<Key>,
    bytes: usize,
}

const SHARDS: usize = 16;

/// What an entry costs besides its record: the record's counts and the rounding of its
/// block, the key, the entry and its map slot, its place in the clock's order.
const OVERHEAD: usize = 160;

/// What holding a phone's files costs, as the bound counts it.
fn cost_of(file: &PhoneFiles) -> usize {
    OVERHEAD + file.len()
}

/// The read from disk on which a phone's files are kept.
const ADMIT_ON: u64 = 4;
/// Slots remembering recent reads from disk (8 bytes each): a phone's count is forgotten when
/// another phone takes its slot, which only delays keeping it.
const SEEN_SLOTS: usize = 1 << 16;
/// A slot's layout: the upper 40 bits of the phone's hash, 16 bits of the last name read, one
/// bit set when that read was refused (its answer is not counted), 7 bits of count.
const TAG_SHIFT: u32 = 24;
const NAME_SHIFT: u32 = 8;
const NAME: u64 = 0xffff << NAME_SHIFT;
const REFUSED: u64 = 0x80;
const COUNT: u64 = 0x7f;

/// Whether the request a read is for was refused for its login (most often a Digest
/// challenge, whose answer comes next) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Refused,
    Granted,
}

/// The cache, bounded by bytes.
#[derive(Debug)]
pub struct FileCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: foldhash::fast::RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Per slot: a phone's reads from disk (layout at [`TAG_SHIFT`]).
    seen: Box<[AtomicU64]>,
}

impl FileCache {
    /// A cache holding at most about `bytes` (0: nothing is cached).
    pub fn new(bytes: usize) -> FileCache {
        FileCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: bytes / SHARDS,
            hasher: Default::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            seen: (0..if bytes == 0 { 0 } else { SEEN_SLOTS })
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// Counts a read from disk of `key`'s phone for `name`; true on the one whose files are to
    /// be kept ([`FileCache::insert`]). A granted read of the name the phone's last read was
    /// for, when that one was refused, is the answer to a challenge: one fetch, counted once.
    /// Races between threads can lose a count, which only delays keeping a phone.
    pub fn count_read(&self, key: &Key, name: &str, asked: Asked) -> bool {
        let h = self.hasher.hash_one((key, "seen"));
        let Some(slot) = self.seen.get(h as usize % SEEN_SLOTS) else {
            return false;
        };
        let tag = h >> TAG_SHIFT;
        let name = u64::from(name_bits(name)) << NAME_SHIFT;
        let was = slot.load(Ordering::Relaxed);
        let mine = was >> TAG_SHIFT == tag;
        if mine && asked == Asked::Granted && was & (NAME | REFUSED) == name | REFUSED {
            slot.store(was & !REFUSED, Ordering::Relaxed);
            return false;
        }
        let count = if mine { (was & COUNT) + 1 } else { 1 };
        if count >= ADMIT_ON {
            slot.store(0, Ordering::Relaxed);
            return true;
        }
        let refused = if asked == Asked::Refused { REFUSED } else { 0 };
        slot.store(
            (tag << TAG_SHIFT) | name | refused | count,
            Ordering::Relaxed,
        );
        false
    }

    /// Looks `key` up as [`FileCache::get`] does, without counting or marking it: the same
    /// work for a phone that is not there (see [`super::DiskFiles::decoy`]).
    pub fn probe<R>(&self, key: &Key, f: impl FnOnce(&PhoneFiles) -> R) -> Option<R> {
        let s = self.shard(key).lock().ok()?;
        s.map.get(key).map(|e| f(&e.file))
    }

    /// `f` of the phone's files, if they are held (read in place: no count is raised for
    /// the phone's record unless `f` takes one of its files).
    pub fn get<R>(&self, key: &Key, f: impl FnOnce(&PhoneFiles) -> R) -> Option<R> {
        let mut s = self.shard(key).lock().ok()?;
        match s.map.get_mut(key) {
            Some(e) => {
                e.referenced = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(f(&e.file))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps a phone's files just read from disk, on the read [`FileCache::count_read`] chose.
    pub fn insert(&self, key: Key, file: PhoneFiles) {
        let cost = cost_of(&file);
        if cost > self.per_shard {
            return;
        }
        let Ok(mut s) = self.shard(&key).lock() else {
            return;
        };
        if s.map.contains_key(&key) {
            return;
        }
        while s.bytes + cost > self.per_shard {
            let Some(k) = s.order.pop_front() else { break };
            let again = match s.map.get_mut(&k) {
                Some(e) if e.referenced => {
                    e.referenced = false;
                    true
                }
                Some(_) => false,
                None => continue,
            };
            if again {
                s.order.push_back(k);
            } else if let Some(e) = s.map.remove(&k) {
                s.bytes -= cost_of(&e.file);
            }
        }
        s.bytes += cost;
        s.order.push_back(key);
        s.map.insert(
            key,
            Entry {
                file,
                referenced: false,
            },
        );
    }

    /// Bytes held (as the bound counts them) and entries.
    pub fn size(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(b, n), s| match s.lock() {
            Ok(s) => (b + s.bytes, n + s.map.len()),
            Err(_) => (b, n),
        })
    }

    /// Lookups answered from memory and from disk since start.
    pub fn hits_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// 16 bits standing for a file name (FNV-1a, folded): two names of one phone that share them
/// only make a read count once too few.
fn name_bits(name: &str) -> u16 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::ReadyFile;
    use std::sync::Arc;

    fn key(i: u64, version: u64) -> Key {
        let b = i.to_be_bytes();
        Key {
            site_id: 1,
            version,
            mac: crate::mac::Mac::from_bytes([b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }

    fn file(n: usize) -> PhoneFiles {
        let f = Arc::new(ReadyFile::new(vec![b'x'; n], "text/plain"));
        PhoneFiles::of(crate::mac::Mac::from_bytes([0; 6]), &[("a.cfg".into(), f)])
            .expect("a record")
    }

    /// Whether the cache holds `k`'s phone.
    fn held(c: &FileCache, k: Key) -> bool {
        c.get(&k, |_| ()).is_some()
    }

    /// One read of a phone's `name` from disk, as `DiskFiles::read` does it.
    fn read_as(c: &FileCache, k: Key, name: &str, asked: Asked, f: PhoneFiles) {
        if c.count_read(&k, name, asked) {
            c.insert(k, f);
        }
    }

    fn read(c: &FileCache, k: Key, name: &str, f: PhoneFiles) {
        read_as(c, k, name, Asked::Granted, f)
    }

    /// A Yealink's boot: the phone's record is read for these.
    const BOOT: [&str; 3] = [
        "805ec0000001.boot",
        "y000000000000.boot",
        "805ec0000001.cfg",
    ];

    /// Reads a phone from disk until the cache keeps it.
    fn insert(c: &FileCache, k: Key, f: PhoneFiles) {
        for n in 0..ADMIT_ON {
            read(c, k, &format!("f{n}.cfg"), f.clone());
        }
    }

    #[test]
    fn stays_within_its_bound_and_keeps_what_is_used() {
        let c = FileCache::new(SHARDS * 10_000);
        let hot = 1_000_000;
        insert(&c, key(hot, 1), file(1000));
        for i in 0..2000 {
            insert(&c, key(i, 1), file(1000));
            // The hot phone is asked for all the time, like a booting one.
            assert!(held(&c, key(hot, 1)), "hot entry evicted at {i}");
        }
        let (bytes, n) = c.size();
        assert!(bytes <= SHARDS * 10_000, "{bytes}");
        assert!(n < 2000 && n > 16, "{n}");
        assert!(!held(&c, key(hot, 2)), "another version is another entry");
    }

    #[test]
    fn phones_read_three_times_in_a_boot_pass_through() {
        let c = FileCache::new(SHARDS * 10_000);
        let hot = 1_000_000;
        insert(&c, key(hot, 1), file(1000));
        // A storm: each phone's boot file, the generic boot file, then its config.
        for i in 0..2000 {
            for name in BOOT {
                read(&c, key(i, 1), name, file(1000));
            }
        }
        assert_eq!(c.size().1, 1, "only the phone read more often is held");
        assert!(held(&c, key(hot, 1)));
        // A phone that boots again (after a firmware update, say) is kept on its next read.
        // The storm's last phone: an earlier one's count may have been taken over by a later
        // phone hashed to the same slot (65,536 of them), which only delays keeping it.
        read(&c, key(1999, 1), BOOT[0], file(1000));
        assert!(held(&c, key(1999, 1)));
    }

    #[test]
    fn phones_answering_digest_pass_through_their_first_boot_too() {
        let c = FileCache::new(SHARDS * 10_000);
        // Each file twice: the challenge, then the answer with the login.
        for i in 0..2000 {
            for name in BOOT {
                read_as(&c, key(i, 1), name, Asked::Refused, file(1000));
                read_as(&c, key(i, 1), name, Asked::Granted, file(1000));
            }
        }
        assert_eq!(c.size().1, 0, "a storm of first boots is not held");
        // Booting again, it is kept on its first read, as a phone without a login is.
        read_as(&c, key(1999, 1), BOOT[0], Asked::Refused, file(1000));
        assert!(held(&c, key(1999, 1)));
    }

    #[test]
    fn refused_reads_count_so_a_known_mac_is_soon_answered_from_memory() {
        let c = FileCache::new(SHARDS * 10_000);
        let k = key(9, 1);
        for _ in 0..ADMIT_ON {
            read_as(&c, k, BOOT[2], Asked::Refused, file(1000));
        }
        assert!(held(&c, k));
    }

    #[test]
    fn a_phone_asking_for_one_file_over_and_over_is_kept_on_its_fourth_read() {
        let c = FileCache::new(SHARDS * 10_000);
        let k = key(7, 1);
        for _ in 0..ADMIT_ON - 1 {
            read(&c, k, BOOT[2], file(1000));
        }
        assert!(!held(&c, k));
        read(&c, k, BOOT[2], file(1000));
        assert!(held(&c, k));
        // With a login, a fetch is a challenge and its answer: four fetches, eight reads.
        let k = key(8, 1);
        for n in 0..ADMIT_ON {
            assert!(!held(&c, k), "kept after {n} fetches");
            read_as(&c, k, BOOT[2], Asked::Refused, file(1000));
            read_as(&c, k, BOOT[2], Asked::Granted, file(1000));
        }
        assert!(held(&c, k));
    }

    #[test]
    fn a_zero_bound_caches_nothing() {
        let c = FileCache::new(0);
        insert(&c, key(1, 1), file(10));
        assert!(!held(&c, key(1, 1)));
        assert_eq!(c.size(), (0, 0));
    }
}
