//! [`ResponseFuture`]: a probe's answer, ready at once, or the inner service's future.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use crate::body::HealthBody;
use crate::shutdown::InFlightGuard;

/// A probe's answer before it is given the inner service's body type.
pub(crate) type Answer = Response<Option<Bytes>>;

/// A boxed wait for a first check result; only a probe on a cold cache takes it.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Answer> + Send>>;

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
        Answer { answer: Option<Answer> },
        Pending { pending: Pending },
        Inner {
            #[pin]
            future: F,
            close: bool,
            guard: Option<InFlightGuard>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn answer(answer: Answer) -> Self {
        ResponseFuture {
            kind: Kind::Answer {
                answer: Some(answer),
            },
        }
    }

    pub(crate) fn pending(pending: Pending) -> Self {
        ResponseFuture {
            kind: Kind::Pending { pending },
        }
    }

    #[inline]
    pub(crate) fn inner(future: F, close: bool, guard: Option<InFlightGuard>) -> Self {
        ResponseFuture {
            kind: Kind::Inner {
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
            KindProj::Answer { answer } => {
                let answer = answer
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(answer.map(HealthBody::answer)))
            }
            KindProj::Pending { pending } => {
                let answer = ready!(pending.as_mut().poll(cx));
                Poll::Ready(Ok(answer.map(HealthBody::answer)))
            }
            KindProj::Inner {
                future,
                close,
                guard,
            } => {
                let response = ready!(future.poll(cx));
                let guard = guard.take();
                Poll::Ready(response.map(|response| {
                    let mut response = response.map(|body| HealthBody::inner(body, guard));
                    if *close {
                        response
                            .headers_mut()
                            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    response
                }))
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Answer { .. } => "Answer",
            Kind::Pending { .. } => "Pending",
            Kind::Inner { .. } => "Inner",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}
