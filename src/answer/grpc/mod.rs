//! `grpc.health.v1`: the layer answers the gRPC health service's Check, Watch and List
//! before routing, from the same state as the HTTP probes (feature `grpc`).
//!
//! A request is a gRPC health call when its path is `/grpc.health.v1.Health/` and a
//! method, its method is `POST` and its `content-type` is `application/grpc` (with or
//! without `+proto` or parameters). Any other request on those paths (another method, no
//! or another content type, gRPC-Web) passes through to the inner service. A call is
//! answered on HTTP/2; over HTTP/1 it gets a trailers-only `INTERNAL` error, since gRPC
//! needs HTTP/2.

pub(crate) mod answer;
pub(crate) mod body;
pub(crate) mod messages;
pub(crate) mod names;
pub(crate) mod wire;

/// The path of the `grpc.health.v1.Health` service, up to its methods.
pub(crate) const SERVICE_PATH: &str = "/grpc.health.v1.Health/";

/// A method of `grpc.health.v1.Health`, named by a request's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Check,
    Watch,
    /// gRPC proposal A90.
    List,
    /// A method the service does not have: `UNIMPLEMENTED`.
    Other,
}

impl Method {
    /// The method a request path names, if it is a path of the service.
    pub(crate) fn of_path(path: &str) -> Option<Method> {
        let method = path.strip_prefix(SERVICE_PATH)?;
        Some(match method {
            "" => return None,
            "Check" => Method::Check,
            "Watch" => Method::Watch,
            "List" => Method::List,
            _ => Method::Other,
        })
    }
}
