//! The layer on a real axum server on loopback, shaped like `examples/axum.rs`: routes, a
//! token check and a fallback inside, `Router::layer(health.layer())` outermost. Requests
//! go through a real HTTP/1.1 client.

use kit::common;

use std::time::Duration;

use axum::Router;
use common::{
    assert_method_not_allowed, assert_probe_headers, axum_app, empty, get, head_matches_get,
    http1_client, request, send, spawn_axum, stop_switch, walk_probe_table, Running, LIVEZ, READYZ,
    STARTUPZ, TOKEN,
};
use http::header::{ACCEPT, AUTHORIZATION, CONNECTION};
use http::{Method, StatusCode};
use http_body_util::Full;
use tower_health::{Health, Lifecycle};

fn layered(health: &Health) -> Router {
    axum_app().layer(health.layer())
}

#[tokio::test]
async fn every_row_of_the_probe_table_over_http1() {
    let health = Health::new();
    let (stop, stopped) = stop_switch();
    let server = spawn_axum(layered(&health), stopped).await;
    let client = http1_client();
    walk_probe_table(&health, |path| get(&client, server.addr, path)).await;
    let _ = stop.send(());
    server.stopped().await;
}

#[tokio::test]
async fn probes_are_answered_before_the_token_check_and_the_fallback() {
    let health = Health::new();
    health.ready();
    let (stop, stopped) = stop_switch();
    let server = spawn_axum(layered(&health), stopped).await;
    let client = http1_client();

    // No route is registered for the probe paths and no token is sent: the layer answers
    // anyway, so neither the token check (401) nor the fallback (404) ever sees a probe.
    for path in [LIVEZ, READYZ, STARTUPZ] {
        let reply = get(&client, server.addr, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_probe_headers(&reply, "application/health+json", path);
        assert_eq!(reply.json(), serde_json::json!({ "status": "pass" }));
    }
    // Everything else meets the application's own layers.
    assert_eq!(
        get(&client, server.addr, "/readyzz").await.status,
        StatusCode::UNAUTHORIZED
    );
    let reply = send(
        &client,
        empty(request(Method::GET, server.addr, "/readyz/unknown").header(AUTHORIZATION, TOKEN)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.text(), "no such page\n");

    let _ = stop.send(());
    server.stopped().await;
}

#[tokio::test]
async fn other_methods_on_probe_paths_get_the_layers_405() {
    let health = Health::new();
    let (stop, stopped) = stop_switch();
    let server = spawn_axum(layered(&health), stopped).await;
    let client = http1_client();
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::from_bytes(b"PURGE").unwrap(),
    ] {
        for path in [LIVEZ, READYZ, STARTUPZ] {
            let reply = send(&client, empty(request(method.clone(), server.addr, path))).await;
            assert_method_not_allowed(&reply, &format!("{method} {path}"));
        }
    }
    let _ = stop.send(());
    server.stopped().await;
}

#[tokio::test]
async fn head_and_content_types_over_http1() {
    let health = Health::new();
    let (stop, stopped) = stop_switch();
    let server = spawn_axum(layered(&health), stopped).await;
    let client = http1_client();
    for state in [Lifecycle::Starting, Lifecycle::Ready, Lifecycle::Draining] {
        match state {
            Lifecycle::Starting => {}
            Lifecycle::Ready => assert!(health.ready()),
            Lifecycle::Draining => assert!(health.start_draining()),
        }
        for path in [LIVEZ, READYZ, STARTUPZ, "/readyz?verbose"] {
            for accept in ["application/health+json", "text/plain"] {
                let context = format!("{path} ({accept}) while {state}");
                head_matches_get(&client, server.addr, path, accept, &context).await;
            }
        }
    }
    let reply = send(
        &client,
        empty(request(Method::GET, server.addr, LIVEZ).header(ACCEPT, "text/plain")),
    )
    .await;
    assert_eq!(reply.text(), "ok");
    let _ = stop.send(());
    server.stopped().await;
}

/// Requests that are not probes, with and without a token, on routes and off them.
fn ordinary_requests(addr: std::net::SocketAddr) -> Vec<http::Request<Full<bytes::Bytes>>> {
    let with_token = |method: Method, path: &str| {
        empty(request(method, addr, path).header(AUTHORIZATION, TOKEN))
    };
    vec![
        with_token(Method::GET, "/"),
        with_token(Method::HEAD, "/"),
        with_token(Method::POST, "/"),
        with_token(Method::GET, "/items/7"),
        with_token(Method::GET, "/items/not-a-number"),
        with_token(Method::GET, "/nowhere"),
        with_token(Method::GET, "/readyzz"),
        with_token(Method::GET, "/readyz/"),
        with_token(Method::GET, "/livez%2F"),
        empty(request(Method::GET, addr, "/")),
        empty(request(Method::GET, addr, "/items/7")),
    ]
}

#[tokio::test]
async fn ordinary_responses_are_identical_with_and_without_the_layer() {
    let health = Health::new();
    health.ready();
    let (stop_bare, stopped_bare) = stop_switch();
    let (stop_layered, stopped_layered) = stop_switch();
    let bare = spawn_axum(axum_app(), stopped_bare).await;
    let layered = spawn_axum(layered(&health), stopped_layered).await;
    let client = http1_client();

    let pairs = ordinary_requests(bare.addr)
        .into_iter()
        .zip(ordinary_requests(layered.addr));
    for (to_bare, to_layered) in pairs {
        let what = format!("{} {}", to_bare.method(), to_bare.uri().path());
        let expected = send(&client, to_bare).await;
        let got = send(&client, to_layered).await;
        assert_eq!(got.status, expected.status, "{what}");
        assert_eq!(got.version, expected.version, "{what}");
        assert_eq!(got.stable_headers(), expected.stable_headers(), "{what}");
        assert_eq!(got.body, expected.body, "{what}");
    }
    // Not vacuous: the bare server knows nothing of probes.
    assert_eq!(
        get(&client, bare.addr, READYZ).await.status,
        StatusCode::UNAUTHORIZED
    );

    let _ = stop_bare.send(());
    let _ = stop_layered.send(());
    bare.stopped().await;
    layered.stopped().await;
}

#[tokio::test]
async fn draining_fails_readiness_keeps_serving_then_shutdown_stops_the_server() {
    let health = Health::builder().drain_delay(Duration::ZERO).build();
    health.ready();
    let (trigger, triggered) = stop_switch();
    let server: Running = spawn_axum(layered(&health), health.shutdown_on(triggered)).await;
    let client = http1_client();
    let addr = server.addr;

    health.start_draining();
    let reply = get(&client, addr, READYZ).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["output"], "draining");
    assert_eq!(get(&client, addr, LIVEZ).await.status, StatusCode::OK);
    assert_eq!(get(&client, addr, STARTUPZ).await.status, StatusCode::OK);
    let reply = send(
        &client,
        empty(request(Method::GET, addr, "/").header(AUTHORIZATION, TOKEN)),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "traffic is still served while draining"
    );
    assert_eq!(
        reply.header(CONNECTION),
        Some("close"),
        "keep-alive clients move on"
    );

    let _ = trigger.send(());
    server.stopped().await;
    assert_eq!(health.state(), Lifecycle::Draining);
}

