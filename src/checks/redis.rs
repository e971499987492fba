//! Redis: `PING` on a `redis` connection (feature `check-redis`) or a `deadpool_redis::Pool`
//! (feature `check-deadpool-redis`).

use std::borrow::Cow;

use tokio::time::Instant;

#[allow(unused_imports)] // each feature uses some
use super::{check, failed, latency, saturated};
use crate::check::{Check, Outcome};

/// The outcome of a `PING`'s answer: anything but `PONG` is a failure.
fn pong<E: std::error::Error + 'static>(reply: Result<String, E>) -> Outcome {
    match reply {
        Ok(reply) if reply == "PONG" => Outcome::pass(),
        Ok(reply) => Outcome::fail(format_args!("PING answered {reply:?}, not PONG")),
        Err(error) => failed(format_args!("PING"), &error),
    }
}

/// A check that sends `PING` on `connection`, the application's
/// `redis::aio::ConnectionManager` or `redis::aio::MultiplexedConnection`.
///
/// Give it a `ConnectionManager` to have it recover by itself: the manager reconnects
/// when its connection breaks. A `MultiplexedConnection` does not, and once broken fails
/// every run, as it fails the application's own commands.
///
/// # Example
///
/// ```no_run
/// use tower_health::checks;
///
/// # async fn run() -> redis::RedisResult<()> {
/// let client = redis::Client::open("redis://127.0.0.1:6379")?;
/// let manager = client.get_connection_manager().await?;
/// let check = checks::redis::connection("redis", manager.clone()).non_critical();
/// # drop(check);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "check-redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-redis")))]
pub fn connection<C>(name: impl Into<Cow<'static, str>>, connection: C) -> Check
where
    C: ::redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    check(name, move || {
        let mut connection = connection.clone();
        async move {
            let started = Instant::now();
            let reply = ::redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await;
            latency(pong(reply), started)
        }
    })
}

/// A check that sends `PING` on a connection of `pool`, the application's
/// `deadpool_redis::Pool`, and warns when the pool has no free connection.
///
/// When every connection is in use the check answers `warn` at once, without waiting for
/// one. A connection broken by a restart of the server is replaced by the pool when it is
/// next taken, so the check recovers by itself.
///
/// # Example
///
/// ```
/// use tower_health::checks;
///
/// let pool = deadpool_redis::Config::from_url("redis://127.0.0.1:6379")
///     .create_pool(Some(deadpool_redis::Runtime::Tokio1))
///     .unwrap();
/// let check = checks::redis::deadpool("redis", pool.clone()).non_critical();
/// # drop(check);
/// ```
#[cfg(feature = "check-deadpool-redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "check-deadpool-redis")))]
pub fn deadpool(name: impl Into<Cow<'static, str>>, pool: deadpool_redis::Pool) -> Check {
    check(name, move || {
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            let status = pool.status();
            if status.available == 0 && status.size >= status.max_size {
                return saturated(status.size, status.max_size, Some(status.waiting));
            }
            let outcome = match pool.get().await {
                Ok(mut connection) => pong(
                    deadpool_redis::redis::cmd("PING")
                        .query_async::<String>(&mut connection)
                        .await,
                ),
                Err(error) => failed(format_args!("taking a connection from the pool"), &error),
            };
            latency(outcome, started)
        }
    })
}
