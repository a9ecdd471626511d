//! The plain-HTTP server under [`super::http`]: accepting connections and serving each with
//! hyper's HTTP/1.1. A phone's `GET` or `HEAD` under `/p/` — the whole of a boot storm — goes
//! straight to the resolver; everything else goes through the router. On stop it takes no new
//! connection, idle ones close, and requests in flight get up to [`DRAIN`] to finish.
//!
//! Ours rather than `axum::serve` because a phone's fetch is the request that must be cheap:
//! `axum::serve` sniffs every connection for HTTP/2 and sends every request through routing,
//! middleware and extractors, which `scripts/bench-http` measured at a tenth of the request's
//! cost; and it has no limit on how long a client may take to send its headers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::state::AppState;

/// How long requests in flight may take to finish once the server is told to stop.
pub const DRAIN: Duration = Duration::from_secs(5);

/// How long a client has to send a request's headers, and how long an idle keep-alive
/// connection stays open. Phones send theirs at once; a client that dribbles them holds a
/// socket, and enough of those would hold them all.
pub const HEADER_READ: Duration = Duration::from_secs(30);

/// Serves `listener` until `shutdown` completes, then drains (up to [`DRAIN`]).
///
/// Connections are served by one thread per core, each with its own single-threaded runtime
/// accepting from the same socket, the way nginx runs a worker per core: a connection is
/// accepted, read, answered and closed on one thread. On tokio's shared runtime each accepted
/// connection woke a second worker to steal it, which `scripts/bench-http` measured at a third
/// of the new-connection rate when the load shares the cores. Requests other than a phone's
/// fetch run on the runtime that called `serve`, where the rest of the server lives.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    set_nodelay(&listener)?;
    let main = tokio::runtime::Handle::current();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut ended = Vec::new();
    for n in 0..threads() {
        let listener = listener.try_clone()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let worker = Worker {
            state: state.clone(),
            router: router.clone(),
            main: main.clone(),
        };
        let stop = stop_rx.clone();
        std::thread::Builder::new()
            .name(format!("http-{n}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(l) => accept(l, worker, stop).await,
                            Err(e) => tracing::error!(error = %e, "cannot serve HTTP"),
                        }
                    }),
                    Err(e) => tracing::error!(error = %e, "cannot start an HTTP thread"),
                }
                drop(done_tx);
            })?;
        ended.push(done_rx);
    }
    drop(listener);
    shutdown.await;
    let _ = stop_tx.send(true);
    for done in ended {
        let _ = done.await;
    }
    Ok(())
}

/// Turns Nagle off on the listening socket: a response is written whole at once, and Nagle
/// would only hold back its last segment. Linux gives every accepted socket its listener's
/// setting, so no connection pays a system call for it (`strace` of a connection per request:
/// one of eight).
fn set_nodelay(listener: &std::net::TcpListener) -> std::io::Result<()> {
    socket2::SockRef::from(listener).set_tcp_nodelay(true)
}

/// One serving thread per core the process may run on.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a serving thread needs: the state for phones' fetches, the router and the main
/// runtime for everything else.
#[derive(Clone)]
struct Worker {
    state: AppState,
    router: Router,
    main: tokio::runtime::Handle,
}

