//! One read transfer: resolve, negotiate options, send windows of blocks, resend by the rules
//! of [`super::retry`], finish on the last ACK or give up after bounded retries.
//!
//! Blocks are numbered from 1 as u64 and sent as their low 16 bits, so numbers roll over and a
//! 43 MB image transfers at 512-byte blocks. An ACK is mapped back to the one block it can
//! mean inside the current window: a later one is progress (a partial ACK of a window resends
//! from the first block missing), the one before is the client asking again, older ones are
//! ignored. A transfer whose every block went out but whose final ACK never came ends
//! "unconfirmed", not failed: the client may well have it all.
//!
//! A client whose first answer (the OACK, or block 1) did not come sends its request again
//! from the same port. Until it has acknowledged a block, that is the same transfer asked for
//! again ([`Control::asked_again`]): answered like a duplicate ACK, from the same port. A new
//! transfer would race the old one's own resend, and a client that takes the old one's answer
//! (curl does: the first answer pins the server's port) would wait on a transfer that stopped.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::packet::{ErrorCode, Mode, Packet, Request};
use super::retry::{Duplicate, Retry};
use super::source::{Source, to_netascii};
use super::{Files, TftpConfig};
use crate::resolve::{RequestFacts, Resolution, Transport};

/// The one answer to every miss: unknown MAC, wrong site key, missing file, refused path.
const NOT_FOUND: &str = "File not found";

/// What was agreed with the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    pub blksize: usize,
    pub window: u64,
    pub timeout: Duration,
    /// Options to acknowledge in an OACK; empty means no OACK.
    pub oack: Vec<(String, String)>,
}

/// Decides the options (RFC 2347: acknowledge only what was asked and accepted). An option
/// with an unusable value is left out, except a blksize below 8, which is refused.
pub fn negotiate(req: &Request, size: u64, cfg: &TftpConfig) -> Result<Agreed, String> {
    let mut a = Agreed {
        blksize: 512,
        window: 1,
        timeout: cfg.timeout,
        oack: Vec::new(),
    };
    for (k, v) in &req.options {
        let num = v.trim().parse::<u64>().ok();
        match (k.as_str(), num) {
            ("blksize", Some(n)) if n < 8 => return Err(format!("blksize {n} is below 8")),
            ("blksize", Some(n)) => {
                let n = n.min(cfg.max_blksize as u64);
                a.blksize = n as usize;
                a.oack.push((k.clone(), n.to_string()));
            }
            ("windowsize", Some(n)) if n >= 1 => {
                let n = n.min(cfg.max_window as u64);
                a.window = n;
                a.oack.push((k.clone(), n.to_string()));
            }
            ("timeout", Some(n)) if (1..=255).contains(&n) => {
                a.timeout = Duration::from_secs(n);
                a.oack.push((k.clone(), n.to_string()));
            }
            ("tsize", Some(_)) => a.oack.push((k.clone(), size.to_string())),
            _ => {}
        }
    }
    Ok(a)
}

use crate::resolve::TransferEnd as End;

/// The listener's hold on a running transfer: stop it for a new one, or have it answer a
/// request the client sent again.
#[derive(Debug, Default)]
pub struct Control {
    cancel: CancellationToken,
    asked: Notify,
    /// Set once the client acknowledged a block: a request sent again after that is a new start.
    underway: AtomicBool,
}

impl Control {
    /// Stops the transfer: a new request from its client takes over.
    pub fn supersede(&self) {
        self.cancel.cancel();
    }

    /// The client sent the same request again. Before it acknowledged any block, its first
    /// answer was lost (or is on its way): the transfer answers again, by the rules of a
    /// duplicate ACK, and this returns true. Once underway, false: the client started over.
    pub fn asked_again(&self) -> bool {
        if self.underway.load(Ordering::Acquire) {
            return false;
        }
        self.asked.notify_one();
        true
    }
}

