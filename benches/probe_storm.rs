//! 1,000 concurrent readiness probes on a cold cache, with a check that takes 10 ms.
//!
//! Every storm gets a fresh `Health` (nothing cached), spawns 1,000 probes as tasks on a
//! multi-thread runtime, and waits for all their answers, bodies read to the end. The time
//! is the wall time of one storm; the check must have run once per storm. For scale, the
//! same storm against an axum handler that runs the check itself on every probe, as
//! hand-written health endpoints do.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use criterion::{Criterion, SamplingMode};
use http::{Request, Response};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};
use tower_health::{Check, Health};

mod support;

const GROUP: &str = "probe_storm";
const BENCHES: [&str; 2] = ["layer_cold_cache", "axum_check_per_probe"];
const PROBES: usize = 1_000;
const CHECK_TAKES: Duration = Duration::from_millis(10);

/// A dependency check that takes 10 ms and counts its runs.
async fn check(runs: Arc<AtomicUsize>) -> Result<(), Infallible> {
    runs.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(CHECK_TAKES).await;
    Ok(())
}

/// Sends the probes all at once and returns the wall time until the last answer.
async fn storm<S, B>(service: S) -> Duration
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Debug,
{
    let start = Instant::now();
    let probes: Vec<_> = (0..PROBES)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move {
                let response = service
                    .oneshot(
                        Request::get("/readyz?verbose")
                            .body(Full::default())
                            .unwrap(),
                    )
                    .await
                    .expect("response");
                let status = response.status();
                let body = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .expect("body")
                    .to_bytes();
                assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            })
        })
        .collect();
    for probe in probes {
        probe.await.expect("probe task");
    }
    start.elapsed()
}

async fn layer_storm() -> (Duration, usize) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let health = Health::builder()
        .check(Check::new("db", move || check(counter.clone())))
        .build();
    health.ready();
    let elapsed = storm(health.layer().layer(tower::service_fn(support::not_found))).await;
    (elapsed, runs.load(Ordering::Relaxed))
}

async fn axum_storm() -> (Duration, usize) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let router = Router::new().route(
        "/readyz",
        get(move || {
            let runs = counter.clone();
            async move {
                match tokio::time::timeout(Duration::from_millis(900), check(runs)).await {
                    Ok(Ok(())) => (StatusCode::OK, Json(serde_json::json!({"status": "pass"}))),
                    _ => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(serde_json::json!({"status": "fail"})),
                    ),
                }
            }
        }),
    );
    let elapsed = storm(router).await;
    (elapsed, runs.load(Ordering::Relaxed))
}

/// Runs `iters` storms and returns their total time, keeping the fewest and most check
/// runs seen in one storm.
fn storms<F>(rt: &Runtime, iters: u64, runs: &mut (usize, usize), one: fn() -> F) -> Duration
where
    F: std::future::Future<Output = (Duration, usize)>,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (elapsed, ran) = rt.block_on(one());
        total += elapsed;
        runs.0 = runs.0.min(ran);
        runs.1 = runs.1.max(ran);
    }
    total
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut layer_runs = (usize::MAX, 0);
    let mut axum_runs = (usize::MAX, 0);

    let mut group = c.benchmark_group(GROUP);
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function(BENCHES[0], |b| {
        b.iter_custom(|iters| storms(&rt, iters, &mut layer_runs, layer_storm))
    });
    group.bench_function(BENCHES[1], |b| {
        b.iter_custom(|iters| storms(&rt, iters, &mut axum_runs, axum_storm))
    });
    group.finish();

    if layer_runs.1 > 0 {
        println!(
            "check runs per storm of {PROBES} probes, layer: {}..={}",
            layer_runs.0, layer_runs.1
        );
        assert_eq!(
            layer_runs,
            (1, 1),
            "the layer must run the check once per storm"
        );
    }
    if axum_runs.1 > 0 {
        println!(
            "check runs per storm of {PROBES} probes, axum handler: {}..={}",
            axum_runs.0, axum_runs.1
        );
    }
}

fn main() {
    support::start();
    let mut c = support::criterion();
    bench(&mut c);
    c.final_summary();
    support::report(GROUP, "layer_cold_cache", &BENCHES);
}
