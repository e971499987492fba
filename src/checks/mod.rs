//! Ready-made checks for the dependencies most services have, each behind a cargo feature.
//!
//! Each function here returns a [`Check`] that asks one dependency one cheap question
//! (a TCP connect, `SELECT 1`, `PING`, an HTTP `GET`, gRPC health) on the client or
//! pool the application already has: a check never opens a pool of its own, so what it
//! reports is what the application's own requests meet. Add the options as on any
//! check (`.timeout(...)`, `.non_critical()`...).
//!
//! Every check here reports:
//!
//! - **its latency** as the observed value (`observedValue` in milliseconds, unit `ms`),
//!   or, for the local ones (disk, memory, certificate), the quantity it measured;
//! - **the whole chain of causes** of a failure, not only the top error's text
//!   (`connecting to 127.0.0.1:5432: Connection refused (os error 111)`), kept to the
//!   first KiB as every check's reason is;
//! - **recovery by itself**: nothing is cached between runs but the client the check was
//!   given, so the first run after the dependency is back passes, as long as that client
//!   reconnects (a pool does; a lone connection may not: each function says).
//!
//! A pool check also reports the pool's saturation: when every connection is in use it
//! answers `warn` at once, without waiting for a connection (a check that queued behind
//! the application's requests would only time out) and without taking one from them.
//!
//! | feature | function | asks |
//! |---|---|---|
//! | `check-tcp` | [`tcp::connect`] | a TCP connection to an address opens |
//! | `check-dns` | [`dns::resolve`] | a host name resolves to at least one address |
//! | `check-hyper` | [`http::hyper`] | `GET` through hyper-util's client answers the expected status |
//! | `check-reqwest` | [`http::reqwest`] | `GET` through a `reqwest::Client` answers the expected status |
//! | `check-postgres` | [`postgres::client`] | `SELECT 1` on a `tokio_postgres::Client` |
//! | `check-deadpool-postgres` | [`postgres::deadpool`] | `SELECT 1` on a `deadpool_postgres::Pool`, and its saturation |
//! | `check-sqlx-postgres` | [`postgres::sqlx`] | a ping on a `sqlx::PgPool`, and its saturation |
//! | `check-sqlx-mysql` | [`mysql::sqlx`] | a ping on a `sqlx::MySqlPool` (MySQL, MariaDB), and its saturation |
//! | `check-redis` | [`redis::connection`] | `PING` on a `redis` connection manager or multiplexed connection |
//! | `check-deadpool-redis` | [`redis::deadpool`] | `PING` on a `deadpool_redis::Pool`, and its saturation |
//! | `check-lapin` | [`rabbitmq::lapin`] | a `lapin::Connection` is connected and opens a channel |
//! | `check-grpc` | [`grpc::health`] | an upstream's `grpc.health.v1` `Check` answers `SERVING` |
//! | `check-disk` | [`disk::free_space`] | free space on a path's file system, in bytes or percent |
//! | `check-memory` | [`memory::cgroup`] | the process's cgroup memory use against its limit |
//! | `check-tls-cert` | [`tls::certificate_expiry`] | a certificate file has not expired, nor will within a margin |
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "check-tcp")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::time::Duration;
//! use tower_health::{checks, Health, Status};
//!
//! // Something listening, as a database would.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let address = listener.local_addr().unwrap().to_string();
//!
//! let health = Health::builder()
//!     .check(checks::tcp::connect("database", address).timeout(Duration::from_millis(500)))
//!     .build();
//!
//! let report = health.refresh().await;
//! let database = report.check("database").unwrap();
//! assert_eq!(database.status(), Status::Pass);
//! // The connect's latency, in milliseconds.
//! assert_eq!(database.observed().unwrap().unit(), Some("ms"));
//! # }
//! # #[cfg(not(feature = "check-tcp"))]
//! # fn main() {}
//! ```
//!
//! # A service's whole health part
//!
//! An axum service with a PostgreSQL pool, Redis, an HTTP dependency, a model that loads
//! at start-up and a shutdown that drains: its health takes the 19 lines between the
//! markers.
//!
//! ```no_run
//! # #[cfg(all(feature = "check-deadpool-postgres", feature = "check-deadpool-redis", feature = "check-reqwest"))]
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # use axum::{routing::get, Router};
//! # let postgres = deadpool_postgres::Config::new().create_pool(Some(deadpool_postgres::Runtime::Tokio1), tokio_postgres::NoTls)?;
//! # let redis = deadpool_redis::Config::from_url("redis://127.0.0.1:6379").create_pool(Some(deadpool_redis::Runtime::Tokio1))?;
//! # let http = reqwest::Client::new();
//! # async fn load_model() {}
//! use std::time::Duration;
//! use tower_health::{checks, Gate, Health};
//!
//! // --- the health part ---
//! let model = Gate::new("model");
//! let health = Health::builder()
//!     .check(checks::postgres::deadpool("postgres", postgres.clone()).timeout(Duration::from_millis(800)))
//!     .check(checks::redis::deadpool("redis", redis.clone()).non_critical())
//!     .check(
//!         checks::http::reqwest("billing", http.clone(), "http://billing/healthz", http::StatusCode::OK)
//!             .timeout(Duration::from_millis(800))
//!             .every(Duration::from_secs(10)),
//!     )
//!     .gate(&model)
//!     .build();
//! let shutdown = health.shutdown_signal();
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(health.layer());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! let server = tokio::spawn(async { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
//! load_model().await;
//! model.open();
//! health.ready();
//! health.with_deadline(server).await.transpose()?;
//! // --- end of the health part ---
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "check-deadpool-postgres", feature = "check-deadpool-redis", feature = "check-reqwest")))]
//! # fn main() {}
//! ```

