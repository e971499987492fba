//! Heap allocations per request, counted by `allocation-counter` (a counting global
//! allocator) on the test's own thread only, so that other tests running beside it do not
//! disturb the count. Services are driven by polling their futures once
//! (`now_or_never`): every one here is ready at once, and nothing runs on another thread.
//! Everything is warmed up before it is measured, and every measurement is repeated and
//! must give the same count.

use std::convert::Infallible;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};
use tower_health::{Check, Health};

/// What answering a probe from the cache allocates, as measured: the response's
/// `HeaderMap` (its index table and its entry vector: 2), which every response needs. The
/// response future carries the shared answer itself until it is polled, and the body and
/// its `Content-Length` value are shared bytes rendered beforehand: they allocate nothing.
const CACHED_PROBE_ALLOCATIONS: u64 = 2;

/// The inner service: an ordinary handler that allocates a little itself (a header and a
/// body), so that "as many as without the layer" is not trivially zero.
fn app(
    _req: Request<Full<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    let mut response = Response::new(Full::new(Bytes::from(b"hello, world".to_vec())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    std::future::ready(Ok(response))
}

fn request(method: Method, uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .unwrap()
}

/// Allocations of one request through `service`: the call, the response future polled to
/// its end, and the response body read to its end. The request is built before counting.
fn allocations<S, B>(service: &mut S, method: Method, uri: &str) -> (StatusCode, u64)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let service = service.ready().now_or_never().unwrap().unwrap();
    let request = request(method, uri);
    let mut status = StatusCode::OK;
    let counted = allocation_counter::measure(|| {
        let response = service.call(request).now_or_never().unwrap().unwrap();
        status = response.status();
        let mut body = pin!(response.into_body());
        while let Some(frame) = body.as_mut().frame().now_or_never().unwrap() {
            drop(frame.unwrap());
        }
    });
    (status, counted.count_total)
}

/// The allocations of a request, after warming up, checked to be the same every time.
fn steady<S, B>(service: &mut S, method: Method, uri: &str) -> (StatusCode, u64)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    for _ in 0..3 {
        allocations(service, method.clone(), uri);
    }
    let first = allocations(service, method.clone(), uri);
    for _ in 0..10 {
        assert_eq!(
            allocations(service, method.clone(), uri),
            first,
            "{method} {uri}: the count changed between identical requests"
        );
    }
    first
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn passing_health(track_in_flight: bool) -> Health {
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .every(Duration::from_secs(3600))
        .track_in_flight(track_in_flight)
        .build();
    health.ready();
    health
}

#[test]
fn the_counter_counts_on_this_thread() {
    let counted = allocation_counter::measure(|| {
        std::hint::black_box(Box::new(1_u64));
    });
    assert_eq!(
        counted.count_total, 1,
        "the counting allocator is not installed"
    );
}

#[test]
fn a_request_that_is_not_a_probe_allocates_exactly_what_the_inner_service_does() {
    let rt = runtime();
    let _entered = rt.enter();
    for track_in_flight in [false, true] {
        let health = passing_health(track_in_flight);
        rt.block_on(health.refresh());
        let mut bare = tower::service_fn(app);
        let mut layered = health.layer().layer(tower::service_fn(app));
        for (method, uri) in [
            (Method::GET, "/"),
            (Method::POST, "/api/orders?id=7"),
            (Method::GET, "/readyzz"),
            (Method::GET, "/readyz/unknown-check"),
            (Method::GET, "/livez/"),
        ] {
            let (bare_status, without) = steady(&mut bare, method.clone(), uri);
            let (status, with) = steady(&mut layered, method.clone(), uri);
            assert_eq!(status, bare_status, "{method} {uri}");
            assert_eq!(
                with, without,
                "{method} {uri} (track_in_flight {track_in_flight}): {with} allocations \
                 with the layer, {without} without"
            );
        }
        assert_eq!(health.in_flight(), track_in_flight.then_some(0));
    }
}

#[test]
fn a_request_that_is_not_a_probe_allocates_nothing_when_the_inner_service_does_not() {
    let health = passing_health(false);
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(
            Bytes::from_static(b"hello, world"),
        ))))
    });
    let mut layered = health.layer().layer(inner);
    assert_eq!(steady(&mut layered, Method::GET, "/"), (StatusCode::OK, 0));
}

#[test]
fn a_cached_probe_allocates_no_more_than_a_fixed_few_times() {
    let rt = runtime();
    let _entered = rt.enter();
    let health = passing_health(false);
    rt.block_on(health.refresh());
    let mut layered = health.layer().layer(tower::service_fn(app));
    for (method, uri) in [
        (Method::GET, "/readyz"),
        (Method::HEAD, "/readyz"),
        (Method::GET, "/livez"),
        (Method::GET, "/startupz"),
        (Method::GET, "/readyz/db"),
        (Method::GET, "/readyz?verbose"),
    ] {
        let (status, count) = steady(&mut layered, method.clone(), uri);
        assert_eq!(status, StatusCode::OK, "{method} {uri}");
        println!("{method} {uri}: {count} allocations");
        assert!(
            count <= CACHED_PROBE_ALLOCATIONS,
            "{method} {uri}: {count} allocations, more than {CACHED_PROBE_ALLOCATIONS}"
        );
    }
}

