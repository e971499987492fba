//! MySQL and MariaDB: a ping on a `sqlx::MySqlPool` (feature `check-sqlx-mysql`).

use std::borrow::Cow;

use super::check;
use crate::check::Check;

/// A check that pings the server on a connection of `pool`, the application's
/// `sqlx::MySqlPool`, and warns when the pool has no free connection.
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
/// let pool = sqlx::mysql::MySqlPoolOptions::new()
///     .max_connections(5)
///     .connect_lazy("mysql://app@127.0.0.1/app")
///     .unwrap();
/// let check = checks::mysql::sqlx("mariadb", pool.clone());
/// # drop(check);
/// # }
/// ```
pub fn sqlx(name: impl Into<Cow<'static, str>>, pool: sqlx::MySqlPool) -> Check {
    check(name, move || super::sqlx_ping(pool.clone()))
}
