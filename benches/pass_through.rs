//! A request that is not a probe: what the layer adds to the inner service.
//!
//! One trivial inner service, answering fixed bytes, called bare, behind the layer (from
//! `Health::layer` and from `Health::static_layer`), behind the layer with in-flight
//! tracking, and as an axum `Router` route (with and without the
//! layer over it) for scale. Each iteration clones the service (as servers do per
//! request), calls it with `oneshot`, awaits the response and reads the body to its end,
//! on a current-thread Tokio runtime.

use std::convert::Infallible;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use criterion::Criterion;
use http::{Request, Response};
use http_body_util::Full;
use tower::Layer;
use tower_health::{Check, Health};

mod support;

const GROUP: &str = "pass_through";
const BENCHES: [&str; 6] = [
    "bare",
    "layer",
    "layer_static",
    "layer_in_flight",
    "axum_router",
    "axum_router_layer",
];

fn hello() -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(b"hello, world")))
}

async fn inner(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(hello())
}

/// The same request every iteration: `GET /`, which is no probe.
fn request() -> Request<Full<Bytes>> {
    Request::new(Full::default())
}

fn health(track_in_flight: bool) -> Health {
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .track_in_flight(track_in_flight)
        .build();
    health.ready();
    health
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let bare = tower::service_fn(inner);
    let plain = health(false);
    let layered = plain.layer().layer(tower::service_fn(inner));
    let leaked: &'static Health = Box::leak(Box::new(health(false)));
    let layered_static = leaked.static_layer().layer(tower::service_fn(inner));
    let tracking = health(true);
    let tracked = tracking.layer().layer(tower::service_fn(inner));
    let router = Router::new().route("/", get(|| async { hello() }));
    let router_layered = plain.layer().layer(router.clone());

    let mut group = c.benchmark_group(GROUP);
    group.bench_function(BENCHES[0], |b| {
        b.to_async(&rt).iter(|| support::once(&bare, request()))
    });
    group.bench_function(BENCHES[1], |b| {
        b.to_async(&rt).iter(|| support::once(&layered, request()))
    });
    group.bench_function(BENCHES[2], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&layered_static, request()))
    });
    group.bench_function(BENCHES[3], |b| {
        b.to_async(&rt).iter(|| support::once(&tracked, request()))
    });
    group.bench_function(BENCHES[4], |b| {
        b.to_async(&rt).iter(|| support::once(&router, request()))
    });
    group.bench_function(BENCHES[5], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&router_layered, request()))
    });
    group.finish();
    assert_eq!(tracking.in_flight(), Some(0), "every body was drained");
}

fn main() {
    support::start();
    let mut c = support::criterion();
    bench(&mut c);
    c.final_summary();
    support::report(GROUP, "bare", &BENCHES);
}
