//! [`HealthService`]: decides, from the path alone, whether a request is a probe; answers
//! it if so and otherwise hands the request to the inner service untouched.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Version};
use tower_service::Service;

use super::future::{ResponseFuture, Waiting};
#[cfg(feature = "grpc")]
use crate::answer::grpc::answer as grpc;
use crate::answer::matching::Matched;
use crate::answer::respond::Answer;
use crate::answer::shared::{Shared, SharedRef};
use crate::shutdown::RequestGuard;

/// A service that answers liveness, readiness and startup probes and passes every other
/// request to the service it wraps.
///
/// Made by [`HealthLayer`](crate::HealthLayer).
///
/// # Readiness and backpressure
///
/// A probe never waits on the inner service: it is answered without calling it, and
/// `poll_ready` is ready whatever the inner service's readiness, so that a concurrency
/// limit, a buffer or a load shedder inside the layer cannot hold a liveness probe back
/// (a busy replica restarted for being busy makes an overload worse).
///
/// A request that passes through still reaches the inner service only once that service
/// is ready, as tower requires. `poll_ready` polls the inner service and remembers
/// whether it was ready: if it was, a request that passes through is called on it at once
/// (nothing added: no allocation, no clone); if it was not, the request's response future
/// takes the inner service, waits for it to be ready and calls it then, and this service
/// goes on with a clone. That is why the inner service must be `Clone`, as it must be for
/// tower's `Buffer` and for the servers that clone a service per request; wrap a service
/// that is not in `tower::buffer::Buffer`. The future carries the service that was
/// already waiting (and so keeps its place in a semaphore's queue); the clone starts
/// afresh.
///
/// An error from the inner service's `poll_ready` is returned from this one, as it is:
/// the inner service has failed.
///
/// Like any tower service, a `HealthService` that was polled ready holds what its inner
/// service reserved (a concurrency permit, a buffer slot) until its next request that
/// passes through, or until it is dropped; servers clone the service for each request, so
/// that lasts one request. A clone starts unreserved.
pub struct HealthService<S> {
    inner: S,
    shared: SharedRef,
    /// Whether the inner service said it was ready, and has not been called since.
    ready: bool,
    /// Whether the requests it passes through are left out of the wedge detector (the
    /// probe listener's own `404`s: the library's answers are never progress).
    exempt: bool,
}

impl<S: Clone> Clone for HealthService<S> {
    fn clone(&self) -> Self {
        // A clone of the inner service has reserved nothing yet (tower's services do
        // not clone a reservation), so the clone must poll it again.
        HealthService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            ready: false,
            exempt: self.exempt,
        }
    }
}

