//! The recovery responder: for a technician's laptop on a bricked phone's network, a TFTP
//! responder that answers every image request (any name ending in `.rom`, `.bin`, `.rfs`, or
//! what the technician configures) with one known-good image, which must pass the firmware
//! policy and fit the model. It logs every request and its outcome, reports progress per phone,
//! and keeps a summary for the end.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::resolve::{DiskFile, RequestFacts, Resolution, Responder, TransferEnd};

/// What happened with one phone (peer address).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PhoneLog {
    pub requests: Vec<String>,
    pub acked: u64,
    pub total: u64,
    pub outcome: Option<String>,
}

/// Answers image requests with the known-good image.
#[derive(Debug)]
pub struct Recovery {
    image: PathBuf,
    len: u64,
    sha256: String,
    /// Size and modification time when the image was judged: a file changed since then is
    /// hashed again, and refused unless it is still the judged bytes.
    judged_as: Mutex<(u64, Option<std::time::SystemTime>)>,
    /// Name endings answered (lower case).
    endings: Vec<String>,
    log: Mutex<BTreeMap<SocketAddr, PhoneLog>>,
}

impl Recovery {
    /// A responder for an image already checked against the policy.
    pub fn new(image: PathBuf, len: u64, sha256: String, endings: &[String]) -> Recovery {
        let endings = endings
            .iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        let mtime = std::fs::metadata(&image).and_then(|m| m.modified()).ok();
        Recovery {
            image,
            len,
            sha256,
            judged_as: Mutex::new((len, mtime)),
            endings,
            log: Mutex::new(BTreeMap::new()),
        }
    }

    fn with_log<T>(&self, f: impl FnOnce(&mut BTreeMap<SocketAddr, PhoneLog>) -> T) -> T {
        match self.log.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Whether the file is still the bytes that were judged.
    fn unchanged(&self) -> bool {
        let Ok(meta) = std::fs::metadata(&self.image) else {
            return false;
        };
        let now = (meta.len(), meta.modified().ok());
        let Ok(mut judged) = self.judged_as.lock() else {
            return false;
        };
        if *judged == now {
            return true;
        }
        match crate::firmware::content::Content::of_file(&self.image) {
            Ok(c) if c.sha256 == self.sha256 => {
                *judged = now;
                true
            }
            _ => false,
        }
    }

    /// Everything seen so far, by peer.
    pub fn summary(&self) -> BTreeMap<SocketAddr, PhoneLog> {
        self.with_log(|l| l.clone())
    }
}

impl Responder for Recovery {
    fn respond(&self, facts: &RequestFacts<'_>) -> Resolution {
        let name = facts
            .path
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let hit = !name.is_empty() && self.endings.iter().any(|e| name.ends_with(e.as_str()));
        tracing::info!(peer = %facts.peer, file = %facts.path, answered = hit, "recovery request");
        if !hit {
            return Resolution::NotFound;
        }
        if !self.unchanged() {
            tracing::error!(peer = %facts.peer, file = %self.image.display(), sha256 = %self.sha256,
                "the recovery image changed on disk since it was checked: not served (restart recover)");
            return Resolution::NotFound;
        }
        Resolution::Disk(DiskFile {
            path: self.image.clone(),
            len: self.len,
            etag: format!("\"{}\"", &self.sha256[..32]),
        })
    }

    fn progress(&self, peer: SocketAddr, file: &str, acked: u64, total: u64) {
        let pct = (acked * 100).checked_div(total).unwrap_or(100);
        tracing::info!(%peer, file, acked, total, "recovery progress {pct}%");
        self.with_log(|l| {
            let e = l.entry(peer).or_default();
            if e.requests.last().map(String::as_str) != Some(file) {
                e.requests.push(file.to_string());
            }
            e.acked = acked;
            e.total = total;
        });
    }

    fn finished(&self, peer: SocketAddr, file: &str, end: &TransferEnd, bytes: u64) {
        let outcome = match end {
            TransferEnd::Done => "done".to_string(),
            TransferEnd::ClientError(m) => format!("failed: the phone sent an error ({m})"),
            TransferEnd::Abandoned => "failed: the phone stopped answering".to_string(),
            TransferEnd::Gone => "failed: the phone's port closed".to_string(),
            TransferEnd::Unconfirmed => {
                "sent in full, unconfirmed: the phone's final ACK never came (it may be flashing)"
                    .to_string()
            }
            TransferEnd::Superseded => "restarted by the phone".to_string(),
        };
        tracing::info!(%peer, file, bytes, %outcome, "recovery transfer ended");
        self.with_log(|l| {
            let e = l.entry(peer).or_default();
            if e.requests.last().map(String::as_str) != Some(file) {
                e.requests.push(file.to_string());
            }
            if *end == TransferEnd::Done {
                e.acked = bytes;
            }
            e.total = bytes;
            e.outcome = Some(outcome);
        });
    }
}
