//! [`HealthBody`]: the response body of a [`HealthService`](crate::HealthService), either
//! a probe's answer or the inner service's body, passed through frame by frame.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::shutdown::InFlightGuard;

pin_project! {
    /// The response body of a [`HealthService`](crate::HealthService).
    ///
    /// For a request that is not a probe it is the inner service's body, unchanged: every
    /// data frame, trailer, size hint and error goes through as the inner body gives it.
    /// For a probe it is the probe's answer.
    pub struct HealthBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Answer { data: Option<Bytes> },
        Inner { #[pin] body: B },
        Tracked {
            #[pin]
            body: B,
            // Counts the request as in flight until the body ends or is dropped.
            guard: Option<InFlightGuard>,
        },
    }
}

impl<B> HealthBody<B> {
    pub(crate) fn answer(data: Option<Bytes>) -> Self {
        HealthBody {
            kind: Kind::Answer {
                data: data.filter(|d| !d.is_empty()),
            },
        }
    }

    #[inline]
    pub(crate) fn inner(body: B) -> Self {
        HealthBody {
            kind: Kind::Inner { body },
        }
    }

    pub(crate) fn tracked(body: B, guard: InFlightGuard) -> Self {
        HealthBody {
            kind: Kind::Tracked {
                body,
                guard: Some(guard),
            },
        }
    }
}

impl<B> Body for HealthBody<B>
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
            KindProj::Tracked { body, guard } => {
                let frame = body.poll_frame(cx);
                if guard.is_some() && matches!(frame, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
                {
                    guard.take();
                }
                frame
            }
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Answer { data } => data.is_none(),
            Kind::Inner { body } | Kind::Tracked { body, .. } => body.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Answer { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Inner { body } | Kind::Tracked { body, .. } => body.size_hint(),
        }
    }
}

impl<B> std::fmt::Debug for HealthBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Answer { data } => f
                .debug_struct("HealthBody::Answer")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Inner { .. } | Kind::Tracked { .. } => f.write_str("HealthBody::Inner"),
        }
    }
}
