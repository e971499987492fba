//! The standalone probe listener (`Health::serve_probes`, feature `probe-server`) over real
//! sockets on loopback: the probe table over HTTP/1.1 and HTTP/2, gRPC health with
//! tonic-health's client, `404` for anything else, slow clients cut off, and the drain,
//! in process and through a real SIGTERM to a process of its own.
//!
//! The process is this test binary run again with `PROBE_SERVER_PROCESS` set: the test
//! `process_serving_probes` does nothing unless it finds it, and serves until SIGTERM
//! when it does.

use kit::common;
use kit::health_client;
use std::future::IntoFuture;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    assert_method_not_allowed, assert_probe_headers, bounded, empty, get, head_matches_get,
    http1_client, http2_client, request, send, stop_switch, walk_probe_table_over, HttpClient,
    LIMIT, LIVEZ, READYZ, STARTUPZ,
};
use health_client::{channel, check, list, next, watch};
use http::header::ACCEPT;
use http::{Method, StatusCode, Version};
use kit::example::Example;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower_health::{Check, Health, Lifecycle};

use ServingStatus::{NotServing, ServiceUnknown, Serving};

// === the listener ===

/// A probe listener of `health` on a port of its own, serving until the switch is
/// pulled (through `shutdown_on`, so with the drain) or its handle is dropped.
struct Listener {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Listener {
    async fn start(health: &Health) -> Listener {
        Listener::start_with(health, |server| server).await
    }

    async fn start_with(
        health: &Health,
        configure: impl FnOnce(tower_health::ProbeServer) -> tower_health::ProbeServer,
    ) -> Listener {
        let (stop, stopped) = stop_switch();
        let server = health
            .serve_probes("127.0.0.1:0")
            .await
            .expect("bind on loopback")
            .with_graceful_shutdown(health.shutdown_on(stopped));
        let server = configure(server);
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0, "the port the system chose");
        Listener {
            addr,
            stop: Some(stop),
            task: Some(tokio::spawn(server.into_future())),
        }
    }

    /// Starts the drain, as SIGTERM would.
    fn shut_down(&mut self) {
        let _ = self.stop.take().expect("shut down once").send(());
    }

    /// Waits for the listener to stop by itself after [`Listener::shut_down`].
    async fn stopped(mut self) {
        let task = self.task.take().expect("awaited once");
        bounded("the probe listener stopping", task)
            .await
            .expect("the listener's task")
            .expect("the listener ends well");
    }

    fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Whether a new connection to `addr` is refused, after at most [`LIMIT`] of trying.
async fn refused(addr: SocketAddr) -> bool {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A `Health` whose drain, for the tests that are not about it, ends at once.
fn quick() -> tower_health::Builder {
    Health::builder().drain_delay(Duration::ZERO)
}

/// A check whose outcome the test sets.
fn switch(name: &'static str) -> (Check, Arc<AtomicBool>) {
    common::flag_check(name)
}

// === the probe table ===

#[tokio::test]
async fn every_row_of_the_probe_table_over_http1_and_http2() {
    for (version, client) in [
        (Version::HTTP_11, http1_client()),
        (Version::HTTP_2, http2_client()),
    ] {
        // The rows of the lifecycle and the liveness flag, on a Health without checks.
        let health = quick().build();
        let mut listener = Listener::start(&health).await;
        walk_probe_table_over(&health, &client, listener.addr, version).await;
        listener.shut_down();
        listener.stopped().await;

        // The rows of the checks: a critical one failing, then only a non-critical one.
        let (db, db_up) = switch("db");
        let (cache, cache_up) = switch("cache");
        let health = quick()
            .check(db)
            .check(cache.non_critical())
            .background_refresh(false)
            .build();
        health.ready();
        let mut listener = Listener::start(&health).await;
        let rows = [
            (
                false,
                true,
                503,
                r#"{"status":"fail","output":"failed: db"}"#,
            ),
            (
                true,
                false,
                200,
                r#"{"status":"warn","output":"degraded: cache"}"#,
            ),
            (true, true, 200, r#"{"status":"pass"}"#),
        ];
        for (db, cache, readiness, body) in rows {
            db_up.store(db, Ordering::SeqCst);
            cache_up.store(cache, Ordering::SeqCst);
            health.refresh().await;
            let context = format!("{version:?} with db up: {db}, cache up: {cache}");
            let ready = get(&client, listener.addr, READYZ).await;
            assert_eq!(ready.version, version, "{context}");
            assert_eq!(ready.status.as_u16(), readiness, "{context}");
            assert_probe_headers(&ready, "application/health+json", &context);
            assert_eq!(ready.text(), body, "{context}");
            for path in [LIVEZ, STARTUPZ] {
                let reply = get(&client, listener.addr, path).await;
                assert_eq!(reply.status, StatusCode::OK, "{path}, {context}");
                assert_eq!(reply.text(), r#"{"status":"pass"}"#, "{path}, {context}");
            }
        }
        listener.shut_down();
        listener.stopped().await;
    }
}

#[tokio::test]
async fn head_405_text_and_one_check_alone_as_the_layer_answers_them() {
    let (db, db_up) = switch("db");
    let health = quick().check(db).background_refresh(false).build();
    health.ready();
    db_up.store(false, Ordering::SeqCst);
    health.refresh().await;
    let mut listener = Listener::start(&health).await;
    let addr = listener.addr;
    for (version, client) in [
        (Version::HTTP_11, http1_client()),
        (Version::HTTP_2, http2_client()),
    ] {
        for path in [LIVEZ, READYZ, "/readyz/db", "/startupz?verbose"] {
            for accept in ["application/health+json", "text/plain"] {
                let context = format!("{version:?} {path} ({accept})");
                head_matches_get(&client, addr, path, accept, &context).await;
            }
        }
        let one = get(&client, addr, "/readyz/db").await;
        assert_eq!(one.status, StatusCode::SERVICE_UNAVAILABLE, "{version:?}");
        let text = send(
            &client,
            empty(request(Method::GET, addr, "/readyz?verbose").header(ACCEPT, "text/plain")),
        )
        .await;
        assert!(
            text.text().ends_with("readyz check failed\n"),
            "{version:?}: {}",
            text.text()
        );
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let reply = send(&client, empty(request(method.clone(), addr, READYZ))).await;
            assert_method_not_allowed(&reply, &format!("{version:?} {method}"));
        }
    }
    listener.shut_down();
    listener.stopped().await;
}

#[tokio::test]
async fn any_other_path_gets_404_with_no_body() {
    let health = quick()
        .check(switch("db").0)
        .background_refresh(false)
        .build();
    health.ready();
    let mut listener = Listener::start(&health).await;
    let addr = listener.addr;
    for (version, client) in [
        (Version::HTTP_11, http1_client()),
        (Version::HTTP_2, http2_client()),
    ] {
        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/metrics"),
            (Method::GET, "/readyzz"),
            (Method::GET, "/readyz/"),
            (Method::GET, "/readyz/not-a-check"),
            (Method::HEAD, "/nothing"),
            (Method::POST, "/jobs"),
        ] {
            let context = format!("{version:?} {method} {path}");
            let reply = send(&client, empty(request(method, addr, path))).await;
            assert_eq!(reply.version, version, "{context}");
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{context}");
            assert!(reply.body.is_empty(), "{context}");
        }
    }
    listener.shut_down();
    listener.stopped().await;
}

// === slow clients ===

/// Connects to `addr`, writes `sent`, and waits (at most [`LIMIT`]) for the server to
/// close the connection: returns what it answered and how long it took to close.
async fn send_and_wait_for_close(addr: SocketAddr, sent: &[u8]) -> (Vec<u8>, Duration) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(sent).await.expect("write");
    let start = Instant::now();
    let mut answer = Vec::new();
    // A reset instead of an orderly close is a close as well.
    let _ = bounded(
        "the server closing the connection",
        stream.read_to_end(&mut answer),
    )
    .await;
    (answer, start.elapsed())
}

#[tokio::test]
async fn a_client_that_sends_half_a_header_is_dropped_after_the_header_read_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let health = quick().build();
    let mut listener = Listener::start_with(&health, |s| s.header_read_timeout(TIMEOUT)).await;
    let addr = listener.addr;

