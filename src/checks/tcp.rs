//! A TCP connect to an address (feature `check-tcp`): something listens there.

use std::borrow::Cow;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{check, failed, latency};
use crate::check::{Check, Outcome};

/// A check that opens a TCP connection to `address` (`"host:port"`) and closes it at once.
///
/// The host is resolved on every run, so a name that moves to a new address is followed.
/// It says only that something accepts connections there, not that it answers: prefer a
/// check that asks the dependency a question when there is one for it.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_health::checks;
///
/// let check = checks::tcp::connect("smtp", "mail.internal:25").timeout(Duration::from_millis(800));
/// # drop(check);
/// ```
pub fn connect(name: impl Into<Cow<'static, str>>, address: impl Into<String>) -> Check {
    let address: Arc<str> = Arc::from(address.into());
    check(name, move || {
        let address = address.clone();
        async move {
            let started = Instant::now();
            let outcome = match TcpStream::connect(&*address).await {
                Ok(stream) => {
                    drop(stream);
                    Outcome::pass()
                }
                Err(error) => failed(format_args!("connecting to {address}"), &error),
            };
            latency(outcome, started)
        }
    })
}
