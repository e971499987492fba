//! An upstream's `grpc.health.v1` through tonic-health's client (feature `check-grpc`).

use std::borrow::Cow;
use std::sync::Arc;

use tokio::time::Instant;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::{check, failed, latency};
use crate::check::{Check, Outcome};

/// A check that asks the upstream behind `channel` for the health of `service` (`""`
/// for the server as a whole) and passes while it answers `SERVING`.
///
/// The channel is the application's `tonic::transport::Channel`; it reconnects by itself,
/// so the check recovers when the upstream is back. Any other status fails naming it, and
/// an error status (`NOT_FOUND` for a service the upstream does not know) fails with its
/// code and message.
///
/// # Example
///
/// ```
/// use tonic::transport::Channel;
/// use tower_health::checks;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let channel = Channel::from_static("http://inventory.internal:50051").connect_lazy();
/// let check = checks::grpc::health("inventory", channel.clone(), "inventory.v1.Inventory");
/// # drop(check);
/// # }
/// ```
pub fn health(
    name: impl Into<Cow<'static, str>>,
    channel: tonic::transport::Channel,
    service: impl Into<String>,
) -> Check {
    let service: Arc<str> = Arc::from(service.into());
    check(name, move || {
        let mut client = HealthClient::new(channel.clone());
        let request = HealthCheckRequest {
            service: service.to_string(),
        };
        let service = service.clone();
        async move {
            let started = Instant::now();
            let outcome = match client.check(request).await {
                Ok(response) => match response.into_inner().status() {
                    ServingStatus::Serving => Outcome::pass(),
                    status => Outcome::fail(format_args!(
                        "health of {service:?} is {}",
                        status.as_str_name()
                    )),
                },
                Err(status) => failed(format_args!("health of {service:?}"), &status),
            };
            latency(outcome, started)
        }
    })
}
