//! A probe listener of its own (feature `probe-server`): the probes, the page and gRPC
//! health on an address apart from the application's, for a process that has no HTTP server (a
//! queue consumer, a scheduler) or whose main port the kubelet cannot reach (it speaks
//! TLS or mTLS only, and the kubelet's probes are plaintext).
//!
//! [`Health::serve_probes`](crate::Health::serve_probes) binds it and returns a
//! [`ProbeServer`]; see there.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tower_layer::Layer;
use tower_service::Service;

use crate::middleware::{HealthLayer, HealthService, ResponseBody};
use crate::time::timers;

/// How long a client has, by default, to send a request's header (and, on a new
/// connection, the bytes that say which HTTP it speaks). The kubelet sends its probe in
/// one write and gives up after its probe timeout (1 s unless configured), so anything
/// slower is not a probe worth waiting for.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How many connections the probe listener keeps open at most, by default.
const MAX_CONNECTIONS: usize = 256;

/// How often an HTTP/2 connection with a request in flight (a gRPC Watch) is pinged, so
/// that a peer that has gone away is found; it must answer within the header read
/// timeout.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The largest header block a client may send: the kubelet's probes and gRPC health
/// calls are a few hundred bytes.
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// How long the accept loop waits after a failed accept (out of file descriptors and the
/// like) before trying again, rather than spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The first bytes an HTTP/2 client sends with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// === impl ProbeServer ===

