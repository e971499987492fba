//! A real server process under steady keep-alive load gets a real SIGTERM, and no client
//! loses a request.
//!
//! The server is this test binary run again with `ZERO_LOSS_SERVER` set: the `server_*`
//! tests below do nothing unless they find it, and serve until SIGTERM when they do.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use kit::example::Example;
use tokio::net::TcpStream;
use tower_health::{Health, Lifecycle};

const ROLE: &str = "ZERO_LOSS_SERVER";
const DRAIN_DELAY: Duration = Duration::from_millis(2_500);
/// Clients stop sending new requests this long after SIGTERM, well inside the delay:
/// what the load balancer does once the endpoint is gone.
const CLIENTS_STOP: Duration = Duration::from_millis(1_200);
const SLOW: Duration = Duration::from_millis(1_500);
const BODY: usize = 16 * 1024;

// === the server processes ===

fn serve_http1() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use axum::{routing::get, Router};
        let health = Health::builder()
            .drain_delay(DRAIN_DELAY)
            .track_in_flight(true)
            .build();
        let app = Router::new()
            .route(
                "/work",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    vec![b'x'; BODY]
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(SLOW).await;
                    vec![b'y'; BODY]
                }),
            )
            .layer(health.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        health.ready();
        axum::serve(listener, app)
            .with_graceful_shutdown(health.shutdown_signal())
            .await
            .unwrap();
        assert_eq!(health.state(), Lifecycle::Draining);
        tokio::time::timeout(Duration::from_secs(10), health.drained())
            .await
            .expect("every response ended");
    });
}

fn serve_grpc() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use tonic::transport::{server::TcpIncoming, Server};
        let health = Health::builder().drain_delay(DRAIN_DELAY).build();
        let (reporter, grpc_health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on http://{}", listener.local_addr().unwrap());
        health.ready();
        Server::builder()
            .accept_http1(true)
            .layer(health.layer())
            .add_service(grpc_health)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), health.shutdown_signal())
            .await
            .unwrap();
    });
}

#[test]
fn server_http1() {
    if std::env::var_os(ROLE).is_some_and(|r| r == "http1") {
        serve_http1();
    }
}

#[test]
fn server_grpc() {
    if std::env::var_os(ROLE).is_some_and(|r| r == "grpc") {
        serve_grpc();
    }
}

/// This binary run again as the server of `role`, through its `server_*` test `test`.
fn start_server(role: &str, test: &str) -> Example {
    let exe = std::env::current_exe().unwrap();
    let test = format!("zero_loss::{test}");
    Example::start_binary(
        &exe,
        &["--exact", &test, "--nocapture", "--test-threads=1"],
        &[(ROLE, role)],
    )
}

// === the clients ===

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One request on `sender`: its status, its body's length, and whether the server asked
/// to close the connection.
async fn send(sender: &mut Sender, path: &str) -> Result<(StatusCode, usize, bool), String> {
    sender.ready().await.map_err(|e| format!("ready: {e}"))?;
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let response = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let close = response
        .headers()
        .get(http::header::CONNECTION)
        .is_some_and(|v| v == "close");
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, body.len(), close))
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    closes: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

/// Sends `/work` over keep-alive connections until `stop` is set, reconnecting whenever
/// the server closes a connection.
async fn worker(addr: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    'connections: while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let mut sender = match connect(addr).await {
            Ok(sender) => sender,
            Err(e) => {
                tally.fail(format!("connect before the clients stopped: {e}"));
                return;
            }
        };
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            match send(&mut sender, "/work").await {
                Ok((StatusCode::OK, BODY, close)) => {
                    tally.ok.fetch_add(1, Ordering::SeqCst);
                    if close {
                        tally.closes.fetch_add(1, Ordering::SeqCst);
                        continue 'connections;
                    }
                }
                Ok((status, len, _)) => tally.fail(format!("/work: {status}, {len} bytes")),
                Err(e) => {
                    tally.fail(format!("/work: {e}"));
                    return;
                }
            }
        }
    }
}

/// A fresh connection's status for `path`.
async fn probe(addr: SocketAddr, path: &str) -> StatusCode {
    let mut sender = connect(addr).await.expect("the listener is open");
    send(&mut sender, path).await.expect("a probe answer").0
}

