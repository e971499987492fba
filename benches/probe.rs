//! A readiness probe answered from cache, against the same JSON from an axum route and
//! against a hand-written service returning fixed bytes (the floor).
//!
//! The layer's `Health` has one passing check whose result is warm and fresh for the whole
//! run, so every probe is answered from the rendered cache. Each iteration clones the
//! service, calls it with `oneshot` for `GET /readyz`, awaits the response and reads the
//! body to its end, on a current-thread Tokio runtime.

use std::convert::Infallible;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use criterion::Criterion;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};
use tower_health::{Check, Health};

mod support;

const GROUP: &str = "probe";
const BENCHES: [&str; 3] = ["hand_written", "layer_cached", "axum_json"];
const PASS: &[u8] = br#"{"status":"pass"}"#;

async fn fixed(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(PASS))))
}

/// The body a service answers `GET /readyz` with.
async fn body_of<S, B>(service: &S) -> Bytes
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service
        .clone()
        .oneshot(support::readyz())
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .cache_for(Duration::from_secs(3600))
        .build();
    health.ready();
    rt.block_on(health.refresh());
    let layered = health.layer().layer(tower::service_fn(support::not_found));
    let hand_written = tower::service_fn(fixed);
    let axum = Router::new().route(
        "/readyz",
        get(|| async { (StatusCode::OK, Json(serde_json::json!({"status": "pass"}))) }),
    );
    rt.block_on(async {
        assert_eq!(body_of(&layered).await, PASS);
        assert_eq!(body_of(&axum).await, PASS);
        assert_eq!(body_of(&hand_written).await, PASS);
    });

    let mut group = c.benchmark_group(GROUP);
    group.bench_function(BENCHES[0], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&hand_written, support::readyz()))
    });
    group.bench_function(BENCHES[1], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&layered, support::readyz()))
    });
    group.bench_function(BENCHES[2], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&axum, support::readyz()))
    });
    group.finish();
}

fn main() {
    support::start();
    let mut c = support::criterion();
    bench(&mut c);
    c.final_summary();
    let medians = support::report(GROUP, "hand_written", &BENCHES);
    if let (Some(layer), Some(axum)) = (medians[1], medians[2]) {
        if std::env::args().any(|a| a == "--bench") {
            println!("axum_json / layer_cached: {:.2}x", axum / layer);
        }
    }
}