/// Serves one read request to `peer` from a socket of its own.
pub async fn serve_read(
    peer: SocketAddr,
    local_ip: Option<IpAddr>,
    req: Request,
    files: &dyn Files,
    cfg: &TftpConfig,
    control: &Control,
) {
    let bind_ip = local_ip.unwrap_or(if peer.is_ipv4() {
        IpAddr::from([0u8; 4])
    } else {
        IpAddr::from([0u16; 8])
    });
    let sock = match UdpSocket::bind((bind_ip, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%peer, error = %e, "tftp: no socket for a transfer");
            return;
        }
    };
    if sock.connect(peer).await.is_err() {
        return;
    }
    let send_err = |code: ErrorCode, msg: &str| {
        let p = Packet::Error {
            code,
            message: msg.to_string(),
        }
        .to_bytes();
        let sock = &sock;
        async move {
            let _ = sock.send(&p).await;
        }
    };
    let Some(mode) = req.mode else {
        send_err(ErrorCode::IllegalOperation, "unsupported transfer mode").await;
        return;
    };
    let facts = RequestFacts::bare(&req.filename, peer.ip(), Transport::Tftp);
    let mut source = match crate::resolve::answer(files, &facts).await {
        Resolution::Found(f) => Source::Memory(f.body()),
        Resolution::Disk(d) => match std::fs::File::open(&d.path) {
            Ok(f) => Source::disk(f, d.len, 64 * 1024),
            Err(_) => {
                send_err(ErrorCode::FileNotFound, NOT_FOUND).await;
                return;
            }
        },
        Resolution::NotFound | Resolution::Unauthorized => {
            tracing::debug!(%peer, file = %req.filename, "tftp: not found");
            send_err(ErrorCode::FileNotFound, NOT_FOUND).await;
            return;
        }
    };
    if mode == Mode::Netascii {
        // Text mode is for text: the whole file is converted in memory, so cap its size.
        if source.len() > 16 * 1024 * 1024 {
            send_err(
                ErrorCode::NotDefined,
                "file too large for netascii; use octet mode",
            )
            .await;
            return;
        }
        match source.read(0, source.len() as usize).await {
            Ok(b) => source = Source::Memory(to_netascii(&b).into()),
            Err(_) => {
                send_err(ErrorCode::FileNotFound, NOT_FOUND).await;
                return;
            }
        }
    }
    let agreed = match negotiate(&req, source.len(), cfg) {
        Ok(a) => a,
        Err(why) => {
            send_err(ErrorCode::OptionRefused, &why).await;
            return;
        }
    };
    let started = Instant::now();
    let counted = crate::telemetry::tftp_started();
    let len = source.len();
    let report = |acked: u64| files.progress(peer, &req.filename, acked, len);
    let (end, sent) = send(&sock, &mut source, &agreed, cfg, control, &report).await;
    files.finished(peer, &req.filename, &end, len);
    let secs = started.elapsed().as_secs_f64();
    let how = match &end {
        End::Done => "done",
        End::Unconfirmed => "unconfirmed",
        End::ClientError(_) => "client_error",
        End::Abandoned => "abandoned",
        End::Gone => "gone",
        End::Superseded => "superseded",
    };
    let payload = sent.saturating_mul(agreed.blksize as u64).min(len.max(1));
    counted.end(
        how,
        if matches!(end, End::Done | End::Unconfirmed) {
            len
        } else {
            payload
        },
    );
    match end {
        End::Done => {
            tracing::info!(%peer, file = %req.filename, bytes = len, blksize = agreed.blksize,
            window = agreed.window, packets = sent, secs = format!("{secs:.3}"), "tftp transfer done")
        }
        End::ClientError(m) => {
            tracing::info!(%peer, file = %req.filename, message = %m, "tftp transfer ended by the client")
        }
        End::Abandoned => {
            tracing::warn!(%peer, file = %req.filename, retries = cfg.retries, "tftp transfer abandoned: no answer")
        }
        End::Gone => {
            tracing::info!(%peer, file = %req.filename, "tftp transfer ended: client unreachable")
        }
        End::Unconfirmed => {
            tracing::info!(%peer, file = %req.filename, bytes = len, packets = sent,
                secs = format!("{secs:.3}"), "tftp transfer unconfirmed: every block sent, the final ACK never came")
        }
        End::Superseded => {
            tracing::info!(%peer, file = %req.filename, "tftp transfer superseded: the client asked again")
        }
    }
}

/// What came back while waiting.
enum Reply {
    Ack(u16),
    Error(String),
    Timeout,
    Gone,
    /// The client asked again from the same port: a new transfer took over.
    Superseded,
    /// The client sent its request again before acknowledging anything ([`Control`]).
    AskedAgain,
}

