//! The layer in-process, through `tower::ServiceExt::oneshot`: which requests are probes,
//! what a probe answers, that everything else reaches the inner service and comes back
//! untouched, and the lifecycle as the probes show it.

use kit::common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{assert_probe_headers, bounded, walk_probe_table, Reply, LIVEZ, READYZ, STARTUPZ};
use futures_util::FutureExt;
use http::header::{ACCEPT, ALLOW, CONNECTION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::{Body as _, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{Layer, Service, ServiceExt};
use tower_health::{Health, Lifecycle, Paths};

// === an inner service that shows what it was given ===

/// What the inner service received, returned in its response's extensions.
#[derive(Debug, Clone)]
struct Seen {
    parts: http::request::Parts,
    body: Bytes,
}

/// A response extension the inner service sets.
#[derive(Debug, Clone, PartialEq)]
struct Marker(&'static str);

/// A request extension the caller sets.
#[derive(Debug, Clone, PartialEq)]
struct RequestTag(u64);

type InnerBody = BoxBody<Bytes, Infallible>;

const INNER_STATUS: StatusCode = StatusCode::IM_A_TEAPOT;

/// The inner service: answers 418 with its own headers, an extension, a body in two frames
/// and trailers, and records what it received.
fn inner_service(
) -> impl Service<Request<Full<Bytes>>, Response = Response<InnerBody>, Error = Infallible> + Clone
{
    tower::service_fn(|request: Request<Full<Bytes>>| async move {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.expect("infallible").to_bytes();
        Ok(inner_response(Seen { parts, body }))
    })
}

fn inner_response(seen: Seen) -> Response<InnerBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("c0ffee"));
    let frames = vec![
        Ok(Frame::data(Bytes::from_static(b"inner "))),
        Ok(Frame::data(Bytes::from_static(b"body"))),
        Ok(Frame::trailers(trailers)),
    ];
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
    let mut response = Response::new(body);
    *response.status_mut() = INNER_STATUS;
    let headers = response.headers_mut();
    headers.insert("x-inner", HeaderValue::from_static("yes"));
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/x-inner"),
    );
    headers.append(http::header::SET_COOKIE, HeaderValue::from_static("a=1"));
    headers.append(http::header::SET_COOKIE, HeaderValue::from_static("b=2"));
    response
        .extensions_mut()
        .insert(Marker("from the inner service"));
    response.extensions_mut().insert(seen);
    response
}

/// Sends `request` through `health`'s layer around [`inner_service`].
async fn call(
    health: &Health,
    request: Request<Full<Bytes>>,
) -> Response<tower_health::ResponseBody<InnerBody>> {
    let service = health.layer().layer(inner_service());
    bounded("the layered service", service.oneshot(request))
        .await
        .expect("infallible")
}

/// Sends `request` through the layer and collects the reply.
async fn send(health: &Health, request: Request<Full<Bytes>>) -> Reply {
    Reply::collect(call(health, request).await).await
}

fn request(method: Method, uri: &str) -> http::request::Builder {
    Request::builder().method(method).uri(uri)
}

fn empty(builder: http::request::Builder) -> Request<Full<Bytes>> {
    builder.body(Full::default()).expect("request")
}

async fn get(health: &Health, uri: &str) -> Reply {
    send(health, empty(request(Method::GET, uri))).await
}

/// Whether `reply` came from the inner service.
fn is_inner(reply: &Reply) -> bool {
    reply.status == INNER_STATUS && reply.header("x-inner") == Some("yes")
}

fn ready_health() -> Health {
    let health = Health::new();
    health.ready();
    health
}

// === the probe table ===

#[tokio::test]
async fn every_row_of_the_probe_table_without_checks() {
    let health = Health::new();
    walk_probe_table(&health, |path| get(&health, path)).await;
}

