//! [`HealthService`]: decides, from the path alone, whether a request is a probe; answers
//! it if so and otherwise hands the request to the inner service untouched.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Version};
use tower_service::Service;

use crate::future::ResponseFuture;
#[cfg(feature = "grpc")]
use crate::grpc::answer as grpc;
use crate::probe::Matched;
use crate::shared::SharedRef;

/// A service that answers liveness, readiness and startup probes and passes every other
/// request to the service it wraps. Made by [`HealthLayer`](crate::HealthLayer).
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
}

impl<S: Clone> Clone for HealthService<S> {
    fn clone(&self) -> Self {
        // A clone of the inner service has reserved nothing yet (tower's services do
        // not clone a reservation), so the clone must poll it again.
        HealthService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            ready: false,
        }
    }
}

impl<S> HealthService<S> {
    pub(crate) fn new(inner: S, shared: SharedRef) -> Self {
        HealthService {
            inner,
            shared,
            ready: false,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

#[cfg(not(feature = "grpc"))]
impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HealthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<crate::HealthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_inner_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.on_hot_path(&req) {
            self.ready = false;
            return ResponseFuture::inner(self.inner.call(req));
        }
        self.call_other(req)
    }
}

#[cfg(not(feature = "grpc"))]
impl<S> HealthService<S> {
    /// Any request off the hot path: a probe (or a path that looked like one), or one
    /// that passes through while the inner service is not ready or requests are tracked.
    #[inline(never)]
    fn call_other<ReqBody, ResBody>(&mut self, req: Request<ReqBody>) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    {
        if let Some(Matched::Probe(probe, rest)) = self.shared.matcher.match_path(req.uri().path())
        {
            if let Some(future) = self.shared.answer(probe, rest, &req) {
                return future;
            }
        }
        self.pass_through(req)
    }
}

/// With the `grpc` feature, the layer reads the request body of a gRPC health call, so
/// request bodies are `Send + 'static` bodies, as those of every server are.
#[cfg(feature = "grpc")]
impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HealthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = Bytes>,
    ReqBody: http_body::Body + Send + 'static,
    ReqBody::Data: Send,
{
    type Response = Response<crate::HealthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_inner_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.on_hot_path(&req) {
            self.ready = false;
            return ResponseFuture::inner(self.inner.call(req));
        }
        self.call_other(req)
    }
}

#[cfg(feature = "grpc")]
impl<S> HealthService<S> {
    /// Any request off the hot path: a probe or a gRPC health call (or a path that looked
    /// like one), or one that passes through while the inner service is not ready or
    /// requests are tracked.
    #[inline(never)]
    fn call_other<ReqBody, ResBody>(&mut self, req: Request<ReqBody>) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
        ReqBody: http_body::Body + Send + 'static,
        ReqBody::Data: Send,
    {
        match self.shared.matcher.match_path(req.uri().path()) {
            Some(Matched::Probe(probe, rest)) => {
                if let Some(future) = self.shared.answer(probe, rest, &req) {
                    return future;
                }
            }
            Some(Matched::Grpc(method)) => {
                if let Some(content) = grpc::grpc_call(&req) {
                    let call = grpc::call(&self.shared, method, content, req);
                    return ResponseFuture::grpc(call);
                }
            }
            None => {}
        }
        self.pass_through(req)
    }
}

impl<S> HealthService<S> {
    /// The hot path, decided in one test: the inner service ready, the path turned away
    /// by the matcher's pre-filter, nothing to track. The request then goes straight to
    /// the inner service; everything else goes out of line.
    #[inline(always)]
    fn on_hot_path<ReqBody>(&self, req: &Request<ReqBody>) -> bool {
        self.ready
            && !self.shared.matcher.may_match(req.uri().path())
            && !self.shared.tracks_pass_through()
    }

    #[inline]
    fn poll_inner_ready<ReqBody>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>>
    where
        S: Service<Request<ReqBody>>,
    {
        if !self.ready {
            match self.inner.poll_ready(cx) {
                Poll::Ready(Ok(())) => self.ready = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                // The next request may be a probe, which need not wait: a request that
                // passes through waits in its response future instead.
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    /// A request that is not the layer's to answer.
    #[inline]
    fn pass_through<ReqBody, ResBody>(
        &mut self,
        req: Request<ReqBody>,
    ) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    {
        if !self.ready || self.shared.tracks_pass_through() {
            return self.call_slow(req);
        }
        self.ready = false;
        ResponseFuture::inner(self.inner.call(req))
    }

    /// A request that is not a probe, while the inner service is not ready, or while
    /// counting requests or draining.
    #[inline(never)]
    fn call_slow<ReqBody, ResBody>(&mut self, req: Request<ReqBody>) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    {
        let shared = &self.shared;
        let (close, guard) = if shared.tracks_pass_through() {
            let close = shared.close_when_draining
                && req.version() <= Version::HTTP_11
                && shared.lifecycle.is_draining();
            (close, shared.in_flight.as_ref().map(|c| c.enter()))
        } else {
            (false, None)
        };
        if self.ready {
            self.ready = false;
            return ResponseFuture::tracked(self.inner.call(req), close, guard);
        }
        let clone = self.inner.clone();
        let waiting = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::waiting(waiting, req, close, guard)
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for HealthService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("inner", &self.inner)
            .field("paths", self.shared.matcher.paths())
            .finish_non_exhaustive()
    }
}
