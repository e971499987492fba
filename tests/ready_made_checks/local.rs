//! The ready-made checks that ask the machine rather than a server: DNS through the
//! system's resolver (loopback names only), free disk space, cgroup memory and a TLS
//! certificate file's expiry. Each runs through `Health::refresh`, as the layer runs it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kit::needs;
use libtest_mimic::Trial;
use tower_health::checks::disk::{self, Free};
use tower_health::checks::{self, memory, tls};
use tower_health::{Check, CheckReport, Health, Status};

use crate::runtime;

/// The trials that need nothing from the machine, each a test of the target.
pub fn trials() -> Vec<Trial> {
    macro_rules! trials {
        ($($test:ident),* $(,)?) => {
            vec![$(needs::always(stringify!($test), || runtime().block_on($test())),)*]
        };
    }
    trials![
        dns_resolves_localhost_and_reports_the_latency,
        dns_fails_a_name_that_cannot_be_asked_with_the_reason,
        disk_passes_above_both_thresholds_and_observes_the_free_bytes,
        disk_warns_below_the_warning_threshold_naming_the_path,
        disk_fails_below_the_failure_threshold,
        disk_fails_a_missing_path_with_the_system_error,
        memory_under_the_warning_level_passes_observing_the_percent_of_the_limit,
        memory_at_the_warning_level_warns_and_at_the_failure_level_fails,
        memory_with_no_limit_passes_observing_the_bytes_in_use,
        memory_reads_cgroup_v1_files_and_their_no_limit_value,
        memory_fails_clearly_on_missing_or_garbled_files,
        memory_of_the_process_own_cgroup_is_read_on_linux,
        a_certificate_far_from_expiry_passes_observing_the_days_left,
        a_certificate_inside_the_warning_margin_warns_with_its_expiry_date,
        an_expired_certificate_fails_with_the_date_it_expired,
        a_file_that_holds_no_certificate_fails_saying_so,
    ]
}

/// One refresh of `check` alone, and its report.
async fn run(check: Check) -> CheckReport {
    let name = check.name().to_owned();
    let health = Health::builder()
        .check(check)
        .background_refresh(false)
        .budget(Duration::from_secs(10))
        .build();
    let report = health.refresh().await;
    report.check(&name).expect("the check's report").clone()
}

fn output(report: &CheckReport) -> &str {
    report.output().unwrap_or("")
}

fn observed(report: &CheckReport) -> (f64, &str) {
    let observed = report.observed().expect("an observed value");
    (
        observed.value().as_f64().expect("a number"),
        observed.unit().expect("a unit"),
    )
}

/// A directory removed when dropped, holding the files a test writes.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "tower-health-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn write(&self, file: &str, text: &str) -> &Dir {
        std::fs::write(self.0.join(file), text).unwrap();
        self
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(file)
}

// === DNS ===

async fn dns_resolves_localhost_and_reports_the_latency() {
    let report = run(checks::dns::resolve("dns", "localhost")).await;
    assert_eq!(report.status(), Status::Pass, "{}", output(&report));
    assert_eq!(observed(&report).1, "ms");
}

async fn dns_fails_a_name_that_cannot_be_asked_with_the_reason() {
    // A NUL byte never leaves the process: no query is sent anywhere.
    let report = run(checks::dns::resolve("dns", "bad\0name")).await;
    assert_eq!(report.status(), Status::Fail);
    assert!(
        output(&report).starts_with("resolving bad\0name: "),
        "{}",
        output(&report)
    );
}

// === disk ===

async fn disk_passes_above_both_thresholds_and_observes_the_free_bytes() {
    let check = disk::free_space(
        "disk",
        std::env::temp_dir(),
        Free::Bytes(1),
        Free::Percent(0.0),
    );
    let report = run(check).await;
    assert_eq!(report.status(), Status::Pass, "{}", output(&report));
    let (free, unit) = observed(&report);
    assert_eq!(unit, "bytes");
    assert!(free >= 1.0);
}

async fn disk_warns_below_the_warning_threshold_naming_the_path() {
    let dir = std::env::temp_dir();
    let check = disk::free_space("disk", &dir, Free::Percent(100.1), Free::Bytes(0));
    let report = run(check).await;
    assert_eq!(report.status(), Status::Warn);
    let text = output(&report);
    assert!(text.contains(&*dir.display().to_string()), "{text}");
    assert!(text.ends_with("below 100.1%"), "{text}");
}

async fn disk_fails_below_the_failure_threshold() {
    let check = disk::free_space(
        "disk",
        std::env::temp_dir(),
        Free::Bytes(0),
        Free::Bytes(u64::MAX),
    );
    let report = run(check).await;
    assert_eq!(report.status(), Status::Fail);
    assert!(
        output(&report).ends_with("below 16.0 EiB"),
        "{}",
        output(&report)
    );
}