impl<S> HealthService<S> {
    pub(crate) fn new(inner: S, shared: SharedRef, exempt: bool) -> Self {
        HealthService {
            inner,
            shared,
            ready: false,
            exempt,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    ///
    /// The readiness this service remembers is forgotten: what is done through the
    /// reference may replace the inner service, and a service put in place of the one
    /// that was polled ready has reserved nothing. So the next request that passes
    /// through polls the inner service's `poll_ready` again before calling it (in its
    /// response future, unless [`poll_ready`](Service::poll_ready) is called first).
    pub fn get_mut(&mut self) -> &mut S {
        self.ready = false;
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The request bodies a [`HealthService`] takes: a `Send + 'static`
/// [`http_body::Body`] whose data is `Send`, as every server's is.
///
/// The bounds are the same with and without the `grpc` feature, which reads the body of a
/// gRPC health call itself: turning a feature on never breaks a build.
///
/// It is implemented for every type that fits, and cannot be implemented otherwise.
pub trait RequestBody: http_body::Body<Data: Send> + Send + 'static + sealed::Sealed {}

impl<B> RequestBody for B
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
}

mod sealed {
    #[allow(unreachable_pub)] // Public in a private module: nameable by no one outside.
    pub trait Sealed {}

    impl<B> Sealed for B {}
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HealthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = Bytes>,
    ReqBody: RequestBody,
{
    type Response = Response<crate::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.ready {
            match self.inner.poll_ready(cx) {
                Poll::Ready(Ok(())) => self.ready = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                // The next request may be a probe, which need not wait: a request
                // that passes through waits in its response future instead.
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    // What is decided out of line returns something small (an answer, a box, a
    // flag), and the response future is built here, once: a future built out of
    // line would be moved again on its way out.
    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        if self.ready
            && !shared.matcher().may_match(req.uri().path())
            && !shared.tracks_pass_through()
        {
            self.ready = false;
            return ResponseFuture::inner(self.inner.call(req));
        }
        self.call_other(req)
    }
}

impl<S> HealthService<S> {
    /// Every request off the hot path. What is decided out of line returns
    /// something small (an answer, a box, a flag), and the response future is built
    /// here: a future built out of line would be moved again on its way out.
    #[inline(always)]
    fn call_other<ReqBody, ResBody>(&mut self, req: Request<ReqBody>) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
        ReqBody: RequestBody,
    {
        if self.shared.matcher().may_match(req.uri().path()) {
            match route(&self.shared, &req) {
                Route::Answer(answer) => return ResponseFuture::answer(answer),
                #[cfg(feature = "grpc")]
                Route::Grpc(method, content) => {
                    return ResponseFuture::grpc(grpc::call(&self.shared, method, content, req))
                }
                Route::PassThrough => {}
            }
        }
        if !self.ready {
            return ResponseFuture::waiting(self.wait(req));
        }
        let (close, guard) = track(&self.shared, &req, self.exempt);
        self.ready = false;
        ResponseFuture::tracked(self.inner.call(req), close, guard)
    }
}

/// What the layer makes of a request whose path passed the matcher's pre-filter.
enum Route {
    /// A probe: the layer answers it.
    Answer(Answer),
    /// A gRPC health call: the layer answers it once its message has arrived.
    #[cfg(feature = "grpc")]
    Grpc(grpc::Method, grpc::ContentType),
    /// Not the layer's after all: it goes to the inner service.
    PassThrough,
}

#[inline(never)]
fn route<B>(shared: &SharedRef, req: &Request<B>) -> Route {
    let gating = |probe, name: &str| shared.engine().find(probe, name);
    match shared.matcher().match_path(req.uri().path(), gating) {
        Some(Matched::Probe(probe, check)) => Route::Answer(shared.answer(probe, check, req)),
        #[cfg(feature = "grpc")]
        Some(Matched::Grpc(method)) => match grpc::grpc_call(req) {
            Some(content) => Route::Grpc(method, content),
            None => Route::PassThrough,
        },
        None => Route::PassThrough,
    }
}

/// How a request that passes through is tracked: whether it is answered with
/// `Connection: close` (HTTP/1 while draining), and its place in the in-flight count.
#[inline(never)]
fn track<B>(shared: &Shared, req: &Request<B>, exempt: bool) -> (bool, Option<RequestGuard>) {
    let close = shared.options().close_when_draining
        && req.version() <= Version::HTTP_11
        && shared.lifecycle().is_draining();
    let in_flight = shared.in_flight_for(req, exempt);
    (close, in_flight.map(|c| c.enter()))
}

impl<S: Clone> HealthService<S> {
    /// A request that passes through while the inner service is not ready: it waits in
    /// its response future with the inner service that was polled (and so keeps its place
    /// in a semaphore's queue), and this service goes on with a clone, which starts
    /// afresh.
    #[inline(never)]
    fn wait<ReqBody>(&mut self, req: Request<ReqBody>) -> Box<Waiting<S, ReqBody>> {
        let (close, guard) = if self.shared.tracks_pass_through() {
            track(&self.shared, &req, self.exempt)
        } else {
            (false, None)
        };
        let clone = self.inner.clone();
        let waiting = std::mem::replace(&mut self.inner, clone);
        Waiting::new(waiting, req, close, guard)
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for HealthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("inner", &self.inner)
            .field("paths", self.shared.matcher().paths())
            .finish_non_exhaustive()
    }
}
