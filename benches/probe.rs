//! A readiness probe answered from cache, against the same JSON from an axum route and
//! against a hand-written service returning the same pre-rendered bytes with the same
//! headers (the floor: the least any code answering this probe can cost), and the same
//! bytes with no headers at all.
//!
//! The layer's `Health` has one passing check whose result is warm and fresh for the whole
//! run, so every probe is answered from the rendered cache. Each iteration clones the
//! service, calls it with `oneshot` for `GET /readyz`, awaits the response and reads the
//! body to its end, on a current-thread Tokio runtime.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use criterion::Criterion;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};
use tower_health::{Check, Health};

use kit::readyz_floor;
mod support;

use readyz_floor::PASS;

const GROUP: &str = "probe";
const BENCHES: [&str; 4] = ["hand_written", "layer_cached", "axum_json", "bytes_only"];

/// The floor: the probe's bytes and headers rendered once, and per request a clone of
/// each into a response.
#[derive(Clone)]
struct HandWritten {
    answer: Arc<(HeaderMap, Bytes)>,
}

impl HandWritten {
    fn new() -> Self {
        HandWritten {
            answer: readyz_floor::readyz_answer(),
        }
    }
}

impl Service<Request<Full<Bytes>>> for HandWritten {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Full<Bytes>>) -> Self::Future {
        let (headers, body) = &*self.answer;
        let mut response = Response::new(Full::new(body.clone()));
        *response.headers_mut() = headers.clone();
        std::future::ready(Ok(response))
    }
}

async fn fixed(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(PASS))))
}

/// The headers and body a service answers `GET /readyz` with.
async fn answer_of<S, B>(service: &S) -> (HeaderMap, Bytes)
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
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.headers, body)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .every(Duration::from_secs(3600))
        .build();
    health.ready();
    rt.block_on(health.refresh());
    let layered = health.layer().layer(tower::service_fn(support::not_found));
    let hand_written = HandWritten::new();
    let bytes_only = tower::service_fn(fixed);
    let axum = Router::new().route(
        "/readyz",
        get(|| async { (StatusCode::OK, Json(serde_json::json!({"status": "pass"}))) }),
    );
    rt.block_on(async {
        let layer = answer_of(&layered).await;
        assert_eq!(layer.1, PASS);
        assert_eq!(
            answer_of(&hand_written).await,
            layer,
            "the same bytes and headers"
        );
        assert_eq!(answer_of(&axum).await.1, PASS);
        assert_eq!(answer_of(&bytes_only).await.1, PASS);
    });

    // Under callgrind, counts the one bench asked for and exits.
    support::count(&rt, BENCHES[0], &hand_written, support::readyz);
    support::count(&rt, BENCHES[1], &layered, support::readyz);
    support::count(&rt, BENCHES[2], &axum, support::readyz);
    support::count(&rt, BENCHES[3], &bytes_only, support::readyz);

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
    group.bench_function(BENCHES[3], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&bytes_only, support::readyz()))
    });
    group.finish();
}

fn main() {
    if support::instructions_requested() {
        support::instructions(GROUP, "hand_written", &BENCHES);
        return;
    }
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
