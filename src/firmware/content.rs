//! What an image's bytes are, as facts: size, SHA-256 and SHA-1, read in one pass. Every
//! judgement of an image starts from these; a file name or a declared version is only a claim.
//! SHA-1 is here because the public record of vendor builds (the builds peers distributed)
//! gives SHA-1 only.

use std::io::Read;
use std::path::Path;

use sha1::Digest as _;
use sha2::Digest as _;

/// Size and digests of an image (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Content {
    pub size: u64,
    pub sha256: String,
    pub sha1: String,
}

impl Content {
    /// Reads a file once, hashing as it goes (images are tens of MB: never held whole).
    pub fn of_file(path: &Path) -> std::io::Result<Content> {
        let f = std::fs::File::open(path)?;
        Content::of_reader(f)
    }

    /// Hashes everything a reader yields.
    pub fn of_reader(mut r: impl Read) -> std::io::Result<Content> {
        let mut h256 = sha2::Sha256::new();
        let mut h1 = sha1::Sha1::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h256.update(&buf[..n]);
            h1.update(&buf[..n]);
            size += n as u64;
        }
        Ok(Content {
            size,
            sha256: hex::encode(h256.finalize()),
            sha1: hex::encode(h1.finalize()),
        })
    }

    /// The same for bytes in memory.
    pub fn of_bytes(b: &[u8]) -> Content {
        match Content::of_reader(b) {
            Ok(c) => c,
            // Reading a slice cannot fail.
            Err(_) => Content {
                size: b.len() as u64,
                sha256: String::new(),
                sha1: String::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_inputs() {
        let c = Content::of_bytes(b"abc");
        assert_eq!(c.size, 3);
        assert_eq!(
            c.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(c.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &big).unwrap();
        assert_eq!(Content::of_file(&p).unwrap(), Content::of_bytes(&big));
    }
}
