//! Helpers shared by the integration tests: the probe table, bounded waits, real servers
//! on loopback built like the examples, and an HTTP client.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Path;
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing;
use axum::{Json, Router};
use bytes::Bytes;
use http::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tower_health::{Health, Lifecycle};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The longest any single step of a test may take before the test fails instead of hanging.
/// Generous on purpose: it only exists so that a bug ends the run, never to time anything.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test if it takes longer than [`LIMIT`].
pub async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: no result after {LIMIT:?}"),
    }
}

// === the probe table ===

pub const LIVEZ: &str = "/livez";
pub const READYZ: &str = "/readyz";
pub const STARTUPZ: &str = "/startupz";

/// One row of the probe table (without checks): what each probe answers in a state.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub state: Lifecycle,
    pub live: bool,
    /// `(status, output)` for liveness, readiness and startup; `None` output is a pass.
    pub answers: [(u16, Option<&'static str>); 3],
}

const PASS: (u16, Option<&str>) = (200, None);
const NOT_LIVE: (u16, Option<&str>) = (503, Some("liveness marked failed"));
const STARTING: (u16, Option<&str>) = (503, Some("starting"));
const DRAINING: (u16, Option<&str>) = (503, Some("draining"));

/// Every row reachable without checks, in the order a single `Health` can walk them.
pub const TABLE: [Row; 6] = [
    Row {
        state: Lifecycle::Starting,
        live: true,
        answers: [PASS, STARTING, STARTING],
    },
    Row {
        state: Lifecycle::Starting,
        live: false,
        answers: [NOT_LIVE, NOT_LIVE, STARTING],
    },
    Row {
        state: Lifecycle::Ready,
        live: true,
        answers: [PASS, PASS, PASS],
    },
    Row {
        state: Lifecycle::Ready,
        live: false,
        answers: [NOT_LIVE, NOT_LIVE, PASS],
    },
    Row {
        state: Lifecycle::Draining,
        live: true,
        answers: [PASS, DRAINING, PASS],
    },
    Row {
        state: Lifecycle::Draining,
        live: false,
        answers: [NOT_LIVE, NOT_LIVE, PASS],
    },
];

impl Row {
    /// Puts `health` in this row's state; rows must be visited in [`TABLE`] order.
    pub fn enter(&self, health: &Health) {
        match self.state {
            Lifecycle::Starting => {}
            Lifecycle::Ready => {
                health.ready();
            }
            Lifecycle::Draining => {
                health.start_draining();
            }
        }
        if self.live {
            health.recover_liveness();
        } else {
            health.fail_liveness();
        }
        assert_eq!(health.state(), self.state);
        assert_eq!(health.is_live(), self.live);
    }

    /// The expected JSON body of `path`'s answer.
    pub fn expected_json(&self, index: usize) -> serde_json::Value {
        match self.answers[index].1 {
            None => serde_json::json!({ "status": "pass" }),
            Some(output) => serde_json::json!({ "status": "fail", "output": output }),
        }
    }
}

/// Walks every row of [`TABLE`] on `health`, asking each probe through `get` (a `GET` of
/// the path with no particular headers) and checking status, headers and body.
pub async fn walk_probe_table<F, Fut>(health: &Health, mut get: F)
where
    F: FnMut(&'static str) -> Fut,
    Fut: Future<Output = Reply>,
{
    for row in TABLE {
        row.enter(health);
        for (index, path) in [LIVEZ, READYZ, STARTUPZ].into_iter().enumerate() {
            let reply = get(path).await;
            let context = format!("{path} in {row:?}");
            assert_eq!(reply.status.as_u16(), row.answers[index].0, "{context}");
            assert_probe_headers(&reply, "application/health+json", &context);
            assert_eq!(reply.json(), row.expected_json(index), "{context}");
        }
    }
}

/// Walks [`TABLE`] with `GET`s from `client` to `addr`, checking that each reply came in
/// `version`.
pub async fn walk_probe_table_over(
    health: &Health,
    client: &HttpClient,
    addr: SocketAddr,
    version: Version,
) {
    walk_probe_table(health, |path| async move {
        let reply = get(client, addr, path).await;
        assert_eq!(reply.version, version, "{path}");
        reply
    })
    .await;
}

/// A `HEAD` answered like the `GET` of the same probe: same status and headers, the
/// `GET`'s `Content-Length`, no body; `accept` is what both asked for.
pub fn assert_head_matches_get(get: &Reply, head: &Reply, accept: &str, context: &str) {
    let content_type = if accept == "text/plain" {
        "text/plain; charset=utf-8"
    } else {
        "application/health+json"
    };
    assert_probe_headers(get, content_type, context);
    assert_eq!(get.content_length(), Some(get.body.len()), "{context}");
    assert_eq!(head.status, get.status, "{context}");
    assert_eq!(head.stable_headers(), get.stable_headers(), "{context}");
    assert_eq!(head.content_length(), Some(get.body.len()), "{context}");
    assert!(head.body.is_empty(), "{context}");
}

/// Sends `GET` and `HEAD` of `path` with `accept` and asserts [`assert_head_matches_get`]
/// on the two answers.
pub async fn head_matches_get(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    accept: &str,
    context: &str,
) {
    let ask = |method| empty(request(method, addr, path).header(ACCEPT, accept));
    let get = send(client, ask(Method::GET)).await;
    let head = send(client, ask(Method::HEAD)).await;
    assert_head_matches_get(&get, &head, accept, context);
}

/// The layer's `405`: `Allow: GET, HEAD`, the probe headers' cache policy, no body.
pub fn assert_method_not_allowed(reply: &Reply, context: &str) {
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{context}");
    assert_eq!(reply.header(ALLOW), Some("GET, HEAD"), "{context}");
    assert_eq!(reply.header(CACHE_CONTROL), Some("no-store"), "{context}");
    assert_eq!(reply.content_length(), Some(0), "{context}");
    assert!(reply.body.is_empty(), "{context}");
}

/// The headers every probe answer carries.
pub fn assert_probe_headers(reply: &Reply, content_type: &str, context: &str) {
    assert_eq!(
        reply.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        Some(content_type.as_bytes()),
        "{context}"
    );
    assert_eq!(reply.header(CACHE_CONTROL), Some("no-store"), "{context}");
    assert_eq!(
        reply.header(X_CONTENT_TYPE_OPTIONS),
        Some("nosniff"),
        "{context}"
    );
}

// === replies ===

/// A response with its body collected.
#[derive(Debug, Clone)]
pub struct Reply {
    pub version: Version,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    pub async fn collect<B>(response: Response<B>) -> Reply
    where
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = response.into_parts();
        let collected = bounded("reading a body", body.collect())
            .await
            .expect("body");
        Reply {
            version: parts.version,
            status: parts.status,
            headers: parts.headers,
            trailers: collected.trailers().cloned(),
            body: collected.to_bytes(),
        }
    }

    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII"))
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn content_length(&self) -> Option<usize> {
        self.header(CONTENT_LENGTH)
            .map(|v| v.parse().expect("number"))
    }

    /// The headers without those that legitimately differ from one response to the next.
    pub fn stable_headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        headers.remove(http::header::DATE);
        headers
    }
}

