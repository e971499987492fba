//! Probes never wait on the inner service's backpressure, and requests that pass through
//! still respect it: a concurrency limit, a buffer and a load shedder inside the layer,
//! through `oneshot` on a paused clock, and a concurrency limit behind a real server.

use kit::common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{
    bounded, http1_client, http2_client, spawn_hyper, stop_switch, LIVEZ, READYZ, STARTUPZ,
};
use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tower::buffer::Buffer;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_health::{Health, HealthService};

/// How long the slow request holds the inner service on the paused clock.
const SLOW: Duration = Duration::from_secs(10);

const PROBES: [&str; 3] = [LIVEZ, READYZ, STARTUPZ];

fn ready_health() -> Health {
    let health = Health::new();
    health.ready();
    health
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).expect("request")
}

/// The application: `/slow` takes [`SLOW`] (and says when it has started), anything else
/// answers at once with its path. It counts the requests it is running at once, and the
/// most it ever ran.
#[derive(Clone)]
struct App {
    started: mpsc::UnboundedSender<()>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl App {
    fn new() -> (App, mpsc::UnboundedReceiver<()>) {
        let (started, rx) = mpsc::unbounded_channel();
        let app = App {
            started,
            running: Arc::default(),
            most: Arc::default(),
        };
        (app, rx)
    }
}

impl Service<Request<Full<Bytes>>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let running = self.running.clone();
        let started = self.started.clone();
        let path = req.uri().path().to_owned();
        Box::pin(async move {
            if path == "/slow" {
                let _ = started.send(());
                tokio::time::sleep(SLOW).await;
            }
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(Response::new(Full::from(path)))
        })
    }
}

async fn text<B>(response: Response<B>) -> (StatusCode, String)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("UTF-8"))
}

/// Asks the three probes through clones of `service`, as a server does, and checks that
/// each is answered 200 without the paused clock moving: at once.
async fn probes_answer_at_once<S, B>(service: &S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    for path in PROBES {
        let asked = Instant::now();
        let response = service
            .clone()
            .oneshot(get(path))
            .await
            .expect("a probe's answer");
        assert_eq!(asked.elapsed(), Duration::ZERO, "{path} waited");
        assert_eq!(text(response).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test(start_paused = true)]
async fn probes_are_answered_at_once_while_a_concurrency_limit_inside_is_held() {
    let health = ready_health();
    let (app, mut started) = App::new();
    let most = app.most.clone();
    let service = health.layer().layer(ConcurrencyLimit::new(app, 1));

    let begun = Instant::now();
    let slow = tokio::spawn(service.clone().oneshot(get("/slow")));
    started.recv().await.expect("the slow request started");

    probes_answer_at_once(&service).await;

    // A request that passes through waits its turn, then gets through.
    let (status, body) = text(service.clone().oneshot(get("/orders")).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "/orders"));
    assert!(
        begun.elapsed() >= SLOW,
        "it got through after {:?}, while the slow request held the only slot",
        begun.elapsed()
    );
    let (status, body) = text(slow.await.unwrap().unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "/slow"));
    assert_eq!(most.load(Ordering::SeqCst), 1, "the limit held");
}

#[tokio::test(start_paused = true)]
async fn a_service_kept_across_requests_answers_probes_while_the_inner_is_not_ready() {
    // The same service polled and called again and again, as a client that keeps it does.
    let health = ready_health();
    let (app, mut started) = App::new();
    let mut service = health.layer().layer(ConcurrencyLimit::new(app.clone(), 1));
    let slow = tokio::spawn(service.clone().oneshot(get("/slow")));
    started.recv().await.expect("the slow request started");

    let begun = Instant::now();
    let mut passing = Vec::new();
    for round in 0..3 {
        for path in PROBES {
            let response = service
                .ready()
                .await
                .unwrap()
                .call(get(path))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}, round {round}");
        }
        let path = format!("/pass/{round}");
        passing.push(tokio::spawn(
            service.ready().await.unwrap().call(get(&path)),
        ));
    }
    assert_eq!(begun.elapsed(), Duration::ZERO, "the probes waited");
    for (round, handle) in passing.into_iter().enumerate() {
        let (status, body) = text(handle.await.unwrap().unwrap()).await;
        assert_eq!((status, body), (StatusCode::OK, format!("/pass/{round}")));
    }
    assert!(begun.elapsed() >= SLOW);
    assert_eq!(slow.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(app.most.load(Ordering::SeqCst), 1, "the limit held");
}

