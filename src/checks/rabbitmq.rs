//! RabbitMQ (or any AMQP 0-9-1 broker): a `lapin::Connection` is connected and opens a
//! channel (feature `check-lapin`).

use std::borrow::Cow;
use std::sync::Arc;

use tokio::time::Instant;

use super::{check, failed, latency};
use crate::check::{Check, Outcome};

/// A check that opens a channel on `connection`, the application's `lapin::Connection`,
/// and closes it again: a round trip to the broker on the connection the application uses.
///
/// A connection that is not connected fails at once, saying its state (`reconnecting`,
/// `closed`...). The check recovers by itself when the connection does: open it with
/// `lapin::ConnectionProperties::enable_auto_recover()` so that lapin reconnects after the
/// broker comes back.
///
/// # Example
///
/// ```no_run
/// use std::sync::Arc;
/// use lapin::{Connection, ConnectionProperties};
/// use tower_health::checks;
///
/// # async fn run() -> lapin::Result<()> {
/// let properties = ConnectionProperties::default().enable_auto_recover();
/// let connection = Arc::new(Connection::connect("amqp://127.0.0.1:5672", properties).await?);
/// let check = checks::rabbitmq::lapin("rabbitmq", connection.clone());
/// # drop(check);
/// # Ok(())
/// # }
/// ```
pub fn lapin(
    name: impl Into<Cow<'static, str>>,
    connection: impl Into<Arc<::lapin::Connection>>,
) -> Check {
    let connection = connection.into();
    check(name, move || {
        let connection = connection.clone();
        async move {
            let started = Instant::now();
            let status = connection.status();
            if !status.connected() {
                return latency(
                    Outcome::fail(format_args!("connection is {}", state(status))),
                    started,
                );
            }
            let outcome = match connection.create_channel().await {
                Ok(channel) => match channel.close(200, "health check".into()).await {
                    Ok(()) => Outcome::pass(),
                    Err(error) => failed(format_args!("closing a channel"), &error),
                },
                Err(error) => failed(format_args!("opening a channel"), &error),
            };
            latency(outcome, started)
        }
    })
}

/// A connection's state in a word, for a reason.
fn state(status: &::lapin::ConnectionStatus) -> &'static str {
    if status.reconnecting() {
        "reconnecting"
    } else if status.connecting() {
        "connecting"
    } else if status.closing() {
        "closing"
    } else if status.errored() {
        "broken"
    } else if status.closed() {
        "closed"
    } else {
        "not connected"
    }
}
