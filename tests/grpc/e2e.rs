//! gRPC health over real HTTP/2 connections on loopback, with the layer on each stack:
//! tonic (in front of the tonic example's hand-written `helloworld.Greeter`, with no
//! tonic-health server behind it), `axum::serve` and hyper-util's auto builder.
//! Check and Watch go through tonic-health's generated client, List through a client
//! written here on tonic's own client machinery, and malformed calls as raw HTTP/2
//! requests.
#![cfg(feature = "grpc")]

use kit::common;
use kit::health_client;

use kit::greeter;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{
    bounded, http1_client, http2_client, hyper_handle, request, send, spawn_axum, spawn_hyper,
    stop_switch, Reply, Running, LIMIT,
};
use health_client::{channel, check, list, next, watch};
use http::header::CONTENT_TYPE;
use http::{Method, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower_health::{Check, Health, Probe};

use ServingStatus::{NotServing, ServiceUnknown, Serving};

// === the stacks ===

#[derive(Debug, Clone, Copy)]
enum Stack {
    Tonic,
    Axum,
    Hyper,
}

const STACKS: [Stack; 3] = [Stack::Tonic, Stack::Axum, Stack::Hyper];

/// Serves the layer of `health` on `stack` until `shutdown` resolves.
async fn serve(
    stack: Stack,
    health: &Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Running {
    match stack {
        Stack::Tonic => {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            let router = Server::builder()
                .accept_http1(true)
                .layer(health.layer())
                .add_service(greeter::GreeterServer);
            let task = tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
                    .await
                    .expect("tonic server");
            });
            Running::new(addr, task)
        }
        Stack::Axum => spawn_axum(common::axum_app().layer(health.layer()), shutdown).await,
        Stack::Hyper => {
            let service = ServiceBuilder::new()
                .layer(health.layer())
                .service_fn(hyper_handle);
            spawn_hyper(service, shutdown).await
        }
    }
}

/// A check whose outcome the test sets.
#[derive(Clone)]
struct Switch(Arc<AtomicBool>);

impl Switch {
    fn check(name: &'static str) -> (Check, Switch) {
        let (check, up) = common::flag_check(name);
        (check, Switch(up))
    }

    /// Sets the outcome and runs the checks, so that the change is in place on return.
    async fn set(&self, health: &Health, up: bool) {
        self.0.store(up, Ordering::SeqCst);
        health.refresh().await;
    }
}

/// db (critical) and cache (non-critical), both passing; `helloworld.Greeter` mapped to
/// readiness and `ops.Admin` to liveness; the background refresh off, so that results
/// change only when a test says so.
fn health() -> (Health, Switch, Switch) {
    let (db, db_switch) = Switch::check("db");
    let (cache, cache_switch) = Switch::check("cache");
    let health = Health::builder()
        .check(db)
        .check(cache.non_critical())
        .background_refresh(false)
        .grpc_service(
            <greeter::GreeterServer as tonic::server::NamedService>::NAME,
            Probe::Readiness,
        )
        .grpc_service("ops.Admin", Probe::Liveness)
        .build();
    (health, db_switch, cache_switch)
}

// === the clients ===

async fn statuses(client: &mut HealthClient<Channel>, names: &[&str]) -> Vec<ServingStatus> {
    let mut out = Vec::new();
    for name in names {
        out.push(check(client, name).await.expect(name));
    }
    out
}

// === statuses ===

#[tokio::test]
async fn serving_once_ready_and_not_serving_while_starting() {
    for stack in STACKS {
        let (health, _, _) = health();
        health.refresh().await;
        let (stop, stopped) = stop_switch();
        let server = serve(stack, &health, stopped).await;
        let mut client = HealthClient::new(channel(server.addr).await);
        let names = ["", "readiness", "startup", "liveness", "helloworld.Greeter"];
        let starting = [NotServing, NotServing, NotServing, Serving, NotServing];
        assert_eq!(statuses(&mut client, &names).await, starting, "{stack:?}");
        health.ready();
        let ready = [Serving; 5];
        assert_eq!(statuses(&mut client, &names).await, ready, "{stack:?}");
        drop(client);
        let _ = stop.send(());
        server.stopped().await;
    }
}