/// A probe listener, bound and not yet serving; made by
/// [`Health::serve_probes`](crate::Health::serve_probes).
///
/// Await it (or spawn its [`IntoFuture::into_future`]) to serve until the shutdown.
///
/// It answers what the [layer](crate::HealthLayer) answers (the probes, `/readyz/NAME`,
/// the page, `405` for other methods on a probe path, and gRPC health over HTTP/2) and
/// `404` with an empty body to every other request.
///
/// # No client can exhaust it
///
/// - A connection with no request in flight is closed once it has been idle for the
///   [header read timeout](ProbeServer::header_read_timeout), over HTTP/1.1 and HTTP/2
///   alike: a client that sends half a header, only HTTP/2's preface, or a `HEADERS`
///   frame that never ends is disconnected (HTTP/2 with `GOAWAY`, and dropped if it does
///   not close within the same time again).
/// - An HTTP/2 connection with a request in flight (a gRPC Watch) is pinged every 10 s
///   and closed when a ping is not answered within the header read timeout.
/// - It keeps at most [`max_connections`](ProbeServer::max_connections) open (256 by
///   default). A connection accepted at the cap makes room by closing the oldest one with
///   no request in flight (or the oldest of all, when every one has), so that the new
///   one, which is how the kubelet probes, is answered.
/// - A request's header block is at most 16 KiB.
///
/// HTTP/1.1 and HTTP/2 (cleartext, with prior knowledge, as gRPC clients and the
/// kubelet's gRPC probes speak it) are told apart on each connection.
///
/// # Shutdown
///
/// By default it serves until [`Health::shutdown_signal`](crate::Health::shutdown_signal)
/// resolves, and catches SIGTERM and Ctrl-C from the moment it is made: on a signal the
/// application drains (readiness fails at once), the listener keeps answering for the
/// drain delay, then it stops accepting, tells each open connection to finish (HTTP/1
/// after its request in flight, HTTP/2 with GOAWAY; gRPC `Watch` streams end at the
/// drain), waits for them (a connection with nothing in flight that has not closed within
/// the header read timeout is dropped) and for every [`DrainGuard`](crate::DrainGuard),
/// and the future resolves. All of it within the
/// [shutdown deadline](crate::Builder::shutdown_timeout), as
/// [`Health::with_deadline`](crate::Health::with_deadline) keeps it (and, when requests
/// are counted, ends it as soon as nothing is left to wait for): at the deadline whatever
/// still holds it (a request that never ends, a guard still held) is dropped, one warning
/// says what, and the future resolves with `Ok`.
/// [`ProbeServer::with_graceful_shutdown`] replaces the signal.
///
/// # Example
///
/// A worker with no HTTP server of its own, probed on port 8081:
///
/// ```no_run
/// use std::future::IntoFuture;
/// use tower_health::{Health, Lifecycle};
///
/// # async fn consume_batch() {}
/// #[tokio::main]
/// async fn main() -> std::io::Result<()> {
///     let health = Health::builder().build();
///     let probes = health.serve_probes("0.0.0.0:8081").await?;
///     println!("listening on http://{}", probes.local_addr());
///     // Until SIGTERM and the drain delay after it: `health.shutdown_signal()`.
///     let probes = tokio::spawn(probes.into_future());
///
///     health.ready();
///     // A batch under way when SIGTERM comes is finished; no other starts.
///     while health.state() != Lifecycle::Draining {
///         consume_batch().await;
///     }
///     probes.await??; // the drain delay, then the listener closes
///     Ok(())
/// }
/// ```
///
/// Asked over a real connection, here on a port the system picks:
///
/// ```
/// use std::future::IntoFuture;
/// use std::time::Duration;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tower_health::Health;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let health = Health::builder().drain_delay(Duration::ZERO).build();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let probes = health
///     .serve_probes("127.0.0.1:0")
///     .await?
///     .with_graceful_shutdown(health.shutdown_on(async {
///         let _ = stopped.await;
///     }));
/// let addr = probes.local_addr();
/// let serving = tokio::spawn(probes.into_future());
///
/// let ask = |path: &'static str| async move {
///     let mut stream = tokio::net::TcpStream::connect(addr).await?;
///     let request = format!("GET {path} HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n");
///     stream.write_all(request.as_bytes()).await?;
///     let mut answer = String::new();
///     stream.read_to_string(&mut answer).await?;
///     Ok::<_, std::io::Error>(answer)
/// };
/// assert!(ask("/livez").await?.starts_with("HTTP/1.1 200 OK"));
/// assert!(ask("/readyz").await?.starts_with("HTTP/1.1 503"));
/// health.ready();
/// assert!(ask("/readyz").await?.starts_with("HTTP/1.1 200 OK"));
/// assert!(ask("/metrics").await?.starts_with("HTTP/1.1 404"));
///
/// stop.send(()).unwrap(); // drains; with no delay the listener closes at once
/// serving.await??;
/// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
/// # Ok(())
/// # }
/// ```
///
/// # Same port or a port of its own
///
/// Serve the probes on the application's own port (with [`Health::layer`](crate::Health::layer))
/// whenever the kubelet can reach it: a probe that passes there has gone through the
/// listener, the accept loop and the connection handling that real traffic uses. A probe
/// on a port of its own can pass while the main port is dead (its listener closed, its
/// accept loop stuck). Use this listener when there is no main port, or when the kubelet
/// cannot speak to it.
///
/// # Cancel safety
///
/// Awaiting it polls a [`ProbeServerFuture`]; dropping that future closes the listener and
/// every connection at once: see [its cancel safety](ProbeServerFuture#cancel-safety).
#[must_use = "a probe server does nothing until it is awaited or spawned"]
pub struct ProbeServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    layer: HealthLayer,
    header_read_timeout: Duration,
    max_connections: usize,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    within: Within,
}

/// The serving future, boxed.
pub(crate) type Serving = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// What the serving future runs inside: the shutdown's deadline, which the handle keeps.
pub(crate) type Within = Box<dyn FnOnce(Serving) -> Serving + Send>;

impl ProbeServer {
    pub(crate) fn new(
        listener: TcpListener,
        layer: HealthLayer,
        shutdown: impl Future<Output = ()> + Send + 'static,
        within: Within,
    ) -> io::Result<ProbeServer> {
        if !timers::enabled() {
            return Err(io::Error::other(
                "the probe listener needs a Tokio runtime with a timer (build it with enable_all, or enable_io and enable_time)",
            ));
        }
        let local_addr = listener.local_addr()?;
        Ok(ProbeServer {
            listener,
            local_addr,
            layer,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            shutdown: Box::pin(shutdown),
            within,
        })
    }

