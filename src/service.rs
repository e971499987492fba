//! [`HealthService`]: decides, from the path alone, whether a request is a probe; answers
//! it if so and otherwise hands the request to the inner service untouched.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Version};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::shared::SharedRef;

/// A service that answers liveness, readiness and startup probes and passes every other
/// request to the service it wraps. Made by [`HealthLayer`](crate::HealthLayer).
///
/// `poll_ready` is the inner service's. A probe is answered without calling the inner
/// service at all.
#[derive(Clone)]
pub struct HealthService<S> {
    inner: S,
    shared: SharedRef,
}

impl<S> HealthService<S> {
    pub(crate) fn new(inner: S, shared: SharedRef) -> Self {
        HealthService { inner, shared }
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HealthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<crate::HealthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if let Some((probe, rest)) = self.shared.matcher.match_path(req.uri().path()) {
            if let Some(future) = self.shared.answer(probe, rest, &req) {
                return future;
            }
        }
        if self.shared.tracks_pass_through() {
            return self.call_tracked(req);
        }
        ResponseFuture::inner(self.inner.call(req))
    }
}

impl<S> HealthService<S> {
    /// A request that is not a probe, while counting requests or draining.
    #[inline(never)]
    fn call_tracked<ReqBody, ResBody>(&mut self, req: Request<ReqBody>) -> ResponseFuture<S::Future>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        let shared = &self.shared;
        let close = shared.close_when_draining
            && req.version() <= Version::HTTP_11
            && shared.lifecycle.is_draining();
        let guard = shared.in_flight.as_ref().map(|c| c.enter());
        ResponseFuture::tracked(self.inner.call(req), close, guard)
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
