//! A file ready to send: its bytes, its entity tag and its type. [`ReadyFile`] is one held on
//! its own (a site's shared files, a preview's); [`FileRef`] is what a lookup hands a
//! transport, either such a file or one of a phone's files inside that phone's record as the
//! memory cache holds it ([`super::record`]), so that serving it reads that one allocation.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::mac::Mac;

/// Bytes ready to send, with their entity tag.
#[derive(Debug, Clone)]
pub struct ReadyFile {
    pub bytes: Bytes,
    /// Quoted strong ETag derived from the content.
    pub etag: Etag,
    pub content_type: &'static str,
    /// The phone the file belongs to, if it names one.
    pub mac: Option<Mac>,
}

/// Length of an [`Etag`]: a quote, 32 hex digits, a quote.
const ETAG_LEN: usize = 34;

/// A rendered file's quoted strong entity tag, held inline: answering with it reads nothing
/// beyond the file's own fields (a separate allocation per tag was one more cache miss per
/// request when a storm touches thousands of phones' files).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Etag([u8; ETAG_LEN]);

impl Etag {
    /// The tag for a file whose SHA-256 is `digest`: its first 128 bits in hex (zeros for
    /// any of them a shorter digest lacks).
    pub fn of_digest(digest: &[u8]) -> Etag {
        let mut e = [b'0'; ETAG_LEN];
        e[0] = b'"';
        e[ETAG_LEN - 1] = b'"';
        let n = digest.len().min(16);
        // Cannot fail: the slice is exactly twice the bytes encoded.
        let _ = hex::encode_to_slice(&digest[..n], &mut e[1..1 + 2 * n]);
        Etag(e)
    }

    /// The tag's bytes, as a header value takes them (no UTF-8 check on the way).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII: quotes and hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for Etag {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Etag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ReadyFile {
    pub fn new(bytes: Vec<u8>, content_type: &'static str) -> ReadyFile {
        let digest = Sha256::digest(&bytes);
        ReadyFile {
            etag: Etag::of_digest(&digest),
            bytes: Bytes::from(bytes),
            content_type,
            mac: None,
        }
    }

    pub fn with_mac(&self, mac: Mac) -> ReadyFile {
        ReadyFile {
            mac: Some(mac),
            ..self.clone()
        }
    }
}

/// A file found for a request. Cloning it raises one count; an answer's body
/// ([`FileRef::body`]) holds it, so the bytes stay while they are being sent.
#[derive(Clone)]
pub struct FileRef(Held);

#[derive(Clone)]
enum Held {
    Own(Arc<ReadyFile>),
    /// A phone's file: the body is `rec[at..at + len]`, inside bounds the record's check
    /// proved ([`super::record::PhoneFiles`]).
    InRecord {
        rec: Arc<[u8]>,
        at: u32,
        len: u32,
        etag: Etag,
        mac: Mac,
    },
}

/// The type of every file in a phone's record.
pub const RECORD_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

impl FileRef {
    /// The body at `at..at + len` of `mac`'s record `rec`, tagged `etag`. `None` if the body
    /// is not inside the record.
    pub(super) fn in_record(
        rec: Arc<[u8]>,
        at: usize,
        len: usize,
        etag: Etag,
        mac: Mac,
    ) -> Option<FileRef> {
        let end = at.checked_add(len)?;
        if end > rec.len() {
            return None;
        }
        Some(FileRef(Held::InRecord {
            at: u32::try_from(at).ok()?,
            len: u32::try_from(len).ok()?,
            rec,
            etag,
            mac,
        }))
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.0 {
            Held::Own(f) => &f.bytes,
            Held::InRecord { rec, at, len, .. } => {
                let at = *at as usize;
                rec.get(at..at + *len as usize).unwrap_or_default()
            }
        }
    }

    pub fn etag(&self) -> &Etag {
        match &self.0 {
            Held::Own(f) => &f.etag,
            Held::InRecord { etag, .. } => etag,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match &self.0 {
            Held::Own(f) => f.content_type,
            Held::InRecord { .. } => RECORD_CONTENT_TYPE,
        }
    }

    /// The phone the file belongs to, if it names one.
    pub fn mac(&self) -> Option<Mac> {
        match &self.0 {
            Held::Own(f) => f.mac,
            Held::InRecord { mac, .. } => Some(*mac),
        }
    }

    /// The file's bytes for an answer, owned by what the lookup found: the count raised is
    /// the one already at hand (the file's, or its phone's record's), not a count of its own
    /// elsewhere in memory, another cache miss a request in a storm.
    pub fn body(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for FileRef {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl From<Arc<ReadyFile>> for FileRef {
    fn from(f: Arc<ReadyFile>) -> FileRef {
        FileRef(Held::Own(f))
    }
}

/// Names the file, never its bytes (a phone's configuration holds its SIP password).
impl std::fmt::Debug for FileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRef")
            .field("mac", &self.mac())
            .field("len", &self.bytes().len())
            .field("etag", self.etag())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_the_first_128_bits_of_the_digest_quoted() {
        let bytes = b"account.1.user_name = 1001\n".to_vec();
        let digest = Sha256::digest(&bytes);
        let f = ReadyFile::new(bytes, "text/plain");
        let want = format!("\"{}\"", &hex::encode(digest)[..32]);
        assert_eq!(&*f.etag, want);
        assert_eq!(format!("{:?}", f.etag), want);
        // A shorter digest is padded with zeros, never cut short or left with junk.
        assert_eq!(
            Etag::of_digest(&[0xab, 0x01]).as_str(),
            format!("\"ab01{}\"", "0".repeat(28))
        );
    }

    #[test]
    fn a_body_keeps_its_file_alive_and_reads_its_bytes() {
        let f = Arc::new(ReadyFile::new(
            b"#!version:1.0.0.1\n".to_vec(),
            "text/plain",
        ));
        let body = FileRef::from(f.clone()).body();
        assert_eq!(Arc::strong_count(&f), 2, "the body holds the file");
        drop(f);
        assert_eq!(&body[..], b"#!version:1.0.0.1\n");
        let cut = body.slice(2..9);
        drop(body);
        assert_eq!(&cut[..], b"version");
    }

    #[test]
    fn a_file_in_a_record_is_its_slice_and_keeps_the_record_alive() {
        let rec: Arc<[u8]> = Arc::from(&b"headBODYtail"[..]);
        let mac = Mac::from_bytes([0x80, 0x5e, 0xc0, 0, 0, 1]);
        let tag = Etag::of_digest(&[1; 16]);
        let f = FileRef::in_record(rec.clone(), 4, 4, tag, mac).expect("inside the record");
        assert_eq!(f.bytes(), b"BODY");
        assert_eq!((f.mac(), *f.etag()), (Some(mac), tag));
        assert_eq!(f.content_type(), RECORD_CONTENT_TYPE);
        let body = f.body();
        assert_eq!(Arc::strong_count(&rec), 2, "the body holds the record");
        drop(rec);
        assert_eq!(&body[..], b"BODY");
        // A body outside the record is refused, not cut or read past its end.
        let rec: Arc<[u8]> = Arc::from(&b"short"[..]);
        assert!(FileRef::in_record(rec.clone(), 3, 3, tag, mac).is_none());
        assert!(FileRef::in_record(rec, usize::MAX, 2, tag, mac).is_none());
        // Its debug form never shows the bytes.
        let f = FileRef::from(Arc::new(ReadyFile::new(b"secret".to_vec(), "text/plain")));
        assert!(!format!("{f:?}").contains("secret"));
    }
}