#[tokio::test]
async fn head_gets_the_status_and_headers_of_get_and_no_body() {
    let health = Health::new();
    for row in common::TABLE {
        row.enter(&health);
        for path in [LIVEZ, READYZ, STARTUPZ] {
            for query in ["", "?verbose"] {
                for accept in ["application/health+json", "text/plain"] {
                    let uri = format!("{path}{query}");
                    let get = send(
                        &health,
                        empty(request(Method::GET, &uri).header(ACCEPT, accept)),
                    )
                    .await;
                    let response = call(
                        &health,
                        empty(request(Method::HEAD, &uri).header(ACCEPT, accept)),
                    )
                    .await;
                    assert!(response.body().is_end_stream(), "{uri}");
                    assert_eq!(response.body().size_hint().exact(), Some(0), "{uri}");
                    let head = Reply::collect(response).await;
                    let context = format!("HEAD {uri} ({accept}) in {row:?}");
                    assert_eq!(head.status, get.status, "{context}");
                    assert_eq!(head.headers, get.headers, "{context}");
                    assert_eq!(head.content_length(), Some(get.body.len()), "{context}");
                    assert!(head.body.is_empty(), "{context}");
                    assert!(!get.body.is_empty(), "{context}");
                }
            }
        }
    }
}

#[tokio::test]
async fn other_methods_on_a_probe_path_get_405_with_allow() {
    let health = Health::new();
    let methods = [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
        Method::from_bytes(b"PURGE").unwrap(),
    ];
    for state in [Lifecycle::Starting, Lifecycle::Ready, Lifecycle::Draining] {
        match state {
            Lifecycle::Starting => {}
            Lifecycle::Ready => assert!(health.ready()),
            Lifecycle::Draining => assert!(health.start_draining()),
        }
        for method in &methods {
            for path in [LIVEZ, READYZ, STARTUPZ, "/readyz?verbose"] {
                let reply = send(&health, empty(request(method.clone(), path))).await;
                let context = format!("{method} {path} while {state}");
                assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{context}");
                assert_eq!(reply.header(ALLOW), Some("GET, HEAD"), "{context}");
                assert_eq!(reply.content_length(), Some(0), "{context}");
                assert_eq!(reply.header("cache-control"), Some("no-store"), "{context}");
                assert!(reply.body.is_empty(), "{context}");
            }
        }
    }
}

#[tokio::test]
async fn answers_are_health_json_unless_the_client_asks_for_text() {
    let health = ready_health();
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some("application/health+json"),
        Some("image/png"),
    ] {
        let mut builder = request(Method::GET, READYZ);
        if let Some(accept) = accept {
            builder = builder.header(ACCEPT, accept);
        }
        let reply = send(&health, empty(builder)).await;
        assert_probe_headers(&reply, "application/health+json", &format!("{accept:?}"));
        assert_eq!(reply.json(), serde_json::json!({ "status": "pass" }));
        assert_eq!(reply.content_length(), Some(reply.body.len()));
    }
    for accept in [
        "text/plain",
        "text/*",
        "text/plain, */*",
        "application/json;q=0.5, text/plain",
    ] {
        let reply = send(
            &health,
            empty(request(Method::GET, READYZ).header(ACCEPT, accept)),
        )
        .await;
        assert_probe_headers(&reply, "text/plain; charset=utf-8", accept);
        assert_eq!(reply.text(), "ok", "{accept}");
        assert_eq!(reply.content_length(), Some(2));
    }
}

#[tokio::test]
async fn text_answers_follow_the_kubernetes_api_server() {
    let health = Health::new();
    let text = |path: &'static str| {
        let health = health.clone();
        async move {
            let reply = send(
                &health,
                empty(request(Method::GET, path).header(ACCEPT, "text/plain")),
            )
            .await;
            (reply.status.as_u16(), reply.text().to_owned())
        }
    };
    assert_eq!(text(LIVEZ).await, (200, "ok".into()));
    assert_eq!(
        text(READYZ).await,
        (
            503,
            "[+]liveness ok\n[-]lifecycle failed: starting\nreadyz check failed\n".into()
        )
    );
    assert_eq!(
        text(STARTUPZ).await,
        (
            503,
            "[-]lifecycle failed: starting\nstartupz check failed\n".into()
        )
    );
    assert_eq!(
        text("/readyz?verbose").await,
        (
            503,
            "[+]liveness ok\n[-]lifecycle failed: starting\nreadyz check failed\n".into()
        )
    );
    health.ready();
    assert_eq!(text(READYZ).await, (200, "ok".into()));
    assert_eq!(
        text("/readyz?verbose").await,
        (
            200,
            "[+]liveness ok\n[+]lifecycle ok\nreadyz check passed\n".into()
        )
    );
    assert_eq!(
        text("/livez?verbose").await,
        (200, "[+]liveness ok\nlivez check passed\n".into())
    );
    health.fail_liveness();
    assert_eq!(
        text(LIVEZ).await,
        (
            503,
            "[-]liveness failed: marked failed\nlivez check failed\n".into()
        )
    );
}