// === a client ===

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// An HTTP/1.1 client.
pub fn http1_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 client speaking cleartext HTTP/2 with prior knowledge, as gRPC does.
pub fn http2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A request builder for `path` on `addr`.
pub fn request(method: Method, addr: SocketAddr, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
}

/// Sends `request` and collects the reply, bounded in time.
pub async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Reply {
    let what = format!("{} {}", request.method(), request.uri());
    let response = bounded(&what, client.request(request))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    Reply::collect(response).await
}

/// `GET path` with no body.
pub async fn get(client: &HttpClient, addr: SocketAddr, path: &str) -> Reply {
    send(client, empty(request(Method::GET, addr, path))).await
}

pub fn empty(builder: http::request::Builder) -> Request<Full<Bytes>> {
    builder.body(Full::default()).expect("request")
}

// === servers on loopback ===

/// A server task listening on `127.0.0.1` on a port of its own.
pub struct Running {
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// The server task `task`, listening on `addr`.
    pub fn new(addr: SocketAddr, task: JoinHandle<()>) -> Running {
        Running {
            addr,
            task: Some(task),
        }
    }

    /// Whether the server task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the server to stop by itself (after its shutdown future resolved).
    pub async fn stopped(mut self) {
        let task = self.task.take().expect("not awaited twice");
        bounded("the server stopping", task)
            .await
            .expect("the server task panicked");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A shutdown future that resolves when the sender fires or is dropped.
pub fn stop_switch() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel();
    (tx, async move {
        let _ = rx.await;
    })
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// Serves an axum router until `shutdown` resolves, as `examples/axum.rs` does.
pub async fn spawn_axum(
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Running {
    let (listener, addr) = bind().await;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .expect("axum server");
    });
    Running {
        addr,
        task: Some(task),
    }
}

/// Serves a tower service with hyper-util's HTTP/1 + HTTP/2 builder until `shutdown`
/// resolves, then waits for the open connections, as `examples/hyper.rs` does.
pub async fn spawn_hyper<S, B>(
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Running
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (listener, addr) = bind().await;
    let task = tokio::spawn(async move {
        let connections = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = accepted.expect("accept");
                    let connection = connections.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(service.clone()),
                    );
                    let connection = graceful.watch(connection.into_owned());
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        graceful.shutdown().await;
    });
    Running {
        addr,
        task: Some(task),
    }
}

