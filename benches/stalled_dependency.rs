//! Probe latency while a dependency check never returns.
//!
//! The layer's check passes once (so a result is cached) and then hangs on every later
//! run; its results go stale after 1 ms, so every probe finds a stale result, one refresh
//! is always hanging behind it, and every 900 ms (the default budget) that refresh times
//! out and the next one starts. Probes are answered from the cache all along.
//!
//! For comparison, a hand-written axum handler awaits the same hanging check under
//! `tokio::time::timeout`, as hand-written health endpoints do; it takes its full timeout
//! on every call. That timeout is 10 ms here to keep the run short (real ones are 1-5 s,
//! which only makes the comparison worse).
//!
//! Each probe is timed on its own (the clock reads add a few tens of nanoseconds), on a
//! multi-thread runtime so that the hanging refresh and its timer run beside the probes;
//! the p50, p99 and maximum of every probe timed are printed at the end.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use criterion::{Criterion, SamplingMode};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_health::{Check, Health};

mod support;

const GROUP: &str = "stalled_dependency";
const BENCHES: [&str; 2] = ["layer_from_cache", "axum_timeout_10ms"];
const SEED_TIMEOUT: Duration = Duration::from_millis(10);

/// Passes on its first run and never returns from any later one.
fn passes_once_then_hangs(
) -> impl Fn() -> futures_util::future::BoxFuture<'static, Result<(), Infallible>> + Send + Sync + 'static
{
    let runs = Arc::new(AtomicUsize::new(0));
    move || {
        let first = runs.fetch_add(1, Ordering::Relaxed) == 0;
        Box::pin(async move {
            if !first {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

/// Times `iters` probes one by one, keeping every latency in `samples`.
async fn timed<S, B>(service: S, iters: u64, samples: Arc<Mutex<Vec<u64>>>) -> Duration
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut local = Vec::with_capacity(iters as usize);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let response = service
            .clone()
            .oneshot(support::readyz())
            .await
            .expect("response");
        support::drain(response).await;
        let elapsed = start.elapsed();
        total += elapsed;
        local.push(elapsed.as_nanos() as u64);
    }
    samples.lock().expect("samples").extend(local);
    total
}

fn percentiles(name: &str, samples: &Mutex<Vec<u64>>) {
    let mut samples = samples.lock().expect("samples");
    if samples.is_empty() {
        return;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize] as f64;
    println!(
        "{name:<20} probes timed {:>9}   p50 {:>10}   p99 {:>10}   max {:>10}",
        samples.len(),
        support::format_ns(at(0.50)),
        support::format_ns(at(0.99)),
        support::format_ns(at(1.0)),
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let health = Health::builder()
        .check(Check::new("db", passes_once_then_hangs()))
        .every(Duration::from_millis(1))
        .build();
    health.ready();
    rt.block_on(async {
        health.refresh().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    });
    let layered = health.layer().layer(tower::service_fn(support::not_found));

    let check = passes_once_then_hangs();
    let _first_run = check(); // its one passing run, as the layer's had
    let check = Arc::new(check);
    let axum = Router::new().route(
        "/readyz",
        get(move || {
            let check = check.clone();
            async move {
                match tokio::time::timeout(SEED_TIMEOUT, check()).await {
                    Ok(Ok(())) => (StatusCode::OK, Json(serde_json::json!({"status": "pass"}))),
                    _ => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(serde_json::json!({"status": "fail"})),
                    ),
                }
            }
        }),
    );

    let layer_samples = Arc::new(Mutex::new(Vec::new()));
    let axum_samples = Arc::new(Mutex::new(Vec::new()));
    let mut group = c.benchmark_group(GROUP);
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    group.bench_function(BENCHES[0], |b| {
        b.to_async(&rt)
            .iter_custom(|iters| timed(layered.clone(), iters, layer_samples.clone()))
    });
    group.bench_function(BENCHES[1], |b| {
        b.to_async(&rt)
            .iter_custom(|iters| timed(axum.clone(), iters, axum_samples.clone()))
    });
    group.finish();

    println!();
    percentiles(BENCHES[0], &layer_samples);
    percentiles(BENCHES[1], &axum_samples);
    let report = health.report();
    println!(
        "the layer's check at the end: {:?} ({})",
        report.check("db").map(|c| c.status()),
        report
            .check("db")
            .and_then(|c| c.output())
            .unwrap_or("no output"),
    );
}

fn main() {
    support::start();
    let mut c = support::criterion();
    bench(&mut c);
    c.final_summary();
    support::report(GROUP, "layer_from_cache", &BENCHES);
}