#[tokio::test]
async fn a_critical_failure_fails_readiness_and_not_liveness_and_a_non_critical_one_fails_nothing()
{
    for stack in STACKS {
        let (health, db, cache) = health();
        health.refresh().await;
        health.ready();
        let (stop, stopped) = stop_switch();
        let server = serve(stack, &health, stopped).await;
        let mut client = HealthClient::new(channel(server.addr).await);
        let names = [
            "",
            "readiness",
            "liveness",
            "startup",
            "db",
            "cache",
            "helloworld.Greeter",
            "ops.Admin",
        ];
        let (s, n) = (Serving, NotServing);

        db.set(&health, false).await;
        let want = [n, n, s, s, n, s, n, s];
        assert_eq!(
            statuses(&mut client, &names).await,
            want,
            "{stack:?} db down"
        );
        db.set(&health, true).await;
        assert_eq!(
            statuses(&mut client, &names).await,
            [s; 8],
            "{stack:?} db back"
        );
        cache.set(&health, false).await;
        let want = [s, s, s, s, s, n, s, s];
        assert_eq!(
            statuses(&mut client, &names).await,
            want,
            "{stack:?} cache down"
        );

        drop(client);
        let _ = stop.send(());
        server.stopped().await;
    }
}

#[tokio::test]
async fn unknown_names_list_and_application_names() {
    for stack in STACKS {
        let (health, db, _) = health();
        health.refresh().await;
        health.ready();
        db.set(&health, false).await;
        let (stop, stopped) = stop_switch();
        let server = serve(stack, &health, stopped).await;
        let channel = channel(server.addr).await;
        let mut client = HealthClient::new(channel.clone());

        assert_eq!(
            check(&mut client, "no.such.Service").await,
            Err(Code::NotFound)
        );
        assert_eq!(check(&mut client, "Readiness").await, Err(Code::NotFound));
        assert_eq!(
            check(&mut client, "helloworld.Greeter").await,
            Ok(NotServing)
        );
        assert_eq!(check(&mut client, "ops.Admin").await, Ok(Serving));

        let listed = list(channel.clone()).await.expect("List");
        let want: BTreeMap<String, ServingStatus> = [
            ("", NotServing),
            ("cache", Serving),
            ("db", NotServing),
            ("helloworld.Greeter", NotServing),
            ("liveness", Serving),
            ("ops.Admin", Serving),
            ("readiness", NotServing),
            ("startup", Serving),
        ]
        .into_iter()
        .map(|(name, status)| (name.to_owned(), status))
        .collect();
        assert_eq!(listed, want, "{stack:?}");

        // The application's own service still answers behind the layer on tonic.
        if let Stack::Tonic = stack {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.expect("ready");
            let reply: tonic::Response<greeter::HelloReply> = grpc
                .unary(
                    tonic::Request::new(greeter::HelloRequest {
                        name: "probe".into(),
                    }),
                    PathAndQuery::from_static("/helloworld.Greeter/SayHello"),
                    tonic_prost::ProstCodec::default(),
                )
                .await
                .expect("SayHello");
            assert_eq!(reply.into_inner().message, "Hello, probe!");
        }

        drop(client);
        let _ = stop.send(());
        server.stopped().await;
    }
}

// === Watch ===

#[tokio::test]
async fn watch_sees_each_change_in_order_and_no_duplicate() {
    for stack in STACKS {
        let (health, db, cache) = health();
        health.refresh().await;
        let (stop, stopped) = stop_switch();
        let server = serve(stack, &health, stopped).await;
        let mut client = HealthClient::new(channel(server.addr).await);
        let mut whole = watch(&mut client, "").await;
        let mut live = watch(&mut client, "liveness").await;

        assert_eq!(
            next(&mut whole).await,
            Some(NotServing),
            "{stack:?} starting"
        );
        assert_eq!(next(&mut live).await, Some(Serving));
        health.ready();
        assert_eq!(next(&mut whole).await, Some(Serving), "{stack:?} ready");
        // Neither a run that changes nothing nor a non-critical failure is a change of
        // "": if either sent a message, the next one read would be a second SERVING.
        health.refresh().await;
        cache.set(&health, false).await;
        db.set(&health, false).await;
        assert_eq!(
            next(&mut whole).await,
            Some(NotServing),
            "{stack:?} db down"
        );
        db.set(&health, true).await;
        assert_eq!(next(&mut whole).await, Some(Serving), "{stack:?} db back");
        health.fail_liveness();
        assert_eq!(next(&mut live).await, Some(NotServing), "{stack:?}");
        assert_eq!(next(&mut whole).await, Some(NotServing), "{stack:?}");
        health.recover_liveness();
        // Liveness saw none of the check changes: its next message is this one.
        assert_eq!(next(&mut live).await, Some(Serving), "{stack:?}");
        assert_eq!(next(&mut whole).await, Some(Serving), "{stack:?}");

        drop((whole, live, client));
        let _ = stop.send(());
        server.stopped().await;
    }
}

