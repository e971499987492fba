//! The drain timeline and in-flight counting, on Tokio's paused clock.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{Request, Response, Version};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use tokio::sync::{mpsc, oneshot};
use tower::{Layer, ServiceExt};
use tower_health::{Health, Lifecycle};

type Chunk = Result<Frame<Bytes>, Infallible>;

/// A service whose response body streams whatever the test sends down the channel it
/// hands back.
#[allow(clippy::type_complexity)] // an `impl Service` cannot be named by a type alias
fn streaming(
    health: &Health,
) -> (
    impl tower::Service<
            Request<Full<Bytes>>,
            Response = Response<tower_health::ResponseBody<StreamBody<ChunkStream>>>,
            Error = Infallible,
            Future = impl Send,
        > + Clone,
    mpsc::UnboundedReceiver<mpsc::UnboundedSender<Chunk>>,
) {
    let (bodies_tx, bodies_rx) = mpsc::unbounded_channel();
    let inner = tower::service_fn(move |_req: Request<Full<Bytes>>| {
        let (tx, rx) = mpsc::unbounded_channel();
        bodies_tx.send(tx).unwrap();
        async move { Ok::<_, Infallible>(Response::new(StreamBody::new(ChunkStream(rx)))) }
    });
    (health.layer().layer(inner), bodies_rx)
}

struct ChunkStream(mpsc::UnboundedReceiver<Chunk>);

impl futures_util::Stream for ChunkStream {
    type Item = Chunk;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}

fn shutdown(health: &Health) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (trigger, fired) = oneshot::channel::<()>();
    let task = tokio::spawn(health.shutdown_on(async move {
        let _ = fired.await;
    }));
    (trigger, task)
}

#[tokio::test(start_paused = true)]
async fn the_signal_drains_at_once_and_the_delay_is_honoured() {
    let health = Health::builder()
        .drain_delay(Duration::from_secs(5))
        .build();
    health.ready();
    let (trigger, mut task) = shutdown(&health);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        health.state(),
        Lifecycle::Ready,
        "nothing happens before the signal"
    );
    assert!((&mut task).now_or_never().is_none());

    trigger.send(()).unwrap();
    tokio::task::yield_now().await;
    assert_eq!(health.state(), Lifecycle::Draining, "draining at once");
    tokio::time::sleep(Duration::from_millis(4_990)).await;
    assert!(
        (&mut task).now_or_never().is_none(),
        "still serving inside the delay"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        task.now_or_never().is_some(),
        "resolved once the delay is over"
    );
}