#[tokio::test]
async fn verbose_lists_what_the_answer_is_made_of() {
    let health = ready_health();
    let reply = get(&health, "/readyz?verbose").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "status": "pass",
            "checks": {
                "liveness": [{ "status": "pass", "componentType": "system" }],
                "lifecycle": [{ "status": "pass", "componentType": "system", "observedValue": "ready" }],
            }
        })
    );
    assert_eq!(
        get(&health, "/livez?verbose").await.json(),
        serde_json::json!({
            "status": "pass",
            "checks": { "liveness": [{ "status": "pass", "componentType": "system" }] }
        })
    );
    assert_eq!(
        get(&health, "/startupz?verbose=1").await.json(),
        serde_json::json!({
            "status": "pass",
            "checks": {
                "lifecycle": [{ "status": "pass", "componentType": "system", "observedValue": "ready" }]
            }
        })
    );
    health.start_draining();
    let reply = get(&health, "/readyz?a=b&verbose&c").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "status": "fail",
            "output": "draining",
            "checks": {
                "liveness": [{ "status": "pass", "componentType": "system" }],
                "lifecycle": [{ "status": "fail", "componentType": "system", "observedValue": "draining" }],
            }
        })
    );
    for off in [
        "verbose=0",
        "verbose=false",
        "verbose=no",
        "verbose=off",
        "verbosee",
        "xverbose",
    ] {
        assert_eq!(
            get(&health, &format!("/readyz?{off}")).await.json(),
            serde_json::json!({ "status": "fail", "output": "draining" }),
            "{off}"
        );
    }
}

// === which requests are probes ===

#[tokio::test]
async fn look_alike_paths_reach_the_inner_service() {
    let health = ready_health();
    for path in [
        "/",
        "/readyzz",
        "/readyz/",
        "/readyz/unknown",
        "/readyz/unknown/deeper",
        "/livez/",
        "/livez%2F",
        "/livez%2f",
        "/ready%7A",
        "/LIVEZ",
        "/Readyz",
        "//readyz",
        "/x/readyz",
        "/startupz.json",
        "/health",
        "/healthz",
    ] {
        for method in [Method::GET, Method::HEAD, Method::POST] {
            let reply = send(&health, empty(request(method.clone(), path))).await;
            assert!(is_inner(&reply), "{method} {path}: {reply:?}");
        }
    }
}

#[tokio::test]
async fn the_query_string_never_changes_what_is_a_probe() {
    let health = ready_health();
    for uri in [
        "/readyz?",
        "/readyz?x=/livez",
        "/readyz?%2F",
        "/readyz?verbose#frag",
    ] {
        let reply = get(&health, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_probe_headers(&reply, "application/health+json", uri);
    }
    for uri in ["/readyzz?verbose", "/readyz/?verbose", "/?x=/readyz"] {
        assert!(is_inner(&get(&health, uri).await), "{uri}");
    }
}

#[tokio::test]
async fn absolute_form_uris_are_matched_on_their_path() {
    let health = ready_health();
    let reply = get(&health, "http://example.com/readyz?verbose").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["checks"].is_object());
    assert!(is_inner(&get(&health, "http://example.com/readyzz").await));
}