#[tokio::test]
async fn many_concurrent_watchers_each_see_every_change() {
    const CONNECTIONS: usize = 4;
    const PER_CONNECTION: usize = 25;
    for stack in STACKS {
        let (health, db, _) = health();
        health.refresh().await;
        let (stop, stopped) = stop_switch();
        let server = serve(stack, &health, stopped).await;
        let mut streams = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut client = HealthClient::new(channel(server.addr).await);
            for _ in 0..PER_CONNECTION {
                streams.push(watch(&mut client, "").await);
            }
        }
        let steps: [(&str, ServingStatus); 4] = [
            ("starting", NotServing),
            ("ready", Serving),
            ("db down", NotServing),
            ("db back", Serving),
        ];
        for (step, expected) in steps {
            match step {
                "ready" => {
                    health.ready();
                }
                "db down" => db.set(&health, false).await,
                "db back" => db.set(&health, true).await,
                _ => {}
            }
            let reads = streams.iter_mut().map(next);
            let got = futures_util::future::join_all(reads).await;
            assert!(
                got.iter().all(|s| *s == Some(expected)),
                "{stack:?} {step}: {got:?}"
            );
        }
        drop(streams);
        let _ = stop.send(());
        server.stopped().await;
    }
}

#[tokio::test]
async fn a_watcher_that_never_reads_is_sent_the_latest_status_not_a_backlog() {
    const FLIPS: usize = 1_000;
    for stack in STACKS {
        let (check, db) = Switch::check("db");
        let health = Health::builder()
            .check(check)
            .background_refresh(false)
            .drain_delay(Duration::ZERO)
            .build();
        health.refresh().await;
        health.ready();
        let (trigger, triggered) = stop_switch();
        let server = serve(stack, &health, health.shutdown_on(triggered)).await;
        // A client with a 16-byte window per stream: the server can send two 7-byte
        // messages, then must wait for it to read.
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .http2_initial_stream_window_size(16)
            .build_http();
        let call = request(Method::POST, server.addr, "/grpc.health.v1.Health/Watch")
            .header(CONTENT_TYPE, "application/grpc")
            .header("te", "trailers")
            .body(Full::from(frame(&[])))
            .unwrap();
        let response = bounded("Watch", client.request(call)).await.expect("Watch");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
        let mut body = response.into_body();

        // It reads nothing while the status changes 1,001 times, and the drain (with no
        // delay) ends the stream.
        for i in 0..=FLIPS {
            db.set(&health, i % 2 == 1).await;
        }
        let _ = trigger.send(());

        // Then it reads the whole stream: a handful of messages, the last one the status
        // at the end, where a queue would hold a thousand. (With so small a window, a
        // message may come in two DATA frames.)
        let mut bytes = Vec::new();
        let mut received = Vec::new();
        let trailers = loop {
            let frame = bounded("a Watch frame", body.frame())
                .await
                .expect("the stream ends with trailers")
                .expect("a frame");
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => break frame.into_trailers().expect("trailers"),
            };
            bytes.extend_from_slice(&data);
            while bytes.len() >= 7 {
                let message: Vec<u8> = bytes.drain(..7).collect();
                assert_eq!(&message[..6], &[0, 0, 0, 0, 2, 0x08], "{stack:?}");
                let status = ServingStatus::try_from(i32::from(message[6]));
                received.push(status.expect("a status"));
            }
            assert!(received.len() <= 100, "{stack:?}: a backlog");
        };
        assert_eq!(trailers["grpc-status"], "0", "{stack:?}");
        assert!(bytes.is_empty(), "{stack:?}: a partial message");
        assert!(
            received.len() <= 5,
            "{stack:?}: {} messages",
            received.len()
        );
        assert_eq!(received.first(), Some(&Serving), "{stack:?}");
        assert_eq!(received.last(), Some(&NotServing), "{stack:?}");
        server.stopped().await;
    }
}

