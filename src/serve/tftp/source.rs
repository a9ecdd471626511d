//! Where a transfer's bytes come from: rendered bytes in memory, or a file on disk read in
//! chunks (only a chunk per transfer is held, never the whole image).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

/// Bytes to send, addressed by offset.
pub enum Source {
    Memory(Bytes),
    Disk {
        file: Arc<File>,
        len: u64,
        /// The chunk held, and its offset in the file.
        chunk: Bytes,
        chunk_at: u64,
        chunk_size: usize,
    },
}

impl Source {
    pub fn disk(file: File, len: u64, chunk_size: usize) -> Source {
        Source::Disk {
            file: Arc::new(file),
            len,
            chunk: Bytes::new(),
            chunk_at: 0,
            chunk_size,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Source::Memory(b) => b.len() as u64,
            Source::Disk { len, .. } => *len,
        }
    }

    /// The bytes in `[offset, offset + n)`, cut at the end of the source.
    pub async fn read(&mut self, offset: u64, n: usize) -> std::io::Result<Bytes> {
        let end = (offset + n as u64).min(self.len());
        if offset >= end {
            return Ok(Bytes::new());
        }
        match self {
            Source::Memory(b) => Ok(b.slice(offset as usize..end as usize)),
            Source::Disk {
                file,
                chunk,
                chunk_at,
                chunk_size,
                len,
            } => {
                let held = *chunk_at..*chunk_at + chunk.len() as u64;
                if !(held.contains(&offset) && end <= held.end) {
                    let want = (*chunk_size).max(n) as u64;
                    let size = want.min(*len - offset) as usize;
                    let f = file.clone();
                    let buf = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0u8; size];
                        f.read_exact_at(&mut buf, offset).map(|_| buf)
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                    *chunk = Bytes::from(buf);
                    *chunk_at = offset;
                }
                let from = (offset - *chunk_at) as usize;
                Ok(chunk.slice(from..from + (end - offset) as usize))
            }
        }
    }
}

/// Netascii encoding (RFC 764): LF becomes CR LF and a bare CR becomes CR NUL.
pub fn to_netascii(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 16);
    for &c in b {
        match c {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netascii() {
        assert_eq!(to_netascii(b"a\nb\rc\r\n"), b"a\r\nb\r\0c\r\0\r\n");
    }

    #[tokio::test]
    async fn disk_reads_in_chunks_and_matches_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut disk = Source::disk(File::open(&path).unwrap(), data.len() as u64, 4096);
        let mut mem = Source::Memory(Bytes::from(data.clone()));
        for (off, n) in [
            (0u64, 512usize),
            (512, 512),
            (4000, 512),
            (99_900, 512),
            (100_000, 512),
            (0, 10_000),
            (5, 1),
        ] {
            assert_eq!(
                disk.read(off, n).await.unwrap(),
                mem.read(off, n).await.unwrap(),
                "{off}+{n}"
            );
        }
    }
}
