//! [`ResponseBody`]: the response body of a [`HealthService`](crate::HealthService), either
//! a probe's answer or the inner service's body, passed through frame by frame.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::shutdown::InFlightGuard;

/// A gRPC health answer, boxed so that it does not make every pass-through body larger;
/// without the `grpc` feature, there is none.
#[cfg(feature = "grpc")]
type GrpcAnswer = Box<crate::answer::grpc::body::GrpcBody>;
#[cfg(not(feature = "grpc"))]
type GrpcAnswer = std::convert::Infallible;

pin_project! {
    /// The response body of a [`HealthService`](crate::HealthService).
    ///
    /// For a request that is not a probe it is the inner service's body, unchanged: every
    /// data frame, trailer, size hint and error goes through as the inner body gives it.
    /// For a probe it is the probe's answer.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Answer { data: Option<Bytes> },
        Grpc { body: GrpcAnswer },
        Inner { #[pin] body: B },
        Tracked {
            #[pin]
            body: B,
            // Counts the request as in flight until the body ends or is dropped.
            guard: Option<InFlightGuard>,
        },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn answer(data: Option<Bytes>) -> Self {
        ResponseBody {
            kind: Kind::Answer {
                data: data.filter(|d| !d.is_empty()),
            },
        }
    }

    #[cfg(feature = "grpc")]
    pub(crate) fn grpc(body: crate::answer::grpc::body::GrpcBody) -> Self {
        ResponseBody {
            kind: Kind::Grpc {
                body: Box::new(body),
            },
        }
    }

    #[inline]
    pub(crate) fn inner(body: B) -> Self {
        ResponseBody {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn tracked(body: B, guard: InFlightGuard) -> Self {
        ResponseBody {
            kind: Kind::Tracked {
                body,
                guard: Some(guard),
            },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Answer { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Grpc { body } => poll_grpc(body, cx),
            KindProj::Tracked { body, guard } => poll_tracked(body, guard, cx),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Answer { data } => data.is_none(),
            #[cfg(feature = "grpc")]
            Kind::Grpc { body } => body.is_end_stream(),
            #[cfg(not(feature = "grpc"))]
            Kind::Grpc { body } => match *body {},
            Kind::Inner { body } | Kind::Tracked { body, .. } => body.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Answer { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            #[cfg(feature = "grpc")]
            Kind::Grpc { body } => body.size_hint(),
            #[cfg(not(feature = "grpc"))]
            Kind::Grpc { body } => match *body {},
            Kind::Inner { body } | Kind::Tracked { body, .. } => body.size_hint(),
        }
    }
}

#[cfg(feature = "grpc")]
fn poll_grpc<E>(
    body: &mut GrpcAnswer,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, E>>> {
    match Pin::new(&mut **body).poll_frame(cx) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(None) => Poll::Ready(None),
        Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
        Poll::Ready(Some(Err(never))) => match never {},
    }
}

#[cfg(not(feature = "grpc"))]
fn poll_grpc<E>(
    body: &mut GrpcAnswer,
    _: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, E>>> {
    match *body {}
}

/// What polling a body for its next frame gives.
type PolledFrame<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

/// A frame of a counted body; the count ends with the body (or its error). Out of line,
/// so that the plain pass-through stays small enough to inline.
#[inline(never)]
fn poll_tracked<B: Body>(
    body: Pin<&mut B>,
    guard: &mut Option<InFlightGuard>,
    cx: &mut Context<'_>,
) -> PolledFrame<B> {
    let frame = body.poll_frame(cx);
    if guard.is_some() && matches!(frame, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
        guard.take();
    }
    frame
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Answer { data } => f
                .debug_struct("ResponseBody::Answer")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Grpc { .. } => f.write_str("ResponseBody::Grpc"),
            Kind::Inner { .. } | Kind::Tracked { .. } => f.write_str("ResponseBody::Inner"),
        }
    }
}