    /// The address the listener is bound to: the port the system chose when asked for
    /// port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How long a client may take to send a request's header before it is disconnected
    /// (default 2 s).
    ///
    /// It also bounds how long a connection, HTTP/1.1 or HTTP/2, may sit
    /// with no request in flight, how long a new connection may take to send its first
    /// bytes, how long an HTTP/2 client has to answer a keep-alive ping, and how long a
    /// connection told to close may take to do so.
    ///
    /// The kubelet sends each probe in one write, so a short time turns away clients that
    /// would hold connections open by sending a header slowly, and nothing else. Keep it
    /// above a few hundred milliseconds: a zero timeout disconnects every client.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The most connections it keeps open (default 256; at least 1).
    ///
    /// A connection accepted at the cap closes the oldest one with no request in flight, or the oldest
    /// of all when every one has a request in flight: new connections, the kubelet's
    /// probes among them, are always served.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Serves until `signal` resolves instead of until
    /// [`Health::shutdown_signal`](crate::Health::shutdown_signal).
    ///
    /// Then it stops accepting and ends the open connections gracefully, as described
    /// [above](ProbeServer#shutdown).
    ///
    /// Give it [`Health::shutdown_on`](crate::Health::shutdown_on) to keep the drain (the
    /// application drains when the trigger fires and the probes are answered for the drain
    /// delay), or [`Health::drain_delay_over`](crate::Health::drain_delay_over) to close
    /// with the application's own server; a bare future closes the listener as soon as it
    /// resolves. The signal handlers the default installed stay: a signal still starts the
    /// drain.
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.shutdown = Box::pin(signal);
        self
    }
}

impl IntoFuture for ProbeServer {
    type Output = io::Result<()>;
    type IntoFuture = ProbeServerFuture;

    /// The future that serves: what `.await` on the server polls, and what
    /// `tokio::spawn(server.into_future())` runs.
    fn into_future(self) -> ProbeServerFuture {
        let ProbeServer {
            listener,
            local_addr,
            layer,
            header_read_timeout,
            max_connections,
            shutdown,
            within,
        } = self;
        let accepting = Accepting {
            listener,
            local_addr,
            layer,
            header_read_timeout,
            max_connections,
            shutdown,
        };
        ProbeServerFuture(within(Box::pin(serve(accepting))))
    }
}

impl std::fmt::Debug for ProbeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeServer")
            .field("local_addr", &self.local_addr)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

// === impl ProbeServerFuture ===

/// A [`ProbeServer`] serving, which resolves once the shutdown has run its course.
///
/// It is the output of `ProbeServer`'s [`IntoFuture`], what `.await` on the server polls
/// and what `tokio::spawn(server.into_future())` runs; it is made no other way. It resolves
/// once the listener closed, every connection ended and every drain guard dropped, or
/// the deadline cut them.
///
/// # Cancel safety
///
/// Dropping it closes the listener and every connection at once, with no graceful end
/// and no wait for the drain guards. The signal timeline that
/// [`Health::serve_probes`](crate::Health::serve_probes) started runs in a task of its own
/// and goes on (a signal still starts the application's drain); a future given to
/// [`ProbeServer::with_graceful_shutdown`] is dropped with it.
#[must_use = "a probe server does nothing unless polled"]
pub struct ProbeServerFuture(Pin<Box<dyn Future<Output = io::Result<()>> + Send>>);

impl Future for ProbeServerFuture {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for ProbeServerFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeServerFuture").finish_non_exhaustive()
    }
}

// === the accept loop ===

type Connections = auto::Builder<TokioExecutor>;

