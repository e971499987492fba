//! The layer in front of a real tonic server on loopback, shaped like `examples/tonic.rs`:
//! gRPC over HTTP/2 through the layer with tonic-health's generated client, and the
//! kubelet's HTTP/1.1 probes answered by the layer on the same port.

use kit::common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{
    assert_method_not_allowed, assert_probe_headers, bounded, empty, get, http1_client,
    http2_client, request, send, spawn_tonic, stop_switch, walk_probe_table_over, HttpClient,
    LIVEZ, READYZ, STARTUPZ,
};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Version};
use http_body_util::Full;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_health::{Health, Lifecycle};

async fn grpc_client(addr: SocketAddr) -> HealthClient<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    let channel = bounded("connecting the gRPC client", endpoint.connect())
        .await
        .expect("gRPC connection");
    HealthClient::new(channel)
}

fn whole_server() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

async fn check(client: &mut HealthClient<Channel>) -> ServingStatus {
    let response = bounded("grpc.health.v1.Health/Check", client.check(whole_server()))
        .await
        .expect("Check through the layer");
    response.into_inner().status()
}

/// Follows `Watch` until the server reports `expected`; a bounded number of messages.
async fn watch_until(client: &mut HealthClient<Channel>, expected: ServingStatus) {
    let mut stream = bounded("grpc.health.v1.Health/Watch", client.watch(whole_server()))
        .await
        .expect("Watch through the layer")
        .into_inner();
    for _ in 0..10 {
        let message = bounded("a Watch message", stream.message())
            .await
            .expect("Watch stream")
            .expect("the stream goes on");
        if message.status() == expected {
            return;
        }
    }
    panic!("Watch never reported {expected:?}");
}

#[tokio::test]
async fn grpc_check_through_the_layer_follows_readiness() {
    let health = Health::new();
    let (stop, stopped) = stop_switch();
    let server = spawn_tonic(Some(&health), stopped).await;
    let mut client = grpc_client(server.addr).await;

    assert_eq!(check(&mut client).await, ServingStatus::NotServing);
    health.ready();
    watch_until(&mut client, ServingStatus::Serving).await;
    assert_eq!(check(&mut client).await, ServingStatus::Serving);

    let unknown = client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    health.start_draining();
    watch_until(&mut client, ServingStatus::NotServing).await;
    assert_eq!(check(&mut client).await, ServingStatus::NotServing);

    drop(client);
    let _ = stop.send(());
    server.stopped().await;
}

#[tokio::test]
async fn an_http1_probe_on_the_grpc_port_gets_the_layers_answer() {
    let health = Health::new();
    health.ready();
    let (stop, stopped) = stop_switch();
    let server = spawn_tonic(Some(&health), stopped).await;
    let mut grpc = grpc_client(server.addr).await;
    watch_until(&mut grpc, ServingStatus::Serving).await;

    let reply = get(&http1_client(), server.addr, READYZ).await;
    assert_eq!(reply.version, Version::HTTP_11);
    assert_eq!(reply.status, StatusCode::OK);
    assert_probe_headers(
        &reply,
        "application/health+json",
        "GET /readyz over HTTP/1.1",
    );
    assert_eq!(reply.json(), serde_json::json!({ "status": "pass" }));
    // gRPC goes on working on the same port.
    assert_eq!(check(&mut grpc).await, ServingStatus::Serving);

    drop(grpc);
    let _ = stop.send(());
    server.stopped().await;
}

#[tokio::test]
async fn every_row_of_the_probe_table_over_http1_and_http2() {
    for (version, client) in [
        (Version::HTTP_11, http1_client()),
        (Version::HTTP_2, http2_client()),
    ] {
        let health = Health::new();
        let (stop, stopped) = stop_switch();
        let server = spawn_tonic(Some(&health), stopped).await;
        walk_probe_table_over(&health, &client, server.addr, version).await;
        let _ = stop.send(());
        server.stopped().await;
    }
}

#[tokio::test]
async fn head_405_and_text_on_the_grpc_port() {
    let health = Health::new();
    let (stop, stopped) = stop_switch();
    let server = spawn_tonic(Some(&health), stopped).await;
    let addr = server.addr;
    for (version, client) in [
        (Version::HTTP_11, http1_client()),
        (Version::HTTP_2, http2_client()),
    ] {
        for state in [Lifecycle::Starting, Lifecycle::Ready, Lifecycle::Draining] {
            match state {
                Lifecycle::Starting => {}
                Lifecycle::Ready => {
                    health.ready();
                }
                Lifecycle::Draining => {
                    health.start_draining();
                }
            }
            for path in [LIVEZ, READYZ, STARTUPZ] {
                let context = format!("{version:?} {path} while {state}");
                let get = send(&client, empty(request(Method::GET, addr, path))).await;
                let head = send(&client, empty(request(Method::HEAD, addr, path))).await;
                assert_eq!(head.status, get.status, "{context}");
                assert_eq!(head.stable_headers(), get.stable_headers(), "{context}");
                assert_eq!(head.content_length(), Some(get.body.len()), "{context}");
                assert!(head.body.is_empty(), "{context}");

                let text = send(
                    &client,
                    empty(request(Method::GET, addr, path).header(ACCEPT, "text/plain")),
                )
                .await;
                assert_eq!(text.status, get.status, "{context}");
                assert_probe_headers(&text, "text/plain; charset=utf-8", &context);
                if text.status == StatusCode::OK {
                    assert_eq!(text.text(), "ok", "{context}");
                } else {
                    assert!(text.text().ends_with(" check failed\n"), "{context}");
                }

                // Even a gRPC-looking POST to a probe path is the layer's 405.
                let post = send(
                    &client,
                    empty(
                        request(Method::POST, addr, path).header(CONTENT_TYPE, "application/grpc"),
                    ),
                )
                .await;
                assert_method_not_allowed(&post, &context);
            }
        }
    }
    let _ = stop.send(());
    server.stopped().await;
}