#[tokio::test]
async fn the_health_preset_answers_on_its_own_paths() {
    let health = Health::builder().paths(Paths::health()).build();
    assert_eq!(get(&health, "/health").await.status, StatusCode::OK);
    assert_eq!(
        get(&health, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&health, "/health/started").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    health.ready();
    for path in ["/health", "/health/ready", "/health/started"] {
        let reply = get(&health, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_probe_headers(&reply, "application/health+json", path);
        let post = send(&health, empty(request(Method::POST, path))).await;
        assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    for path in [
        LIVEZ,
        READYZ,
        STARTUPZ,
        "/health/",
        "/health/db",
        "/healthz",
        "/health/ready/",
    ] {
        assert!(is_inner(&get(&health, path).await), "{path}");
    }
}

#[tokio::test]
async fn custom_paths_replace_the_defaults() {
    let paths = Paths::kubernetes()
        .liveness("/ops/alive")
        .readiness("/ops/ready")
        .startup("/ops/started");
    let health = Health::builder().paths(paths).build();
    assert_eq!(
        health.paths().path(tower_health::Probe::Readiness),
        "/ops/ready"
    );
    assert_eq!(get(&health, "/ops/alive").await.status, StatusCode::OK);
    assert_eq!(
        get(&health, "/ops/ready").await.json()["output"],
        "starting"
    );
    assert_eq!(
        get(&health, "/ops/started").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    for path in [LIVEZ, READYZ, STARTUPZ, "/ops", "/ops/"] {
        assert!(is_inner(&get(&health, path).await), "{path}");
    }
}

#[test]
#[should_panic(expected = "tower-health")]
fn unusable_paths_are_refused_when_building() {
    let _ = Health::builder()
        .paths(Paths::kubernetes().readiness("readyz"))
        .build();
}

#[test]
#[should_panic(expected = "share the path")]
fn two_probes_on_one_path_are_refused_when_building() {
    let _ = Health::builder()
        .paths(Paths::kubernetes().startup("/livez"))
        .build();
}

// === the inner service ===

#[tokio::test]
async fn probes_never_call_the_inner_service() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = tower::service_fn(move |_: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            let mut response = Response::new(Full::<Bytes>::from("inner"));
            *response.status_mut() = INNER_STATUS;
            Ok::<_, Infallible>(response)
        }
    });
    let health = Health::new();
    let service = health.layer().layer(inner);
    for method in [Method::GET, Method::HEAD, Method::POST] {
        for path in [LIVEZ, READYZ, STARTUPZ] {
            let response = service
                .clone()
                .oneshot(empty(request(method.clone(), path)))
                .await
                .unwrap();
            assert_ne!(response.status(), INNER_STATUS, "{method} {path}");
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    service
        .oneshot(empty(request(Method::GET, "/")))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn passed_through_responses_are_untouched() {
    let health = ready_health();
    let bare = inner_service()
        .oneshot(empty(request(Method::GET, "/things")))
        .await
        .unwrap();
    let layered = call(&health, empty(request(Method::GET, "/things"))).await;

    assert_eq!(layered.status(), bare.status());
    assert_eq!(layered.version(), bare.version());
    assert_eq!(layered.headers(), bare.headers());
    assert_eq!(
        layered
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .count(),
        2
    );
    assert_eq!(
        layered.extensions().get::<Marker>(),
        Some(&Marker("from the inner service"))
    );
    assert_eq!(
        layered.body().size_hint().lower(),
        bare.body().size_hint().lower()
    );
    assert_eq!(
        layered.body().size_hint().upper(),
        bare.body().size_hint().upper()
    );

    let bare = Reply::collect(bare).await;
    let layered = Reply::collect(layered).await;
    assert_eq!(layered.body, bare.body);
    assert_eq!(&layered.body[..], b"inner body");
    assert_eq!(layered.trailers, bare.trailers);
    assert_eq!(
        layered.trailers.as_ref().and_then(|t| t.get("x-checksum")),
        Some(&HeaderValue::from_static("c0ffee"))
    );
}

#[tokio::test]
async fn passed_through_bodies_keep_their_size_hint_and_frames() {
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            b"exactly 17 bytes!",
        ))))
    });
    let health = ready_health();
    let response = health
        .layer()
        .layer(inner)
        .oneshot(empty(request(Method::GET, "/")))
        .await
        .unwrap();
    assert_eq!(response.body().size_hint().exact(), Some(17));
    assert!(!response.body().is_end_stream());
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(
        frame.into_data().unwrap(),
        Bytes::from_static(b"exactly 17 bytes!")
    );
    assert!(body.frame().await.is_none());
    assert!(body.is_end_stream());
}

#[tokio::test]
async fn errors_of_passed_through_bodies_come_out_as_they_are() {
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"partial"))),
            Err(std::io::Error::other("upstream reset")),
        ];
        Ok::<_, Infallible>(Response::new(StreamBody::new(futures_util::stream::iter(
            frames,
        ))))
    });
    let health = ready_health();
    let mut body = health
        .layer()
        .layer(inner)
        .oneshot(empty(request(Method::GET, "/")))
        .await
        .unwrap()
        .into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"partial"));
    let error = body.frame().await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "upstream reset");
}