use std::borrow::Cow;
use std::error::Error;
use std::fmt::{self, Write as _};
use std::future::Future;

use crate::check::{Check, HealthCheck, Outcome};

#[cfg(feature = "check-disk")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-disk")))]
pub mod disk;
#[cfg(feature = "check-dns")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-dns")))]
pub mod dns;
#[cfg(feature = "check-grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-grpc")))]
pub mod grpc;
#[cfg(any(feature = "check-hyper", feature = "check-reqwest"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "check-hyper", feature = "check-reqwest")))
)]
pub mod http;
#[cfg(feature = "check-memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-memory")))]
pub mod memory;
#[cfg(feature = "check-sqlx-mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-sqlx-mysql")))]
pub mod mysql;
#[cfg(any(
    feature = "check-postgres",
    feature = "check-deadpool-postgres",
    feature = "check-sqlx-postgres"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "check-postgres",
        feature = "check-deadpool-postgres",
        feature = "check-sqlx-postgres"
    )))
)]
pub mod postgres;
#[cfg(feature = "check-lapin")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-lapin")))]
pub mod rabbitmq;
#[cfg(any(feature = "check-redis", feature = "check-deadpool-redis"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "check-redis", feature = "check-deadpool-redis")))
)]
pub mod redis;
#[cfg(feature = "check-tcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-tcp")))]
pub mod tcp;
#[cfg(feature = "check-tls-cert")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-tls-cert")))]
pub mod tls;

/// A check whose every run is the future that `run` returns.
struct Run<F>(F);

impl<F, Fut> HealthCheck for Run<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn check(&self) -> impl Future<Output = Outcome> + Send {
        (self.0)()
    }
}

/// A [`Check`] named `name` whose runs are the futures `run` returns.
fn check<F, Fut>(name: impl Into<Cow<'static, str>>, run: F) -> Check
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    Check::from_health_check(name, Run(run))
}

/// A failed outcome that says what was being done and the error's whole chain of causes.
#[allow(dead_code)] // not every feature's checks fail with an error value
fn failed(doing: fmt::Arguments<'_>, error: &(dyn Error + 'static)) -> Outcome {
    let mut reason = String::new();
    let _ = reason.write_fmt(doing);
    if !reason.is_empty() {
        reason.push_str(": ");
    }
    reason.push_str(&crate::check::causes(error));
    Outcome::fail(reason)
}