/// Serves tonic-health's `grpc.health.v1` with tonic, accepting HTTP/1.1 as well, with the
/// health layer in front when `health` is given, as `examples/tonic.rs` does.
pub async fn spawn_tonic(
    health: Option<&Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Running {
    let (listener, addr) = bind().await;
    let (reporter, grpc_health) = tonic_health::server::health_reporter();
    let incoming = TcpIncoming::from(listener);
    let task = match health {
        Some(health) => {
            // Set before serving, so that no client can see tonic-health's default.
            let status = grpc_status(health);
            reporter.set_service_status("", status).await;
            tokio::spawn(mirror_readiness(health.clone(), reporter, Some(status)));
            let router = Server::builder()
                .accept_http1(true)
                .layer(health.layer())
                .add_service(grpc_health);
            tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
                    .expect("tonic server");
            })
        }
        None => {
            let router = Server::builder()
                .accept_http1(true)
                .add_service(grpc_health);
            tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
                    .expect("tonic server");
            })
        }
    };
    Running {
        addr,
        task: Some(task),
    }
}

/// The gRPC status of the whole server (service name `""`) while readiness is as it is now.
fn grpc_status(health: &Health) -> ServingStatus {
    if health.state() == Lifecycle::Ready && health.is_live() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Keeps the gRPC status of `""` equal to the readiness probe, as `examples/tonic.rs` does;
/// `last` is the status already set.
async fn mirror_readiness(
    health: Health,
    reporter: HealthReporter,
    mut last: Option<ServingStatus>,
) {
    let mut changes = health.changes();
    loop {
        let status = grpc_status(&health);
        if last != Some(status) {
            reporter.set_service_status("", status).await;
            last = Some(status);
        }
        changes.next().await;
    }
}

// === the applications of the examples ===

pub const TOKEN: &str = "Bearer demo-token";

/// The router of `examples/axum.rs`, without the health layer.
pub fn axum_app() -> Router {
    Router::new()
        .route("/", routing::get(|| async { "Hello from axum!\n" }))
        .route(
            "/items/{id}",
            routing::get(|Path(id): Path<u32>| async move {
                Json(serde_json::json!({ "id": id, "name": format!("item {id}") }))
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page\n") })
        .layer(middleware::from_fn(
            |request: axum::extract::Request, next: Next| async move {
                let authorized = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .is_some_and(|value| value == TOKEN);
                if authorized {
                    next.run(request).await
                } else {
                    (StatusCode::UNAUTHORIZED, "missing or wrong token\n").into_response()
                }
            },
        ))
}

/// A plain hyper application for the layer to stand in front of: `GET /` (and its
/// `HEAD`) answers a line of text, `POST /echo` answers the request's body, anything else
/// is `404`. A `HEAD` answer carries the `GET` answer's length and no body, which HTTP/2
/// requires.
pub async fn hyper_handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = request.method() == Method::HEAD;
    let (code, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/") => (StatusCode::OK, Bytes::from_static(b"app\n")),
        (&Method::POST, "/echo") => match request.into_body().collect().await {
            Ok(body) => (StatusCode::OK, body.to_bytes()),
            Err(_) => (StatusCode::BAD_REQUEST, Bytes::new()),
        },
        _ => (StatusCode::NOT_FOUND, Bytes::new()),
    };
    let length = body.len();
    let mut response = Response::new(Full::new(if head { Bytes::new() } else { body }));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}

/// A check whose outcome the test sets: it passes while the flag is `true` and fails
/// with "down" while it is `false`.
pub fn flag_check(
    name: &'static str,
) -> (
    tower_health::Check,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let up = std::sync::Arc::new(AtomicBool::new(true));
    let flag = up.clone();
    let check = tower_health::Check::new(name, move || {
        let up = flag.load(Ordering::SeqCst);
        async move {
            if up {
                Ok(())
            } else {
                Err("down")
            }
        }
    });
    (check, up)
}