/// What the accept loop needs.
struct Accepting {
    listener: TcpListener,
    local_addr: SocketAddr,
    layer: HealthLayer,
    header_read_timeout: Duration,
    max_connections: usize,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// One open connection, as the accept loop keeps it: to close it when room is needed.
struct Open {
    task: AbortHandle,
    activity: Arc<Activity>,
}

async fn serve(accepting: Accepting) -> io::Result<()> {
    let Accepting {
        listener,
        local_addr,
        layer,
        header_read_timeout,
        max_connections,
        mut shutdown,
    } = accepting;
    // Its `404`s are the library's answers, not the application's progress.
    let service = layer.exempt().layer(NotFound);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(header_read_timeout)
        .max_header_list_size(MAX_HEADER_LIST_SIZE);
    let builder = Arc::new(builder);
    let (closing, closed) = watch::channel(false);
    // Owned here, so that dropping this future ends every connection with it.
    let mut connections = JoinSet::new();
    // In the order they were accepted.
    let mut open: VecDeque<Open> = VecDeque::new();

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reaped before accepting, so that a flood of connections cannot pile them up.
            Some(ended) = connections.join_next() => {
                if let Err(error) = ended {
                    if !error.is_cancelled() {
                        tracing::warn!(%error, "health: a probe connection's task failed");
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    open.retain(|o| !o.task.is_finished());
                    if open.len() >= max_connections {
                        make_room(&mut open, peer);
                    }
                    let activity = Arc::new(Activity::default());
                    let task = connections.spawn(connection(
                        stream,
                        peer,
                        builder.clone(),
                        Active { inner: service.clone(), activity: activity.clone() },
                        closed.clone(),
                        header_read_timeout,
                    ));
                    open.push_back(Open { task, activity });
                }
                Err(error) => {
                    tracing::warn!(%error, addr = %local_addr, "health: the probe listener failed to accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }

    drop(listener);
    tracing::info!(
        addr = %local_addr,
        connections = connections.len(),
        "health: probe listener closed; ending its connections"
    );
    // Each connection finishes its request in flight and closes; one that does not close
    // within the header read timeout once idle is dropped.
    let _ = closing.send(true);
    while let Some(ended) = connections.join_next().await {
        if let Err(error) = ended {
            if !error.is_cancelled() {
                tracing::warn!(%error, "health: a probe connection's task failed");
            }
        }
    }
    Ok(())
}

/// Closes one connection to make room for a new one: the oldest with no request in
/// flight, or else the oldest.
fn make_room(open: &mut VecDeque<Open>, peer: SocketAddr) {
    let at = (open.iter().position(|o| o.activity.is_idle())).unwrap_or(0);
    if let Some(oldest) = open.remove(at) {
        oldest.task.abort();
        tracing::debug!(%peer, "health: probe listener at its connection cap; closed the oldest idle connection");
    }
}

/// Serves one connection: the bytes that say which HTTP the client speaks, then HTTP/1.1
/// or HTTP/2 until either side closes it, it has been idle for the header read timeout,
/// or the shutdown ends it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: Arc<Connections>,
    service: Active,
    mut closing: watch::Receiver<bool>,
    header_read_timeout: Duration,
) {
    // hyper-util's auto builder waits for these bytes with no timeout of its own, and
    // hyper's header read timeout starts only once it has chosen HTTP/1.
    let stream = match tokio::time::timeout(header_read_timeout, first_bytes(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "health: probe connection failed before its first request");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, ?header_read_timeout, "health: probe connection closed: nothing sent in time");
            return;
        }
    };
    let activity = service.activity.clone();
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(connection);
    // hyper has no idle timeout for HTTP/2, nor a read timeout for a frame that never
    // ends: a connection with no request in flight for the timeout is told to close.
    let why = tokio::select! {
        ended = connection.as_mut() => {
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "health: probe connection ended with an error");
            }
            return;
        }
        _ = closing.wait_for(|closing| *closing) => "the listener is closing",
        () = activity.idle_for(header_read_timeout) => "idle",
    };
    tracing::debug!(%peer, why, "health: closing a probe connection");
    connection.as_mut().graceful_shutdown();
    // HTTP/2's graceful close waits for the client to answer a PING, which a client that
    // does not read never does: once nothing is in flight, it has the timeout to close.
    tokio::select! {
        ended = connection.as_mut() => {
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "health: probe connection ended with an error");
            }
        }
        () = activity.idle_for(header_read_timeout) => {
            tracing::debug!(%peer, "health: probe connection dropped: it did not close in time");
        }
    }
}