#[tokio::test]
async fn an_unknown_name_is_watched_as_service_unknown_until_the_drain_ends() {
    for stack in STACKS {
        let (check, db) = Switch::check("db");
        let health = Health::builder()
            .check(check)
            .background_refresh(false)
            .drain_delay(Duration::from_millis(200))
            .build();
        let (trigger, triggered) = stop_switch();
        let server = serve(stack, &health, health.shutdown_on(triggered)).await;
        let mut client = HealthClient::new(channel(server.addr).await);
        let mut unknown = watch(&mut client, "no.such.Service").await;
        assert_eq!(next(&mut unknown).await, Some(ServiceUnknown), "{stack:?}");
        health.ready();
        db.set(&health, false).await;
        db.set(&health, true).await;
        // Open all along, and silent: the next thing it says is the end of the stream,
        // once the drain delay is over.
        let _ = trigger.send(());
        assert_eq!(next(&mut unknown).await, None, "{stack:?}");
        drop(client);
        server.stopped().await;
    }
}

#[tokio::test]
async fn on_drain_watch_says_not_serving_at_once_and_the_server_stops_after_the_delay() {
    const DELAY: Duration = Duration::from_millis(400);
    for stack in STACKS {
        let health = Health::builder().drain_delay(DELAY).build();
        health.ready();
        let (trigger, triggered) = stop_switch();
        let server = serve(stack, &health, health.shutdown_on(triggered)).await;
        let mut client = HealthClient::new(channel(server.addr).await);
        let mut streams = Vec::new();
        for name in ["", "liveness", "startup"] {
            let mut stream = watch(&mut client, name).await;
            assert_eq!(next(&mut stream).await, Some(Serving), "{stack:?} {name}");
            streams.push(stream);
        }
        let start = tokio::time::Instant::now();
        let _ = trigger.send(());
        for stream in &mut streams {
            assert_eq!(next(stream).await, Some(NotServing), "{stack:?}");
        }
        assert!(start.elapsed() < DELAY, "{stack:?}: at once");
        // A Check during the delay is still answered.
        assert_eq!(check(&mut client, "").await, Ok(NotServing), "{stack:?}");
        for stream in &mut streams {
            assert_eq!(next(stream).await, None, "{stack:?}: ended well");
        }
        assert!(start.elapsed() >= DELAY, "{stack:?}: not before the delay");
        // The open connection does not hold the server once its streams have ended.
        server.stopped().await;
        assert!(start.elapsed() < LIMIT, "{stack:?}");
        drop(client);
    }
}

// === malformed calls over a real connection ===

/// A length-prefixed message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out
}

