//! gRPC health `Check("")` answered from cache, against tonic-health's `HealthServer`
//! answering the same call, on the same runtime.
//!
//! - In process: each service is called with `oneshot` on the same HTTP/2 gRPC request
//!   (a `HealthCheckRequest` for `""`, framed), and the response body is read to its end
//!   (the message and the trailers).
//! - Over loopback HTTP/2: a tonic server with tonic-health, and a tonic server with the
//!   layer in front of a one-method service (no tonic-health), each asked by tonic-health's
//!   generated client over one connection.

use std::convert::Infallible;

use bytes::Bytes;
use criterion::Criterion;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, Version};
use http_body_util::Full;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus;
use tower::Layer;
use tower_health::Health;

mod support;

use kit::greeter;

const GROUP: &str = "grpc_check";
const BENCHES: [&str; 4] = [
    "tonic_health_in_process",
    "layer_in_process",
    "tonic_health_loopback_h2",
    "layer_loopback_h2",
];

/// `Check("")` as a gRPC client sends it over HTTP/2.
fn check_request() -> Request<Full<Bytes>> {
    // HealthCheckRequest { service: "" } encodes to no bytes: a 5-byte prefix alone.
    Request::builder()
        .method(Method::POST)
        .uri("/grpc.health.v1.Health/Check")
        .version(Version::HTTP_2)
        .header(CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(Full::from(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap()
}

async fn not_found(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::default()))
}

async fn serve_tonic_health(listener: TcpListener) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    Server::builder()
        .add_service(service)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
        .unwrap();
}

async fn serve_layer(listener: TcpListener, health: Health) {
    Server::builder()
        .layer(health.layer())
        .add_service(greeter::GreeterServer)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
        .unwrap();
}

async fn client(addr: std::net::SocketAddr) -> HealthClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

async fn check(client: &HealthClient<Channel>) {
    let mut client = client.clone();
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let status = client.check(request).await.unwrap().into_inner().status;
    assert_eq!(status, 1, "SERVING");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let health = Health::new();
    health.ready();
    let layered = health.layer().layer(tower::service_fn(not_found));
    let tonic_health = rt.block_on(async {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        service
    });

    let (tonic_client, layer_client) = rt.block_on(async {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr_a, addr_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        tokio::spawn(serve_tonic_health(a));
        tokio::spawn(serve_layer(b, health.clone()));
        (client(addr_a).await, client(addr_b).await)
    });

    let mut group = c.benchmark_group(GROUP);
    group.bench_function(BENCHES[0], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&tonic_health, check_request()))
    });
    group.bench_function(BENCHES[1], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&layered, check_request()))
    });
    group.bench_function(BENCHES[2], |b| {
        b.to_async(&rt).iter(|| check(&tonic_client))
    });
    group.bench_function(BENCHES[3], |b| {
        b.to_async(&rt).iter(|| check(&layer_client))
    });
    group.finish();
}

fn main() {
    support::start();
    let mut c = support::criterion();
    bench(&mut c);
    c.final_summary();
    support::report(GROUP, BENCHES[0], &BENCHES);
}
