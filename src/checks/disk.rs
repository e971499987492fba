//! Free space on the file system that holds a path (feature `check-disk`), from
//! `statvfs` through rustix.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{check, failed};
use crate::check::{Check, Outcome};

/// An amount of free space: a number of bytes, or a percentage of the file system's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Free {
    /// Bytes available to the application (not counting the blocks kept for root).
    Bytes(u64),
    /// Percent of the file system's size available to the application, from 0 to 100.
    Percent(f64),
}

impl Free {
    /// Whether this amount is more than `available` bytes of `total`.
    fn is_more_than(self, available: u64, total: u64) -> bool {
        match self {
            Free::Bytes(bytes) => available < bytes,
            Free::Percent(percent) => percent_of(available, total) < percent,
        }
    }
}

impl fmt::Display for Free {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Free::Bytes(bytes) => write!(f, "{}", Bytes(bytes)),
            Free::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// A number of bytes as people read it: `512 B`, `3.2 GiB`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

fn percent_of(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// A check of the free space on the file system that holds `path`: `warn` below
/// `warn_below`, `fail` below `fail_below`.
///
/// The observed value is the free space in bytes (what an unprivileged process may still
/// write). The call runs on Tokio's blocking pool, so a file system that hangs (a lost
/// network mount) costs a thread, not the runtime, and fails at the check's timeout.
///
/// # Example
///
/// ```
/// use tower_health::checks::disk::{self, Free};
/// use tower_health::{Health, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = Health::builder()
///     .check(disk::free_space("data", std::env::temp_dir(), Free::Percent(0.0), Free::Bytes(0)))
///     .build();
/// let report = health.refresh().await;
/// assert_eq!(report.check("data").unwrap().status(), Status::Pass);
/// # }
/// ```
pub fn free_space(
    name: impl Into<Cow<'static, str>>,
    path: impl Into<PathBuf>,
    warn_below: Free,
    fail_below: Free,
) -> Check {
    let path: Arc<Path> = Arc::from(path.into());
    check(name, move || {
        let path = path.clone();
        async move {
            let asked = path.clone();
            match tokio::task::spawn_blocking(move || rustix::fs::statvfs(&*asked)).await {
                Ok(Ok(stats)) => {
                    let block = stats.f_frsize.max(1);
                    let total = stats.f_blocks.saturating_mul(block);
                    let available = stats.f_bavail.saturating_mul(block);
                    let status = |threshold: Free| {
                        format!(
                            "{} free of {} on {} ({:.1}%), below {threshold}",
                            Bytes(available),
                            Bytes(total),
                            path.display(),
                            percent_of(available, total),
                        )
                    };
                    let outcome = if fail_below.is_more_than(available, total) {
                        Outcome::fail(status(fail_below))
                    } else if warn_below.is_more_than(available, total) {
                        Outcome::warn(status(warn_below))
                    } else {
                        Outcome::pass()
                    };
                    outcome.observed(available, Some("bytes"))
                }
                Ok(Err(error)) => {
                    let error = std::io::Error::from(error);
                    failed(format_args!("statvfs {}", path.display()), &error)
                }
                Err(error) => failed(format_args!("statvfs {}", path.display()), &error),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_read_them() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(
            Bytes(3 * 1024 * 1024 * 1024 + 1024 * 1024 * 200).to_string(),
            "3.2 GiB"
        );
        assert_eq!(Bytes(u64::MAX).to_string(), "16.0 EiB");
    }

    #[test]
    fn a_threshold_in_percent_compares_to_the_share_of_the_total() {
        assert!(Free::Percent(10.0).is_more_than(5, 100));
        assert!(!Free::Percent(10.0).is_more_than(10, 100));
        assert!(Free::Bytes(11).is_more_than(10, 100));
    }
}
