//! [`ResponseFuture`]: a probe's answer, ready at once, or the inner service's future.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::{HeaderValue, CONNECTION};
use http::Response;
use pin_project_lite::pin_project;

use crate::body::HealthBody;
use crate::render::Reply;
use crate::shutdown::InFlightGuard;

fn into_response<B>(reply: Reply) -> Response<HealthBody<B>> {
    let mut response = Response::new(HealthBody::answer(reply.body));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}

/// A wait for a first check result; only a probe on a cold cache takes it.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

pin_project! {
    /// The response future of a [`HealthService`](crate::HealthService).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        // Boxed, so that a probe's answer does not make every pass-through future larger.
        Reply { reply: Option<Box<Reply>> },
        Pending { pending: Pending },
        // A request that is not a probe, passed through with nothing to add.
        Inner { #[pin] future: F },
        // The same, counted as in flight or to be answered with `Connection: close`.
        Tracked {
            #[pin]
            future: F,
            close: bool,
            guard: Option<InFlightGuard>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn reply(reply: Reply) -> Self {
        ResponseFuture {
            kind: Kind::Reply {
                reply: Some(Box::new(reply)),
            },
        }
    }

    pub(crate) fn pending(pending: Pending) -> Self {
        ResponseFuture {
            kind: Kind::Pending { pending },
        }
    }

    #[inline]
    pub(crate) fn inner(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn tracked(future: F, close: bool, guard: Option<InFlightGuard>) -> Self {
        ResponseFuture {
            kind: Kind::Tracked {
                future,
                close,
                guard,
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<HealthBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                let response = ready!(future.poll(cx));
                Poll::Ready(response.map(|r| r.map(HealthBody::inner)))
            }
            KindProj::Reply { reply } => {
                let reply = reply
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(into_response(*reply)))
            }
            KindProj::Pending { pending } => {
                let reply = ready!(pending.as_mut().poll(cx));
                Poll::Ready(Ok(into_response(reply)))
            }
            KindProj::Tracked {
                future,
                close,
                guard,
            } => {
                let response = ready!(future.poll(cx));
                let guard = guard.take();
                let close = *close;
                Poll::Ready(response.map(|response| finish_tracked(response, close, guard)))
            }
        }
    }
}

#[cold]
fn finish_tracked<B>(
    response: Response<B>,
    close: bool,
    guard: Option<InFlightGuard>,
) -> Response<HealthBody<B>> {
    let mut response = response.map(|body| match guard {
        Some(guard) => HealthBody::tracked(body, guard),
        None => HealthBody::inner(body),
    });
    if close {
        const CLOSE: HeaderValue = HeaderValue::from_static("close");
        response.headers_mut().insert(CONNECTION, CLOSE);
    }
    response
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Reply { .. } => "Reply",
            Kind::Pending { .. } => "Pending",
            Kind::Inner { .. } => "Inner",
            Kind::Tracked { .. } => "Tracked",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}
