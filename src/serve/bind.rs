//! Binding every listener `serve` was asked for — HTTP, TFTP, HTTPS with its certificate — with
//! errors that say which flag chooses another address; and the public URL when none is set.

use std::net::SocketAddr;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::{TcpListener, UdpSocket};

use super::{ServeConfig, ServeError, tls};

/// Connections the kernel completes and holds for `accept` on the HTTP and HTTPS listeners (it
/// caps this at `net.core.somaxconn`, 4096 by default since Linux 5.4). In a boot storm a
/// connection can wait there after its phone has closed it, so the queue must hold more than
/// the phones in flight: at the 128 that tokio's and std's `bind` listen with,
/// `scripts/bench-storm` (500 phones at a time) overflowed it 64-205 times a round (`nstat`:
/// ListenOverflows), and each SYN dropped cost its phone a retransmission a second later.
/// nginx's storm listener there has 4096 too.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Sets a bound listener's backlog to [`LISTEN_BACKLOG`] (Linux takes a second `listen` on a
/// listening socket as a new backlog).
fn deepen_backlog(listener: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    socket2::SockRef::from(listener).listen(LISTEN_BACKLOG)
}

/// The TFTP socket's receive buffer, asked for (Linux doubles it for its bookkeeping and caps
/// it at twice `net.core.rmem_max`). A boot storm's read requests arrive at once, before the
/// server has read any: 1,000 phones asking together overflowed the default 208 KiB by 300-380
/// datagrams a round (`scripts/bench-storm`, `nstat`: UdpRcvbufErrors), and each phone whose
/// request was dropped waited out its retry timeout (a second, at best). Memory is used only
/// while datagrams wait.
pub const TFTP_RECEIVE_BUFFER: usize = 4 << 20;

/// Asks for [`TFTP_RECEIVE_BUFFER`] on `sock`; what the kernel granted (bytes).
fn widen_receive_buffer(sock: &UdpSocket) -> std::io::Result<usize> {
    let s = socket2::SockRef::from(sock);
    s.set_recv_buffer_size(TFTP_RECEIVE_BUFFER)?;
    let granted = s.recv_buffer_size()?;
    if capped(granted) {
        tracing::info!(
            granted_kib = granted / 1024,
            wanted_kib = TFTP_RECEIVE_BUFFER / 1024,
            "the TFTP receive buffer is capped by net.core.rmem_max: in a storm of thousands \
             of phones at once some requests may be dropped and resent after the phones' \
             timeout (sysctl -w net.core.rmem_max={TFTP_RECEIVE_BUFFER} allows the whole)"
        );
    }
    Ok(granted)
}

/// Whether the kernel granted less than asked: it reports twice what it was asked for (its
/// bookkeeping) when nothing capped it, so 6 MiB granted under an rmem_max of 3 MiB is capped.
fn capped(granted: usize) -> bool {
    granted < 2 * TFTP_RECEIVE_BUFFER
}

/// The bound listeners.
pub struct Listeners {
    pub http: TcpListener,
    pub http_addr: SocketAddr,
    pub tftp: Option<UdpSocket>,
    pub tftp_addr: Option<SocketAddr>,
    pub https: Option<HttpsListener>,
}

/// The HTTPS listener and the certificate it serves.
pub struct HttpsListener {
    pub listener: std::net::TcpListener,
    pub config: RustlsConfig,
    pub files: tls::TlsFiles,
    pub addr: SocketAddr,
}