/// Request paths around the `Paths::health()` preset's probes and checks: exact paths,
/// per-check paths, checks below the wrong probe, deeper and emptier paths.
fn preset_request_path() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    const SEGMENTS: [&str; 9] = [
        "health", "ready", "started", "db", "model", "worker", "x", "", "%2F",
    ];
    proptest::collection::vec(proptest::sample::select(&SEGMENTS[..]), 0..5)
        .prop_map(|s| format!("/{}", s.join("/")))
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 64,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// Matching (nested probe paths, per-check paths, their near misses) allocates
    /// nothing: a request that passes through allocates nothing when the inner service does
    /// not, and a probe no more than a cached answer does.
    #[test]
    fn matching_allocates_nothing_for_generated_paths(
        paths in proptest::collection::vec(preset_request_path(), 1..16),
    ) {
        let rt = runtime();
        let _entered = rt.enter();
        let health = Health::builder()
            .paths(tower_health::Paths::health())
            .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
            .check(
                Check::new("model", || async { Ok::<(), Infallible>(()) })
                    .probes([tower_health::Probe::Startup, tower_health::Probe::Readiness]),
            )
            .check(
                Check::new("worker", || async { Ok::<(), Infallible>(()) })
                    .probes([tower_health::Probe::Liveness]),
            )
            .every(Duration::from_secs(3600))
            .build();
        rt.block_on(health.refresh());
        health.ready();
        let inner = tower::service_fn(|_req: Request<Full<Bytes>>| {
            let mut response = Response::new(Full::new(Bytes::from_static(b"inner")));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            std::future::ready(Ok::<_, Infallible>(response))
        });
        let mut layered = health.layer().layer(inner);
        for path in &paths {
            let (status, count) = steady(&mut layered, Method::GET, path);
            if status == StatusCode::IM_A_TEAPOT {
                proptest::prop_assert_eq!(count, 0, "{} passed through", path);
            } else {
                proptest::prop_assert_eq!(status, StatusCode::OK, "{}", path);
                proptest::prop_assert!(
                    count <= CACHED_PROBE_ALLOCATIONS,
                    "{}: {} allocations", path, count
                );
            }
        }
    }
}

// === a check's output ===

/// What the layer keeps of a check's output, in bytes: its `OUTPUT_CAP`.
const OUTPUT_CAP: u64 = 1024;

/// A KiB of text, the piece every huge message below is written in.
const PIECE: &str = {
    const BYTES: [u8; 1024] = [b'x'; 1024];
    match std::str::from_utf8(&BYTES) {
        Ok(piece) => piece,
        Err(_) => panic!("ASCII"),
    }
};

/// An error whose text is `kib` KiB, written a KiB at a time.
#[derive(Debug)]
struct Huge {
    kib: usize,
}

impl std::error::Error for Huge {}

impl std::fmt::Display for Huge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for _ in 0..self.kib {
            f.write_str(PIECE)?;
        }
        Ok(())
    }
}

/// The bytes one refresh of `health`'s only check allocates on this thread, and the
/// reason it stored, after `before` has been called (outside the count).
fn refresh_bytes(
    runtime: &tokio::runtime::Runtime,
    health: &Health,
    before: impl FnOnce(),
) -> (u64, String) {
    before();
    let mut report = None;
    let counted = allocation_counter::measure(|| {
        report = Some(runtime.block_on(health.refresh()));
    });
    let report = report.unwrap();
    let output = report.checks()[0].output().unwrap_or_default().to_owned();
    (counted.bytes_total, output)
}

/// The reason kept of a text of [`PIECE`]s that went past the cap.
fn cut_text(prefix: &str) -> String {
    let mut text = prefix.to_owned();
    text.push_str(&PIECE[..1024 - prefix.len() - " [cut]".len()]);
    text.push_str(" [cut]");
    text
}

#[test]
fn an_error_of_100_mb_costs_a_run_no_more_than_its_cut_text() {
    let runtime = runtime();
    let kib = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let size = kib.clone();
    let health = Health::builder()
        .check(Check::new("huge", move || {
            let kib = size.load(std::sync::atomic::Ordering::SeqCst);
            async move { Err::<(), _>(Huge { kib }) }
        }))
        .background_refresh(false)
        .build();
    let set = |n: usize| kib.store(n, std::sync::atomic::Ordering::SeqCst);
    // Warm up (the first run registers what lives for the process), then a run with an
    // empty reason, then one of 100 MB.
    refresh_bytes(&runtime, &health, || set(0));
    let (empty, output) = refresh_bytes(&runtime, &health, || set(0));
    assert_eq!(output, "");
    let (huge, output) = refresh_bytes(&runtime, &health, || set(100 * 1024));
    assert_eq!(output, cut_text(""));
    assert!(
        huge <= empty + 3 * OUTPUT_CAP,
        "the 100 MB reason cost {} bytes more than an empty one",
        huge - empty.min(huge)
    );
}

/// Panics with `payload` as it is, without the panic hook (which would print it).
fn panics_with(payload: String) -> Result<(), String> {
    std::panic::resume_unwind(Box::new(payload))
}

#[test]
fn a_panic_message_of_100_mb_costs_a_run_no_more_than_its_cut_text() {
    let runtime = runtime();
    let slot = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let payload = slot.clone();
    let health = Health::builder()
        .check(Check::new("boom", move || {
            let message = std::mem::take(&mut *payload.lock().unwrap());
            async move { panics_with(message) }
        }))
        .background_refresh(false)
        .build();
    // The message is the check's own allocation, made before counting; what the run
    // adds to it must be small.
    let set = |message: String| *slot.lock().unwrap() = message;
    refresh_bytes(&runtime, &health, || set(String::new()));
    let (empty, output) = refresh_bytes(&runtime, &health, || set(String::new()));
    assert_eq!(output, "panicked: ");
    let (huge, output) = refresh_bytes(&runtime, &health, || set(PIECE.repeat(100 * 1024)));
    assert_eq!(output, cut_text("panicked: "));
    assert!(
        huge <= empty + 3 * OUTPUT_CAP,
        "the 100 MB message cost {} bytes more than an empty one",
        huge - empty.min(huge)
    );
}
