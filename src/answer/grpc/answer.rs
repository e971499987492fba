//! Answering a gRPC health call from the shared state: Check, Watch and List.

use std::collections::BTreeMap;
use std::pin::pin;

use bytes::Bytes;
use http::{Method as HttpMethod, Request, Version};
use http_body::Body;
use http_body_util::BodyExt as _;

use super::body::{Call, GrpcReply};
use super::messages::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse, ServingStatus,
};
use super::names::Target;
pub(crate) use super::wire::ContentType;
use super::wire::{self, CallError, Code, Encoding, Unary};
pub(crate) use super::Method;
use crate::answer::shared::SharedRef;
use crate::check::Need;
use crate::observe::Changes;
use crate::vocabulary::Probe;

/// The most names List answers with, as gRPC proposal A90 sets it.
const LIST_LIMIT: usize = list_limit!();

/// [`LIST_LIMIT`] as a literal, so that the error that names it says the same number.
macro_rules! list_limit {
    () => {
        100
    };
}
use list_limit;

const UNKNOWN_SERVICE: CallError = CallError::new(Code::NotFound, "unknown service");
const NO_SUCH_METHOD: CallError = CallError::new(
    Code::Unimplemented,
    "grpc.health.v1.Health has the methods Check, Watch and List only",
);
const TOO_MANY_NAMES: CallError = CallError::new(
    Code::ResourceExhausted,
    concat!(
        "more than ",
        list_limit!(),
        " services are known; ask for each with Check"
    ),
);

/// The content type of a request on a gRPC health path if it is a gRPC call (`POST`
/// with a gRPC content type); `None` sends it to the inner service.
#[inline]
pub(crate) fn grpc_call<B>(req: &Request<B>) -> Option<ContentType> {
    if req.method() != HttpMethod::POST {
        return None;
    }
    match ContentType::of(req.headers()) {
        ContentType::NotGrpc => None,
        content => Some(content),
    }
}

/// Answers a gRPC health call: a trailers-only error at once when the call cannot be
/// served, else once the request's message has arrived.
#[inline(never)]
pub(crate) fn call<B>(
    shared: &SharedRef,
    method: Method,
    content: ContentType,
    req: Request<B>,
) -> Call
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    let refused = if req.version() < Version::HTTP_2 {
        Some(CallError::NEEDS_HTTP2)
    } else if content != ContentType::GrpcProto {
        Some(CallError::UNSUPPORTED_CODEC)
    } else if method == Method::Other {
        Some(NO_SUCH_METHOD)
    } else {
        None
    };
    if let Some(status) = refused {
        return Box::pin(std::future::ready(GrpcReply::error(status)));
    }
    let encoding = Encoding::of(req.headers());
    let shared = shared.clone();
    let body = req.into_body();
    Box::pin(async move {
        let answer = async {
            let message = read_message(body, encoding).await?;
            match method {
                Method::Check => check(&shared, &message).await,
                Method::Watch => watch(shared.clone(), &message),
                Method::List | Method::Other => list(&shared, &message).await,
            }
        };
        answer.await.unwrap_or_else(GrpcReply::error)
    })
}

/// The one message of a unary request, read as it arrives.
async fn read_message<B: Body>(body: B, encoding: Encoding) -> Result<Bytes, CallError> {
    let mut body = pin!(body);
    let mut message = Unary::new(encoding);
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|_| CallError::BODY_ERROR)?;
        // Request trailers carry nothing a health call needs.
        if let Ok(data) = frame.into_data() {
            message.push(data)?;
        }
    }
    message.finish()
}

/// A `HealthCheckResponse` with its prefix, from bytes that never change.
fn status_frame(status: ServingStatus) -> Bytes {
    const fn framed(status: u8) -> [u8; 7] {
        // Prefix: not compressed, 2 bytes; then field 1 as a varint.
        [0, 0, 0, 0, 2, 0x08, status]
    }
    static SERVING: [u8; 7] = framed(ServingStatus::Serving as u8);
    static NOT_SERVING: [u8; 7] = framed(ServingStatus::NotServing as u8);
    static SERVICE_UNKNOWN: [u8; 7] = framed(ServingStatus::ServiceUnknown as u8);
    // proto3 leaves a field at its default out: an empty message.
    static UNKNOWN: [u8; 5] = [0; 5];
    Bytes::from_static(match status {
        ServingStatus::Serving => &SERVING,
        ServingStatus::NotServing => &NOT_SERVING,
        ServingStatus::ServiceUnknown => &SERVICE_UNKNOWN,
        ServingStatus::Unknown => &UNKNOWN,
    })
}

