//! The layer on a plain hyper 1 service served by hyper-util (HTTP/1.1 and HTTP/2 on one
//! port, graceful shutdown), shaped like `examples/hyper.rs`, with real clients.

use kit::common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::{
    assert_method_not_allowed, bounded, empty, get, head_matches_get, http1_client, http2_client,
    hyper_handle, request, send, spawn_hyper, stop_switch, walk_probe_table_over, HttpClient,
    LIVEZ, READYZ, STARTUPZ,
};
use futures_util::FutureExt;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::{mpsc, Notify};
use tower::ServiceBuilder;
use tower_health::{Health, Lifecycle};

fn clients() -> [(Version, HttpClient); 2] {
    [
        (Version::HTTP_11, http1_client()),
        (Version::HTTP_2, http2_client()),
    ]
}

#[tokio::test]
async fn every_row_of_the_probe_table_over_http1_and_http2() {
    for (version, client) in clients() {
        let health = Health::new();
        let service = ServiceBuilder::new()
            .layer(health.layer())
            .service_fn(hyper_handle);
        let (stop, stopped) = stop_switch();
        let server = spawn_hyper(service, stopped).await;
        walk_probe_table_over(&health, &client, server.addr, version).await;
        let _ = stop.send(());
        server.stopped().await;
    }
}

#[tokio::test]
async fn head_405_and_content_types_over_http1_and_http2() {
    let health = Health::new();
    let service = ServiceBuilder::new()
        .layer(health.layer())
        .service_fn(hyper_handle);
    let (stop, stopped) = stop_switch();
    let server = spawn_hyper(service, stopped).await;
    let addr = server.addr;
    for (version, client) in clients() {
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
            for path in [LIVEZ, READYZ, STARTUPZ, "/startupz?verbose"] {
                for accept in ["application/health+json", "text/plain"] {
                    let context = format!("{version:?} {path} ({accept}) while {state}");
                    head_matches_get(&client, addr, path, accept, &context).await;
                }
            }
            for method in [
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::from_bytes(b"PURGE").unwrap(),
            ] {
                let reply = send(&client, empty(request(method.clone(), addr, READYZ))).await;
                let context = format!("{version:?} {method} while {state}");
                assert_method_not_allowed(&reply, &context);
            }
        }
    }
    let _ = stop.send(());
    server.stopped().await;
}

#[tokio::test]
async fn ordinary_responses_are_identical_with_and_without_the_layer() {
    let health = Health::new();
    health.ready();
    let (stop_bare, stopped_bare) = stop_switch();
    let (stop_layered, stopped_layered) = stop_switch();
    let bare = spawn_hyper(tower::service_fn(hyper_handle), stopped_bare).await;
    let layered = spawn_hyper(
        ServiceBuilder::new()
            .layer(health.layer())
            .service_fn(hyper_handle),
        stopped_layered,
    )
    .await;

    let requests = |addr| {
        vec![
            empty(request(Method::GET, addr, "/")),
            empty(request(Method::HEAD, addr, "/")),
            request(Method::POST, addr, "/echo")
                .body(Full::from("a body to echo"))
                .unwrap(),
            empty(request(Method::GET, addr, "/missing")),
            empty(request(Method::GET, addr, "/readyzz")),
            empty(request(Method::POST, addr, "/readyz/unknown")),
        ]
    };
    for (_, client) in clients() {
        for (to_bare, to_layered) in requests(bare.addr).into_iter().zip(requests(layered.addr)) {
            let what = format!("{} {}", to_bare.method(), to_bare.uri().path());
            let expected = send(&client, to_bare).await;
            let got = send(&client, to_layered).await;
            assert_eq!(got.status, expected.status, "{what}");
            assert_eq!(got.version, expected.version, "{what}");
            assert_eq!(got.stable_headers(), expected.stable_headers(), "{what}");
            assert_eq!(got.body, expected.body, "{what}");
        }
        let echoed = send(
            &client,
            request(Method::POST, layered.addr, "/echo")
                .body(Full::from("through the layer"))
                .unwrap(),
        )
        .await;
        assert_eq!(&echoed.body[..], b"through the layer");
    }

    let _ = stop_bare.send(());
    let _ = stop_layered.send(());
    bare.stopped().await;
    layered.stopped().await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_waits_for_the_request_in_flight() {
    let health = Health::builder().track_in_flight(true).build();
    health.ready();

    // `/slow` tells the test it has started, then waits until the test lets it finish.
    let (started_tx, mut started) = mpsc::channel::<()>(1);
    let release = Arc::new(Notify::new());
    let handler = {
        let release = release.clone();
        move |request: Request<Incoming>| {
            let (started_tx, release) = (started_tx.clone(), release.clone());
            async move {
                if request.uri().path() == "/slow" {
                    let _ = started_tx.send(()).await;
                    release.notified().await;
                    return Ok::<_, Infallible>(Response::new(Full::from("slow and complete")));
                }
                hyper_handle(request).await
            }
        }
    };
    let service = ServiceBuilder::new()
        .layer(health.layer())
        .service_fn(handler);
    let (stop, stopped) = stop_switch();
    let server = spawn_hyper(service, stopped).await;
    let client = http1_client();
    let addr = server.addr;

    let slow = tokio::spawn({
        let client = client.clone();
        async move { send(&client, empty(request(Method::GET, addr, "/slow"))).await }
    });
    bounded("the slow request to start", started.recv())
        .await
        .unwrap();
    assert_eq!(health.in_flight(), Some(1));

    // The application starts draining and then the server is told to stop: it may not
    // finish while a request is in flight.
    health.start_draining();
    let drained = health.drained();
    tokio::pin!(drained);
    assert!((&mut drained).now_or_never().is_none());
    let _ = stop.send(());
    tokio::task::yield_now().await;
    assert!(!slow.is_finished());
    assert!(
        !server.is_finished(),
        "the server waits for the request in flight"
    );

    release.notify_one();
    let reply = bounded("the slow request", slow).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], b"slow and complete");
    server.stopped().await;
    bounded("drained", drained).await;
    assert_eq!(health.in_flight(), Some(0));
}

#[tokio::test]
async fn the_layer_sees_the_http_version_of_each_connection() {
    // A service that reports the version it was called with shows that HTTP/1.1 and
    // HTTP/2 requests reach it through the same layered service and port.
    let health = Health::new();
    health.ready();
    let service = ServiceBuilder::new().layer(health.layer()).service_fn(
        |request: Request<Incoming>| async move {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(format!(
                "{:?}",
                request.version()
            ))))
        },
    );
    let (stop, stopped) = stop_switch();
    let server = spawn_hyper(service, stopped).await;
    for (version, client) in clients() {
        let reply = get(&client, server.addr, "/version").await;
        assert_eq!(reply.text(), format!("{version:?}"));
        let probe = get(&client, server.addr, READYZ).await;
        assert_eq!(probe.version, version);
        assert_eq!(probe.status, StatusCode::OK);
    }
    let _ = stop.send(());
    server.stopped().await;
}
