//! The middleware, tower-http style: [`HealthLayer`] wraps a service in a [`HealthService`],
//! which answers probes and passes every other request through; its [`ResponseFuture`] and
//! [`ResponseBody`] carry either the probe's answer or the inner service's.

mod body;
mod future;
mod layer;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HealthLayer;
pub use service::{HealthService, RequestBody};