#[tokio::test]
async fn requests_reach_the_inner_service_unchanged() {
    let health = ready_health();
    let odd_value = HeaderValue::from_bytes(b"caf\xe9 \"quoted\" \xff").unwrap();
    for (method, uri, version) in [
        (
            Method::POST,
            "/orders/7?verbose&exclude=db",
            Version::HTTP_11,
        ),
        (Method::GET, "/readyz/unknown?x=%zz", Version::HTTP_2),
        (
            Method::from_bytes(b"PURGE").unwrap(),
            "/cache/a%2Fb",
            Version::HTTP_10,
        ),
        (Method::DELETE, "/livez%2F", Version::HTTP_11),
    ] {
        let mut request = request(method.clone(), uri)
            .version(version)
            .header("x-request-id", "abc-123")
            .header(ACCEPT, "text/plain")
            .header("x-odd", odd_value.clone())
            .body(Full::from("request body"))
            .unwrap();
        request
            .headers_mut()
            .append("x-multi", HeaderValue::from_static("one"));
        request
            .headers_mut()
            .append("x-multi", HeaderValue::from_static("two"));
        request.extensions_mut().insert(RequestTag(42));
        let sent_headers = request.headers().clone();

        let response = call(&health, request).await;
        assert_eq!(response.status(), INNER_STATUS, "{method} {uri}");
        let seen = response
            .extensions()
            .get::<Seen>()
            .expect("the inner service ran")
            .clone();
        assert_eq!(seen.parts.method, method);
        assert_eq!(seen.parts.uri, uri);
        assert_eq!(seen.parts.version, version);
        assert_eq!(seen.parts.headers, sent_headers);
        assert_eq!(
            seen.parts.extensions.get::<RequestTag>(),
            Some(&RequestTag(42))
        );
        assert_eq!(&seen.body[..], b"request body");
    }
}

/// An inner service whose readiness the test controls.
#[derive(Clone)]
struct Gated {
    open: Arc<AtomicBool>,
    broken: bool,
}

impl Service<Request<Full<Bytes>>> for Gated {
    type Response = Response<Full<Bytes>>;
    type Error = &'static str;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.broken {
            Poll::Ready(Err("broken"))
        } else if self.open.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::from("gated"))))
    }
}

#[tokio::test]
async fn get_ref_get_mut_and_into_inner_reach_the_inner_service() {
    let health = Health::new();
    let open = Arc::new(AtomicBool::new(true));
    let mut service = health.layer().layer(Gated {
        open: open.clone(),
        broken: false,
    });
    assert!(Arc::ptr_eq(&service.get_ref().open, &open));
    service.get_mut().broken = true;
    assert!(service.into_inner().broken);
}

// === requests that try to break things ===

#[tokio::test]
async fn huge_and_odd_headers_never_panic() {
    let health = ready_health();
    let huge = "text/html,".repeat(20_000) + "text/plain";
    let odd_values: Vec<HeaderValue> = vec![
        HeaderValue::from_str(&huge).unwrap(),
        HeaderValue::from_bytes(b"text/plain;q=\xff\xfe").unwrap(),
        HeaderValue::from_bytes(b"\x80\x81\x82").unwrap(),
        HeaderValue::from_static(""),
        HeaderValue::from_static(";;;,,,;q=;q=0.;q=1.0000001"),
        HeaderValue::from_static("text/plain;q=-1, application/json;q=2"),
        HeaderValue::from_static("*/*;q=0, text/*;q=0"),
    ];
    for path in [READYZ, "/readyz?verbose", "/elsewhere"] {
        for value in &odd_values {
            let mut request = empty(request(Method::GET, path));
            request.headers_mut().insert(ACCEPT, value.clone());
            let reply = send(&health, request).await;
            if path == "/elsewhere" {
                assert!(is_inner(&reply));
            } else {
                assert_eq!(reply.status, StatusCode::OK, "{value:?}");
            }
        }
        let mut request = empty(request(Method::GET, path));
        for i in 0..2_000 {
            request.headers_mut().append(
                ACCEPT,
                HeaderValue::from_str(&format!("x/y{i};q=0.{i}")).unwrap(),
            );
            request.headers_mut().append(
                HeaderName::from_bytes(format!("x-junk-{i}").as_bytes()).unwrap(),
                HeaderValue::from_str(&"z".repeat(100)).unwrap(),
            );
        }
        let reply = send(&health, request).await;
        assert!(reply.status == StatusCode::OK || is_inner(&reply), "{path}");
    }
}