async fn wait_for_readiness(addr: SocketAddr, want: StatusCode) {
    let start = Instant::now();
    while probe(addr, "/readyz").await != want {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "readiness never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_http1_keep_alive_load_without_losing_a_request() {
    let mut server = start_server("http1", "server_http1");
    let addr = server.addr();
    wait_for_readiness(addr, StatusCode::OK).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..8)
        .map(|_| tokio::spawn(worker(addr, stop.clone(), tally.clone())))
        .collect();
    let start = Instant::now();
    while tally.ok.load(Ordering::SeqCst) < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        tally.closes.load(Ordering::SeqCst),
        0,
        "keep-alive before the signal"
    );

    let ok_before = tally.ok.load(Ordering::SeqCst);
    server.sigterm();
    let signalled = Instant::now();
    wait_for_readiness(addr, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(probe(addr, "/livez").await, StatusCode::OK);
    assert_eq!(probe(addr, "/startupz").await, StatusCode::OK);

    // A slow request that is still running when the listener closes.
    let slow = tokio::spawn(async move {
        tokio::time::sleep(CLIENTS_STOP.saturating_sub(signalled.elapsed())).await;
        let mut sender = connect(addr).await.map_err(|e| e.to_string())?;
        send(&mut sender, "/slow").await
    });

    tokio::time::sleep(CLIENTS_STOP.saturating_sub(signalled.elapsed())).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    let slow = slow.await.unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = server
            .wait(Duration::from_secs(20))
            .expect("the server exits");
        (status, signalled.elapsed())
    })
    .await
    .unwrap();

    let failures = tally.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "lost requests: {failures:?}");
    assert!(
        tally.ok.load(Ordering::SeqCst) > ok_before,
        "requests kept being served during the drain delay"
    );
    assert!(
        tally.closes.load(Ordering::SeqCst) > 0,
        "keep-alive clients were told to reconnect"
    );
    assert_eq!(
        slow,
        Ok((StatusCode::OK, BODY, true)),
        "the in-flight request completed"
    );
    let (exit, elapsed) = status;
    assert!(exit.success(), "the server exited with {exit}");
    assert!(
        elapsed >= DRAIN_DELAY,
        "the server stopped before the drain delay: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_grpc_over_http2_without_losing_a_call() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let mut server = start_server("grpc", "server_grpc");
    let addr = server.addr();
    wait_for_readiness(addr, StatusCode::OK).await;

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (mut client, stop, ok, failures) = (
                HealthClient::new(channel.clone()),
                stop.clone(),
                ok.clone(),
                failures.clone(),
            );
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let request = HealthCheckRequest {
                        service: String::new(),
                    };
                    match client.check(request).await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(status) => failures.lock().unwrap().push(status.to_string()),
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    while ok.load(Ordering::SeqCst) < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let ok_before = ok.load(Ordering::SeqCst);
    server.sigterm();
    let signalled = Instant::now();
    wait_for_readiness(addr, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(probe(addr, "/livez").await, StatusCode::OK);

    tokio::time::sleep(CLIENTS_STOP.saturating_sub(signalled.elapsed())).await;
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.await.unwrap();
    }
    let (exit, elapsed) = tokio::task::spawn_blocking(move || {
        let exit = server
            .wait(Duration::from_secs(20))
            .expect("the server exits");
        (exit, signalled.elapsed())
    })
    .await
    .unwrap();

    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed calls: {failures:?}");
    assert!(
        ok.load(Ordering::SeqCst) > ok_before,
        "calls kept being served"
    );
    assert!(exit.success(), "the server exited with {exit}");
    assert!(
        elapsed >= DRAIN_DELAY,
        "stopped before the delay: {elapsed:?}"
    );
}

/// gRPC health Watch streams open through a real SIGTERM: every known name turns
/// NOT_SERVING at once, every stream ends well when the drain delay is over, and the
/// streams do not hold the process up: it exits 0 soon after the delay.
#[cfg(feature = "grpc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_watch_streams_open_ends_them_at_the_drain_delay_and_exits() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    /// Time for the process to exit once the drain delay is over, with nothing in
    /// flight: generous, since it only has to tell "exits" from "is held up".
    const EXIT_SLACK: Duration = Duration::from_secs(5);

    let mut server = start_server("grpc", "server_grpc");
    let addr = server.addr();
    wait_for_readiness(addr, StatusCode::OK).await;

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let mut streams = Vec::new();
    for name in ["", "readiness", "liveness", "startup", "no.such.Service"] {
        for _ in 0..4 {
            let request = HealthCheckRequest {
                service: name.into(),
            };
            let mut stream = client.watch(request).await.unwrap().into_inner();
            let first = stream.message().await.unwrap().unwrap().status();
            let expected = match name {
                "no.such.Service" => ServingStatus::ServiceUnknown,
                _ => ServingStatus::Serving,
            };
            assert_eq!(first, expected, "{name:?}");
            streams.push((name, stream));
        }
    }

    // Taken before the signal goes out: no later than the server's own start of the delay.
    let signalled = Instant::now();
    server.sigterm();
    for (name, stream) in &mut streams {
        if *name != "no.such.Service" {
            let message = stream.message().await.unwrap().unwrap();
            assert_eq!(message.status(), ServingStatus::NotServing, "{name:?}");
        }
    }
    let all_not_serving = signalled.elapsed();
    for (name, stream) in &mut streams {
        let end = stream.message().await;
        assert!(matches!(end, Ok(None)), "{name:?}: {end:?}");
    }
    let ended = signalled.elapsed();
    let (exit, exited) = tokio::task::spawn_blocking(move || {
        let exit = server
            .wait(DRAIN_DELAY + EXIT_SLACK)
            .expect("the server exits");
        (exit, signalled.elapsed())
    })
    .await
    .unwrap();

    assert!(
        all_not_serving < DRAIN_DELAY,
        "NOT_SERVING came only after {all_not_serving:?}"
    );
    assert!(
        ended >= DRAIN_DELAY,
        "streams ended before the delay: {ended:?}"
    );
    assert!(exit.success(), "the server exited with {exit}");
    assert!(exited < DRAIN_DELAY + EXIT_SLACK, "exited after {exited:?}");
    drop(client);
}