/// Binds HTTP, then TFTP and HTTPS when configured; the first that fails ends it.
pub async fn bind(cfg: &ServeConfig) -> Result<Listeners, ServeError> {
    let http = TcpListener::bind(&cfg.http)
        .await
        .map_err(|source| bind_error(cfg.http.clone(), source, "--http ADDR:PORT"))?;
    deepen_backlog(&http)?;
    let http_addr = http.local_addr()?;
    let tftp = match &cfg.tftp {
        Some(a) => Some(UdpSocket::bind(a).await.map_err(|source| {
            bind_error(
                format!("udp {a}"),
                source,
                "--tftp ADDR:PORT, or --tftp off",
            )
        })?),
        None => None,
    };
    if let Some(sock) = &tftp {
        widen_receive_buffer(sock)?;
    }
    let tftp_addr = tftp.as_ref().map(|s| s.local_addr()).transpose()?;
    let https = match &cfg.https {
        Some(a) => Some(bind_https(cfg, a).await?),
        None => None,
    };
    Ok(Listeners {
        http,
        http_addr,
        tftp,
        tftp_addr,
        https,
    })
}

async fn bind_https(cfg: &ServeConfig, a: &str) -> Result<HttpsListener, ServeError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let files = match &cfg.tls_files {
        Some(f) => f.clone(),
        None => {
            let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            if let Some(h) = cfg.public_url.as_deref().and_then(url_host) {
                hosts.push(h);
            }
            tls::self_signed(&cfg.data_dir.join("tls"), &hosts)?
        }
    };
    let config = tls::load(&files).await?;
    let listener = std::net::TcpListener::bind(a)
        .map_err(|source| bind_error(a.to_string(), source, "--https ADDR:PORT"))?;
    listener.set_nonblocking(true)?;
    deepen_backlog(&listener)?;
    let addr = listener.local_addr()?;
    Ok(HttpsListener {
        listener,
        config,
        files,
        addr,
    })
}

/// The configured public URL, or one made from the bound HTTP address.
pub fn public_url(cfg: &ServeConfig, addr: SocketAddr) -> String {
    cfg.public_url.clone().unwrap_or_else(|| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        format!("http://{host}:{}", addr.port())
    })
}

/// A listener that could not be bound, with the flag that chooses another address.
fn bind_error(addr: String, source: std::io::Error, flag: &str) -> ServeError {
    let hint = match source.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!(" (another server, or another phoneprov, holds it: choose another with {flag})")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; or choose another with {flag})"
        ),
        _ => String::new(),
    };
    ServeError::Bind { addr, source, hint }
}

/// The host of a URL, `http://host:port/...` → `host`.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split("://").nth(1)?;
    let host = rest.split('/').next()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host),
    };
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `net.core.rmem_max` of this machine.
    fn rmem_max() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .expect("net.core.rmem_max")
            .trim()
            .parse()
            .expect("a number")
    }

    #[tokio::test]
    async fn the_tftp_socket_gets_the_receive_buffer_the_kernel_allows() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let before = socket2::SockRef::from(&sock).recv_buffer_size().unwrap();
        let granted = widen_receive_buffer(&sock).unwrap();
        // Linux doubles what it is asked for, up to twice rmem_max.
        let expected = 2 * TFTP_RECEIVE_BUFFER.min(rmem_max());
        assert_eq!(
            granted, expected,
            "asked {TFTP_RECEIVE_BUFFER}, before {before}"
        );
        assert_eq!(
            socket2::SockRef::from(&sock).recv_buffer_size().unwrap(),
            expected
        );
        assert_eq!(capped(granted), rmem_max() < TFTP_RECEIVE_BUFFER);
    }

    #[test]
    fn a_buffer_is_capped_when_less_than_twice_the_ask_came_back() {
        assert!(!capped(2 * TFTP_RECEIVE_BUFFER), "all of it");
        assert!(capped(2 * (3 << 20)), "rmem_max of 3 MiB");
        assert!(capped(2 * 212_992), "stock rmem_max");
    }

    #[tokio::test]
    async fn http_listeners_hold_the_backlog_asked_for() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        deepen_backlog(&l).unwrap();
        // For a listening socket Linux reports its backlog limit in tcpi_sacked (TCP_INFO).
        // SAFETY: tcp_info is plain integers, for which all zeros is a value.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: a valid socket, and a buffer of the length given.
        let r = unsafe {
            libc::getsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&l),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(info.tcpi_sacked, (LISTEN_BACKLOG as u32).min(somaxconn));
    }
}
