//! A DNS name resolves (feature `check-dns`), through the system's resolver.

use std::borrow::Cow;
use std::sync::Arc;

use tokio::time::Instant;

use super::{check, failed, latency};
use crate::check::{Check, Outcome};

/// A check that resolves `host` to at least one address, as connecting to it would.
///
/// It resolves through the operating system's resolver (`getaddrinfo`, on Tokio's
/// blocking pool), so `/etc/hosts`, search domains and the resolver's cache apply as they
/// do to the application's own connections.
///
/// # Example
///
/// ```
/// use tower_health::checks;
///
/// let check = checks::dns::resolve("dns", "payments.internal").non_critical();
/// # drop(check);
/// ```
pub fn resolve(name: impl Into<Cow<'static, str>>, host: impl Into<String>) -> Check {
    let host: Arc<str> = Arc::from(host.into());
    check(name, move || {
        let host = host.clone();
        async move {
            let started = Instant::now();
            let outcome = match tokio::net::lookup_host((&*host, 0)).await {
                Ok(mut addresses) => match addresses.next() {
                    Some(_) => Outcome::pass(),
                    None => Outcome::fail(format_args!("resolving {host}: no address")),
                },
                Err(error) => failed(format_args!("resolving {host}"), &error),
            };
            latency(outcome, started)
        }
    })
}
