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
        Recovery {
            image,
            len,
            sha256,
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
