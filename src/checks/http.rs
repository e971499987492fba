//! An HTTP `GET` that must answer an expected status, through hyper-util's client (feature
//! `check-hyper`) or a `reqwest::Client` (feature `check-reqwest`).
//!
//! The response's body is not read: the status is the answer. Give the check a timeout
//! that fits the upstream (`.timeout(...)`): a run that overruns it is dropped, and its
//! connection with it.

use std::borrow::Cow;
#[cfg(feature = "check-reqwest")]
use std::sync::Arc;

use http::StatusCode;
use tokio::time::Instant;

use super::{check, failed, latency};
use crate::check::{Check, Outcome};

/// The outcome of a response with status `got` where `expected` was wanted.
fn status_outcome(url: &dyn std::fmt::Display, got: StatusCode, expected: StatusCode) -> Outcome {
    if got == expected {
        Outcome::pass()
    } else {
        Outcome::fail(format_args!(
            "GET {url} answered {got}, expected {expected}"
        ))
    }
}

/// A check that sends `GET uri` through `client`, the application's hyper-util client,
/// and passes when the answer's status is `expected`.
///
/// The client's connection pool is the application's: a connection that broke is
/// replaced by the client itself, so the check recovers when the upstream is back.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower_health::checks;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
/// let check = checks::http::hyper(
///     "billing",
///     client,
///     "http://billing.internal/healthz".parse().unwrap(),
///     StatusCode::OK,
/// )
/// .timeout(Duration::from_millis(800));
/// # drop(check);
/// # }
/// ```
#[cfg(feature = "check-hyper")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-hyper")))]
pub fn hyper<C, B>(
    name: impl Into<Cow<'static, str>>,
    client: hyper_util::client::legacy::Client<C, B>,
    uri: http::Uri,
    expected: StatusCode,
) -> Check
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    B: http_body::Body + Default + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    check(name, move || {
        let response = client.get(uri.clone());
        let uri = uri.clone();
        async move {
            let started = Instant::now();
            let outcome = match response.await {
                Ok(response) => status_outcome(&uri, response.status(), expected),
                Err(error) => failed(format_args!("GET {uri}"), &error),
            };
            latency(outcome, started)
        }
    })
}

/// A check that sends `GET url` through `client`, the application's `reqwest::Client`,
/// and passes when the answer's status is `expected`.
///
/// A URL that does not parse fails every run, saying so. The client's connection pool is
/// the application's, so the check recovers when the upstream is back.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use tower_health::checks;
///
/// let client = reqwest::Client::new();
/// let check = checks::http::reqwest("billing", client, "http://billing.internal/healthz", StatusCode::OK)
///     .timeout(Duration::from_millis(800));
/// # drop(check);
/// ```
#[cfg(feature = "check-reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-reqwest")))]
pub fn reqwest(
    name: impl Into<Cow<'static, str>>,
    client: reqwest::Client,
    url: impl Into<String>,
    expected: StatusCode,
) -> Check {
    let url: Arc<str> = Arc::from(url.into());
    check(name, move || {
        let request = client.get(&*url);
        let url = url.clone();
        async move {
            let started = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => status_outcome(&url, response.status(), expected),
                Err(error) => failed(format_args!("GET {url}"), &error),
            };
            latency(outcome, started)
        }
    })
}
