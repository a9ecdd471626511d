//! The test suite's lossy TFTP relay as a program, for `scripts/bench-tftp`'s loss run.
//!
//! `lossy-relay LISTEN SERVER PERCENT SEED` relays TFTP from LISTEN to SERVER (both loopback),
//! dropping PERCENT % of datagrams each way from a generator seeded with SEED; prints
//! `relay on ADDR` once listening, then runs until killed.

#[path = "../tests/common/lossy.rs"]
mod lossy;

use std::net::SocketAddr;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, server, pct, seed] = args.as_slice() else {
        return Err("usage: lossy-relay LISTEN SERVER PERCENT SEED".into());
    };
    let listen: SocketAddr = listen.parse()?;
    let server: SocketAddr = server.parse()?;
    let mut loss = lossy::Loss::each_way(pct.parse()?, seed.parse()?);
    loss.limit = std::time::Duration::from_secs(24 * 3600);
    let relay = lossy::Relay::start(listen, server, loss).await?;
    println!("relay on {}", relay.addr);
    std::future::pending::<()>().await;
    Ok(())
}
