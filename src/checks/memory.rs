//! The process's memory against its cgroup's limit (feature `check-memory`), read from
//! `/sys/fs/cgroup` (cgroup v2, or v1's memory controller).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{check, failed};
use crate::check::{Check, Outcome};

/// Where cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// A v1 limit at or above this is "no limit" (the kernel writes the largest page-aligned
/// `i64`).
const V1_NO_LIMIT: u64 = 1 << 62;

/// A check of the memory the process's cgroup uses against the cgroup's limit: `warn` at
/// `warn_at` percent of the limit, `fail` at `fail_at` percent.
///
/// The cgroup is the one `/proc/self/cgroup` names (in a container, usually the
/// container's own), with cgroup v2's `memory.max` and `memory.current`, or cgroup v1's
/// `memory.limit_in_bytes` and `memory.usage_in_bytes`. The observed value is the use in
/// percent of the limit; with no limit the check passes and observes the use in bytes.
/// A container near its limit is killed by the kernel: put this check on readiness (the
/// default), so that a replica that fills up stops taking traffic first, and never on
/// liveness.
///
/// # Example
///
/// ```
/// use tower_health::checks;
///
/// let check = checks::memory::cgroup("memory", 85.0, 95.0).non_critical();
/// # drop(check);
/// ```
pub fn cgroup(name: impl Into<Cow<'static, str>>, warn_at: f64, fail_at: f64) -> Check {
    check(name, move || async move {
        match tokio::task::spawn_blocking(own_cgroup).await {
            Ok(Ok(dir)) => measure(&dir, warn_at, fail_at),
            Ok(Err(error)) => failed(format_args!("finding the process's cgroup"), &error),
            Err(error) => failed(format_args!("finding the process's cgroup"), &error),
        }
    })
}

/// A check like [`cgroup`], of the cgroup whose directory is `dir` (for example
/// `/sys/fs/cgroup/system.slice/app.service`).
///
/// # Example
///
/// ```
/// use tower_health::checks;
///
/// let check = checks::memory::cgroup_in("memory", "/sys/fs/cgroup", 85.0, 95.0);
/// # drop(check);
/// ```
pub fn cgroup_in(
    name: impl Into<Cow<'static, str>>,
    dir: impl Into<PathBuf>,
    warn_at: f64,
    fail_at: f64,
) -> Check {
    let dir: Arc<Path> = Arc::from(dir.into());
    check(name, move || {
        let dir = dir.clone();
        async move { measure(&dir, warn_at, fail_at) }
    })
}

/// The directory of this process's memory cgroup.
fn own_cgroup() -> std::io::Result<PathBuf> {
    let listing = std::fs::read_to_string("/proc/self/cgroup")?;
    let root = Path::new(CGROUP_ROOT);
    let mut candidates = Vec::new();
    for line in listing.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            // cgroup v2: one hierarchy.
            candidates.push(root.join(relative));
            candidates.push(root.join("unified").join(relative));
        } else if controllers.split(',').any(|c| c == "memory") {
            candidates.push(root.join("memory").join(relative));
            // In a container the hierarchy is often mounted at the cgroup itself.
            candidates.push(root.join("memory"));
        }
    }
    candidates.push(root.to_path_buf());
    Ok(candidates
        .into_iter()
        .find(|dir| dir.join("memory.max").is_file() || dir.join("memory.limit_in_bytes").is_file())
        .unwrap_or_else(|| root.to_path_buf()))
}

/// Reads a cgroup's use and limit: `(used, Some(limit))`, or no limit.
fn read(dir: &Path) -> std::io::Result<(u64, Option<u64>)> {
    let number = |file: &str| -> std::io::Result<Option<u64>> {
        let text = std::fs::read_to_string(dir.join(file))?;
        let text = text.trim();
        if text == "max" {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} holds {text:?}, not a number", dir.join(file).display()),
            )
        })
    };
    if dir.join("memory.max").exists() {
        let used = number("memory.current")?.unwrap_or(0);
        Ok((used, number("memory.max")?))
    } else {
        let used = number("memory.usage_in_bytes")?.unwrap_or(0);
        let limit = number("memory.limit_in_bytes")?.filter(|&limit| limit < V1_NO_LIMIT);
        Ok((used, limit))
    }
}

fn measure(dir: &Path, warn_at: f64, fail_at: f64) -> Outcome {
    match read(dir) {
        Ok((used, None)) => Outcome::pass().observed(used, Some("bytes")),
        Ok((used, Some(limit))) => {
            let percent = if limit == 0 {
                100.0
            } else {
                used as f64 * 100.0 / limit as f64
            };
            let reason = |threshold: f64| {
                format!("{used} of {limit} bytes in use ({percent:.1}%), at or above {threshold}%")
            };
            let outcome = if percent >= fail_at {
                Outcome::fail(reason(fail_at))
            } else if percent >= warn_at {
                Outcome::warn(reason(warn_at))
            } else {
                Outcome::pass()
            };
            outcome.observed((percent * 10.0).round() / 10.0, Some("%"))
        }
        Err(error) => failed(
            format_args!("reading the cgroup memory files in {}", dir.display()),
            &error,
        ),
    }
}