#[tokio::test(start_paused = true)]
async fn an_inner_service_replaced_through_get_mut_is_polled_ready_before_it_is_called() {
    let health = ready_health();
    let (first, _) = App::new();
    let mut service = health
        .layer()
        .layer(ConcurrencyLimit::new(first.clone(), 1));
    // Ready: the first limit has reserved its one permit for the next request.
    service.ready().await.unwrap();
    let (second, _) = App::new();
    *service.get_mut() = ConcurrencyLimit::new(second.clone(), 1);

    // The replacement has reserved nothing: called without its `poll_ready`, a
    // concurrency limit panics ("poll_ready must be called first").
    let response = service.call(get("/orders")).await.unwrap();
    let (status, body) = text(response).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "/orders"));
    assert_eq!(
        second.most.load(Ordering::SeqCst),
        1,
        "the new service ran it"
    );
    assert_eq!(first.most.load(Ordering::SeqCst), 0, "the old one did not");

    // And the same after polling ready again, on the fast path.
    let response = service.ready().await.unwrap().call(get("/again")).await;
    assert_eq!(text(response.unwrap()).await.1, "/again");
}

#[tokio::test(start_paused = true)]
async fn probes_are_answered_at_once_while_a_buffer_inside_is_full() {
    let health = ready_health();
    let (app, mut started) = App::new();
    // One slot in the buffer, in front of one slot in the application.
    let buffered = Buffer::new(ConcurrencyLimit::new(app.clone(), 1), 1);
    let service = health.layer().layer(buffered.clone());

    let begun = Instant::now();
    let slow = tokio::spawn(service.clone().oneshot(get("/slow")));
    started.recv().await.expect("the slow request started");
    // Requests that pass through, queued behind it until the buffer is full (the worker
    // holds one while it waits for the application, the channel holds `bound` more).
    let mut queued = Vec::new();
    while buffered.clone().ready_oneshot().now_or_never().is_some() {
        assert!(queued.len() < 10, "the buffer never filled up");
        let path = format!("/queued/{}", queued.len());
        queued.push((tokio::spawn(service.clone().oneshot(get(&path))), path));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    probes_answer_at_once(&service).await;

    let (status, body) = text(service.clone().oneshot(get("/later")).await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "/later"));
    assert!(begun.elapsed() >= SLOW);
    assert_eq!(
        queued.len(),
        2,
        "one held by the worker, one in the channel"
    );
    queued.push((slow, "/slow".to_owned()));
    for (handle, path) in queued {
        let (status, body) = text(handle.await.unwrap().unwrap()).await;
        assert_eq!((status, body), (StatusCode::OK, path));
    }
    assert_eq!(app.most.load(Ordering::SeqCst), 1, "the limit held");
}

#[tokio::test(start_paused = true)]
async fn probes_are_answered_while_load_shedding_and_the_overload_error_reaches_the_caller() {
    let health = ready_health();
    let (app, mut started) = App::new();
    let service = health
        .layer()
        .layer(LoadShed::new(ConcurrencyLimit::new(app, 1)));

    let slow = tokio::spawn(service.clone().oneshot(get("/slow")));
    started.recv().await.expect("the slow request started");

    probes_answer_at_once(&service).await;

    let error: BoxError = service
        .clone()
        .oneshot(get("/orders"))
        .await
        .expect_err("shed while the only slot is held");
    assert!(
        error.is::<tower::load_shed::error::Overloaded>(),
        "load_shed's own error, as it made it: {error:?}"
    );
    assert_eq!(slow.await.unwrap().unwrap().status(), StatusCode::OK);
    let (status, _) = text(service.oneshot(get("/orders")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "served again once the slot is free");
}

// === poll_ready ===

/// An inner service that is ready only once `open` is set (waking whoever waits), or
/// broken for good.
#[derive(Clone)]
struct Gated {
    open: Arc<AtomicBool>,
    opened: Arc<Notify>,
    broken: bool,
    calls: Arc<AtomicUsize>,
}

impl Gated {
    fn new() -> Gated {
        Gated {
            open: Arc::default(),
            opened: Arc::default(),
            broken: false,
            calls: Arc::default(),
        }
    }

    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.opened.notify_waiters();
    }
}