/// A serving thread's accept loop, until told to stop; then its connections drain.
async fn accept(listener: TcpListener, worker: Worker, mut stop: watch::Receiver<bool>) {
    // Every connection holds a receiver; the sender sees all of them gone once they have ended.
    let (live_tx, live_rx) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let last = Arc::new(AtomicBool::new(false));
                let svc = Service {
                    worker: worker.clone(),
                    peer,
                    last: last.clone(),
                };
                let socket = Socket {
                    io: TokioIo::new(tcp),
                    last,
                };
                // Boxed: the task then holds a pointer, not the whole connection state, which
                // tokio would otherwise copy as it moves the task in and out of its stages.
                tokio::spawn(Box::pin(connection(
                    socket,
                    svc,
                    stop.clone(),
                    live_rx.clone(),
                )));
            }
            // The client gave up before we took it: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            // Out of file descriptors, most likely: back off rather than spin.
            Err(e) => {
                tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    drop(listener);
    drop(live_rx);
    if tokio::time::timeout(DRAIN, live_tx.closed()).await.is_err() {
        tracing::warn!(
            "HTTP requests still in flight after {} s; stopping anyway",
            DRAIN.as_secs()
        );
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One connection, to its end or until the server stops (then it finishes what it is doing).
async fn connection(
    socket: Socket,
    svc: Service,
    mut stop: watch::Receiver<bool>,
    _live: watch::Receiver<()>,
) {
    // Nagle is off: set on the listener, inherited ([`set_nodelay`]).
    let peer = svc.peer;
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ)
        .serve_connection(socket, svc);
    tokio::pin!(conn);
    // The watch's guard is not `Send`: drop it inside the branch, before the select's output.
    let told_to_stop = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let ended = tokio::select! {
        r = conn.as_mut() => r,
        () = told_to_stop => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// A connection's socket as hyper drives it, closed by being dropped.
///
/// hyper shuts the write side down before it lets a connection go, and the close that follows
/// at once sends the same FIN, so that `shutdown` would be a system call per connection for
/// nothing. The answer that ends a connection (`last`: the request said `Connection: close`)
/// is written with `MSG_MORE`, which holds it back until the close: the answer and the FIN
/// leave in one segment, as nginx's `tcp_nopush` does it, instead of two. On loopback with a
/// connection per request that is 9 segments a fetch instead of 10, and the client's side
/// handles one less. Nothing is held for long: the close follows at once, and Linux sends
/// held data anyway when its probe timer fires (about 200 ms).
struct Socket {
    io: TokioIo<TcpStream>,
    last: Arc<AtomicBool>,
}

impl Socket {
    /// Writes `bufs` with `MSG_MORE`: sent when the segment is full or the socket closes.
    fn poll_write_held(
        &self,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let tcp = self.io.inner();
        loop {
            std::task::ready!(tcp.poll_write_ready(cx))?;
            let sent = tcp.try_io(tokio::io::Interest::WRITABLE, || {
                socket2::SockRef::from(tcp).send_vectored_with_flags(bufs, libc::MSG_MORE)
            });
            match sent {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }
}

impl hyper::rt::Read for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.last.load(Ordering::Relaxed) {
            return self.poll_write_held(cx, &[std::io::IoSlice::new(buf)]);
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.last.load(Ordering::Relaxed) {
            return self.poll_write_held(cx, bufs);
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Whether hyper closes the connection after answering `req`: HTTP/1.1 with `Connection:
/// close`, or HTTP/1.0 without `keep-alive`.
fn ends_connection<B>(req: &Request<B>) -> bool {
    let says = |word: &str| {
        req.headers()
            .get_all(axum::http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(word))
    };
    match req.version() {
        axum::http::Version::HTTP_10 => !says("keep-alive"),
        _ => says("close"),
    }
}

/// What serves a connection's requests.
#[derive(Clone)]
struct Service {
    worker: Worker,
    peer: SocketAddr,
    /// Set once the answer that ends the connection is ready ([`Socket`]).
    last: Arc<AtomicBool>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        let phone_fetch = matches!(*req.method(), Method::GET | Method::HEAD)
            && req.uri().path().starts_with("/p/");
        let peer = self.peer;
        // Marked only once the answer is ready: anything written before it (a `100 Continue`
        // while a body is read) must leave at once.
        let last = ends_connection(&req).then(|| self.last.clone());
        let mark = move || {
            if let Some(l) = last {
                l.store(true, Ordering::Relaxed);
            }
        };
        if phone_fetch {
            let st = self.worker.state.clone();
            let (parts, _) = req.into_parts();
            return Box::pin(async move {
                let r = super::http::fetch_unrouted(&st, peer, &parts).await;
                mark();
                Ok(r)
            });
        }
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = self.worker.router.clone();
        let routed = self
            .worker
            .main
            .spawn(tower_service::Service::call(&mut router, req));
        Box::pin(async move {
            let r = routed.await;
            mark();
            Ok(match r {
                Ok(Ok(r)) => r,
                Ok(Err(never)) => match never {},
                // A handler panicked (or the server is going away): the client gets a 500.
                Err(e) => {
                    tracing::error!(%peer, error = %e, "a request's handler failed");
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepted_connections_have_nagle_off() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        super::set_nodelay(&l).unwrap();
        let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        assert!(s.nodelay().unwrap(), "inherited from the listener");
    }

    /// Writes `data` through hyper's write side of `socket`, as hyper writes an answer.
    async fn write_all(socket: &mut super::Socket, data: &[u8]) {
        let mut pinned = std::pin::Pin::new(socket);
        let mut at = 0;
        while at < data.len() {
            let n = std::future::poll_fn(|cx| {
                let bufs = [std::io::IoSlice::new(&data[at..])];
                hyper::rt::Write::poll_write_vectored(pinned.as_mut(), cx, &bufs)
            })
            .await
            .unwrap();
            at += n;
        }
    }

    /// A socket and the client at its other end.
    async fn pair(last: bool) -> (super::Socket, std::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (tcp, _) = l.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let socket = super::Socket {
            io: hyper_util::rt::TokioIo::new(tcp),
            last: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(last)),
        };
        client
            .set_read_timeout(Some(std::time::Duration::from_millis(60)))
            .unwrap();
        (socket, client)
    }

    #[tokio::test]
    async fn the_last_answer_leaves_with_the_close() {
        use std::io::Read;
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (mut socket, mut client) = pair(true).await;
        write_all(&mut socket, answer).await;
        let mut buf = [0u8; 256];
        let held = client.read(&mut buf);
        assert!(
            held.as_ref().is_err_and(|e| matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
            "the last answer waits for the close: {held:?}"
        );
        drop(socket);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, answer, "all of it, then the end of the stream");

        // Any other answer leaves at once, and the connection stays open.
        let (mut socket, mut client) = pair(false).await;
        write_all(&mut socket, answer).await;
        let mut got = vec![0u8; answer.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, answer);
        assert!(client.read(&mut buf).is_err(), "no end of stream yet");
        drop(socket);
    }

    #[test]
    fn which_requests_end_their_connection() {
        use axum::http::{Request, Version};
        let req = |v: Version, conn: Option<&str>| {
            let mut b = Request::builder().version(v);
            if let Some(c) = conn {
                b = b.header("connection", c);
            }
            b.body(()).unwrap()
        };
        assert!(super::ends_connection(&req(
            Version::HTTP_11,
            Some("close")
        )));
        assert!(super::ends_connection(&req(
            Version::HTTP_11,
            Some("TE, Close")
        )));
        assert!(!super::ends_connection(&req(Version::HTTP_11, None)));
        assert!(!super::ends_connection(&req(
            Version::HTTP_11,
            Some("keep-alive")
        )));
        assert!(super::ends_connection(&req(Version::HTTP_10, None)));
        assert!(!super::ends_connection(&req(
            Version::HTTP_10,
            Some("keep-alive")
        )));
    }
}
