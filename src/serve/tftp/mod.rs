//! TFTP: a second thin transport over the resolver (RFC 1350 with the options of RFC 2347,
//! 2348, 2349 and 7440).
//!
//! The listener only parses requests and hands each read to a task of its own with its own
//! connected socket ([`transfer`]), so transfers spread over the runtime's threads and an
//! open never waits on another. Writes are refused. A semaphore caps concurrent transfers;
//! every transfer ends — done, refused by the client, or abandoned after bounded retries with
//! backoff — and frees its socket and buffers.

pub mod packet;
mod retry;
mod source;
mod transfer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

pub use crate::resolve::Responder as Files;
use packet::{ErrorCode, Packet, Request};

/// Limits and timings of the TFTP transport.
#[derive(Debug, Clone)]
pub struct TftpConfig {
    /// Transfers running at once; more are refused with "server busy" until one ends.
    pub max_transfers: usize,
    /// Retransmission interval before backoff, unless the client asks with `timeout`.
    pub timeout: Duration,
    /// Retransmissions of one packet before the transfer is abandoned.
    pub retries: u32,
    /// Largest block size granted (RFC 2348 allows up to 65464).
    pub max_blksize: u16,
    /// Largest window granted (RFC 7440).
    pub max_window: u16,
}

impl Default for TftpConfig {
    fn default() -> Self {
        TftpConfig {
            max_transfers: 1000,
            timeout: Duration::from_secs(1),
            retries: 5,
            max_blksize: 65464,
            max_window: 64,
        }
    }
}

/// How long a request at the transfer limit waits for a slot before "server busy".
const BUSY_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// A running transfer, as the listener knows it.
struct Ongoing {
    /// A number of its own: a transfer ending removes its entry only if still its own.
    id: u64,
    request: Request,
    control: Arc<transfer::Control>,
}

/// The running transfer of each client address.
type Running = Arc<Mutex<HashMap<SocketAddr, Ongoing>>>;

fn lock(r: &Running) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Ongoing>> {
    // A panic while holding this lock cannot leave the map inconsistent: take it anyway.
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends an error from the listening socket (to requests refused before a transfer starts).
async fn refuse(sock: &UdpSocket, peer: SocketAddr, code: ErrorCode, message: &str) {
    let p = Packet::Error {
        code,
        message: message.to_string(),
    };
    let _ = sock.send_to(&p.to_bytes(), peer).await;
}

/// Serves TFTP on `sock` until `shutdown` resolves; running transfers finish on their own.
pub async fn run(
    sock: UdpSocket,
    files: Arc<dyn Files>,
    cfg: TftpConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let sock = Arc::new(sock);
    let local_ip = sock.local_addr().map(|a| a.ip()).ok();
    let slots = Arc::new(Semaphore::new(cfg.max_transfers));
    let cfg = Arc::new(cfg);
    let mut buf = vec![0u8; 65536];
    // The running transfer of each client port: a request sent again from the same port is
    // answered by it while the client has acknowledged nothing (its answer was lost), and
    // replaces it after that (the client started over); never two transfers side by side.
    let running: Running = Default::default();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (n, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems: not fatal.
                    tracing::debug!(error = %e, "tftp receive error");
                    continue;
                }
            },
        };
        match Packet::parse(&buf[..n]) {
            Ok(Packet::Rrq(req)) => {
                let control;
                let id;
                let earlier = {
                    let mut map = lock(&running);
                    let same = map.get(&peer).filter(|o| o.request == req);
                    if same.is_some_and(|o| o.control.asked_again()) {
                        tracing::debug!(%peer, file = %req.filename, "tftp: request repeated before any block was acknowledged; the running transfer answers it");
                        continue;
                    }
                    control = Arc::new(transfer::Control::default());
                    next_id += 1;
                    id = next_id;
                    let now = Ongoing {
                        id,
                        request: req.clone(),
                        control: control.clone(),
                    };
                    map.insert(peer, now)
                };
                if let Some(earlier) = earlier {
                    tracing::debug!(%peer, file = %req.filename, "tftp: request repeated; the new one takes over");
                    earlier.control.supersede();
                }
                let (files, cfg, running, slots, sock) = (
                    files.clone(),
                    cfg.clone(),
                    running.clone(),
                    slots.clone(),
                    sock.clone(),
                );
                tokio::spawn(async move {
                    // At the limit, a slot a transfer is just giving up (the phone's previous
                    // file, or the transfer this request replaces) is waited for briefly
                    // rather than answered "busy".
                    let permit = match slots.clone().try_acquire_owned() {
                        Ok(p) => Some(p),
                        Err(_) => tokio::time::timeout(BUSY_GRACE, slots.acquire_owned())
                            .await
                            .ok()
                            .and_then(Result::ok),
                    };
                    if let Some(permit) = permit {
                        transfer::serve_read(peer, local_ip, req, files.as_ref(), &cfg, &control)
                            .await;
                        drop(permit);
                    } else {
                        tracing::warn!(%peer, file = %req.filename, "tftp busy: transfer refused");
                        refuse(&sock, peer, ErrorCode::NotDefined, "server busy, try again").await;
                    }
                    let mut map = lock(&running);
                    // Only this transfer's own entry: a newer one may have replaced it.
                    if map.get(&peer).is_some_and(|o| o.id == id) {
                        map.remove(&peer);
                    }
                });
            }
            Ok(Packet::Wrq(req)) => {
                tracing::info!(%peer, file = %req.filename, "tftp write refused");
                refuse(
                    &sock,
                    peer,
                    ErrorCode::AccessViolation,
                    "writes are not accepted",
                )
                .await;
            }
            Ok(other) => {
                tracing::debug!(%peer, packet = ?other, "tftp: not a request on the listening port");
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "tftp: malformed packet");
                // Answer a request we cannot read; ignore other noise (no reflection).
                if matches!(buf.get(..2), Some([0, 1] | [0, 2])) {
                    refuse(
                        &sock,
                        peer,
                        ErrorCode::IllegalOperation,
                        "malformed request",
                    )
                    .await;
                }
            }
        }
    }
}
