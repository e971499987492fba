//! gRPC health (`grpc.health.v1`) answered by the layer, called in process with
//! `tower::ServiceExt::oneshot`: each name's status next to the HTTP probes', Watch's
//! messages under paused time, List, and every malformed request's gRPC error. The same
//! calls over real HTTP/2 connections on tonic, axum and hyper are in `e2e.rs`.
#![cfg(feature = "grpc")]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use prost::Message;
use tower::{Service, ServiceExt};
use tower_health::{Check, Health, Probe, ResponseBody};

// === the messages, as a client of the protocol writes them ===

#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthListRequest {}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthListResponse {
    #[prost(btree_map = "string, message", tag = "1")]
    statuses: BTreeMap<String, HealthCheckResponse>,
}

const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;
const SERVICE_UNKNOWN: i32 = 3;

const CHECK: &str = "/grpc.health.v1.Health/Check";
const WATCH: &str = "/grpc.health.v1.Health/Watch";
const LIST: &str = "/grpc.health.v1.Health/List";

/// A length-prefixed message, uncompressed.
fn frame(message: &impl Message) -> Vec<u8> {
    framed(0, &message.encode_to_vec())
}

fn framed(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn ask(service: &str) -> Vec<u8> {
    frame(&HealthCheckRequest {
        service: service.into(),
    })
}

/// A gRPC call's head as an HTTP/2 client sends it.
fn grpc(path: &str) -> http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .version(Version::HTTP_2)
        .header(CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
}

fn call_request(path: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    grpc(path).body(Full::from(body)).unwrap()
}

// === the service under test ===

type Inner = tower::util::BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;
type Layered = tower_health::HealthService<Inner>;

/// The application behind the layer: it answers everything with 404 `inner`, so that a
/// request that passed through is plain to see.
fn app(health: &Health) -> Layered {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        let mut response = Response::new(Full::from("inner"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(response)
    });
    tower::Layer::layer(&health.layer(), Inner::new(inner))
}

/// A check whose outcome the test sets.
struct Switch(Arc<AtomicBool>);

impl Switch {
    fn check(name: &'static str) -> (Check, Switch) {
        let (check, up) = kit::common::flag_check(name);
        (check, Switch(up))
    }

    fn set(&self, up: bool) {
        self.0.store(up, Ordering::SeqCst);
    }
}

/// A whole answer: HTTP status, headers, messages and trailers.
#[derive(Debug)]
struct Answer {
    http: StatusCode,
    headers: HeaderMap,
    messages: Vec<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Answer {
    /// `grpc-status`, from the trailers or, trailers-only, from the headers.
    fn grpc_status(&self) -> Option<&str> {
        let from = self.trailers.as_ref().unwrap_or(&self.headers);
        from.get("grpc-status").map(|v| v.to_str().unwrap())
    }

    fn is_trailers_only(&self) -> bool {
        self.messages.is_empty() && self.trailers.is_none()
    }

    fn status(&self) -> i32 {
        assert_eq!(self.grpc_status(), Some("0"), "{self:?}");
        assert_eq!(self.messages.len(), 1, "{self:?}");
        decode::<HealthCheckResponse>(&self.messages[0]).status
    }
}

fn decode<M: Message + Default>(frame: &[u8]) -> M {
    assert_eq!(frame[0], 0, "uncompressed");
    let length = u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize;
    assert_eq!(frame.len(), 5 + length, "one whole message");
    M::decode(&frame[5..]).unwrap()
}

async fn send(service: &Layered, request: Request<Full<Bytes>>) -> Answer {
    let response = tokio::time::timeout(Duration::from_secs(10), service.clone().oneshot(request))
        .await
        .expect("an answer")
        .unwrap();
    collect(response).await
}

async fn collect(response: Response<ResponseBody<Full<Bytes>>>) -> Answer {
    let (parts, mut body) = response.into_parts();
    let mut messages = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        match frame.unwrap().into_data() {
            Ok(data) => messages.push(data),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
    }
    Answer {
        http: parts.status,
        headers: parts.headers,
        messages,
        trailers,
    }
}

async fn check(service: &Layered, name: &str) -> i32 {
    send(service, call_request(CHECK, ask(name))).await.status()
}

async fn http_status(service: &Layered, path: &str) -> StatusCode {
    let request = Request::get(path).body(Full::default()).unwrap();
    service.clone().oneshot(request).await.unwrap().status()
}

// === Check ===

#[tokio::test]
async fn check_answers_each_name_from_the_same_state_as_the_http_probes_and_a_check_as_its_own_path(
) {
    let (db_check, db) = Switch::check("db");
    let (cache_check, cache) = Switch::check("cache");
    let health = Health::builder()
        .check(db_check)
        .check(cache_check.non_critical())
        .grpc_service("helloworld.Greeter", Probe::Readiness)
        .grpc_service("ops.Admin", Probe::Liveness)
        .build();
    let app = app(&health);
    let names = [
        "",
        "liveness",
        "readiness",
        "startup",
        "db",
        "cache",
        "helloworld.Greeter",
        "ops.Admin",
    ];
    let (s, n) = (SERVING, NOT_SERVING);
    // Each step, then what each name above answers.
    type Step<'a> = (&'a str, &'a dyn Fn(), [i32; 8]);
    let steps: [Step<'_>; 6] = [
        ("starting", &|| {}, [n, s, n, n, s, s, n, s]),
        (
            "ready",
            &|| {
                health.ready();
            },
            [s, s, s, s, s, s, s, s],
        ),
        ("db fails", &|| db.set(false), [n, s, n, s, n, s, n, s]),
        ("db back", &|| db.set(true), [s, s, s, s, s, s, s, s]),
        (
            "cache fails",
            &|| cache.set(false),
            [s, s, s, s, s, n, s, s],
        ),
        (
            "draining",
            &|| {
                health.start_draining();
            },
            [n, n, n, n, n, n, n, n],
        ),
    ];
    for (step, change, expected) in steps {
        change();
        health.refresh().await;
        let mut got = [0; 8];
        for (i, name) in names.iter().enumerate() {
            got[i] = check(&app, name).await;
        }
        assert_eq!(got, expected, "{step}: {names:?}");
        // "" is exactly the HTTP readiness verdict, and each probe name its probe's, but
        // while draining, when every gRPC name fails at once.
        if step != "draining" {
            // And a check's name answers as its own path does: its own status, critical or
            // not (a failing non-critical check is NOT_SERVING and 503 alike).
            for (path, index) in [
                ("/readyz", 0),
                ("/livez", 1),
                ("/startupz", 3),
                ("/readyz/db", 4),
                ("/readyz/cache", 5),
            ] {
                let http = http_status(&app, path).await;
                assert_eq!(
                    http == StatusCode::OK,
                    got[index] == SERVING,
                    "{step}: {path}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_check_on_a_cold_cache_waits_for_the_first_result_like_a_probe() {
    let (db_check, _db) = Switch::check("db");
    let health = Health::builder().check(db_check).build();
    health.ready();
    let app = app(&health);
    // No refresh yet: the answer waits for the run it starts.
    assert_eq!(check(&app, "").await, SERVING);
    assert_eq!(check(&app, "db").await, SERVING);
}

#[tokio::test]
async fn unknown_names_and_methods_get_trailers_only_errors() {
    let health = Health::new();
    health.ready();
    let app = app(&health);
    let cases = [
        (CHECK, ask("no.such.Service"), "5"),
        (CHECK, ask("Readiness"), "5"),
        ("/grpc.health.v1.Health/Nope", ask(""), "12"),
    ];
    for (path, body, code) in cases {
        let answer = send(&app, call_request(path, body)).await;
        assert_eq!(answer.http, StatusCode::OK, "{path}");
        assert!(answer.is_trailers_only(), "{path}: {answer:?}");
        assert_eq!(answer.grpc_status(), Some(code), "{path}");
        assert_eq!(answer.headers[CONTENT_TYPE], "application/grpc", "{path}");
        assert!(answer.headers.contains_key("grpc-message"), "{path}");
    }
}

// === List ===

#[tokio::test]
async fn list_names_every_known_name_with_its_status() {
    let (db_check, db) = Switch::check("db");
    let health = Health::builder()
        .check(db_check)
        .grpc_service("helloworld.Greeter", Probe::Readiness)
        .build();
    health.ready();
    db.set(false);
    health.refresh().await;
    let app = app(&health);
    let answer = send(&app, call_request(LIST, frame(&HealthListRequest {}))).await;
    assert_eq!(answer.grpc_status(), Some("0"));
    let list: HealthListResponse = decode(&answer.messages[0]);
    let got: Vec<(&str, i32)> = list
        .statuses
        .iter()
        .map(|(name, status)| (name.as_str(), status.status))
        .collect();
    assert_eq!(
        got,
        [
            ("", NOT_SERVING),
            ("db", NOT_SERVING),
            ("helloworld.Greeter", NOT_SERVING),
            ("liveness", SERVING),
            ("readiness", NOT_SERVING),
            ("startup", SERVING),
        ]
    );
}

/// A `HealthListResponse` as it is on the wire: a map is a repeated entry message, so
/// a name sent twice shows here, where a map would keep only one of them.
#[derive(Clone, PartialEq, prost::Message)]
struct ListEntries {
    #[prost(message, repeated, tag = "1")]
    entries: Vec<ListEntry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListEntry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<HealthCheckResponse>,
}

#[tokio::test]
async fn list_never_carries_one_name_twice() {
    // A check may not take a name that gRPC gives a probe, so it cannot shadow one.
    let ok = || async { Ok::<(), Infallible>(()) };
    for reserved in ["", "liveness", "readiness", "startup"] {
        let built = Health::builder()
            .check(Check::new("db", ok))
            .check(Check::new(reserved, ok))
            .try_build();
        let Err(error) = built else {
            panic!("a check named {reserved:?} was accepted");
        };
        assert!(
            error.to_string().contains(&format!("{reserved:?}")),
            "{error}"
        );
    }
    let (db_check, db) = Switch::check("db");
    let health = Health::builder()
        .check(db_check)
        .check(Check::new("cache", ok).non_critical())
        .grpc_service("helloworld.Greeter", Probe::Readiness)
        .grpc_service("ops.Admin", Probe::Liveness)
        .build();
    health.ready();
    db.set(false);
    health.refresh().await;
    let app = app(&health);
    let answer = send(&app, call_request(LIST, frame(&HealthListRequest {}))).await;
    assert_eq!(answer.grpc_status(), Some("0"));
    let mut names: Vec<String> = decode::<ListEntries>(&answer.messages[0])
        .entries
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "",
            "cache",
            "db",
            "helloworld.Greeter",
            "liveness",
            "ops.Admin",
            "readiness",
            "startup"
        ]
    );
    // Each name answers as List says: the probe's verdict for a probe's name.
    assert_eq!(check(&app, "readiness").await, NOT_SERVING);
    assert_eq!(check(&app, "startup").await, SERVING);
}

#[tokio::test]
async fn list_refuses_more_than_100_names_as_a90_says() {
    let app_with = |checks: usize| {
        let mut builder = Health::builder();
        for i in 0..checks {
            builder = builder.check(Check::new(format!("c{i}"), || async {
                Ok::<(), Infallible>(())
            }));
        }
        let health = builder.build();
        health.ready();
        (app(&health), health)
    };
    // "", liveness, readiness, startup and 96 checks: 100 names.
    let (app, health) = app_with(96);
    health.refresh().await;
    let answer = send(&app, call_request(LIST, frame(&HealthListRequest {}))).await;
    assert_eq!(
        decode::<HealthListResponse>(&answer.messages[0])
            .statuses
            .len(),
        100
    );
    let (app, health) = app_with(97);
    health.refresh().await;
    let answer = send(&app, call_request(LIST, frame(&HealthListRequest {}))).await;
    assert!(answer.is_trailers_only());
    assert_eq!(answer.grpc_status(), Some("8"));
}

// === Watch ===

/// The next Watch message's status; `None` when the stream ended (with `grpc-status: 0`),
/// and a panic when nothing comes before the runtime has nothing left to do.
async fn next_status(body: &mut ResponseBody<Full<Bytes>>) -> Option<i32> {
    // Time is paused: the timeout fires only once every task is idle, so it means
    // "nothing more is coming", not "the machine was slow".
    let frame = tokio::time::timeout(Duration::from_secs(3600), body.frame())
        .await
        .expect("a message, or the end of the stream")?;
    match frame.unwrap().into_data() {
        Ok(data) => Some(decode::<HealthCheckResponse>(&data).status),
        Err(frame) => {
            let trailers = frame.into_trailers().unwrap();
            assert_eq!(trailers["grpc-status"], "0");
            assert!(body.frame().await.is_none());
            None
        }
    }
}

/// Whether the stream stays silent until the runtime has nothing left to do.
async fn stays_silent(body: &mut ResponseBody<Full<Bytes>>) -> bool {
    tokio::time::timeout(Duration::from_secs(3600), body.frame())
        .await
        .is_err()
}

async fn watch(app: &Layered, name: &str) -> ResponseBody<Full<Bytes>> {
    let response = app
        .clone()
        .oneshot(call_request(WATCH, ask(name)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
    assert!(!response.headers().contains_key("grpc-status"));
    response.into_body()
}

#[tokio::test(start_paused = true)]
async fn watch_sends_the_current_status_then_each_change_once() {
    let (db_check, db) = Switch::check("db");
    let (cache_check, cache) = Switch::check("cache");
    let health = Health::builder()
        .check(db_check)
        .check(cache_check.non_critical())
        .build();
    health.refresh().await;
    let app = app(&health);
    let mut whole = watch(&app, "").await;
    let mut liveness = watch(&app, "liveness").await;
    let mut just_db = watch(&app, "db").await;
    assert_eq!(next_status(&mut whole).await, Some(NOT_SERVING), "starting");
    assert_eq!(next_status(&mut liveness).await, Some(SERVING));
    assert_eq!(next_status(&mut just_db).await, Some(SERVING));

    health.ready();
    assert_eq!(next_status(&mut whole).await, Some(SERVING), "ready");
    assert!(stays_silent(&mut liveness).await, "liveness did not change");

    // A run that changes nothing, and a failure that only degrades: no message.
    health.refresh().await;
    cache.set(false);
    health.refresh().await;
    assert!(stays_silent(&mut whole).await);

    db.set(false);
    health.refresh().await;
    assert_eq!(next_status(&mut whole).await, Some(NOT_SERVING), "db fails");
    assert_eq!(next_status(&mut just_db).await, Some(NOT_SERVING));
    db.set(true);
    health.refresh().await;
    assert_eq!(next_status(&mut whole).await, Some(SERVING), "db back");
    assert_eq!(next_status(&mut just_db).await, Some(SERVING));
    assert!(stays_silent(&mut whole).await, "no duplicate");
    assert!(stays_silent(&mut liveness).await);

    health.fail_liveness();
    assert_eq!(next_status(&mut liveness).await, Some(NOT_SERVING));
    assert_eq!(next_status(&mut whole).await, Some(NOT_SERVING));
    assert!(
        stays_silent(&mut just_db).await,
        "a check alone ignores liveness"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_watcher_sees_the_latest_status_not_every_change() {
    let (db_check, db) = Switch::check("db");
    let health = Health::builder().check(db_check).build();
    health.ready();
    health.refresh().await;
    let app = app(&health);
    let mut slow = watch(&app, "").await;
    assert_eq!(next_status(&mut slow).await, Some(SERVING));
    for _ in 0..1_000 {
        db.set(false);
        health.refresh().await;
        db.set(true);
        health.refresh().await;
    }
    db.set(false);
    health.refresh().await;
    // A thousand changes while it did not read; it is told where things stand now.
    assert_eq!(next_status(&mut slow).await, Some(NOT_SERVING));
    assert!(stays_silent(&mut slow).await);
}

#[tokio::test(start_paused = true)]
async fn huge_durations_build_and_answer_over_http_and_grpc_watch_without_a_panic() {
    let ok = || async { Ok::<(), Infallible>(()) };
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let db = Check::new("db", move || {
        counted.fetch_add(1, Ordering::SeqCst);
        ok()
    });
    let health = Health::builder()
        .budget(Duration::MAX)
        .every(Duration::MAX)
        .refresh_every(Duration::MAX)
        .drain_delay(Duration::MAX)
        .check(db.timeout(Duration::MAX))
        .check(Check::new("cache", ok).every(Duration::MAX))
        .check(
            Check::new("slow", || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<(), Infallible>(())
            })
            .timeout(Duration::MAX)
            .every(Duration::MAX),
        )
        .build();
    health.ready();
    let app = app(&health);
    // A probe on a cold cache waits, without a limit, for the first results.
    for path in [
        "/readyz?verbose",
        "/livez",
        "/startupz",
        "/readyz/db",
        "/readyz/slow",
    ] {
        assert_eq!(http_status(&app, path).await, StatusCode::OK, "{path}");
    }
    assert_eq!(check(&app, "").await, SERVING);
    // Fresh for ever, but a refresh still runs every check.
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let report = health.refresh().await;
    assert!(report.checks().iter().all(|c| c.status().is_passing()));
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let mut ready = watch(&app, "readiness").await;
    assert_eq!(next_status(&mut ready).await, Some(SERVING));
    // The drain delay never ends: Watch says NOT_SERVING and stays open.
    health.start_draining();
    assert_eq!(next_status(&mut ready).await, Some(NOT_SERVING));
    assert!(stays_silent(&mut ready).await, "open, and silent");
    assert_eq!(
        http_status(&app, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(start_paused = true)]
async fn watch_on_an_unknown_name_streams_service_unknown_and_stays_open() {
    let health = Health::new();
    let app = app(&health);
    let mut unknown = watch(&app, "no.such.Service").await;
    assert_eq!(next_status(&mut unknown).await, Some(SERVICE_UNKNOWN));
    health.ready();
    assert!(stays_silent(&mut unknown).await, "open, and silent");
}

#[tokio::test(start_paused = true)]
async fn on_drain_watch_says_not_serving_at_once_and_ends_when_the_delay_is_over() {
    let delay = Duration::from_secs(5);
    let health = Health::builder().drain_delay(delay).build();
    health.ready();
    let app = app(&health);
    let mut streams = Vec::new();
    for name in ["", "liveness", "startup"] {
        let mut body = watch(&app, name).await;
        assert_eq!(next_status(&mut body).await, Some(SERVING));
        streams.push(body);
    }
    let mut unknown = watch(&app, "nope").await;
    assert_eq!(next_status(&mut unknown).await, Some(SERVICE_UNKNOWN));

    let (trigger, triggered) = tokio::sync::oneshot::channel::<()>();
    let shutdown = tokio::spawn(health.shutdown_on(async move {
        let _ = triggered.await;
    }));
    let start = tokio::time::Instant::now();
    trigger.send(()).unwrap();
    for body in &mut streams {
        assert_eq!(next_status(body).await, Some(NOT_SERVING));
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "at once");
    for body in &mut streams {
        assert_eq!(next_status(body).await, None, "ended");
    }
    assert_eq!(next_status(&mut unknown).await, None, "ended too");
    assert_eq!(start.elapsed(), delay, "when the delay ends");
    shutdown.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn after_a_drain_without_the_shutdown_signal_watch_ends_one_drain_delay_later() {
    let delay = Duration::from_secs(3);
    let health = Health::builder().drain_delay(delay).build();
    health.ready();
    let app = app(&health);
    let mut body = watch(&app, "").await;
    assert_eq!(next_status(&mut body).await, Some(SERVING));
    let start = tokio::time::Instant::now();
    health.start_draining();
    assert_eq!(next_status(&mut body).await, Some(NOT_SERVING));
    assert_eq!(next_status(&mut body).await, None);
    assert_eq!(start.elapsed(), delay);
}

#[tokio::test(start_paused = true)]
async fn the_drain_delay_ends_at_one_instant_for_the_timeline_drain_delay_over_and_a_late_watch() {
    let delay = Duration::from_secs(5);
    let health = Health::builder().drain_delay(delay).build();
    health.ready();
    let app = app(&health);
    let start = tokio::time::Instant::now();
    // The application drains by itself; the signal comes 2 s later, a watcher 3 s later.
    health.start_draining();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let timeline = tokio::spawn({
        let shutdown = health.shutdown_on(async {});
        async move {
            shutdown.await;
            tokio::time::Instant::now()
        }
    });
    let over = tokio::spawn({
        let over = health.drain_delay_over();
        async move {
            over.await;
            tokio::time::Instant::now()
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut body = watch(&app, "").await;
    assert_eq!(next_status(&mut body).await, Some(NOT_SERVING));
    assert_eq!(next_status(&mut body).await, None);
    let ends = start + delay;
    assert_eq!(tokio::time::Instant::now(), ends, "the watch");
    assert_eq!(over.await.unwrap(), ends, "drain_delay_over");
    assert_eq!(timeline.await.unwrap(), ends, "the timeline");
}

// === what is not a gRPC health call, and malformed calls ===

#[tokio::test]
async fn requests_that_are_not_grpc_calls_pass_through() {
    let health = Health::new();
    let app = app(&health);
    let cases = [
        ("GET", "application/grpc"),
        ("PUT", "application/grpc"),
        ("POST", "application/json"),
        ("POST", "application/grpc-web"),
        ("POST", "application/grpc-web+proto"),
        ("POST", ""),
    ];
    for (method, content_type) in cases {
        let mut request = grpc(CHECK)
            .method(method)
            .body(Full::from(ask("")))
            .unwrap();
        if content_type.is_empty() {
            request.headers_mut().remove(CONTENT_TYPE);
        } else {
            request
                .headers_mut()
                .insert(CONTENT_TYPE, content_type.parse().unwrap());
        }
        let answer = send(&app, request).await;
        assert_eq!(
            answer.http,
            StatusCode::NOT_FOUND,
            "{method} {content_type:?}"
        );
        assert_eq!(&answer.messages.concat()[..], b"inner");
    }
}

#[tokio::test]
async fn a_grpc_call_over_http1_gets_a_trailers_only_internal_error() {
    let health = Health::new();
    let app = app(&health);
    for version in [Version::HTTP_10, Version::HTTP_11] {
        let request = grpc(CHECK)
            .version(version)
            .body(Full::from(ask("")))
            .unwrap();
        let answer = send(&app, request).await;
        assert_eq!(answer.http, StatusCode::OK);
        assert!(answer.is_trailers_only());
        assert_eq!(answer.grpc_status(), Some("13"), "{version:?}");
        assert_eq!(
            answer.headers["grpc-message"],
            "gRPC needs HTTP/2; this request came over HTTP/1"
        );
    }
}

#[tokio::test]
async fn malformed_calls_get_a_grpc_error_and_odd_but_valid_ones_an_answer() {
    let health = Health::new();
    health.ready();
    let app = app(&health);
    // Field 1 = "", then fields 7 (varint) and 9 (bytes) that the proto does not have.
    let unknown_fields = framed(0, &[0x0a, 0, 0x38, 5, 0x4a, 2, b'z', b'z']);
    let mut too_large = vec![0, 0xff, 0xff, 0xff, 0xff];
    too_large.extend_from_slice(&[0; 64]);
    let mut after = ask("");
    after.push(0);
    let cases: [(&str, Vec<u8>, Option<&str>, &str); 13] = [
        ("a well-formed request", ask(""), None, "0"),
        ("unknown fields", unknown_fields, None, "0"),
        ("an empty message (service \"\")", framed(0, &[]), None, "0"),
        ("a 4 GB length prefix", too_large, None, "8"),
        ("no message at all", vec![], None, "13"),
        ("a truncated prefix", vec![0, 0, 0], None, "13"),
        (
            "a truncated message",
            ask("readiness")[..8].to_vec(),
            None,
            "13",
        ),
        ("a byte after the message", after, None, "13"),
        ("two messages", [ask(""), ask("")].concat(), None, "13"),
        (
            "a compressed flag without grpc-encoding",
            framed(1, &[]),
            None,
            "13",
        ),
        (
            "a compressed message",
            framed(1, &[1, 2, 3]),
            Some("gzip"),
            "12",
        ),
        ("a flag of 7", framed(7, &[]), None, "13"),
        (
            "bytes that are not protobuf",
            framed(0, &[0x0a, 0xff]),
            None,
            "13",
        ),
    ];
    for path in [CHECK, WATCH, LIST] {
        for (what, body, encoding, code) in &cases {
            let mut request = call_request(path, body.clone());
            if let Some(encoding) = encoding {
                request
                    .headers_mut()
                    .insert("grpc-encoding", encoding.parse().unwrap());
            }
            let response = app.clone().oneshot(request).await.unwrap();
            let context = format!("{path}: {what}");
            assert_eq!(response.status(), StatusCode::OK, "{context}");
            if *code == "0" {
                // A Watch goes on, so read its first message only.
                let trailers_only = response.headers().contains_key("grpc-status");
                assert!(!trailers_only, "{context}");
                continue;
            }
            let answer = collect(response).await;
            assert!(answer.is_trailers_only(), "{context}: {answer:?}");
            assert_eq!(answer.grpc_status(), Some(*code), "{context}");
            assert_eq!(
                answer.headers["grpc-accept-encoding"], "identity",
                "{context}"
            );
        }
    }
    // A codec the service does not speak.
    let mut request = call_request(CHECK, ask(""));
    request
        .headers_mut()
        .insert(CONTENT_TYPE, "application/grpc+json".parse().unwrap());
    let answer = send(&app, request).await;
    assert_eq!(answer.grpc_status(), Some("12"));
}

#[tokio::test]
async fn a_request_body_that_fails_gets_an_internal_error() {
    let health = Health::new();
    let layer = health.layer();
    let mut app = tower::Layer::layer(
        &layer,
        tower::service_fn(|_req: Request<Failing>| async {
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        }),
    );
    let request = Request::post(CHECK)
        .version(Version::HTTP_2)
        .header(CONTENT_TYPE, "application/grpc")
        .body(Failing)
        .unwrap();
    let response = app.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.headers()["grpc-status"], "13");
}

/// A request body whose first frame is an error.
struct Failing;

impl http_body::Body for Failing {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::other("reset"))))
    }
}

// === configuration ===

#[test]
fn service_names_that_cannot_work_are_refused_at_build_with_the_reason() {
    let cases = [
        ("", "must be non-empty"),
        ("helloworld/Greeter", "without '/'"),
        ("readiness", "is the name of a probe"),
        ("db", "is the name of a check"),
    ];
    for (name, reason) in cases {
        let built = std::panic::catch_unwind(|| {
            Health::builder()
                .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
                .grpc_service(name, Probe::Readiness)
                .build()
        });
        let panic = built.expect_err(name);
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(message.contains(reason), "{name:?}: {message}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_watch_sees_a_switch_set_and_a_gate_opened_with_no_time_passing() {
    let database = tower_health::Switch::new("database");
    let model = tower_health::Gate::new("model");
    let health = Health::builder().switch(&database).gate(&model).build();
    health.ready();
    let app = app(&health);
    let mut whole = watch(&app, "").await;
    let mut just_database = watch(&app, "database").await;
    let mut just_model = watch(&app, "model").await;
    let start = tokio::time::Instant::now();
    assert_eq!(
        next_status(&mut whole).await,
        Some(NOT_SERVING),
        "gate closed"
    );
    assert_eq!(next_status(&mut just_database).await, Some(SERVING));
    assert_eq!(next_status(&mut just_model).await, Some(NOT_SERVING));

    model.open();
    assert_eq!(next_status(&mut whole).await, Some(SERVING), "gate open");
    assert_eq!(next_status(&mut just_model).await, Some(SERVING));
    database.fail("connection lost");
    assert_eq!(
        next_status(&mut whole).await,
        Some(NOT_SERVING),
        "switch off"
    );
    assert_eq!(next_status(&mut just_database).await, Some(NOT_SERVING));
    database.pass();
    assert_eq!(next_status(&mut whole).await, Some(SERVING), "switch on");
    assert_eq!(next_status(&mut just_database).await, Some(SERVING));
    assert_eq!(tokio::time::Instant::now(), start, "pushed, not polled");

    // Check and List know them too.
    let answer = send(&app, call_request(CHECK, ask("model"))).await;
    assert_eq!(answer.status(), SERVING);
    let list = send(&app, call_request(LIST, frame(&HealthListRequest {}))).await;
    let list: HealthListResponse = decode(&list.messages[0]);
    assert_eq!(list.statuses["database"].status, SERVING);
    assert_eq!(list.statuses["model"].status, SERVING);
}
