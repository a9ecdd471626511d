//! Helpers for firmware tests: test bytes, files, digests, a TFTP fetch with tftp-hpa.

use std::path::{Path, PathBuf};

use super::{Env, Server, bin};

/// Deterministic bytes that look nothing alike for different seeds.
pub fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(b))
}

pub fn sha1(b: &[u8]) -> String {
    use sha1::Digest;
    hex(&sha1::Sha1::digest(b))
}

/// Fetches `name` with tftp-hpa into `out`; whether a non-empty file arrived without an error.
pub fn tftp_get(srv: &Server, name: &str, out: &Path) -> bool {
    tftp_get_from(&srv.tftp, name, out)
}

pub fn tftp_get_from(addr: &str, name: &str, out: &Path) -> bool {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let _ = std::fs::remove_file(out);
    let o = std::process::Command::new("tftp")
        .args([
            "-m",
            "binary",
            host,
            port,
            "-c",
            "get",
            name,
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    // tftp-hpa exits 0 even on an error packet; the message tells.
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    !said.contains("Error code")
        && out.exists()
        && std::fs::metadata(out).map(|m| m.len() > 0).unwrap_or(false)
}

/// Sends SIGINT with the `kill` command (no libc in the tests' dependencies).
pub fn sigint(pid: u32) {
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
}

/// Starts `phoneprov recover --image IMAGE` on a free loopback port at its default log level
/// (its requests, progress and outcomes are its output) and waits until it listens; the child
/// and its `host:port`.
pub fn spawn_recover(env: &Env, image: &Path) -> (std::process::Child, String) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    drop(sock);
    let child = std::process::Command::new(bin())
        .env("PHONEPROV_DATA_DIR", env.data_dir())
        .env_remove("PHONEPROV_LOG")
        .args([
            "recover",
            "--image",
            image.to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    (child, addr)
}
