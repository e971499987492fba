//! A request that is not a probe: what the layer adds to the inner service, beside what
//! the least layer that may answer a request itself adds (the floor).
//!
//! One trivial inner service, answering fixed bytes, called bare, behind the floor (a
//! minimal answering layer written below: one path compare, a two-variant future enum, a
//! two-variant body enum, nothing else), behind the layer (from `Health::layer` and from
//! `Health::static_layer`), behind the layer with in-flight tracking, with the wedge
//! detector on (`liveness_fails_when_stuck`), and as an axum
//! `Router` route (with and without the layer over it) for scale. Each iteration clones the service (as servers do per
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
const BENCHES: [&str; 8] = [
    "bare",
    "floor",
    "layer",
    "layer_static",
    "layer_in_flight",
    "layer_stuck_detector",
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
    ready(builder().track_in_flight(track_in_flight).build())
}

fn builder() -> tower_health::Builder {
    Health::builder().check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
}

fn ready(health: Health) -> Health {
    health.ready();
    health
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let bare = tower::service_fn(inner);
    let floor = floor::Floor::new(tower::service_fn(inner));
    let plain = health(false);
    let layered = plain.layer().layer(tower::service_fn(inner));
    let leaked: &'static Health = Box::leak(Box::new(health(false)));
    let layered_static = leaked.static_layer().layer(tower::service_fn(inner));
    let tracking = health(true);
    let tracked = tracking.layer().layer(tower::service_fn(inner));
    // The wedge detector on: what it costs a request that passes through.
    let detecting = ready(
        builder()
            .liveness_fails_when_stuck(std::time::Duration::from_secs(10))
            .build(),
    );
    let detected = detecting.layer().layer(tower::service_fn(inner));
    let router = Router::new().route("/", get(|| async { hello() }));
    let router_layered = plain.layer().layer(router.clone());

    // Under callgrind, counts the one bench asked for and exits.
    support::count(&rt, BENCHES[0], &bare, request);
    support::count(&rt, BENCHES[1], &floor, request);
    support::count(&rt, BENCHES[2], &layered, request);
    support::count(&rt, BENCHES[3], &layered_static, request);
    support::count(&rt, BENCHES[4], &tracked, request);
    support::count(&rt, BENCHES[5], &detected, request);
    support::count(&rt, BENCHES[6], &router, request);
    support::count(&rt, BENCHES[7], &router_layered, request);

    let mut group = c.benchmark_group(GROUP);
    group.bench_function(BENCHES[0], |b| {
        b.to_async(&rt).iter(|| support::once(&bare, request()))
    });
    group.bench_function(BENCHES[1], |b| {
        b.to_async(&rt).iter(|| support::once(&floor, request()))
    });
    group.bench_function(BENCHES[2], |b| {
        b.to_async(&rt).iter(|| support::once(&layered, request()))
    });
    group.bench_function(BENCHES[3], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&layered_static, request()))
    });
    group.bench_function(BENCHES[4], |b| {
        b.to_async(&rt).iter(|| support::once(&tracked, request()))
    });
    group.bench_function(BENCHES[5], |b| {
        b.to_async(&rt).iter(|| support::once(&detected, request()))
    });
    group.bench_function(BENCHES[6], |b| {
        b.to_async(&rt).iter(|| support::once(&router, request()))
    });
    group.bench_function(BENCHES[7], |b| {
        b.to_async(&rt)
            .iter(|| support::once(&router_layered, request()))
    });
    group.finish();
    assert_eq!(tracking.in_flight(), Some(0), "every body was drained");
}

fn main() {
    let medians = if support::instructions_requested() {
        support::instructions(GROUP, "bare", &BENCHES)
    } else {
        support::start();
        let mut c = support::criterion();
        bench(&mut c);
        c.final_summary();
        support::report(GROUP, "bare", &BENCHES)
    };
    // The budget is on what each adds to the bare service: the layer's against the floor's.
    if let [Some(bare), Some(floor), layer, layer_static, ..] = medians[..] {
        support::print_added(
            "floor",
            floor - bare,
            &[("layer", layer), ("layer_static", layer_static)],
            bare,
        );
    }
}

/// The least a layer can be that may answer a request itself: one path compare, a
/// two-variant future enum and a two-variant body enum. `poll_ready` is the inner
/// service's, as in tower-http's short-circuiting layers.
mod floor {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body::{Body, Frame, SizeHint};
    use pin_project_lite::pin_project;
    use tower::Service;

    const ANSWER: &[u8] = br#"{"status":"pass"}"#;

    #[derive(Clone)]
    pub struct Floor<S> {
        inner: S,
    }

    impl<S> Floor<S> {
        pub fn new(inner: S) -> Self {
            Floor { inner }
        }
    }

    impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Floor<S>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        type Response = Response<FloorBody<ResBody>>;
        type Error = S::Error;
        type Future = FloorFuture<S::Future>;

        #[inline]
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        #[inline]
        fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
            if req.uri().path() == "/readyz" {
                FloorFuture::Answer {
                    data: Some(Bytes::from_static(ANSWER)),
                }
            } else {
                FloorFuture::Inner {
                    future: self.inner.call(req),
                }
            }
        }
    }

    pin_project! {
        #[project = FutureProj]
        pub enum FloorFuture<F> {
            Answer { data: Option<Bytes> },
            Inner { #[pin] future: F },
        }
    }

    impl<F, B, E> Future for FloorFuture<F>
    where
        F: Future<Output = Result<Response<B>, E>>,
    {
        type Output = Result<Response<FloorBody<B>>, E>;

        #[inline]
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            match self.project() {
                FutureProj::Answer { data } => {
                    Poll::Ready(Ok(Response::new(FloorBody::Answer { data: data.take() })))
                }
                FutureProj::Inner { future } => {
                    let response = ready!(future.poll(cx));
                    Poll::Ready(response.map(|r| r.map(|body| FloorBody::Inner { body })))
                }
            }
        }
    }

    pin_project! {
        #[project = BodyProj]
        pub enum FloorBody<B> {
            Answer { data: Option<Bytes> },
            Inner { #[pin] body: B },
        }
    }

    impl<B: Body<Data = Bytes>> Body for FloorBody<B> {
        type Data = Bytes;
        type Error = B::Error;

        #[inline]
        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
            match self.project() {
                BodyProj::Answer { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
                BodyProj::Inner { body } => body.poll_frame(cx),
            }
        }

        #[inline]
        fn is_end_stream(&self) -> bool {
            match self {
                FloorBody::Answer { data } => data.is_none(),
                FloorBody::Inner { body } => body.is_end_stream(),
            }
        }

        #[inline]
        fn size_hint(&self) -> SizeHint {
            match self {
                FloorBody::Answer { data } => {
                    SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
                }
                FloorBody::Inner { body } => body.size_hint(),
            }
        }
    }
}