#[tokio::test]
async fn odd_query_strings_never_panic() {
    let health = ready_health();
    // Close to the longest URI the http crate accepts (64 KiB).
    let long = format!("/readyz?{}&verbose", "a=b&".repeat(15_000));
    let queries = [
        "/readyz?%",
        "/readyz?%%",
        "/readyz?%zz",
        "/readyz?verbose=%ff",
        "/readyz?verbose=%",
        "/readyz?exclude=%",
        "/readyz?exclude=%E2%82",
        "/readyz?exclude=",
        "/readyz?exclude=db&exclude=cache",
        "/readyz?exclude",
        "/readyz?&&&",
        "/readyz?=",
        "/readyz?==&=x&x==",
        "/readyz?verbose&verbose=0",
        "/readyz?%76erbose",
        "/readyz?+verbose+",
        "/readyz?verbose=%E2%9C%93",
        "/readyz??",
        "/readyz?a=b;c=d",
        long.as_str(),
    ];
    for uri in queries {
        for accept in ["application/json", "text/plain"] {
            let reply = send(
                &health,
                empty(request(Method::GET, uri).header(ACCEPT, accept)),
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{uri}");
            if accept == "application/json" {
                assert_eq!(reply.json()["status"], "pass", "{uri}");
            }
        }
    }
    // Without checks there is nothing to exclude: the answer is the plain one.
    let plain = get(&health, READYZ).await;
    let excluded = get(&health, "/readyz?exclude=db").await;
    assert_eq!(excluded.body, plain.body);
    assert_eq!(excluded.headers, plain.headers);
}

// === draining and in-flight requests ===

#[tokio::test]
async fn while_draining_http1_responses_that_pass_through_ask_to_close() {
    let health = ready_health();
    let reply = get(&health, "/things").await;
    assert_eq!(reply.header(CONNECTION), None, "not while ready");

    health.start_draining();
    for version in [Version::HTTP_10, Version::HTTP_11] {
        let reply = send(
            &health,
            empty(request(Method::GET, "/things").version(version)),
        )
        .await;
        assert!(is_inner(&reply));
        assert_eq!(reply.header(CONNECTION), Some("close"), "{version:?}");
    }
    let reply = send(
        &health,
        empty(request(Method::GET, "/things").version(Version::HTTP_2)),
    )
    .await;
    assert_eq!(
        reply.header(CONNECTION),
        None,
        "HTTP/2 has no Connection header"
    );
    let probe = get(&health, READYZ).await;
    assert_eq!(probe.status, StatusCode::SERVICE_UNAVAILABLE);

    let health = Health::builder()
        .close_connections_when_draining(false)
        .build();
    health.start_draining();
    assert_eq!(get(&health, "/things").await.header(CONNECTION), None);
}

#[tokio::test]
async fn in_flight_requests_are_counted_until_their_body_ends() {
    assert_eq!(Health::new().in_flight(), None, "off unless asked for");

    let health = Health::builder().track_in_flight(true).build();
    health.ready();
    assert_eq!(health.in_flight(), Some(0));
    let first = call(&health, empty(request(Method::GET, "/a"))).await;
    let second = call(&health, empty(request(Method::GET, "/b"))).await;
    let probe = call(&health, empty(request(Method::GET, READYZ))).await;
    assert_eq!(health.in_flight(), Some(2), "probes are not counted");
    drop(probe);

    // Draining is not drained while a response body is still on its way.
    health.start_draining();
    let drained = health.drained();
    tokio::pin!(drained);
    assert!((&mut drained).now_or_never().is_none());

    let reply = Reply::collect(first).await;
    assert_eq!(&reply.body[..], b"inner body");
    assert_eq!(health.in_flight(), Some(1));
    drop(second);
    assert_eq!(health.in_flight(), Some(0));
    bounded("drained", drained).await;
}

#[tokio::test]
async fn without_tracking_drained_resolves_once_draining() {
    let health = ready_health();
    let drained = health.drained();
    tokio::pin!(drained);
    assert!((&mut drained).now_or_never().is_none());
    health.start_draining();
    bounded("drained", drained).await;
}

// === the lifecycle ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ready_and_drain_end_in_draining() {
    for _ in 0..20 {
        let health = Health::new();
        let ready_wins = Arc::new(AtomicUsize::new(0));
        let drain_wins = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let health = health.clone();
                let (ready_wins, drain_wins) = (ready_wins.clone(), drain_wins.clone());
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    if i % 2 == 0 {
                        ready_wins.fetch_add(usize::from(health.ready()), Ordering::SeqCst);
                        drain_wins
                            .fetch_add(usize::from(health.start_draining()), Ordering::SeqCst);
                    } else {
                        drain_wins
                            .fetch_add(usize::from(health.start_draining()), Ordering::SeqCst);
                        ready_wins.fetch_add(usize::from(health.ready()), Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for task in tasks {
            bounded("a task", task).await.unwrap();
        }
        assert_eq!(health.state(), Lifecycle::Draining);
        assert_eq!(
            drain_wins.load(Ordering::SeqCst),
            1,
            "exactly one drain() made the change"
        );
        assert!(ready_wins.load(Ordering::SeqCst) <= 1);
        let reply = get(&health, READYZ).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.json()["output"], "draining");
        assert_eq!(get(&health, STARTUPZ).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn wait_for_resolves_on_reaching_or_passing_the_state() {
    let health = Health::new();
    assert_eq!(
        bounded("starting", health.wait_for(Lifecycle::Starting)).await,
        Lifecycle::Starting
    );

    let ready = tokio::spawn(health.wait_for(Lifecycle::Ready));
    let draining = tokio::spawn(health.wait_for(Lifecycle::Draining));
    tokio::task::yield_now().await;
    assert!(!ready.is_finished());
    health.ready();
    assert_eq!(bounded("ready", ready).await.unwrap(), Lifecycle::Ready);
    assert!(!draining.is_finished());
    health.start_draining();
    assert_eq!(
        bounded("draining", draining).await.unwrap(),
        Lifecycle::Draining
    );

    // An application that drains without ever becoming ready releases those waiting for
    // readiness too.
    let health = Health::new();
    let ready = health.wait_for(Lifecycle::Ready);
    health.start_draining();
    assert_eq!(bounded("drained early", ready).await, Lifecycle::Draining);
}

#[tokio::test]
async fn liveness_fails_and_recovers_through_the_probes() {
    let health = ready_health();
    assert_eq!(get(&health, LIVEZ).await.status, StatusCode::OK);
    assert!(health.fail_liveness());
    assert!(!health.fail_liveness(), "already failed");
    for path in [LIVEZ, READYZ] {
        let reply = get(&health, path).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(reply.json()["output"], "liveness marked failed", "{path}");
    }
    assert_eq!(
        get(&health, STARTUPZ).await.status,
        StatusCode::OK,
        "startup unchanged"
    );
    assert!(
        is_inner(&get(&health, "/").await),
        "traffic still passes through"
    );
    assert!(health.recover_liveness());
    for path in [LIVEZ, READYZ, STARTUPZ] {
        assert_eq!(get(&health, path).await.status, StatusCode::OK, "{path}");
    }
    let report = health.report();
    assert_eq!(report.state(), Lifecycle::Ready);
    assert!(report.is_live());
    assert!(report.checks().is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_at_once_and_resolves_after_the_drain_delay() {
    let health = Health::builder()
        .drain_delay(Duration::from_secs(5))
        .build();
    health.ready();
    let (trigger, triggered) = tokio::sync::oneshot::channel::<()>();
    let shutdown = tokio::spawn(health.shutdown_on(async {
        let _ = triggered.await;
    }));
    tokio::task::yield_now().await;
    assert_eq!(
        health.state(),
        Lifecycle::Ready,
        "nothing happens before the trigger"
    );
    assert!(!shutdown.is_finished());

    trigger.send(()).unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(
        health.wait_for(Lifecycle::Draining).await,
        Lifecycle::Draining
    );
    assert_eq!(
        get(&health, READYZ).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&health, LIVEZ).await.status, StatusCode::OK);
    assert_eq!(get(&health, STARTUPZ).await.status, StatusCode::OK);
    assert!(
        is_inner(&get(&health, "/").await),
        "traffic is still served"
    );

    shutdown.await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}