// === impl Activity ===

/// How many requests of one connection are in flight (until their response body is
/// dropped), watched for the connection's idle timeout.
#[derive(Debug)]
struct Activity(watch::Sender<usize>);

impl Default for Activity {
    fn default() -> Self {
        Activity(watch::Sender::new(0))
    }
}

impl Activity {
    fn is_idle(&self) -> bool {
        *self.0.borrow() == 0
    }

    fn enter(self: &Arc<Self>) -> InRequest {
        self.0.send_modify(|n| *n += 1);
        InRequest(self.clone())
    }

    /// Resolves once no request has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        let mut active = self.0.subscribe();
        loop {
            if *active.borrow_and_update() == 0 {
                tokio::select! {
                    () = tokio::time::sleep(timeout) => return,
                    _ = active.changed() => {}
                }
            } else {
                // The sender is `self`, alive as long as this future.
                let _ = active.changed().await;
            }
        }
    }
}

/// A request in flight on a probe connection; dropped with its response body.
#[derive(Debug)]
struct InRequest(Arc<Activity>);

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n -= 1);
    }
}

// === impl Active ===

/// The probe listener's service, marking each request in flight on its connection.
#[derive(Clone)]
struct Active {
    inner: HealthService<NotFound>,
    activity: Arc<Activity>,
}

impl<B> Service<Request<B>> for Active
where
    HealthService<NotFound>:
        Service<Request<B>, Response = Response<ResponseBody<Empty<Bytes>>>, Error = Infallible>,
{
    type Response = Response<ActiveBody>;
    type Error = Infallible;
    type Future = ActiveFuture<<HealthService<NotFound> as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ActiveFuture {
            in_request: Some(self.activity.enter()),
            answer: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The answer to a request on a probe connection, which hands its place in flight
    /// to the response body.
    struct ActiveFuture<F> {
        #[pin]
        answer: F,
        in_request: Option<InRequest>,
    }
}

impl<F> Future for ActiveFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody<Empty<Bytes>>>, Infallible>>,
{
    type Output = Result<Response<ActiveBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.answer.poll(cx))?;
        let in_request = this.in_request.take().expect("polled after completion");
        Poll::Ready(Ok(response.map(|body| ActiveBody {
            body,
            _in_request: in_request,
        })))
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it is dropped.
    struct ActiveBody {
        #[pin]
        body: ResponseBody<Empty<Bytes>>,
        _in_request: InRequest,
    }
}

impl http_body::Body for ActiveBody {
    type Data = Bytes;
    type Error = <ResponseBody<Empty<Bytes>> as http_body::Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Reads until the bytes tell HTTP/1 (they stop matching HTTP/2's preface) from HTTP/2
/// (they hold all of it), or the client closes; what was read is given back first.
async fn first_bytes(mut stream: TcpStream) -> io::Result<Replay> {
    let mut read = [0u8; H2_PREFACE.len()];
    let mut filled = 0;
    while filled < read.len() && read[..filled] == H2_PREFACE[..filled] {
        let n = stream.read(&mut read[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(Replay {
        first: Bytes::copy_from_slice(&read[..filled]),
        stream,
    })
}

// === impl Replay ===

/// A connection whose first bytes were already read: they are read again first.
#[derive(Debug)]
struct Replay {
    first: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.first.is_empty() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let n = self.first.len().min(buf.remaining());
        buf.put_slice(&self.first.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

// === impl NotFound ===

/// What the layer wraps: `404`, with no body, for every request that is not a probe.
#[derive(Debug, Clone, Copy)]
struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut response = Response::new(Empty::new());
        *response.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(response))
    }
}