/// Waits for an ACK or ERROR until `deadline` (fixed by the caller: nothing that arrives
/// moves it), or until the listener stops the transfer or passes on a repeated request.
async fn wait(
    sock: &UdpSocket,
    buf: &mut [u8],
    deadline: tokio::time::Instant,
    control: &Control,
) -> Reply {
    loop {
        let got = tokio::select! {
            _ = control.cancel.cancelled() => return Reply::Superseded,
            _ = control.asked.notified() => return Reply::AskedAgain,
            r = tokio::time::timeout_at(deadline, sock.recv(buf)) => r,
        };
        match got {
            Err(_) => return Reply::Timeout,
            // The port is closed now, but what the client sent before closing may still be
            // queued (its final ACK, typically): the error is reported first, so drain.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                let mut last = Reply::Gone;
                loop {
                    match sock.try_recv(buf) {
                        Ok(n) => match Packet::parse(&buf[..n]) {
                            Ok(Packet::Ack { block }) => last = Reply::Ack(block),
                            Ok(Packet::Error { message, .. }) => return Reply::Error(message),
                            _ => {}
                        },
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                        Err(_) => return last,
                    }
                }
            }
            Ok(Err(_)) => continue,
            Ok(Ok(n)) => match Packet::parse(&buf[..n]) {
                Ok(Packet::Ack { block }) => return Reply::Ack(block),
                Ok(Packet::Error { message, .. }) => return Reply::Error(message),
                // Anything else from the client is noise: keep waiting, the deadline holds.
                _ => continue,
            },
        }
    }
}

/// The block an ACK number means: the one at or after `base - 1` with those low 16 bits, if
/// it has been sent.
fn ack_to_block(ack: u16, base: u64, sent_hi: u64) -> Option<u64> {
    let from = base - 1;
    let off = ack.wrapping_sub(from as u16) as u64;
    let block = from + off;
    (block <= sent_hi).then_some(block)
}