#[tokio::test]
async fn probes_are_intercepted_with_axums_default_fallback_and_over_the_apps_own_routes() {
    // No custom fallback, and the application happens to have its own `/livez` route: the
    // layer, wrapping every route and the fallback, answers first all the same.
    let health = Health::new();
    health.ready();
    let app = Router::new()
        .route("/", axum::routing::get(|| async { "root" }))
        .route(
            LIVEZ,
            axum::routing::get(|| async { "the app's own livez" }),
        )
        .layer(health.layer());
    let (stop, stopped) = stop_switch();
    let server = spawn_axum(app, stopped).await;
    let client = http1_client();

    for path in [LIVEZ, READYZ, STARTUPZ] {
        let reply = get(&client, server.addr, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_probe_headers(&reply, "application/health+json", path);
        let post = send(&client, empty(request(Method::POST, server.addr, path))).await;
        assert_method_not_allowed(&post, &format!("not axum's 405: {path}"));
    }
    // Axum's own 404 and 405 for everything else.
    assert_eq!(
        get(&client, server.addr, "/readyzz").await.status,
        StatusCode::NOT_FOUND
    );
    let post = send(&client, empty(request(Method::POST, server.addr, "/"))).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("cache-control"), None);

    let _ = stop.send(());
    server.stopped().await;
}

/// The rolling restart that took every replica to its deadline: an HTTP/2 client that made
/// a request and then never reads again (a NAT that dropped the flow looks the same), so
/// it never acknowledges the PING after the server's GOAWAY. With requests counted, the
/// server stops once the drain delay is over and nothing is in flight.
#[tokio::test]
async fn with_deadline_stops_within_the_drain_delay_despite_an_http2_client_that_never_reads() {
    use tokio::io::AsyncWriteExt as _;

    const DELAY: Duration = Duration::from_millis(500);
    // Far past any margin below: reaching it is the failure.
    const DEADLINE: Duration = Duration::from_secs(60);
    let health = Health::builder()
        .drain_delay(DELAY)
        .shutdown_timeout(DEADLINE)
        .track_in_flight(true)
        .build();
    health.ready();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = stop_switch();
    let shutdown = health.shutdown_on(stopped);
    let server = axum::serve(listener, layered(&health)).with_graceful_shutdown(shutdown);
    let serving = tokio::spawn({
        let health = health.clone();
        async move { health.with_deadline(server).await }
    });

    // HTTP/2 with prior knowledge: the preface, SETTINGS, and one GET / (HEADERS with
    // END_STREAM and END_HEADERS), then nothing is ever read.
    let mut frozen = tokio::net::TcpStream::connect(addr).await.unwrap();
    frozen
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0\0\0\x03\x01\x05\0\0\0\x01\x82\x86\x84")
        .await
        .unwrap();
    // Its answer is small enough to be written whole whether or not it is read, so the
    // request ends by itself, whenever the server gets to it.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let signalled = std::time::Instant::now();
    let _ = stop.send(());
    let served = common::bounded("the server stopping", serving)
        .await
        .unwrap();
    let took = signalled.elapsed();
    assert!(served.is_none(), "dropped, not finished by itself");
    assert!(took >= DELAY, "served through the drain delay: {took:?}");
    // A generous margin for a loaded machine, far below the deadline it used to wait for.
    assert!(took < DELAY + Duration::from_secs(10), "{took:?}");
    drop(frozen);
}
