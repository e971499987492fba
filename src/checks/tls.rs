//! A TLS certificate file's expiry (feature `check-tls-cert`), parsed with x509-parser.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{check, failed};
use crate::check::{Check, Outcome};

/// The validity that every certificate of a file shares, in seconds since the epoch.
struct Validity {
    not_before: i64,
    not_after: i64,
}

/// A check that reads the certificate file at `path` on every run: `fail` once a
/// certificate in it has expired (or is not valid yet), `warn` from `warn_before` ahead
/// of its expiry.
///
/// The file is PEM (one certificate or a chain; the one that expires first counts) or a
/// single DER certificate. It is read again on every run, so a certificate renewed on
/// disk is seen at once. The observed value is the time left, in days. Mark the check
/// [`non_critical`](Check::non_critical) to be warned without leaving the load balancer.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_health::checks;
///
/// let check = checks::tls::certificate_expiry(
///     "tls-cert",
///     "/etc/tls/tls.crt",
///     Duration::from_secs(14 * 24 * 60 * 60),
/// )
/// .non_critical();
/// # drop(check);
/// ```
pub fn certificate_expiry(
    name: impl Into<Cow<'static, str>>,
    path: impl Into<PathBuf>,
    warn_before: Duration,
) -> Check {
    let path: Arc<Path> = Arc::from(path.into());
    check(name, move || {
        let path = path.clone();
        async move {
            let file = path.clone();
            let read = tokio::task::spawn_blocking(move || std::fs::read(&*file)).await;
            let bytes = match read {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(error)) => {
                    return failed(format_args!("reading {}", path.display()), &error)
                }
                Err(error) => return failed(format_args!("reading {}", path.display()), &error),
            };
            match validity(&bytes) {
                Ok(validity) => judge(&validity, &path, warn_before),
                Err(reason) => Outcome::fail(format_args!("{}: {reason}", path.display())),
            }
        }
    })
}

/// The earliest expiry and the latest start of validity of the certificates in `bytes`.
fn validity(bytes: &[u8]) -> Result<Validity, String> {
    let mut found: Option<Validity> = None;
    let mut add = |certificate: &x509_parser::certificate::X509Certificate<'_>| {
        let not_before = certificate.validity().not_before.timestamp();
        let not_after = certificate.validity().not_after.timestamp();
        let entry = found.get_or_insert(Validity {
            not_before,
            not_after,
        });
        entry.not_before = entry.not_before.max(not_before);
        entry.not_after = entry.not_after.min(not_after);
    };
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
            let pem = pem.map_err(|error| format!("not PEM: {error}"))?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            let certificate = pem
                .parse_x509()
                .map_err(|error| format!("not an X.509 certificate: {error}"))?;
            add(&certificate);
        }
    } else {
        let (_, certificate) = x509_parser::parse_x509_certificate(bytes)
            .map_err(|error| format!("neither PEM nor a DER certificate: {error}"))?;
        add(&certificate);
    }
    found.ok_or_else(|| "no certificate in the file".to_owned())
}

fn judge(validity: &Validity, path: &Path, warn_before: Duration) -> Outcome {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = validity.not_after.saturating_sub(now);
    let days = (left as f64 / 86_400.0 * 10.0).round() / 10.0;
    let outcome = if now < validity.not_before {
        Outcome::fail(format_args!(
            "{} is not valid before {}",
            path.display(),
            date(validity.not_before)
        ))
    } else if left <= 0 {
        Outcome::fail(format_args!(
            "{} expired on {}",
            path.display(),
            date(validity.not_after)
        ))
    } else if (left as u64) < warn_before.as_secs() {
        Outcome::warn(format_args!(
            "{} expires on {}, in {days} days",
            path.display(),
            date(validity.not_after)
        ))
    } else {
        Outcome::pass()
    };
    outcome.observed(days, Some("days"))
}

/// A time in seconds since the epoch, in RFC 3339 (years 1970 to 9999; others as a
/// number of seconds, which no real certificate needs).
fn date(seconds: i64) -> String {
    const YEAR_10000: i64 = 253_402_300_800;
    if (0..YEAR_10000).contains(&seconds) {
        let time = UNIX_EPOCH + Duration::from_secs(seconds as u64);
        humantime::format_rfc3339_seconds(time).to_string()
    } else {
        format!("{seconds} s from 1970-01-01")
    }
}
