//! Answering a transport: the [`Responder`] trait every transport calls, and [`answer`], which
//! waits while a known phone's files are still being rendered after a start instead of
//! answering with a miss a healthy server would not give.

use super::{RequestFacts, Resolution, TransferEnd};

/// Something that answers file requests: the provisioning [`Resolver`], or the recovery
/// responder. Transports call it and nothing else.
pub trait Responder: Send + Sync + 'static {
    fn respond(&self, facts: &RequestFacts<'_>) -> Resolution;
    /// The answer, or a watch that fires when asking again may give one.
    fn attempt(&self, facts: &RequestFacts<'_>) -> Answer {
        Answer::Now(self.respond(facts))
    }
    /// Now and then during a transfer: bytes the client has acknowledged, of `total`.
    fn progress(&self, _peer: std::net::SocketAddr, _file: &str, _acked: u64, _total: u64) {}
    /// Once, when a transfer ends.
    fn finished(&self, _peer: std::net::SocketAddr, _file: &str, _end: &TransferEnd, _bytes: u64) {}
}

/// The answer now, or a watch to wait on: the phone is known but its files are still being
/// rendered after a start.
#[derive(Debug)]
pub enum Answer {
    Now(Resolution),
    Wait(tokio::sync::watch::Receiver<u64>),
}

/// A known phone's files are not rendered yet (only while the server catches up after start).
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending;

/// Longest a request waits for its phone's files after a start before it is answered as a
/// miss.
pub const PENDING_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What the request gets, waiting (up to [`PENDING_WAIT`]) while its phone's files are still
/// being rendered after a start. Transports call this.
pub async fn answer(r: &dyn Responder, facts: &RequestFacts<'_>) -> Resolution {
    let deadline = tokio::time::Instant::now() + PENDING_WAIT;
    loop {
        match r.attempt(facts) {
            Answer::Now(res) => return res,
            Answer::Wait(mut rx) => {
                let late = tokio::time::timeout_at(deadline, rx.changed()).await;
                if !matches!(late, Ok(Ok(()))) {
                    tracing::warn!(peer = %facts.peer, path = facts.path,
                        "a phone's files were still not rendered after waiting; answered as a miss");
                    return r.respond(facts);
                }
            }
        }
    }
}
