//! One phone's record: all its rendered files in one block, as a site's pack stores it
//! ([`super::stored`]) and as the memory cache holds it ([`super::cache`]) — the same bytes,
//! checked once when read from disk. A request for one of a phone's files then reads one
//! allocation (the record's header, the names, the body) instead of a list of names and a
//! file apiece (six allocations a phone, 1.8 KiB of memory where the record is 1.2).
//!
//! Layout: `PPR2`, the MAC (6 bytes), the count of files (u16 LE); then per file the name's
//! length (u16 LE), the body's length (u32 LE), the SHA-256 of the body, the name, the body.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::file::{Etag, FileRef, ReadyFile};
use crate::mac::Mac;

const MAGIC: &[u8; 4] = b"PPR2";
/// Magic, MAC and count.
const HEAD: usize = 12;
/// Per file before its name: the two lengths and the digest.
const ENTRY: usize = 2 + 4 + 32;

/// The record of `mac`'s `files`; an error if a name or a body is too long for its field.
pub fn encode(mac: Mac, files: &[(String, Arc<ReadyFile>)]) -> std::io::Result<Vec<u8>> {
    let size = files
        .iter()
        .map(|(n, f)| ENTRY + n.len() + f.bytes.len())
        .sum::<usize>();
    let mut rec = Vec::with_capacity(HEAD + size);
    rec.extend_from_slice(MAGIC);
    rec.extend_from_slice(&mac.bytes());
    let count = u16::try_from(files.len()).map_err(std::io::Error::other)?;
    rec.extend_from_slice(&count.to_le_bytes());
    for (name, f) in files {
        let n = u16::try_from(name.len()).map_err(std::io::Error::other)?;
        let b = u32::try_from(f.bytes.len()).map_err(std::io::Error::other)?;
        rec.extend_from_slice(&n.to_le_bytes());
        rec.extend_from_slice(&b.to_le_bytes());
        rec.extend_from_slice(&Sha256::digest(&f.bytes));
        rec.extend_from_slice(name.as_bytes());
        rec.extend_from_slice(&f.bytes);
    }
    Ok(rec)
}

/// One file of a record, as its entry lays it out.
struct Entry<'a> {
    name: &'a [u8],
    digest: &'a [u8],
    /// Where the body starts, and its length.
    at: usize,
    len: usize,
}

impl Entry<'_> {
    /// This file of `mac`'s record `rec` (the record this entry was read from), for an answer.
    fn file(&self, rec: &Arc<[u8]>, mac: Mac) -> Option<FileRef> {
        let etag = Etag::of_digest(self.digest);
        FileRef::in_record(rec.clone(), self.at, self.len, etag, mac)
    }
}

/// A record's files in order; a malformed entry is an error, and ends the walk.
struct Entries<'a> {
    rec: &'a [u8],
    at: usize,
    left: u16,
}

impl<'a> Entries<'a> {
    /// The files of `mac`'s record `rec`, or why it is not that.
    fn of(rec: &'a [u8], mac: Mac) -> Result<Entries<'a>, &'static str> {
        if rec.get(..4) != Some(&MAGIC[..]) {
            return Err("not a record");
        }
        if rec.get(4..10) != Some(&mac.bytes()[..]) {
            return Err("record of another phone");
        }
        Ok(Entries::unchecked(rec))
    }

    /// The files of a record whose header was checked before.
    fn unchecked(rec: &'a [u8]) -> Entries<'a> {
        let left = rec
            .get(10..HEAD)
            .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
        Entries {
            rec,
            at: HEAD,
            left,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(n).ok_or("record cut short")?;
        let s = self.rec.get(self.at..end).ok_or("record cut short")?;
        self.at = end;
        Ok(s)
    }

    fn step(&mut self) -> Result<Entry<'a>, &'static str> {
        let lens = self.take(6)?;
        let n = usize::from(u16::from_le_bytes([lens[0], lens[1]]));
        let len = u32::from_le_bytes([lens[2], lens[3], lens[4], lens[5]]) as usize;
        let digest = self.take(32)?;
        let name = self.take(n)?;
        let at = self.at;
        self.take(len)?;
        Ok(Entry {
            name,
            digest,
            at,
            len,
        })
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let e = self.step();
        if e.is_err() {
            self.left = 0;
        }
        Some(e)
    }
}

/// Whether the entry's body matches its digest.
fn intact(rec: &[u8], e: &Entry) -> bool {
    rec.get(e.at..e.at + e.len)
        .is_some_and(|b| Sha256::digest(b)[..] == *e.digest)
}

/// A phone's record whose every file matched its digest: what the memory cache holds. Its
/// phone is the one the record names (checked when made).
#[derive(Clone)]
pub struct PhoneFiles {
    rec: Arc<[u8]>,
}

impl PhoneFiles {
    /// Checks that `rec` is `mac`'s record, well formed, every name UTF-8 and every body
    /// matching its digest; or says what is wrong with it.
    pub fn check(rec: Arc<[u8]>, mac: Mac) -> Result<PhoneFiles, &'static str> {
        for e in Entries::of(&rec, mac)? {
            let e = e?;
            if std::str::from_utf8(e.name).is_err() {
                return Err("bad name");
            }
            if !intact(&rec, &e) {
                return Err("digest mismatch");
            }
        }
        Ok(PhoneFiles { rec })
    }

    /// The file `name` of `mac`'s record `rec`, checking that one file only (a read the
    /// cache does not keep): `Ok(None)` if the record has no such file.
    pub fn check_one(
        rec: Arc<[u8]>,
        mac: Mac,
        name: &str,
    ) -> Result<Option<FileRef>, &'static str> {
        for e in Entries::of(&rec, mac)? {
            let e = e?;
            if e.name != name.as_bytes() {
                continue;
            }
            if !intact(&rec, &e) {
                return Err("digest mismatch");
            }
            return Ok(e.file(&rec, mac));
        }
        Ok(None)
    }

