//! Rendered per-phone files on disk, under `<data-dir>/rendered/`, so a restart serves at
//! once and memory does not grow with the fleet.
//!
//! Each site has a pack (`<site>/pack-<generation>`): one record per phone holding all its files,
//! each with the SHA-256 of its bytes, checked on every read from disk, so a damaged record is
//! never sent (it reads as absent and is logged). An index (`<site>/index-<generation>`, itself
//! digest-checked) maps each phone to its record; it is written only after the records it
//! points at are durable, and loaded whole at start (a few bytes per phone). A full render
//! writes a new generation; a few phones' changes append records and write the index again.
//! One file per site rather than per phone: creating 200,000 small files cost more than the
//! rendering and used 4 KiB of disk each. `STATE.json` says what the files were rendered from
//! (the epoch) and up to which change-log entry.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::cache::{Asked, FileCache, Key};
use super::record::{self, PhoneFiles};
use super::{FileRef, ReadyFile};
use crate::mac::Mac;

/// The directory under the data dir.
pub const DIR: &str = "rendered";
const INDEX: &[u8; 6] = b"PPIX1\n";
const STATE: &str = "STATE.json";

/// What the files on disk were rendered from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Digest of everything besides the data that shapes the bytes: binary version,
    /// templates, policy, public URLs. Empty while a full re-render is under way.
    pub epoch: String,
    /// The last change-log entry the files reflect.
    pub seq: i64,
}

/// The store: where the packs are, and the memory cache over them.
#[derive(Debug)]
pub struct DiskFiles {
    root: PathBuf,
    cache: FileCache,
    /// A phone's worth of names no request matches: what a lookup for an unknown MAC searches.
    decoy: PhoneFiles,
}

/// One generation of a site's pack, with its index: immutable once published.
#[derive(Debug)]
pub struct SitePack {
    site_id: i64,
    generation: u64,
    file: std::fs::File,
    /// Phone → (offset, length) of its record.
    index: PackIndex,
    /// Bytes of the pack file (live records and superseded ones).
    len: u64,
}

impl SitePack {
    /// The cache's key for a phone of this pack, as its site was published at `version`.
    fn key(&self, version: u64, mac: Mac) -> Key {
        Key {
            site_id: self.site_id,
            version,
            mac,
        }
    }

    /// Whether superseded records make up most of the pack (time for a new generation).
    pub fn mostly_dead(&self) -> bool {
        let live: u64 = self.index.iter().map(|(_, _, l)| u64::from(l)).sum();
        self.len > 1 << 20 && self.len > 2 * live
    }

    /// Phones with a record.
    pub fn phones(&self) -> usize {
        self.index.len()
    }

    /// The phone's record as it is on disk (unchecked), read straight into the block the
    /// memory cache may keep.
    fn record(&self, mac: Mac) -> Option<Arc<[u8]>> {
        let (off, len) = self.index.get(mac)?;
        let mut rec: Arc<[u8]> = std::iter::repeat_n(0, len as usize).collect();
        // Just made, so ours alone.
        let buf = Arc::get_mut(&mut rec)?;
        match self.file.read_exact_at(buf, off) {
            Ok(()) => Some(rec),
            Err(e) => {
                tracing::error!(site_id = self.site_id, generation = self.generation, %mac, error = %e,
                    "rendered files unreadable");
                None
            }
        }
    }
}

/// A published pack's index: entries sorted by MAC, 16 bytes each (a hash map took 24 and a
/// spare quarter: 3.3 MiB at 100,000 phones, now 1.6). Looked up only when a phone's files
/// are not in the memory cache, where the read from disk costs more than the search.
#[derive(Debug, Default)]
struct PackIndex(Box<[Entry]>);

/// One phone's record: MAC, 48-bit offset, length.
#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: [u8; 6],
    off_hi: u16,
    off_lo: u32,
    len: u32,
}

