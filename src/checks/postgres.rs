//! PostgreSQL: `SELECT 1` on a `tokio_postgres::Client` (feature `check-postgres`), a
//! `deadpool_postgres::Pool` (feature `check-deadpool-postgres`) or a `sqlx::PgPool`
//! (feature `check-sqlx-postgres`).
//!
//! The pool checks take the application's pool and report its saturation: when every
//! connection is in use they answer `warn` at once, without waiting for one.

use std::borrow::Cow;

#[allow(unused_imports)] // each feature uses some
use super::{check, failed, latency, saturated};
#[allow(unused_imports)] // the sqlx check needs only `Check`
use crate::check::{Check, Outcome};
#[cfg(any(feature = "check-postgres", feature = "check-deadpool-postgres"))]
use tokio::time::Instant;

/// A check that runs `SELECT 1` on `client`, the application's `tokio_postgres::Client`.
///
/// A `Client` is one connection, and it does not reconnect: once its connection has
/// ended (the server restarted) every run fails with "connection closed" until the
/// application replaces it, which is the truth about that client. Give the check a pool
/// ([`deadpool`], [`sqlx`](fn@sqlx)) to have it recover by itself.
///
/// # Example
///
/// ```no_run
/// use std::sync::Arc;
/// use tower_health::checks;
///
/// # async fn run() -> Result<(), tokio_postgres::Error> {
/// let (client, connection) =
///     tokio_postgres::connect("host=127.0.0.1 user=postgres", tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// let client = Arc::new(client);
/// let check = checks::postgres::client("postgres", client.clone());
/// # drop(check);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "check-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-postgres")))]
pub fn client(
    name: impl Into<Cow<'static, str>>,
    client: impl Into<std::sync::Arc<tokio_postgres::Client>>,
) -> Check {
    let client = client.into();
    check(name, move || {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let outcome = match client.simple_query("SELECT 1").await {
                Ok(_) => Outcome::pass(),
                Err(error) => failed(format_args!("SELECT 1"), &error),
            };
            latency(outcome, started)
        }
    })
}

/// A check that runs `SELECT 1` on a connection of `pool`, the application's
/// `deadpool_postgres::Pool`, and warns when the pool has no free connection.
///
/// When every connection is in use the check answers `warn` at once, without waiting
/// for one. Otherwise it takes a free connection (or lets the pool open one, below its
/// maximum) for the query and gives it back. A connection broken by a restart of the
/// server is replaced by the pool when it is next taken, so the check recovers by itself.
///
/// # Example
///
/// ```
/// use tower_health::checks;
///
/// let mut config = deadpool_postgres::Config::new();
/// config.host = Some("127.0.0.1".into());
/// config.user = Some("postgres".into());
/// config.dbname = Some("postgres".into());
/// let pool = config
///     .create_pool(Some(deadpool_postgres::Runtime::Tokio1), tokio_postgres::NoTls)
///     .unwrap();
/// let check = checks::postgres::deadpool("postgres", pool.clone());
/// # drop(check);
/// ```
#[cfg(feature = "check-deadpool-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-deadpool-postgres")))]
pub fn deadpool(name: impl Into<Cow<'static, str>>, pool: deadpool_postgres::Pool) -> Check {
    check(name, move || {
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            let status = pool.status();
            if status.available == 0 && status.size >= status.max_size {
                return saturated(status.size, status.max_size, Some(status.waiting));
            }
            let outcome = match pool.get().await {
                Ok(client) => match client.simple_query("SELECT 1").await {
                    Ok(_) => Outcome::pass(),
                    Err(error) => failed(format_args!("SELECT 1"), &error),
                },
                Err(error) => failed(format_args!("taking a connection from the pool"), &error),
            };
            latency(outcome, started)
        }
    })
}

/// A check that pings the server on a connection of `pool`, the application's
/// `sqlx::PgPool`, and warns when the pool has no free connection.
///
/// When every connection is in use the check answers `warn` at once, without waiting
/// for one. Otherwise it pings on an idle connection and gives it back; when none is
/// idle (or the idle one is broken, and is then closed) it opens one connection with the
/// pool's options, pings and closes it: the pool itself would retry a refused connection
/// until its acquire timeout and then name no cause. Nothing is kept between runs, so
/// the check recovers by itself.
///
/// # Example
///
/// ```
/// use tower_health::checks;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = sqlx::postgres::PgPoolOptions::new()
///     .max_connections(5)
///     .connect_lazy("postgres://postgres@127.0.0.1/postgres")
///     .unwrap();
/// let check = checks::postgres::sqlx("postgres", pool.clone());
/// # drop(check);
/// # }
/// ```
#[cfg(feature = "check-sqlx-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-sqlx-postgres")))]
pub fn sqlx(name: impl Into<Cow<'static, str>>, pool: sqlx::PgPool) -> Check {
    check(name, move || super::sqlx_ping(pool.clone()))
}