    let stalls: [(&str, &[u8]); 3] = [
        (
            "half an HTTP/1.1 header",
            b"GET /livez HTTP/1.1\r\nhost: probe\r\nx-",
        ),
        ("nothing at all", b""),
        ("half of HTTP/2's preface", b"PRI * HTTP/2.0\r\n"),
    ];
    for (what, sent) in stalls {
        let (answer, after) = send_and_wait_for_close(addr, sent).await;
        assert!(answer.is_empty(), "{what}: answered {answer:?}");
        // Not cut before its time; the upper bound is `bounded`'s, far below hyper's
        // own default of 30 s, which would have kept it.
        assert!(after >= TIMEOUT / 2, "{what}: closed after {after:?}");
    }

    // A header sent in two parts within the timeout is answered.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"GET /livez HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(TIMEOUT / 3).await;
    stream
        .write_all(b"host: probe\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    bounded("the answer", stream.read_to_end(&mut answer))
        .await
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // The stalled clients did not stop the listener.
    assert_eq!(
        get(&http1_client(), addr, LIVEZ).await.status,
        StatusCode::OK
    );
    listener.shut_down();
    listener.stopped().await;
}

/// HTTP/2's preface, and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const H2_SETTINGS: &[u8] = b"\0\0\0\x04\0\0\0\0\0";

#[tokio::test]
async fn http2_connections_that_never_complete_a_request_are_closed_after_the_header_read_timeout()
{
    const TIMEOUT: Duration = Duration::from_millis(300);
    let health = quick().build();
    let mut listener = Listener::start_with(&health, |s| s.header_read_timeout(TIMEOUT)).await;
    let addr = listener.addr;
    // A HEADERS frame for stream 1 (GET / over http) without END_HEADERS: the rest of the
    // header block, which never comes, would be in CONTINUATION frames.
    let half_headers = b"\0\0\x03\x01\x01\0\0\0\x01\x82\x86\x84";
    let stalls: [(&str, Vec<u8>); 4] = [
        ("half of the preface", H2_PREFACE[..16].to_vec()),
        ("the preface alone", H2_PREFACE.to_vec()),
        (
            "the preface and SETTINGS",
            [H2_PREFACE, H2_SETTINGS].concat(),
        ),
        (
            "HEADERS without END_HEADERS",
            [H2_PREFACE, H2_SETTINGS, half_headers].concat(),
        ),
    ];
    // All at once, so that the test waits for the timeout once.
    let closing = stalls.map(|(what, sent)| {
        tokio::spawn(async move { (what, send_and_wait_for_close(addr, &sent).await) })
    });
    for closed in closing {
        let (what, (_, after)) = closed.await.unwrap();
        // Closed (`send_and_wait_for_close` fails the test otherwise), and not before its
        // time.
        assert!(after >= TIMEOUT / 2, "{what}: closed after {after:?}");
    }
    // Clients that ask are still answered, over both.
    let client = http2_client();
    assert_eq!(get(&client, addr, LIVEZ).await.status, StatusCode::OK);
    assert_eq!(
        get(&http1_client(), addr, LIVEZ).await.status,
        StatusCode::OK
    );
    listener.shut_down();
    listener.stopped().await;
}

#[tokio::test]
async fn at_its_connection_cap_the_listener_closes_the_oldest_idle_connection_and_answers() {
    const CAP: usize = 4;
    let health = quick().build();
    let mut listener = Listener::start_with(&health, |s| {
        s.max_connections(CAP)
            .header_read_timeout(Duration::from_secs(3600))
    })
    .await;
    let addr = listener.addr;
    let mut idle = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(&[H2_PREFACE, H2_SETTINGS].concat())
            .await
            .unwrap();
        idle.push(stream);
        // Accepted in this order.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A probe at the cap is answered, and the oldest idle connection made room for it.
    let reply = bounded("a probe at the cap", get(&http1_client(), addr, LIVEZ)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut oldest = idle.remove(0);
    let mut rest = Vec::new();
    let _ = bounded(
        "the oldest connection closing",
        oldest.read_to_end(&mut rest),
    )
    .await;
    listener.shut_down();
    drop(idle);
    listener.stopped().await;
}

// === the wedge detector ===

#[tokio::test]
async fn a_404_on_the_probe_listener_does_not_hide_a_wedge() {
    const STUCK: Duration = Duration::from_millis(300);
    let health = quick().liveness_fails_when_stuck(STUCK).build();
    health.ready();
    let mut listener = Listener::start(&health).await;
    let client = http1_client();
    // One request parked on the application (served by the layer, in process).
    let parked = tower::Layer::layer(
        &health.layer(),
        tower::service_fn(
            |_req: http::Request<http_body_util::Full<bytes::Bytes>>| async {
                std::future::pending::<
                    Result<
                        http::Response<http_body_util::Full<bytes::Bytes>>,
                        std::convert::Infallible,
                    >,
                >()
                .await
            },
        ),
    );
    let parked = tokio::spawn(tower::ServiceExt::oneshot(
        parked,
        empty(http::Request::get("/work")),
    ));
    // A scraper asking the probe listener for what it does not serve, faster than `STUCK`:
    // its 404s are the library's answers, never the application's progress.
    let start = Instant::now();
    let mut failed_after = None;
    while failed_after.is_none() && start.elapsed() < LIMIT {
        let scraped = get(&client, listener.addr, "/metrics").await;
        assert_eq!(scraped.status, StatusCode::NOT_FOUND);
        if get(&client, listener.addr, LIVEZ).await.status == StatusCode::SERVICE_UNAVAILABLE {
            failed_after = Some(start.elapsed());
        }
        tokio::time::sleep(STUCK / 6).await;
    }
    let failed_after = failed_after.expect("liveness never failed: the 404s hid the wedge");
    assert!(
        failed_after >= STUCK,
        "not before its time: {failed_after:?}"
    );
    assert_eq!(
        get(&client, listener.addr, READYZ).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    parked.abort();
    listener.shut_down();
    listener.stopped().await;
}

// === gRPC health ===

#[tokio::test]
async fn grpc_check_watch_and_list_with_tonic_healths_client() {
    const DELAY: Duration = Duration::from_millis(300);
    let (db, db_up) = switch("db");
    let health = Health::builder()
        .check(db)
        .background_refresh(false)
        .drain_delay(DELAY)
        .build();
    health.refresh().await;
    let mut listener = Listener::start(&health).await;
    let channel = channel(listener.addr).await;
    let mut client = HealthClient::new(channel.clone());

    // Check: readiness for "", each probe by name, a check by its name.
    assert_eq!(check(&mut client, "").await, Ok(NotServing));
    assert_eq!(check(&mut client, "liveness").await, Ok(Serving));
    assert_eq!(check(&mut client, "startup").await, Ok(NotServing));
    assert_eq!(check(&mut client, "db").await, Ok(Serving));
    assert_eq!(check(&mut client, "no.Such").await, Err(Code::NotFound));

    // Watch: the status now, then each change as it happens.
    let mut readiness = watch(&mut client, "").await;
    let mut unknown = watch(&mut client, "no.Such").await;
    assert_eq!(next(&mut readiness).await, Some(NotServing));
    assert_eq!(next(&mut unknown).await, Some(ServiceUnknown));
    health.ready();
    assert_eq!(next(&mut readiness).await, Some(Serving));
    assert_eq!(check(&mut client, "").await, Ok(Serving));
    db_up.store(false, Ordering::SeqCst);
    health.refresh().await;
    assert_eq!(next(&mut readiness).await, Some(NotServing));
    assert_eq!(check(&mut client, "db").await, Ok(NotServing));
    db_up.store(true, Ordering::SeqCst);
    health.refresh().await;
    assert_eq!(next(&mut readiness).await, Some(Serving));

    // List: every known name.
    let statuses = list(channel.clone()).await.expect("List");
    for (name, status) in [
        ("", Serving),
        ("liveness", Serving),
        ("readiness", Serving),
        ("startup", Serving),
        ("db", Serving),
    ] {
        assert_eq!(statuses.get(name), Some(&status), "{name} in {statuses:?}");
    }

    // The drain: NOT_SERVING at once, streams end at the drain delay, the listener closes.
    listener.shut_down();
    assert_eq!(next(&mut readiness).await, Some(NotServing));
    assert_eq!(check(&mut client, "").await, Ok(NotServing));
    assert_eq!(check(&mut client, "liveness").await, Ok(NotServing));
    assert_eq!(next(&mut readiness).await, None, "ended with grpc-status 0");
    assert_eq!(next(&mut unknown).await, None, "ended with grpc-status 0");
    let addr = listener.addr;
    listener.stopped().await;
    assert!(refused(addr).await, "the listener is closed");
}

// === the drain, in process ===

#[tokio::test]
async fn probes_are_answered_through_the_drain_delay_then_the_listener_closes() {
    const DELAY: Duration = Duration::from_millis(600);
    let health = Health::builder().drain_delay(DELAY).build();
    health.ready();
    let mut listener = Listener::start(&health).await;
    let addr = listener.addr;
    let client = http1_client();
    assert_eq!(get(&client, addr, READYZ).await.status, StatusCode::OK);

    listener.shut_down();
    let draining = Instant::now();
    // Readiness fails on the very next probe; liveness and startup pass until the end.
    let ready = get(&client, addr, READYZ).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json(),
        serde_json::json!({ "status": "fail", "output": "draining" })
    );
    while draining.elapsed() < DELAY / 2 {
        assert_eq!(get(&client, addr, LIVEZ).await.status, StatusCode::OK);
        assert_eq!(get(&client, addr, STARTUPZ).await.status, StatusCode::OK);
        assert!(!listener.is_finished(), "still serving within the delay");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listener.stopped().await;
    assert!(draining.elapsed() >= DELAY, "closed before the drain delay");
    assert!(refused(addr).await, "the listener is closed");
    assert_eq!(health.state(), Lifecycle::Draining);
}

#[tokio::test]
async fn dropping_the_serving_future_closes_the_listener_and_its_connections() {
    let health = Health::new();
    let server = health.serve_probes("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    let task = tokio::spawn(server.into_future());
    // An idle keep-alive connection, open before the future goes.
    let mut open = TcpStream::connect(addr).await.unwrap();
    open.write_all(b"GET /livez HTTP/1.1\r\nhost: probe\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 15];
    bounded("the answer", open.read_exact(&mut head))
        .await
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");

    task.abort();
    let _ = task.await;
    assert!(refused(addr).await, "the listener is closed");
    let mut rest = Vec::new();
    let _ = bounded("the connection closing", open.read_to_end(&mut rest)).await;
}

#[tokio::test]
async fn a_client_that_never_acknowledges_goaway_is_cut_at_the_shutdown_deadline() {
    const DEADLINE: Duration = Duration::from_millis(800);
    let health = quick().shutdown_timeout(DEADLINE).build();
    let mut listener = Listener::start(&health).await;
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then nothing
    // is ever read again, so the PING that follows the server's GOAWAY is never answered.
    let mut frozen = TcpStream::connect(listener.addr).await.unwrap();
    frozen
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    listener.shut_down();
    let draining = Instant::now();
    let addr = listener.addr;
    listener.stopped().await;
    assert!(
        draining.elapsed() >= DEADLINE,
        "the frozen client held the listener until the deadline, not past it"
    );
    assert!(refused(addr).await, "the listener is closed");
    drop(frozen);
}

#[tokio::test]
async fn a_drain_guard_holds_the_serving_future_after_the_listener_closes() {
    let health = quick().build();
    let guard = health.drain_guard("batch");
    let mut listener = Listener::start(&health).await;
    let addr = listener.addr;
    listener.shut_down();
    assert!(
        refused(addr).await,
        "the listener closes at the drain delay"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!listener.is_finished(), "the guard holds the shutdown open");
    drop(guard);
    listener.stopped().await;
}

#[test]
fn a_runtime_without_a_timer_gets_an_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let health = Health::new();
    let error = runtime
        .block_on(health.serve_probes("127.0.0.1:0"))
        .expect_err("no timer");
    assert!(error.to_string().contains("timer"), "{error}");
}

// === the drain, through a real SIGTERM ===

const ROLE: &str = "PROBE_SERVER_PROCESS";
const PROCESS_DRAIN_DELAY: Duration = Duration::from_millis(1_500);
/// The connection cap of the process's listener, when set.
const CAP: &str = "PROBE_SERVER_CAP";

/// The process: a `Health` and its probe listener on the default shutdown, the signal.
#[test]
fn process_serving_probes() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let health = Health::builder().drain_delay(PROCESS_DRAIN_DELAY).build();
        let mut probes = health.serve_probes("127.0.0.1:0").await.unwrap();
        // Idle connections are then held open by nothing but the cap.
        if let Some(cap) = std::env::var(CAP).ok().and_then(|cap| cap.parse().ok()) {
            probes = probes
                .max_connections(cap)
                .header_read_timeout(Duration::from_secs(3600));
        }
        println!("listening on http://{}", probes.local_addr());
        health.ready();
        probes.await.unwrap();
        assert_eq!(health.state(), Lifecycle::Draining);
    });
}

/// This binary running [`process_serving_probes`], killed when dropped.
fn start_process() -> Example {
    let exe = std::env::current_exe().unwrap();
    Example::start_binary(&exe, &PROCESS_ARGS, &[(ROLE, "1")])
}

/// The process under `prlimit`, with at most `files` open files, and its listener's
/// connections capped at `cap`.
fn start_limited_process(files: usize, cap: usize) -> Example {
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let nofile = format!("--nofile={files}:{files}");
    let cap = cap.to_string();
    let mut args = vec![nofile.as_str(), "--", exe];
    args.extend(PROCESS_ARGS);
    Example::start_binary(Path::new("prlimit"), &args, &[(ROLE, "1"), (CAP, &cap)])
}

/// What makes this binary run [`process_serving_probes`] alone.
const PROCESS_ARGS: [&str; 4] = [
    "--exact",
    "listener::process_serving_probes",
    "--nocapture",
    "--test-threads=1",
];

/// The flood that took the probes down: more idle HTTP/2 connections than the process may
/// open files. With the cap below the limit, the probes still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_http2_connections_past_the_file_limit_leaves_probes_answering() {
    const FILES: usize = 128;
    let process = start_limited_process(FILES, 32);
    let addr = process.addr();
    let mut flood = Vec::new();
    for _ in 0..FILES + 50 {
        let mut stream = bounded("a connection", TcpStream::connect(addr))
            .await
            .unwrap();
        stream
            .write_all(&[H2_PREFACE, H2_SETTINGS].concat())
            .await
            .unwrap();
        flood.push(stream);
    }
    let client = http1_client();
    for _ in 0..3 {
        let reply = bounded("a probe during the flood", get(&client, addr, LIVEZ)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    drop(flood);
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_readiness_at_once_answers_through_the_delay_then_closes_and_exits_0() {
    let mut process = start_process();
    let addr = process.addr();
    let client: HttpClient = http1_client();
    assert_eq!(get(&client, addr, READYZ).await.status, StatusCode::OK);
    let mut grpc = HealthClient::new(channel(addr).await);
    let mut readiness = watch(&mut grpc, "").await;
    assert_eq!(next(&mut readiness).await, Some(Serving));

    process.sigterm();
    let signalled = Instant::now();
    assert_eq!(next(&mut readiness).await, Some(NotServing));
    let start = Instant::now();
    while get(&client, addr, READYZ).await.status != StatusCode::SERVICE_UNAVAILABLE {
        assert!(start.elapsed() < LIMIT, "readiness never failed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get(&client, addr, LIVEZ).await.status, StatusCode::OK);
    assert_eq!(next(&mut readiness).await, None, "Watch ends at the delay");

    assert!(refused(addr).await, "the listener closes");
    let exit = tokio::task::spawn_blocking(move || process.wait(LIMIT).expect("the process exits"))
        .await
        .unwrap();
    assert!(exit.success(), "the process exited with {exit}");
    assert!(
        signalled.elapsed() >= PROCESS_DRAIN_DELAY,
        "stopped before the drain delay: {:?}",
        signalled.elapsed()
    );
}