impl PackIndex {
    /// From (MAC, offset, length) in any order; a MAC given twice keeps its last entry.
    fn new(mut entries: Vec<(Mac, u64, u32)>) -> PackIndex {
        entries.sort_by_key(|e| e.0.bytes());
        let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
        for (mac, off, len) in entries {
            let e = Entry {
                mac: mac.bytes(),
                off_hi: (off >> 32) as u16,
                off_lo: off as u32,
                len,
            };
            match out.last_mut() {
                Some(last) if last.mac == e.mac => *last = e,
                _ => out.push(e),
            }
        }
        PackIndex(out.into_boxed_slice())
    }

    fn get(&self, mac: Mac) -> Option<(u64, u32)> {
        let key = mac.bytes();
        let i = self.0.binary_search_by(|e| e.mac.cmp(&key)).ok()?;
        let e = self.0[i];
        Some(((u64::from(e.off_hi) << 32) | u64::from(e.off_lo), e.len))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// (MAC, offset, length) of every phone.
    fn iter(&self) -> impl Iterator<Item = (Mac, u64, u32)> + '_ {
        self.0.iter().map(|e| {
            (
                Mac::from_bytes(e.mac),
                (u64::from(e.off_hi) << 32) | u64::from(e.off_lo),
                e.len,
            )
        })
    }
}

impl DiskFiles {
    /// Opens (creating) `<data_dir>/rendered` with a memory cache of `cache_bytes`.
    pub fn open(data_dir: &Path, cache_bytes: usize) -> std::io::Result<DiskFiles> {
        let root = data_dir.join(DIR);
        std::fs::create_dir_all(&root)?;
        let blank = Arc::new(ReadyFile::new(Vec::new(), "text/plain"));
        let decoy = [
            "000000000000.boot",
            "000000000000.cfg",
            "000000000000-x.cfg",
        ]
        .map(|n| (n.to_string(), blank.clone()));
        Ok(DiskFiles {
            root,
            cache: FileCache::new(cache_bytes),
            decoy: PhoneFiles::of(Mac::from_bytes([0; 6]), &decoy)?,
        })
    }

    pub fn cache(&self) -> &FileCache {
        &self.cache
    }

    fn site_dir(&self, site_id: i64) -> PathBuf {
        self.root.join(site_id.to_string())
    }

    /// A phone's file from `pack`, as the site was published at `version`: from memory if the
    /// phone's files are there, else from disk (then all of them kept in memory). `None` if
    /// absent or damaged.
    pub fn read(
        &self,
        pack: &SitePack,
        version: u64,
        name: &str,
        mac: Mac,
        asked: Asked,
    ) -> Option<FileRef> {
        let key = pack.key(version, mac);
        if let Some(found) = self.cache.get(&key, |p| p.get(name)) {
            return found;
        }
        // A read the cache will not keep checks and holds only the file asked for.
        let keep = self.cache.count_read(&key, name, asked);
        let rec = pack.record(mac)?;
        let checked = match keep {
            true => PhoneFiles::check(rec, mac).map(|phone| {
                let file = phone.get(name);
                self.cache.insert(key, phone);
                file
            }),
            false => PhoneFiles::check_one(rec, mac, name),
        };
        checked.unwrap_or_else(|why| {
            tracing::error!(site_id = pack.site_id, generation = pack.generation, %mac, why,
                "rendered files fail their check: not served (rendered again on the next change or restart)");
            None
        })
    }

    /// The lookup [`DiskFiles::read`] does for a phone in memory, for a MAC that is in no
    /// site: a cache lookup and a search of a phone's names, the result thrown away. Without
    /// it an unknown MAC answers measurably sooner than a known one (`tests/timing.rs`), and a
    /// scanner could tell which MACs exist by time.
    pub fn decoy(&self, pack: &SitePack, version: u64, name: &str, mac: Mac) {
        let key = pack.key(version, mac);
        if self
            .cache
            .probe(&key, |p| std::hint::black_box(p.get(name)))
            .is_none()
        {
            std::hint::black_box(self.decoy.get(name));
        }
    }