    /// A record of `mac`'s `files`, as the pack would hold it.
    pub fn of(mac: Mac, files: &[(String, Arc<ReadyFile>)]) -> std::io::Result<PhoneFiles> {
        let rec = Arc::from(encode(mac, files)?);
        PhoneFiles::check(rec, mac).map_err(std::io::Error::other)
    }

    /// The phone's file `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<FileRef> {
        warm(&self.rec);
        // Checked whole when made: every entry is well formed.
        let e = Entries::unchecked(&self.rec)
            .map_while(Result::ok)
            .find(|e| e.name == name.as_bytes())?;
        e.file(&self.rec, self.mac()?)
    }

    /// The phone the record names.
    fn mac(&self) -> Option<Mac> {
        let b: [u8; 6] = self.rec.get(4..10)?.try_into().ok()?;
        Some(Mac::from_bytes(b))
    }

    /// The record's bytes (what holding it costs, besides the cache's own entry).
    pub fn len(&self) -> usize {
        self.rec.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rec.is_empty()
    }
}

/// Asks the CPU to start loading every cache line of `bytes` (up to 4 KiB) at once: a
/// record is read entry after entry, each a miss when its phone was not fetched lately.
#[inline]
fn warm(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64).take(64) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of x86_64; a prefetch reads nothing into the program and never
        // faults, and the address is inside a live slice.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Names the phone and the record's size, never the bytes (they hold SIP passwords).
impl std::fmt::Debug for PhoneFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneFiles")
            .field("mac", &self.mac())
            .field("len", &self.rec.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::RECORD_CONTENT_TYPE;
    use super::*;

    fn mac() -> Mac {
        Mac::from_bytes([0x80, 0x5e, 0xc0, 0xaa, 0xbb, 0xcc])
    }

    fn files() -> Vec<(String, Arc<ReadyFile>)> {
        [
            (
                "805ec0aabbcc.boot",
                "#!version:1.0.0.1\ninclude:config \"a\"\n",
            ),
            (
                "805ec0aabbcc.cfg",
                "#!version:1.0.0.1\naccount.1.password = s3cret\n",
            ),
        ]
        .map(|(n, b)| {
            let f = ReadyFile::new(b.as_bytes().to_vec(), RECORD_CONTENT_TYPE).with_mac(mac());
            (n.to_string(), Arc::new(f))
        })
        .to_vec()
    }

    #[test]
    fn each_file_reads_back_with_its_bytes_tag_and_phone() {
        let fs = files();
        let p = PhoneFiles::of(mac(), &fs).expect("a record");
        for (name, f) in &fs {
            let got = p.get(name).expect("the file");
            assert_eq!(got.bytes(), &f.bytes[..], "{name}");
            assert_eq!(*got.etag(), f.etag, "{name}");
            assert_eq!(got.mac(), Some(mac()));
            let one = PhoneFiles::check_one(Arc::from(encode(mac(), &fs).unwrap()), mac(), name)
                .expect("intact")
                .expect("present");
            assert_eq!((one.bytes(), *one.etag()), (&f.bytes[..], f.etag));
        }
        assert!(p.get("805ec0aabbcc.xml").is_none(), "a name it lacks");
        assert!(p.get("805ec0aabbcc").is_none(), "a prefix of a name");
        let rec: Arc<[u8]> = Arc::from(encode(mac(), &fs).unwrap());
        assert!(matches!(
            PhoneFiles::check_one(rec, mac(), "x.cfg"),
            Ok(None)
        ));
        assert!(!format!("{p:?}").contains("s3cret"));
    }

    #[test]
    fn damage_anywhere_is_refused_with_its_reason() {
        let good = encode(mac(), &files()).unwrap();
        let other = Mac::from_bytes([0x80, 0x5e, 0xc0, 0, 0, 1]);
        let check = |rec: &[u8], mac: Mac| PhoneFiles::check(Arc::from(rec), mac).err();
        assert_eq!(check(&good, mac()), None);
        assert_eq!(check(&good, other), Some("record of another phone"));
        assert_eq!(check(&good[1..], mac()), Some("not a record"));
        for cut in [HEAD + 3, HEAD + ENTRY + 4, good.len() - 1] {
            assert_eq!(
                check(&good[..cut], mac()),
                Some("record cut short"),
                "cut at {cut}"
            );
        }
        // A flipped bit in the last body: the whole record fails, and so does that file
        // alone, while the intact first file still reads on its own.
        let mut bad = good.clone();
        let last = bad.len() - 2;
        bad[last] ^= 1;
        assert_eq!(check(&bad, mac()), Some("digest mismatch"));
        let rec: Arc<[u8]> = Arc::from(bad);
        assert!(PhoneFiles::check_one(rec.clone(), mac(), "805ec0aabbcc.cfg").is_err());
        assert!(matches!(
            PhoneFiles::check_one(rec, mac(), "805ec0aabbcc.boot"),
            Ok(Some(_))
        ));
        // A count larger than the entries there: cut short, never read past the end.
        let mut more = good.clone();
        more[10] = 3;
        assert_eq!(check(&more, mac()), Some("record cut short"));
        // A name that is not UTF-8.
        let mut name = good;
        name[HEAD + ENTRY] = 0xff;
        assert_eq!(check(&name, mac()), Some("bad name"));
    }
}