/// What `name` stands for.
fn resolve(shared: &SharedRef, name: &str) -> Target {
    shared
        .options()
        .grpc_services
        .resolve(name, |name| shared.engine().names().position(|n| n == name))
}

/// The probe, and the one check of it, whose results `target` is made of.
fn needs(shared: &SharedRef, target: Target) -> Option<(Probe, Option<usize>)> {
    match target {
        Target::Probe(probe) => Some((probe, None)),
        Target::Check(index) => {
            let name = shared.engine().names().nth(index)?;
            let probe = Probe::ALL
                .into_iter()
                .find(|probe| shared.engine().find(*probe, name) == Some(index))?;
            Some((probe, Some(index)))
        }
        Target::Unknown => None,
    }
}

async fn check(shared: &SharedRef, message: &[u8]) -> Result<GrpcReply, CallError> {
    let request: HealthCheckRequest = wire::decode(message)?;
    let target = resolve(shared, &request.service);
    if target == Target::Unknown {
        return Err(UNKNOWN_SERVICE);
    }
    // As a probe would: start the runs it needs, and wait (at most the budget) only when
    // one has no result at all.
    if let Some((probe, only)) = needs(shared, target) {
        if let Need::Wait = shared.engine().prepare(probe, only) {
            shared.engine().wait_for_results(probe, only).await;
        }
    }
    let status = shared.with_grpc_statuses(|statuses| statuses.of(target));
    Ok(GrpcReply::unary(status_frame(status)))
}

async fn list(shared: &SharedRef, message: &[u8]) -> Result<GrpcReply, CallError> {
    let _: HealthListRequest = wire::decode(message)?;
    // Start every run any probe needs first, then wait (each wait at most the budget).
    let needs = Probe::ALL.map(|probe| shared.engine().prepare(probe, None));
    for (probe, need) in Probe::ALL.into_iter().zip(needs) {
        if let Need::Wait = need {
            shared.engine().wait_for_results(probe, None).await;
        }
    }
    let names = shared.options().grpc_services.all(shared.engine().names());
    let list = shared.with_grpc_statuses(|statuses| {
        let mut list = BTreeMap::new();
        for (name, target) in names {
            if list.len() == LIST_LIMIT {
                return Err(TOO_MANY_NAMES);
            }
            list.insert(
                name.to_owned(),
                HealthCheckResponse::new(statuses.of(target)),
            );
        }
        Ok(list)
    })?;
    Ok(GrpcReply::unary(wire::frame(&HealthListResponse {
        statuses: list,
    })))
}

// === Watch ===

fn watch(shared: SharedRef, message: &[u8]) -> Result<GrpcReply, CallError> {
    let request: HealthCheckRequest = wire::decode(message)?;
    let target = resolve(&shared, &request.service);
    // Start the runs it needs; their results arrive as changes.
    if let Some((probe, only)) = needs(&shared, target) {
        let _ = shared.engine().prepare(probe, only);
    }
    let watcher = Watcher {
        // Subscribed before the first status is read, so that no change falls between.
        changes: shared.changes(),
        shared,
        target,
        last: None,
    };
    let messages = futures_util::stream::unfold(watcher, Watcher::next);
    Ok(GrpcReply::stream(Box::pin(messages)))
}

/// One Watch call: the status last sent, and what it waits on for the next.
struct Watcher {
    shared: SharedRef,
    target: Target,
    changes: Changes,
    last: Option<ServingStatus>,
}

impl Watcher {
    /// The next message: the status when it differs from the last one sent. `None` ends
    /// the stream (with `grpc-status: 0`) once the drain delay is over.
    ///
    /// It runs only while the server asks for the body's next frame: a client that does
    /// not read leaves it waiting, holding one status, never a queue.
    async fn next(mut self) -> Option<(Bytes, Watcher)> {
        loop {
            let target = self.target;
            let status = self
                .shared
                .with_grpc_statuses(|statuses| statuses.of(target));
            if self.last != Some(status) {
                self.last = Some(status);
                return Some((status_frame(status), self));
            }
            // The drain delay's one end, shared with the timeline: one delay after the
            // drain started, however late this watcher saw it.
            let delay_over = self.shared.drain_delay_over();
            tokio::select! {
                // Any change, or word that some were missed: read the status again. The
                // changes only end with the state, which this call holds.
                change = self.changes.next() => {
                    change?;
                }
                () = delay_over => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_frames_are_the_encoded_responses() {
        for status in [
            ServingStatus::Unknown,
            ServingStatus::Serving,
            ServingStatus::NotServing,
            ServingStatus::ServiceUnknown,
        ] {
            assert_eq!(
                status_frame(status),
                wire::frame(&HealthCheckResponse::new(status)),
                "{status:?}"
            );
        }
    }
}