async fn raw_call(
    client: &common::HttpClient,
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut call = request(Method::POST, addr, path)
        .header(CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(Full::from(body))
        .unwrap();
    for (name, value) in headers {
        let name: http::HeaderName = name.parse().unwrap();
        call.headers_mut().insert(name, value.parse().unwrap());
    }
    send(client, call).await
}

#[tokio::test]
async fn malformed_calls_over_a_real_connection_get_trailers_only_grpc_errors() {
    let mut too_large = vec![0, 0xff, 0xff, 0xff, 0xff];
    too_large.extend_from_slice(&[7; 1024]);
    let mut compressed = frame(b"\x0a\x00");
    compressed[0] = 1;
    // What is wrong, the body, headers to set, and the grpc-status expected.
    type Case = (
        &'static str,
        Vec<u8>,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: [Case; 9] = [
        ("a 4 GB length prefix", too_large, &[], "8"),
        ("no message", vec![], &[], "13"),
        ("a truncated prefix", vec![0, 0], &[], "13"),
        (
            "a truncated message",
            frame(b"\x0a\x05ab")[..6].to_vec(),
            &[],
            "13",
        ),
        (
            "bytes after the message",
            [frame(b""), vec![9]].concat(),
            &[],
            "13",
        ),
        (
            "the compressed flag, no grpc-encoding",
            compressed.clone(),
            &[],
            "13",
        ),
        (
            "a gzip message",
            compressed,
            &[("grpc-encoding", "gzip")],
            "12",
        ),
        ("not protobuf", frame(b"\x0a\xff"), &[], "13"),
        (
            "a codec it does not speak",
            frame(b""),
            &[("content-type", "application/grpc+json")],
            "12",
        ),
    ];
    let h2 = http2_client();
    for stack in STACKS {
        let health = Health::new();
        health.ready();
        let (stop, stopped) = stop_switch();
        let server = serve(stack, &health, stopped).await;
        for path in ["Check", "Watch", "List"] {
            let path = format!("/grpc.health.v1.Health/{path}");
            for (what, body, headers, code) in &cases {
                let context = format!("{stack:?} {path}: {what}");
                let reply = raw_call(&h2, server.addr, &path, body.clone(), headers).await;
                assert_trailers_only(&reply, code, &context);
            }
            // Unknown fields are skipped: an answer.
            let unknown_fields = frame(b"\x0a\x00\x38\x05\x4a\x02zz");
            if path.ends_with("Watch") {
                continue;
            }
            let reply = raw_call(&h2, server.addr, &path, unknown_fields, &[]).await;
            let trailers = reply.trailers.as_ref().expect("trailers after the message");
            assert_eq!(trailers["grpc-status"], "0", "{stack:?} {path}");
        }
        // A method the service does not have.
        let reply = raw_call(
            &h2,
            server.addr,
            "/grpc.health.v1.Health/Nope",
            frame(b""),
            &[],
        )
        .await;
        assert_trailers_only(&reply, "12", &format!("{stack:?} Nope"));
        // The connection is still good for a well-formed call.
        let mut client = HealthClient::new(channel(server.addr).await);
        assert_eq!(check(&mut client, "").await, Ok(Serving), "{stack:?}");
        drop(client);
        let _ = stop.send(());
        server.stopped().await;
    }
}

fn assert_trailers_only(reply: &Reply, code: &str, context: &str) {
    assert_eq!(reply.version, Version::HTTP_2, "{context}");
    assert_eq!(reply.status, StatusCode::OK, "{context}");
    assert_eq!(
        reply.header(CONTENT_TYPE),
        Some("application/grpc"),
        "{context}"
    );
    assert_eq!(reply.header("grpc-status"), Some(code), "{context}");
    assert!(reply.header("grpc-message").is_some(), "{context}");
    assert!(reply.body.is_empty(), "{context}: {:?}", reply.body);
    assert!(reply.trailers.is_none(), "{context}");
}

#[tokio::test]
async fn over_http1_a_grpc_call_gets_internal_and_other_requests_pass_through() {
    let h1 = http1_client();
    for stack in STACKS {
        let health = Health::new();
        health.ready();
        let (stop, stopped) = stop_switch();
        let server = serve(stack, &health, stopped).await;
        let reply = raw_call(
            &h1,
            server.addr,
            "/grpc.health.v1.Health/Check",
            frame(b""),
            &[],
        )
        .await;
        assert_eq!(reply.version, Version::HTTP_11, "{stack:?}");
        assert_eq!(reply.status, StatusCode::OK, "{stack:?}");
        assert_eq!(reply.header("grpc-status"), Some("13"), "{stack:?}");
        assert!(reply.body.is_empty(), "{stack:?}");

        // Not a gRPC call: what the application answers. tonic's router has no
        // grpc.health.v1 service (UNIMPLEMENTED), axum's app wants a token, hyper's
        // handler knows no such path.
        let get = common::get(&h1, server.addr, "/grpc.health.v1.Health/Check").await;
        let expected = match stack {
            Stack::Tonic => (StatusCode::OK, Some("12")),
            Stack::Axum => (StatusCode::UNAUTHORIZED, None),
            Stack::Hyper => (StatusCode::NOT_FOUND, None),
        };
        assert_eq!(
            (get.status, get.header("grpc-status")),
            expected,
            "{stack:?}"
        );

        let _ = stop.send(());
        server.stopped().await;
    }
}