#[tokio::test(start_paused = true)]
async fn probes_answer_through_the_delay() {
    let health = Health::builder()
        .drain_delay(Duration::from_secs(5))
        .build();
    health.ready();
    let (svc, _bodies) = streaming(&health);
    let (trigger, task) = shutdown(&health);
    trigger.send(()).unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        let probe = |path: &'static str| {
            let svc = svc.clone();
            async move {
                let req = Request::get(path).body(Full::default()).unwrap();
                svc.oneshot(req).await.unwrap().status().as_u16()
            }
        };
        assert_eq!(probe("/readyz").await, 503);
        assert_eq!(probe("/livez").await, 200);
        assert_eq!(probe("/startupz").await, 200);
    }
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn drained_waits_for_the_last_body_to_end() {
    let health = Health::builder().track_in_flight(true).build();
    health.ready();
    let (svc, mut bodies) = streaming(&health);
    assert_eq!(health.in_flight(), Some(0));

    let req = Request::get("/download").body(Full::default()).unwrap();
    let response = svc.clone().oneshot(req).await.unwrap();
    let chunks = bodies.recv().await.unwrap();
    assert_eq!(
        health.in_flight(),
        Some(1),
        "the response head is out, the body is not"
    );

    // Probes are not counted.
    let probe = Request::get("/readyz").body(Full::default()).unwrap();
    let _answer = svc.clone().oneshot(probe).await.unwrap();
    assert_eq!(health.in_flight(), Some(1));

    let mut drained = Box::pin(health.drained());
    assert!(
        drained.as_mut().now_or_never().is_none(),
        "not draining yet"
    );
    health.start_draining();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        drained.as_mut().now_or_never().is_none(),
        "a body is still open"
    );

    let reader = tokio::spawn(response.into_body().collect());
    chunks
        .send(Ok(Frame::data(Bytes::from_static(b"part"))))
        .unwrap();
    tokio::task::yield_now().await;
    assert_eq!(health.in_flight(), Some(1));
    drop(chunks); // the end of the body
    let body = reader.await.unwrap().unwrap().to_bytes();
    assert_eq!(&body[..], b"part");
    assert_eq!(health.in_flight(), Some(0));
    drained.await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_body_counts_as_ended() {
    let health = Health::builder().track_in_flight(true).build();
    let (svc, mut bodies) = streaming(&health);
    let req = Request::get("/").body(Full::default()).unwrap();
    let response = svc.oneshot(req).await.unwrap();
    let _chunks = bodies.recv().await.unwrap();
    assert_eq!(health.in_flight(), Some(1));
    health.start_draining();
    let drained = tokio::spawn(health.drained());
    tokio::task::yield_now().await;
    assert!(!drained.is_finished());
    drop(response);
    assert_eq!(health.in_flight(), Some(0));
    drained.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_future_is_not_left_counted() {
    let health = Health::builder().track_in_flight(true).build();
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        std::future::pending::<()>().await;
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    let svc = health.layer().layer(inner);
    let req = Request::get("/").body(Full::default()).unwrap();
    let mut call = Box::pin(svc.oneshot(req));
    assert!(call.as_mut().now_or_never().is_none());
    assert_eq!(health.in_flight(), Some(1));
    drop(call); // the client went away
    assert_eq!(health.in_flight(), Some(0));
}

#[tokio::test(start_paused = true)]
async fn drained_without_tracking_resolves_on_drain() {
    let health = Health::new();
    assert_eq!(health.in_flight(), None);
    let drained = tokio::spawn(health.drained());
    tokio::task::yield_now().await;
    assert!(!drained.is_finished());
    health.start_draining();
    drained.await.unwrap();
}

/// The wedge detector on and counting off: requests pass through the detector's counter
/// alone, and answering them must leave the (uncounted) in-flight count untouched.
#[tokio::test(start_paused = true)]
async fn drained_resolves_after_answered_requests_with_the_wedge_detector_and_counting_off() {
    let health = Health::builder()
        .liveness_fails_when_stuck(Duration::from_secs(2))
        .build();
    health.ready();
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    let svc = health.layer().layer(inner);
    for _ in 0..10 {
        let req = Request::get("/work").body(Full::default()).unwrap();
        let response = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(health.in_flight(), None, "not counted");
    health.start_draining();
    tokio::time::timeout(Duration::from_secs(60), health.drained())
        .await
        .expect("drained() resolves once draining when requests are not counted");
}

async fn connection_header(health: &Health, version: Version) -> Option<String> {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hi"))))
    });
    let req = Request::get("/")
        .version(version)
        .body(Full::default())
        .unwrap();
    let response = health.layer().layer(inner).oneshot(req).await.unwrap();
    response
        .headers()
        .get(http::header::CONNECTION)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn http1_responses_close_the_connection_while_draining() {
    let health = Health::new();
    health.ready();
    assert_eq!(connection_header(&health, Version::HTTP_11).await, None);
    health.start_draining();
    assert_eq!(
        connection_header(&health, Version::HTTP_11)
            .await
            .as_deref(),
        Some("close")
    );
    assert_eq!(
        connection_header(&health, Version::HTTP_10)
            .await
            .as_deref(),
        Some("close")
    );
    // HTTP/2 has no such header; the server's GOAWAY does that job.
    assert_eq!(connection_header(&health, Version::HTTP_2).await, None);

    let keep = Health::builder()
        .close_connections_when_draining(false)
        .build();
    keep.start_draining();
    assert_eq!(connection_header(&keep, Version::HTTP_11).await, None);
}