    /// What the files were rendered from, if that was recorded.
    pub fn state(&self) -> Option<State> {
        let text = std::fs::read(self.root.join(STATE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Records what the files reflect (after their writes are durable).
    pub fn set_state(&self, s: &State) -> std::io::Result<()> {
        let tmp = self.root.join(".STATE.tmp");
        let body = serde_json::to_vec(s).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, self.root.join(STATE))
    }

    /// Site directories on disk, by id.
    pub fn site_ids(&self) -> Vec<i64> {
        std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// Removes a site's files (it was deleted).
    pub fn remove_site(&self, site_id: i64) {
        let dir = self.site_dir(site_id);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted site's rendered files");
        }
    }

    /// The newest complete generation of a site's pack, if there is one.
    pub fn load(&self, site_id: i64) -> Option<Arc<SitePack>> {
        let dir = self.site_dir(site_id);
        let mut generations: Vec<u64> = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("index-")?.parse().ok())
            .collect();
        generations.sort_unstable();
        for generation in generations.into_iter().rev() {
            match load_gen(&dir, site_id, generation) {
                Ok(p) => return Some(Arc::new(p)),
                Err(e) => {
                    tracing::error!(site_id, generation, error = %e, "rendered files index unusable; trying an older one")
                }
            }
        }
        None
    }

    /// A writer for a new generation of a site's pack (after `previous`, if any).
    pub fn new_pack(
        &self,
        site_id: i64,
        previous: Option<&SitePack>,
    ) -> std::io::Result<PackWriter> {
        let dir = self.site_dir(site_id);
        std::fs::create_dir_all(&dir)?;
        let generation = previous.map_or(1, |p| p.generation + 1);
        let path = dir.join(format!("pack-{generation}"));
        let file = std::fs::File::create(&path)?;
        Ok(PackWriter {
            dir,
            site_id,
            generation,
            file,
            len: 0,
            index: HashMap::new(),
            fresh: true,
            start: 0,
            finished: false,
        })
    }

    /// A writer appending to `pack` (a few phones changed).
    pub fn append(&self, pack: &SitePack) -> std::io::Result<PackWriter> {
        let dir = self.site_dir(pack.site_id);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(format!("pack-{}", pack.generation)))?;
        // Bytes past the index's end are a failed append's (a full disk): cut them off, or
        // the offsets recorded next would be wrong.
        file.set_len(pack.len)?;
        Ok(PackWriter {
            dir,
            site_id: pack.site_id,
            generation: pack.generation,
            file,
            len: pack.len,
            index: pack.index.iter().map(|(m, o, l)| (m, (o, l))).collect(),
            fresh: false,
            start: pack.len,
            finished: false,
        })
    }
}

/// Records being written to a site's pack; nothing is visible until [`PackWriter::finish`].
#[derive(Debug)]
pub struct PackWriter {
    dir: PathBuf,
    site_id: i64,
    generation: u64,
    file: std::fs::File,
    len: u64,
    index: HashMap<Mac, (u64, u32)>,
    /// A new generation (older ones are removed when it is finished).
    fresh: bool,
    /// Where the pack ended before this writer (an append), to cut back to if it is dropped
    /// unfinished.
    start: u64,
    finished: bool,
}

impl Drop for PackWriter {
    /// An unfinished writer (a failed render, a full disk) leaves nothing behind: a new
    /// generation's file is removed, an append is cut back.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let path = self.dir.join(format!("pack-{}", self.generation));
        let _ = match self.fresh {
            true => std::fs::remove_file(&path),
            false => self.file.set_len(self.start),
        };
    }
}

impl PackWriter {
    /// Writes a phone's files as one record, replacing its previous one.
    pub fn put(&mut self, mac: Mac, files: &[(String, Arc<ReadyFile>)]) -> std::io::Result<()> {
        let rec = record::encode(mac, files)?;
        let len = u32::try_from(rec.len()).map_err(std::io::Error::other)?;
        self.file.write_all(&rec)?;
        self.index.insert(mac, (self.len, len));
        self.len += u64::from(len);
        Ok(())
    }