/// The warning of a pool with no free connection: the check does not wait for one.
#[allow(dead_code)] // only the pool checks use it
fn saturated(in_use: usize, max: usize, waiting: Option<usize>) -> Outcome {
    match waiting {
        Some(waiting) if waiting > 0 => Outcome::warn(format_args!(
            "pool saturated: {in_use} of {max} connections in use, {waiting} waiting for one"
        )),
        _ => Outcome::warn(format_args!(
            "pool saturated: {in_use} of {max} connections in use"
        )),
    }
    .observed(in_use, Some("connections in use"))
}

/// Pings on an idle connection of an sqlx pool, or on a connection of its own made with
/// the pool's options when none is idle, or warns when the pool has none free.
///
/// Taking a new connection from the pool is not an option: on a refused connection the
/// pool retries until its acquire timeout, and its error then names no cause.
#[cfg(any(feature = "check-sqlx-postgres", feature = "check-sqlx-mysql"))]
async fn sqlx_ping<DB: sqlx::Database>(pool: sqlx::Pool<DB>) -> Outcome {
    use sqlx::{ConnectOptions as _, Connection as _};

    let started = tokio::time::Instant::now();
    let max = pool.options().get_max_connections();
    let size = pool.size();
    if pool.num_idle() == 0 && size >= max {
        return saturated(size as usize, max as usize, None);
    }
    if let Some(mut idle) = pool.try_acquire() {
        if idle.ping().await.is_ok() {
            return latency(Outcome::pass(), started);
        }
        // Broken (the server restarted): the pool must not hand it out again, and the
        // question goes to a new connection.
        idle.close_on_drop();
    }
    let outcome = match pool.connect_options().connect().await {
        Ok(mut connection) => {
            let outcome = match connection.ping().await {
                Ok(()) => Outcome::pass(),
                Err(error) => failed(format_args!("ping"), &error),
            };
            let _ = connection.close().await;
            outcome
        }
        Err(error) => failed(format_args!("connecting"), &error),
    };
    latency(outcome, started)
}

/// Milliseconds since `started`, with microseconds, as the observed latency.
#[allow(dead_code)] // the local checks observe something else
fn latency(outcome: Outcome, started: tokio::time::Instant) -> Outcome {
    let micros = started.elapsed().as_micros();
    let ms = micros as f64 / 1000.0;
    outcome.observed(ms, Some("ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn chain(texts: &[&'static str]) -> Layer {
        let mut error: Option<Box<Layer>> = None;
        for text in texts.iter().rev() {
            error = Some(Box::new(Layer(text, error)));
        }
        *error.unwrap()
    }

    #[test]
    fn the_causes_follow_the_error_joined_by_colons() {
        let error = chain(&[
            "error sending request",
            "client error (Connect)",
            "Connection refused",
        ]);
        assert_eq!(
            crate::check::causes(&error),
            "error sending request: client error (Connect): Connection refused"
        );
    }

    #[test]
    fn a_cause_the_text_already_holds_is_not_repeated() {
        let error = chain(&["db error: Connection refused", "Connection refused"]);
        assert_eq!(crate::check::causes(&error), "db error: Connection refused");
    }

    #[test]
    fn a_chain_deeper_than_the_limit_is_cut() {
        let texts: Vec<&'static str> = (0..40)
            .map(|i| &*Box::leak(format!("level {i:02}").into_boxed_str()))
            .collect();
        let text = crate::check::causes(&chain(&texts));
        assert!(text.ends_with("level 16: ..."), "{text}");
    }

    #[test]
    fn failed_names_what_was_done_first() {
        let error = chain(&["timed out"]);
        let outcome = failed(format_args!("connecting to db:5432"), &error);
        assert_eq!(outcome.status(), crate::Status::Fail);
        assert_eq!(
            outcome.output.as_deref(),
            Some("connecting to db:5432: timed out")
        );
    }
}