/// A unary gRPC call written by hand, so that the raw HTTP/2 responses can be compared.
fn raw_grpc_check(addr: SocketAddr, service: &str) -> Request<Full<Bytes>> {
    // HealthCheckRequest { service } is field 1, length-delimited.
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        message.push(u8::try_from(service.len()).expect("short name"));
        message.extend_from_slice(service.as_bytes());
    }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    request(Method::POST, addr, "/grpc.health.v1.Health/Check")
        .header(CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(Full::from(frame))
        .unwrap()
}

/// With the `grpc` feature the layer answers `grpc.health.v1` itself, without it
/// tonic-health does behind the layer: either way a gRPC client sees what tonic-health
/// alone would say, byte for byte for `Check("")`, and the same code for an unknown name
/// (whose message text differs).
#[tokio::test]
async fn grpc_check_answers_are_tonic_healths_with_and_without_the_layer() {
    let health = Health::new();
    health.ready();
    let (stop_bare, stopped_bare) = stop_switch();
    let (stop_layered, stopped_layered) = stop_switch();
    let bare = spawn_tonic(None, stopped_bare).await;
    let layered = spawn_tonic(Some(&health), stopped_layered).await;
    // Both report SERVING for "" before comparing: tonic-health's default on the bare one,
    // readiness on the layered one.
    let mut grpc = grpc_client(layered.addr).await;
    watch_until(&mut grpc, ServingStatus::Serving).await;
    drop(grpc);

    let h2: HttpClient = http2_client();
    let expected = send(&h2, raw_grpc_check(bare.addr, "")).await;
    let got = send(&h2, raw_grpc_check(layered.addr, "")).await;
    assert_eq!(got.version, Version::HTTP_2);
    assert_eq!(got.status, expected.status);
    assert_eq!(got.stable_headers(), expected.stable_headers());
    assert_eq!(got.body, expected.body);
    assert_eq!(got.trailers, expected.trailers);

    let expected = send(&h2, raw_grpc_check(bare.addr, "no.such.Service")).await;
    let got = send(&h2, raw_grpc_check(layered.addr, "no.such.Service")).await;
    assert_eq!(got.status, expected.status);
    assert_eq!(got.header("grpc-status"), expected.header("grpc-status"));
    assert_eq!(got.header("grpc-status"), Some("5"), "NOT_FOUND");
    assert_eq!(
        (got.body.is_empty(), got.trailers.is_none()),
        (true, true),
        "trailers-only"
    );
    let serving = send(&h2, raw_grpc_check(layered.addr, "")).await;
    assert_eq!(&serving.body[..], &[0, 0, 0, 0, 2, 0x08, 0x01], "SERVING");
    assert_eq!(
        serving
            .trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );

    // What tonic says to a plain HTTP/1.1 request that is not a probe is unchanged too.
    let h1 = http1_client();
    for path in ["/", "/readyzz", "/grpc.health.v1.Health/Check"] {
        let expected = get(&h1, bare.addr, path).await;
        let got = get(&h1, layered.addr, path).await;
        assert_eq!(got.status, expected.status, "{path}");
        assert_eq!(got.stable_headers(), expected.stable_headers(), "{path}");
        assert_eq!(got.body, expected.body, "{path}");
    }
    // Not vacuous: the bare server knows nothing of probes.
    assert_ne!(
        get(&h1, bare.addr, READYZ).await.header(CONTENT_TYPE),
        Some("application/health+json")
    );

    let _ = stop_bare.send(());
    let _ = stop_layered.send(());
    bare.stopped().await;
    layered.stopped().await;
}

#[tokio::test]
async fn shutdown_drains_then_stops_the_tonic_server() {
    let health = Health::builder().drain_delay(Duration::ZERO).build();
    health.ready();
    let (trigger, triggered) = stop_switch();
    let server = spawn_tonic(Some(&health), health.shutdown_on(triggered)).await;
    let mut grpc = grpc_client(server.addr).await;
    watch_until(&mut grpc, ServingStatus::Serving).await;

    health.start_draining();
    watch_until(&mut grpc, ServingStatus::NotServing).await;
    let reply = get(&http1_client(), server.addr, READYZ).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["output"], "draining");
    assert_eq!(
        check(&mut grpc).await,
        ServingStatus::NotServing,
        "gRPC is still served"
    );

    drop(grpc);
    let _ = trigger.send(());
    server.stopped().await;
}
