//! What a gRPC health call answers: its headers, then a body of length-prefixed messages
//! ended by trailers, or no body at all (a trailers-only error).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::wire::{self, CallError};

/// A call being answered: it reads the request's message first.
pub(crate) type Call = Pin<Box<dyn Future<Output = GrpcReply> + Send>>;

/// The messages of a Watch, each already framed; the stream ends when the call ends well.
pub(crate) type Messages = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// A call's answer: the response headers and body (the HTTP status is always 200).
pub(crate) struct GrpcReply {
    pub(crate) headers: HeaderMap,
    pub(crate) body: GrpcBody,
}

impl GrpcReply {
    /// A trailers-only response: the status in the headers, and no body.
    pub(crate) fn error(status: CallError) -> GrpcReply {
        GrpcReply {
            headers: wire::trailers_only(status),
            body: GrpcBody::Unary {
                message: None,
                trailers: None,
            },
        }
    }

    /// One message, then `grpc-status: 0`.
    pub(crate) fn unary(message: Bytes) -> GrpcReply {
        GrpcReply {
            headers: wire::response_headers(),
            body: GrpcBody::Unary {
                message: Some(message),
                trailers: Some(wire::ok_trailers()),
            },
        }
    }

    /// Messages as the stream yields them, then `grpc-status: 0` when it ends.
    pub(crate) fn stream(messages: Messages) -> GrpcReply {
        GrpcReply {
            headers: wire::response_headers(),
            body: GrpcBody::Stream {
                messages,
                trailers: Some(wire::ok_trailers()),
            },
        }
    }
}

impl From<CallError> for GrpcReply {
    fn from(status: CallError) -> GrpcReply {
        GrpcReply::error(status)
    }
}

impl std::fmt::Debug for GrpcReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcReply")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// The body of a gRPC health answer.
pub(crate) enum GrpcBody {
    /// At most one message, then trailers if any.
    Unary {
        message: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
    /// A Watch: messages until the stream ends, then trailers.
    Stream {
        messages: Messages,
        trailers: Option<HeaderMap>,
    },
}

impl Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            GrpcBody::Unary { message, trailers } => match message.take() {
                Some(message) => Frame::data(message),
                None => match trailers.take() {
                    Some(trailers) => Frame::trailers(trailers),
                    None => return Poll::Ready(None),
                },
            },
            GrpcBody::Stream { messages, trailers } => {
                if trailers.is_none() {
                    return Poll::Ready(None);
                }
                match messages.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(message)) => Frame::data(message),
                    Poll::Ready(None) => Frame::trailers(trailers.take().unwrap_or_default()),
                }
            }
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GrpcBody::Unary { message, trailers } => message.is_none() && trailers.is_none(),
            GrpcBody::Stream { trailers, .. } => trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Never exact: a server would turn an exact size into a `content-length`, which
        // gRPC responses do not carry.
        let mut hint = SizeHint::default();
        if let GrpcBody::Unary {
            message: Some(message),
            ..
        } = self
        {
            hint.set_lower(message.len() as u64);
        }
        hint
    }
}