    /// Keeps a phone's record from `from` (its new render failed: its last good files stay).
    pub fn carry(&mut self, from: &SitePack, mac: Mac) -> std::io::Result<()> {
        if let Some(rec) = from.record(mac) {
            let len = u32::try_from(rec.len()).map_err(std::io::Error::other)?;
            self.file.write_all(&rec)?;
            self.index.insert(mac, (self.len, len));
            self.len += u64::from(len);
        }
        Ok(())
    }

    /// Drops a phone (it left the site).
    pub fn remove(&mut self, mac: Mac) {
        self.index.remove(&mac);
    }

    /// Makes the records durable, then writes the index that points at them, and opens the
    /// result for reading. A new generation removes the older ones.
    pub fn finish(mut self) -> std::io::Result<Arc<SitePack>> {
        self.file.sync_data()?;
        let mut idx = Vec::with_capacity(32 + self.index.len() * 18);
        idx.extend_from_slice(INDEX);
        idx.extend_from_slice(&self.generation.to_le_bytes());
        idx.extend_from_slice(&self.len.to_le_bytes());
        idx.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        for (mac, (off, len)) in &self.index {
            idx.extend_from_slice(&mac.bytes());
            idx.extend_from_slice(&off.to_le_bytes());
            idx.extend_from_slice(&len.to_le_bytes());
        }
        let digest = Sha256::digest(&idx);
        idx.extend_from_slice(&digest);
        let tmp = self.dir.join(format!(".index-{}.tmp", self.generation));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&idx)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, self.dir.join(format!("index-{}", self.generation)))?;
        // From here the pack is in use: nothing may remove it.
        self.finished = true;
        if self.fresh {
            for e in std::fs::read_dir(&self.dir)?.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                let generation = name
                    .strip_prefix("pack-")
                    .or_else(|| name.strip_prefix("index-"))
                    .and_then(|g| g.parse::<u64>().ok());
                if generation.is_some_and(|g| g < self.generation) {
                    // Readers holding the old pack open keep reading it until they let go.
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let file = std::fs::File::open(self.dir.join(format!("pack-{}", self.generation)))?;
        Ok(Arc::new(SitePack {
            site_id: self.site_id,
            generation: self.generation,
            file,
            index: PackIndex::new(self.index.drain().map(|(m, (o, l))| (m, o, l)).collect()),
            len: self.len,
        }))
    }
}

fn load_gen(dir: &Path, site_id: i64, generation: u64) -> std::io::Result<SitePack> {
    let bad = |why: &str| std::io::Error::other(why.to_string());
    let raw = std::fs::read(dir.join(format!("index-{generation}")))?;
    if raw.len() < INDEX.len() + 24 + 32 || &raw[..INDEX.len()] != INDEX {
        return Err(bad("not an index"));
    }
    let (body, digest) = raw.split_at(raw.len() - 32);
    if Sha256::digest(body)[..] != *digest {
        return Err(bad("index fails its digest check"));
    }
    let num = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap_or([0; 8]));
    let h = INDEX.len();
    let (len, n) = (num(h + 8), num(h + 16) as usize);
    let entries = &body[h + 24..];
    if num(h) != generation || entries.len() != n * 18 {
        return Err(bad("index does not match its generation"));
    }
    let file = std::fs::File::open(dir.join(format!("pack-{generation}")))?;
    if file.metadata()?.len() < len {
        return Err(bad("pack shorter than its index"));
    }
    let mut index = Vec::with_capacity(n);
    for e in entries.chunks_exact(18) {
        let mac = Mac::from_bytes(e[..6].try_into().unwrap_or_default());
        let off = u64::from_le_bytes(e[6..14].try_into().unwrap_or_default());
        let l = u32::from_le_bytes(e[14..18].try_into().unwrap_or_default());
        if off.checked_add(u64::from(l)).is_none_or(|end| end > len) {
            return Err(bad("index points past the pack's end"));
        }
        index.push((mac, off, l));
    }
    let index = PackIndex::new(index);
    Ok(SitePack {
        site_id,
        generation,
        file,
        index,
        len,
    })
}

#[cfg(test)]
mod tests;
