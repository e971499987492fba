//! [`ResponseFuture`]: a probe's answer, ready at once, or the inner service's future
//! (after waiting for the inner service to be ready, when it was not).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::{HeaderValue, CONNECTION};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::ResponseBody;
use crate::answer::render::Reply;
use crate::answer::respond::{Answer, Pending};
use crate::shutdown::{InFlightGuard, RequestGuard};

fn into_response<B>(reply: Reply) -> Response<ResponseBody<B>> {
    let (status, headers, body) = reply.into_parts();
    let mut response = Response::new(ResponseBody::answer(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A gRPC health call; without the `grpc` feature, there is none.
#[cfg(feature = "grpc")]
type Call = crate::answer::grpc::body::Call;
#[cfg(not(feature = "grpc"))]
type Call = std::convert::Infallible;

pin_project! {
    /// The response future of a [`HealthService`](crate::HealthService).
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner service's future, as a server does when the client goes
    /// away, and a request counted in flight stops being counted. A probe that waits for a
    /// check's result waits for a run that is a task of its own: dropping the future loses
    /// only the answer, and the run goes on and records its result.
    pub struct ResponseFuture<S: Service<Request<ReqBody>>, ReqBody> {
        #[pin]
        kind: Kind<S, ReqBody>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S: Service<Request<ReqBody>>, ReqBody> {
        // A request that is not a probe, passed through with nothing to add.
        Inner { #[pin] future: S::Future },
        // A probe's answer (small: a shared answer, or a boxed one).
        Reply { reply: Option<Reply> },
        Pending { pending: Pending },
        // A gRPC health call, answered once its request message has arrived.
        Grpc { call: Call },
        // A request that is not a probe, counted as in flight until its body ends. (Two
        // variants rather than a flag, so that a pass-through future is no larger than
        // it must be.)
        Tracked {
            #[pin]
            future: S::Future,
            guard: RequestGuard,
        },
        // The same, to be answered with `Connection: close`, and counted if `guard` is.
        Closing {
            #[pin]
            future: S::Future,
            guard: RequestGuard,
        },
        // A request that is not a probe, arrived while the inner service was not ready:
        // it waits here, not in `poll_ready`, so that probes do not wait with it.
        Waiting { waiting: Box<Waiting<S, ReqBody>> },
    }
}

impl<S: Service<Request<ReqBody>>, ReqBody> Kind<S, ReqBody> {
    fn tracked(future: S::Future, close: bool, guard: Option<RequestGuard>) -> Self {
        match (close, guard) {
            (false, None) => Kind::Inner { future },
            (false, Some(guard)) => Kind::Tracked { future, guard },
            (true, guard) => Kind::Closing {
                future,
                guard: guard.unwrap_or_default(),
            },
        }
    }
}

/// A request that passes through once the inner service (which this future owns) is
/// ready, and what it is to be tracked with then.
pub(crate) struct Waiting<S, ReqBody> {
    service: S,
    request: Option<Request<ReqBody>>,
    close: bool,
    guard: Option<RequestGuard>,
}

impl<S, ReqBody> Waiting<S, ReqBody> {
    /// `request`, to be called on `service` once it is ready.
    pub(crate) fn new(
        service: S,
        request: Request<ReqBody>,
        close: bool,
        guard: Option<RequestGuard>,
    ) -> Box<Self> {
        Box::new(Waiting {
            service,
            request: Some(request),
            close,
            guard,
        })
    }
}

impl<S: Service<Request<ReqBody>>, ReqBody> ResponseFuture<S, ReqBody> {
    #[inline]
    pub(crate) fn answer(answer: Answer) -> Self {
        let kind = match answer {
            Answer::Reply(reply) => Kind::Reply { reply: Some(reply) },
            Answer::Pending(pending) => Kind::Pending { pending },
        };
        ResponseFuture { kind }
    }

    #[cfg(feature = "grpc")]
    #[inline]
    pub(crate) fn grpc(call: Call) -> Self {
        ResponseFuture {
            kind: Kind::Grpc { call },
        }
    }

    #[inline]
    pub(crate) fn inner(future: S::Future) -> Self {
        ResponseFuture {
            kind: Kind::Inner { future },
        }
    }

    #[inline]
    pub(crate) fn tracked(future: S::Future, close: bool, guard: Option<RequestGuard>) -> Self {
        ResponseFuture {
            kind: Kind::tracked(future, close, guard),
        }
    }

    #[inline]
    pub(crate) fn waiting(waiting: Box<Waiting<S, ReqBody>>) -> Self {
        ResponseFuture {
            kind: Kind::Waiting { waiting },
        }
    }
}

impl<S, ReqBody, B> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
{
    type Output = Result<Response<ResponseBody<B>>, S::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        // The pass-through alone, inline: the response goes straight into the caller's
        // slot. Everything else is out of line.
        loop {
            if let KindProj::Inner { future } = kind.as_mut().project() {
                let response = ready!(future.poll(cx));
                return Poll::Ready(response.map(|r| r.map(ResponseBody::inner)));
            }
            if let Some(polled) = poll_other(kind.as_mut(), cx) {
                return polled;
            }
        }
    }
}

/// Polls any future but a plain pass-through (which [`ResponseFuture::poll`] polls
/// inline, though this polls it too); `None` when a waiting request has just been called
/// and is to be polled as what it has become.
#[inline(never)]
#[allow(clippy::type_complexity)]
fn poll_other<S, ReqBody, B>(
    mut kind: Pin<&mut Kind<S, ReqBody>>,
    cx: &mut Context<'_>,
) -> Option<Poll<Result<Response<ResponseBody<B>>, S::Error>>>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
{
    let polled = match kind.as_mut().project() {
        KindProj::Inner { future } => future
            .poll(cx)
            .map(|response| response.map(|r| r.map(ResponseBody::inner))),
        KindProj::Reply { reply } => {
            let reply = reply
                .take()
                .expect("ResponseFuture polled after completion");
            Poll::Ready(Ok(into_response(reply)))
        }
        KindProj::Pending { pending } => pending.as_mut().poll(cx).map(|r| Ok(into_response(r))),
        #[cfg(feature = "grpc")]
        KindProj::Grpc { call } => call.as_mut().poll(cx).map(|r| Ok(grpc_response(r))),
        #[cfg(not(feature = "grpc"))]
        KindProj::Grpc { call } => match *call {},
        KindProj::Tracked { future, guard } => future.poll(cx).map(|response| {
            let guard = guard.head_out();
            response.map(|response| finish_tracked(response, false, guard))
        }),
        KindProj::Closing { future, guard } => future.poll(cx).map(|response| {
            let guard = guard.head_out();
            response.map(|response| finish_tracked(response, true, guard))
        }),
        // A request waiting for the inner service to be ready: once it is, the request is
        // called and the future becomes the inner service's, below. tower's contract:
        // `call` only once `poll_ready` said so. An error here is the inner service's
        // own, for this request to report.
        KindProj::Waiting { waiting } => match waiting.service.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(())) => {
                let request = waiting
                    .request
                    .take()
                    .expect("ResponseFuture polled after completion");
                let future = waiting.service.call(request);
                let (close, guard) = (waiting.close, waiting.guard.take());
                kind.set(Kind::tracked(future, close, guard));
                return None;
            }
        },
    };
    Some(polled)
}

#[cfg(feature = "grpc")]
fn grpc_response<B>(reply: crate::answer::grpc::body::GrpcReply) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::grpc(reply.body));
    *response.headers_mut() = reply.headers;
    response
}

#[cold]
fn finish_tracked<B>(
    response: Response<B>,
    close: bool,
    guard: Option<InFlightGuard>,
) -> Response<ResponseBody<B>> {
    let mut response = response.map(|body| match guard {
        Some(guard) => ResponseBody::tracked(body, guard),
        None => ResponseBody::inner(body),
    });
    if close {
        const CLOSE: HeaderValue = HeaderValue::from_static("close");
        response.headers_mut().insert(CONNECTION, CLOSE);
    }
    response
}

impl<S: Service<Request<ReqBody>>, ReqBody> std::fmt::Debug for ResponseFuture<S, ReqBody> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Reply { .. } => "Reply",
            Kind::Pending { .. } => "Pending",
            Kind::Grpc { .. } => "Grpc",
            Kind::Inner { .. } => "Inner",
            Kind::Tracked { .. } => "Tracked",
            Kind::Closing { .. } => "Closing",
            Kind::Waiting { .. } => "Waiting",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}