async fn disk_fails_a_missing_path_with_the_system_error() {
    let check = disk::free_space("disk", "/no/such/dir", Free::Bytes(0), Free::Bytes(0));
    let report = run(check).await;
    assert_eq!(report.status(), Status::Fail);
    let text = output(&report);
    assert!(text.starts_with("statvfs /no/such/dir: "), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
}

// === memory ===

async fn memory_under_the_warning_level_passes_observing_the_percent_of_the_limit() {
    let dir = Dir::new("cgroup-v2-pass");
    dir.write("memory.max", "1000\n")
        .write("memory.current", "500\n");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Pass);
    assert_eq!(observed(&report), (50.0, "%"));
}

async fn memory_at_the_warning_level_warns_and_at_the_failure_level_fails() {
    let dir = Dir::new("cgroup-v2-levels");
    dir.write("memory.max", "1000\n")
        .write("memory.current", "900\n");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Warn);
    assert_eq!(
        output(&report),
        "900 of 1000 bytes in use (90.0%), at or above 85%"
    );
    dir.write("memory.current", "990\n");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Fail);
    assert_eq!(observed(&report), (99.0, "%"));
}

async fn memory_with_no_limit_passes_observing_the_bytes_in_use() {
    let dir = Dir::new("cgroup-v2-max");
    dir.write("memory.max", "max\n")
        .write("memory.current", "4096\n");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Pass);
    assert_eq!(observed(&report), (4096.0, "bytes"));
}

async fn memory_reads_cgroup_v1_files_and_their_no_limit_value() {
    let dir = Dir::new("cgroup-v1");
    dir.write("memory.limit_in_bytes", "2000\n")
        .write("memory.usage_in_bytes", "1800\n");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Warn);
    dir.write("memory.limit_in_bytes", "9223372036854771712\n");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Pass);
    assert_eq!(observed(&report), (1800.0, "bytes"));
}

async fn memory_fails_clearly_on_missing_or_garbled_files() {
    let dir = Dir::new("cgroup-bad");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Fail);
    assert!(
        output(&report).starts_with("reading the cgroup memory files in "),
        "{}",
        output(&report)
    );
    dir.write("memory.max", "lots\n")
        .write("memory.current", "1\n");
    let report = run(memory::cgroup_in("memory", &dir.0, 85.0, 95.0)).await;
    assert_eq!(report.status(), Status::Fail);
    assert!(
        output(&report).ends_with("holds \"lots\", not a number"),
        "{}",
        output(&report)
    );
}

async fn memory_of_the_process_own_cgroup_is_read_on_linux() {
    let report = run(memory::cgroup("memory", 101.0, 101.0)).await;
    assert_ne!(report.status(), Status::Fail, "{}", output(&report));
    let unit = observed(&report).1;
    assert!(unit == "%" || unit == "bytes", "{unit}");
}

// === TLS certificate ===

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

async fn a_certificate_far_from_expiry_passes_observing_the_days_left() {
    let check = tls::certificate_expiry("cert", data("valid-until-2126.pem"), 30 * DAY);
    let report = run(check).await;
    assert_eq!(report.status(), Status::Pass, "{}", output(&report));
    let (days, unit) = observed(&report);
    assert_eq!(unit, "days");
    assert!(days > 30_000.0, "{days}");
}

async fn a_certificate_inside_the_warning_margin_warns_with_its_expiry_date() {
    // The margin is longer than the certificate has left.
    let check = tls::certificate_expiry("cert", data("valid-until-2126.pem"), 200 * 365 * DAY);
    let report = run(check).await;
    assert_eq!(report.status(), Status::Warn);
    assert!(
        output(&report).contains("expires on 2126-11-10T06:13:17Z, in "),
        "{}",
        output(&report)
    );
}

async fn an_expired_certificate_fails_with_the_date_it_expired() {
    let check = tls::certificate_expiry("cert", data("expired-2001.pem"), 30 * DAY);
    let report = run(check).await;
    assert_eq!(report.status(), Status::Fail);
    assert!(
        output(&report).ends_with("expired on 2001-01-01T00:00:00Z"),
        "{}",
        output(&report)
    );
    let (days, _) = observed(&report);
    assert!(days < 0.0);
}

async fn a_file_that_holds_no_certificate_fails_saying_so() {
    let dir = Dir::new("not-a-cert");
    dir.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .write("junk.der", "not a certificate");
    for (file, says) in [
        ("key.pem", "no certificate in the file"),
        ("junk.der", "neither PEM nor a DER certificate"),
    ] {
        let check = tls::certificate_expiry("cert", dir.0.join(file), DAY);
        let report = run(check).await;
        assert_eq!(report.status(), Status::Fail);
        assert!(output(&report).contains(says), "{}", output(&report));
    }
    let report = run(tls::certificate_expiry(
        "cert",
        dir.0.join("missing.pem"),
        DAY,
    ))
    .await;
    assert_eq!(report.status(), Status::Fail);
    assert!(
        output(&report).contains("No such file or directory"),
        "{}",
        output(&report)
    );
}