/// Sends the OACK (if any) and every block; returns how it ended and how many packets went.
async fn send(
    sock: &UdpSocket,
    src: &mut Source,
    a: &Agreed,
    cfg: &TftpConfig,
    control: &Control,
    progress: &(dyn Fn(u64) + Sync),
) -> (End, u64) {
    let mut rx = vec![0u8; 1024];
    let mut packets = 0u64;
    let mut retry = Retry::new(a.timeout, cfg.retries);

    if !a.oack.is_empty() {
        let oack = Packet::Oack {
            options: a.oack.clone(),
        }
        .to_bytes();
        'resend: loop {
            if sock.send(&oack).await.is_err() {
                return (End::Gone, packets);
            }
            packets += 1;
            retry.sent();
            loop {
                match wait(sock, &mut rx, retry.deadline(), control).await {
                    Reply::Ack(0) => break 'resend,
                    Reply::Ack(_) => continue,
                    Reply::Error(m) => return (End::ClientError(m), packets),
                    Reply::Gone => return (End::Gone, packets),
                    Reply::Superseded => return (End::Superseded, packets),
                    Reply::AskedAgain => match retry.duplicate() {
                        Duplicate::Resend => continue 'resend,
                        Duplicate::Ignore => continue,
                        Duplicate::GiveUp => return (End::Abandoned, packets),
                    },
                    Reply::Timeout if retry.silence() => continue 'resend,
                    Reply::Timeout => return (End::Abandoned, packets),
                }
            }
        }
        retry.progress();
    }

    let bs = a.blksize as u64;
    let last = src.len() / bs + 1; // a final short (possibly empty) block always ends it
    let mut base = 1u64; // first block not yet acknowledged
    let mut pkt = Vec::with_capacity(4 + a.blksize);
    // How a transfer that stops hearing from the client ends: once every block went out at
    // least once, the client may well have it all and only its final ACK was lost.
    let unheard = |hi: u64, gone: bool| match (hi == last, gone) {
        (true, _) => End::Unconfirmed,
        (false, true) => End::Gone,
        (false, false) => End::Abandoned,
    };
    loop {
        let hi = (base + a.window - 1).min(last);
        for n in base..=hi {
            let data = match src.read((n - 1) * bs, a.blksize).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "tftp: read failed mid-transfer");
                    let p = Packet::Error {
                        code: ErrorCode::NotDefined,
                        message: "read error".into(),
                    };
                    let _ = sock.send(&p.to_bytes()).await;
                    return (End::Gone, packets);
                }
            };
            pkt.clear();
            pkt.extend_from_slice(&[0, 3]);
            pkt.extend_from_slice(&(n as u16).to_be_bytes());
            pkt.extend_from_slice(&data);
            // A refused send means the client's port closed; what it sent before closing is
            // still queued, so `wait` drains it before concluding the client is gone.
            let _ = sock.send(&pkt).await;
            packets += 1;
        }
        retry.sent();
        loop {
            match wait(sock, &mut rx, retry.deadline(), control).await {
                Reply::Ack(ack) => match ack_to_block(ack, base, hi) {
                    Some(b) if b == last => return (End::Done, packets),
                    Some(b) if b >= base => {
                        // About every 1 MiB, the caller hears how far the client has got.
                        if (b * bs) >> 20 != ((base - 1) * bs) >> 20 {
                            progress((b * bs).min(src.len()));
                        }
                        // A partial ACK of a window resends from the first block missing.
                        base = b + 1;
                        control.underway.store(true, Ordering::Release);
                        retry.progress();
                        break;
                    }
                    // The client resent its ACK of the block before: it timed out waiting.
                    Some(b) if b + 1 == base => match retry.duplicate() {
                        Duplicate::Resend => break,
                        Duplicate::Ignore => continue,
                        Duplicate::GiveUp => return (unheard(hi, false), packets),
                    },
                    // Stale: ignored, never answered.
                    _ => continue,
                },
                Reply::Error(m) => return (End::ClientError(m), packets),
                Reply::Gone => return (unheard(hi, true), packets),
                Reply::Superseded => return (End::Superseded, packets),
                // Block 1 (or the first window) asked for again: as a duplicate ACK 0 would.
                Reply::AskedAgain => match retry.duplicate() {
                    Duplicate::Resend => break,
                    Duplicate::Ignore => continue,
                    Duplicate::GiveUp => return (unheard(hi, false), packets),
                },
                Reply::Timeout if retry.silence() => break,
                Reply::Timeout => return (unheard(hi, false), packets),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(opts: &[(&str, &str)]) -> Request {
        Request {
            filename: "f".into(),
            mode: Some(Mode::Octet),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn options() {
        let cfg = TftpConfig::default();
        let a = negotiate(&req(&[]), 10, &cfg).unwrap();
        assert_eq!(
            (a.blksize, a.window, a.oack.len()),
            (512, 1, 0),
            "no options asked, no OACK"
        );
        let a = negotiate(
            &req(&[
                ("blksize", "1468"),
                ("tsize", "0"),
                ("windowsize", "8"),
                ("timeout", "3"),
            ]),
            43_000_000,
            &cfg,
        )
        .unwrap();
        assert_eq!(
            (a.blksize, a.window, a.timeout),
            (1468, 8, Duration::from_secs(3))
        );
        assert_eq!(
            a.oack,
            vec![
                ("blksize".into(), "1468".into()),
                ("tsize".into(), "43000000".into()),
                ("windowsize".into(), "8".into()),
                ("timeout".into(), "3".into()),
            ]
        );
        // Clamped, not ignored.
        let a = negotiate(
            &req(&[("blksize", "70000"), ("windowsize", "1000")]),
            1,
            &cfg,
        )
        .unwrap();
        assert_eq!((a.blksize, a.window), (65464, 64));
        assert_eq!(a.oack[0].1, "65464");
        // Unknown or unusable options are left out of the OACK.
        let a = negotiate(
            &req(&[
                ("multicast", ""),
                ("timeout", "0"),
                ("windowsize", "0"),
                ("blksize", "x"),
            ]),
            1,
            &cfg,
        )
        .unwrap();
        assert!(a.oack.is_empty(), "{:?}", a.oack);
        assert!(negotiate(&req(&[("blksize", "7")]), 1, &cfg).is_err());
    }

    #[test]
    fn acks_roll_over() {
        // Window 1..=4: ACK 0 is the OACK's, not a block.
        assert_eq!(ack_to_block(0, 1, 4), Some(0));
        assert_eq!(ack_to_block(3, 1, 4), Some(3));
        assert_eq!(ack_to_block(5, 1, 4), None);
        // Around the wrap: block 65536 is sent as 0, 65537 as 1.
        assert_eq!(ack_to_block(0, 65535, 65538), Some(65536));
        assert_eq!(ack_to_block(1, 65535, 65538), Some(65537));
        assert_eq!(
            ack_to_block(65534, 65535, 65538),
            Some(65534),
            "the previous block: stale"
        );
        assert_eq!(ack_to_block(65535, 131_071, 131_072), Some(131_071));
        // An ACK from far behind maps ahead of what was sent: ignored.
        assert_eq!(ack_to_block(10, 70_000, 70_003), None);
    }
}