impl Service<Request<Full<Bytes>>> for Gated {
    type Response = Response<Full<Bytes>>;
    type Error = &'static str;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.broken {
            return Poll::Ready(Err("broken"));
        }
        if self.open.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        let opened = self.opened.clone();
        let waker = cx.waker().clone();
        tokio::spawn(async move {
            opened.notified().await;
            waker.wake();
        });
        if self.open.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> Self::Future {
        assert!(
            self.open.load(Ordering::SeqCst),
            "called while not ready: tower's contract broken"
        );
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(Full::from("gated"))))
    }
}

fn poll_ready(service: &mut HealthService<Gated>) -> Option<Result<(), &'static str>> {
    std::future::poll_fn(|cx| Service::<Request<Full<Bytes>>>::poll_ready(service, cx))
        .now_or_never()
}

#[tokio::test]
async fn poll_ready_is_ready_while_the_inner_service_is_not() {
    let health = ready_health();
    let gated = Gated::new();
    let mut service = health.layer().layer(gated.clone());
    assert_eq!(poll_ready(&mut service), Some(Ok(())));
    let response = service.call(get(READYZ)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // A request that passes through waits for the inner service, not in poll_ready.
    assert_eq!(poll_ready(&mut service), Some(Ok(())));
    let mut waiting = service.call(get("/orders"));
    assert!(
        (&mut waiting).now_or_never().is_none(),
        "called before ready"
    );
    assert_eq!(gated.calls.load(Ordering::SeqCst), 0);
    gated.open();
    let response = bounded("the waiting request", waiting).await.unwrap();
    assert_eq!(text(response).await, (StatusCode::OK, "gated".into()));
    assert_eq!(gated.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_error_from_the_inner_poll_ready_is_returned_as_it_is() {
    let health = ready_health();
    let mut broken = health.layer().layer(Gated {
        broken: true,
        ..Gated::new()
    });
    assert_eq!(poll_ready(&mut broken), Some(Err("broken")));
}

// === over a real server ===

#[tokio::test]
async fn probes_over_http_are_answered_while_a_concurrency_limit_inside_is_held() {
    let health = ready_health();
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let released = Arc::new(AtomicBool::new(false));
    let app = {
        let (entered, release, released) = (entered.clone(), release.clone(), released.clone());
        axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(move || {
                    let (entered, release) = (entered.clone(), release.clone());
                    async move {
                        let released = release.notified();
                        entered.notify_one();
                        released.await;
                        "slow"
                    }
                }),
            )
            .route(
                "/",
                axum::routing::get(move || {
                    let released = released.load(Ordering::SeqCst);
                    async move {
                        if released {
                            "after the slow one"
                        } else {
                            "too early"
                        }
                    }
                }),
            )
    };
    // Tells when a request for `/` has reached the layer.
    let arrived = Arc::new(Notify::new());
    let service = tower::ServiceBuilder::new()
        .map_request({
            let arrived = arrived.clone();
            move |request: Request<hyper::body::Incoming>| {
                if request.uri().path() == "/" {
                    arrived.notify_one();
                }
                request
            }
        })
        .layer(health.layer())
        .service(ConcurrencyLimit::new(app, 1));
    let (stop, shutdown) = stop_switch();
    let server = spawn_hyper(service, shutdown).await;
    let addr = server.addr;

    for client in [http1_client(), http2_client()] {
        let slow = tokio::spawn({
            let client = client.clone();
            async move { common::get(&client, addr, "/slow").await }
        });
        bounded("the slow request to start", entered.notified()).await;
        for path in PROBES {
            let reply = common::get(&client, addr, path).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
        }
        let waiting = tokio::spawn({
            let client = client.clone();
            async move { common::get(&client, addr, "/").await }
        });
        bounded("the request for / to arrive", arrived.notified()).await;
        released.store(true, Ordering::SeqCst);
        release.notify_one();
        let reply = bounded("the slow request", slow).await.unwrap();
        assert_eq!(reply.text(), "slow");
        let reply = bounded("the waiting request", waiting).await.unwrap();
        assert_eq!(reply.text(), "after the slow one");
        released.store(false, Ordering::SeqCst);
    }
    assert!(!server.is_finished());
    drop(stop);
    server.stopped().await;
}
