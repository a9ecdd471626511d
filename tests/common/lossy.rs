//! A lossy UDP relay for TFTP on loopback: seeded, bounded, with named packets to lose.
//!
//! A client sends its request to [`Relay::addr`]; the relay forwards it from a socket of its
//! own to the server. Each port the server answers from (a transfer's TID) gets a relay socket
//! of its own towards the client, so the client sees one TID per server transfer, as it would
//! without the relay. Every datagram each way is dropped with the configured chance (from a
//! seeded generator: the same seed, the same losses for the same sequence of packets), and the
//! first occurrence of each [`Target`] is dropped too. Loopback only: the relay refuses to bind
//! or forward anywhere else. Bounded: it stops on drop, or after `limit`.
//!
//! Used by `tests/tftp_loss.rs` and, through `examples/lossy-relay.rs`, by `scripts/bench-tftp`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;

/// A packet to lose the first time it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The server's option acknowledgement.
    Oack,
    /// The server's DATA with this block number (the low 16 bits, as on the wire).
    Data(u16),
    /// The client's ACK of this block number.
    Ack(u16),
}

/// What to lose.
#[derive(Debug, Clone)]
pub struct Loss {
    pub seed: u64,
    /// Chance, in per mille, that a datagram from the client is dropped.
    pub up_permille: u64,
    /// Chance, in per mille, that a datagram from the server is dropped.
    pub down_permille: u64,
    pub targets: Vec<Target>,
    /// The relay stops after this long, whatever happens.
    pub limit: Duration,
}

impl Loss {
    /// The same chance each way, no targets.
    pub fn each_way(pct: u64, seed: u64) -> Loss {
        Loss {
            seed,
            up_permille: pct * 10,
            down_permille: pct * 10,
            targets: vec![],
            limit: Duration::from_secs(300),
        }
    }
}

/// Counts of what passed.
#[derive(Debug, Default)]
pub struct Counts {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub targets_hit: AtomicU64,
}

struct Dice {
    x: u64,
    loss: Loss,
    hit: Vec<bool>,
}

impl Dice {
    fn roll(&mut self, permille: u64) -> bool {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x % 1000 < permille
    }

    /// Whether to drop `p`, travelling up (client to server) or down.
    fn decide(&mut self, p: &[u8], up: bool) -> (bool, bool) {
        let op = u16::from_be_bytes([
            p.first().copied().unwrap_or(0),
            p.get(1).copied().unwrap_or(0),
        ]);
        let block = u16::from_be_bytes([
            p.get(2).copied().unwrap_or(0),
            p.get(3).copied().unwrap_or(0),
        ]);
        let this = match (up, op) {
            (false, 6) => Some(Target::Oack),
            (false, 3) => Some(Target::Data(block)),
            (true, 4) => Some(Target::Ack(block)),
            _ => None,
        };
        if let Some(t) = this
            && let Some(i) = self.loss.targets.iter().position(|x| *x == t)
            && !self.hit[i]
        {
            self.hit[i] = true;
            return (true, true);
        }
        let chance = if up {
            self.loss.up_permille
        } else {
            self.loss.down_permille
        };
        (self.roll(chance), false)
    }
}

/// A running relay; dropping it stops it.
pub struct Relay {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn loopback(a: &SocketAddr) -> bool {
    a.ip().is_loopback()
}

type Shared = Arc<(Mutex<Dice>, Arc<Counts>)>;

fn pass(shared: &Shared, p: &[u8], up: bool) -> bool {
    let (dice, counts) = &**shared;
    let (drop, targeted) = dice.lock().expect("dice").decide(p, up);
    if drop {
        counts.dropped.fetch_add(1, Ordering::Relaxed);
        if targeted {
            counts.targets_hit.fetch_add(1, Ordering::Relaxed);
        }
    } else {
        counts.forwarded.fetch_add(1, Ordering::Relaxed);
    }
    !drop
}

impl Relay {
    /// Starts a relay on `listen` (a loopback address, port 0 for any) in front of `server`.
    pub async fn start(
        listen: SocketAddr,
        server: SocketAddr,
        loss: Loss,
    ) -> std::io::Result<Relay> {
        if !loopback(&listen) || !loopback(&server) {
            return Err(std::io::Error::other(
                "the lossy relay runs on loopback only",
            ));
        }
        let front = Arc::new(UdpSocket::bind(listen).await?);
        let addr = front.local_addr()?;
        let counts = Arc::new(Counts::default());
        let limit = loss.limit;
        let shared: Shared = Arc::new((
            Mutex::new(Dice {
                x: loss.seed | 1,
                hit: vec![false; loss.targets.len()],
                loss,
            }),
            counts.clone(),
        ));
        let task = tokio::spawn(async move {
            let _ = tokio::time::timeout(limit, front_loop(front, server, shared)).await;
        });
        Ok(Relay { addr, counts, task })
    }
}

/// Requests from clients: each client gets an upstream socket of its own.
async fn front_loop(front: Arc<UdpSocket>, server: SocketAddr, shared: Shared) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut children = tokio::task::JoinSet::new();
    loop {
        let Ok((n, client)) = front.recv_from(&mut buf).await else {
            continue;
        };
        if !loopback(&client) {
            continue;
        }
        let up = match upstreams.get(&client) {
            Some(u) => u.clone(),
            None => {
                let Ok(u) = UdpSocket::bind(("127.0.0.1", 0)).await else {
                    continue;
                };
                let u = Arc::new(u);
                upstreams.insert(client, u.clone());
                children.spawn(upstream_loop(u.clone(), client, shared.clone()));
                u
            }
        };
        if pass(&shared, &buf[..n], true) {
            let _ = up.send_to(&buf[..n], server).await;
        }
    }
}

/// Answers from the server to one client: one relay socket per server port (TID).
async fn upstream_loop(up: Arc<UdpSocket>, client: SocketAddr, shared: Shared) {
    let mut downs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut children = tokio::task::JoinSet::new();
    loop {
        let Ok((n, tid)) = up.recv_from(&mut buf).await else {
            continue;
        };
        if !loopback(&tid) {
            continue;
        }
        let down = match downs.get(&tid) {
            Some(d) => d.clone(),
            None => {
                let Ok(d) = UdpSocket::bind(("127.0.0.1", 0)).await else {
                    continue;
                };
                let d = Arc::new(d);
                downs.insert(tid, d.clone());
                children.spawn(client_loop(d.clone(), up.clone(), tid, shared.clone()));
                d
            }
        };
        if pass(&shared, &buf[..n], false) {
            let _ = down.send_to(&buf[..n], client).await;
        }
    }
}

/// What the client sends to one server TID, forwarded from the client's upstream socket.
async fn client_loop(down: Arc<UdpSocket>, up: Arc<UdpSocket>, tid: SocketAddr, shared: Shared) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = down.recv_from(&mut buf).await else {
            continue;
        };
        if !loopback(&from) {
            continue;
        }
        if pass(&shared, &buf[..n], true) {
            let _ = up.send_to(&buf[..n], tid).await;
        }
    }
}
