//! Health as metrics, through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`).
//!
//! Whichever exporter the application installs (Prometheus, OpenTelemetry through a
//! bridge, StatsD...) sees each check's status, how long its runs take and how they end,
//! the lifecycle, and the probe answers.
//!
//! Install the exporter's recorder before building the [`Health`](crate::Health): the
//! metrics are described, and the lifecycle gauges set, when it is built.
//!
//! # The metrics
//!
//! | name | type | labels | value |
//! |---|---|---|---|
//! | `health_check_status` | gauge | `check` | the check's status after damping: `1` pass, `0.5` warn, `0` fail; absent until its first result |
//! | `health_check_duration_seconds` | histogram | `check` | how long each run took, in seconds (a run that timed out counts its timeout) |
//! | `health_check_runs_total` | counter | `check`, `outcome` | runs by how they ended: `pass`, `warn`, `fail`, `timeout`, `panic` (before damping) |
//! | `health_lifecycle_state` | gauge | `state` | `1` for the current state (`starting`, `ready`, `draining`), `0` for the others |
//! | `health_live` | gauge | | `1` while liveness passes, `0` once [`Health::fail_liveness`](crate::Health::fail_liveness) marked it failed |
//! | `health_probe_responses_total` | counter | `probe`, `code` | probe answers by probe (`liveness`, `readiness`, `startup`) and status code (`200`, `503`, `405`) |
//!
//! Requests that are not probes are never counted: their path through the layer does not
//! change with this feature. A check's status is updated where it changes and a run is
//! counted where it ends, so a metric costs nothing per probe but one counter increment.
//!
//! A non-critical check that fails is `0` in `health_check_status`, although the readiness
//! it gates only degrades to `warn`.
//!
//! Useful queries: `health_check_status < 1` (what is degraded or failing),
//! `rate(health_check_runs_total{outcome="timeout"}[5m])`,
//! `histogram_quantile(0.99, rate(health_check_duration_seconds_bucket[5m]))`.
//!
//! # Example
//!
//! With `metrics-exporter-prometheus`: install its recorder, give the histogram buckets
//! (the exporter writes a summary otherwise), and serve what it renders next to the
//! probes. `examples/observability.rs` is the complete service.
//!
//! ```
//! use axum::{routing::get, Router};
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use tower_health::{metrics::CHECK_DURATION_SECONDS, Check, Health};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let prometheus = PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full(CHECK_DURATION_SECONDS.into()),
//!         &[0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
//!     )?
//!     .install_recorder()?;
//! let health = Health::builder()
//!     .check(Check::new("database", || async { Ok::<(), std::io::Error>(()) }))
//!     .build();
//! let app: Router = Router::new()
//!     .route("/metrics", get(move || std::future::ready(prometheus.render())))
//!     .layer(health.layer());
//! # drop(app);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ::metrics::{Key, Label, Level, Metadata, Unit};
use http::StatusCode;

use crate::vocabulary::{Lifecycle, Phase, Probe, RunOutcome, Status};

/// `health_check_status`: each check's status after damping (gauge, label `check`).
pub const CHECK_STATUS: &str = "health_check_status";
/// `health_check_duration_seconds`: how long each check run took (histogram, label
/// `check`).
pub const CHECK_DURATION_SECONDS: &str = "health_check_duration_seconds";
/// `health_check_runs_total`: check runs by how they ended (counter, labels `check` and
/// `outcome`).
pub const CHECK_RUNS_TOTAL: &str = "health_check_runs_total";
/// `health_lifecycle_state`: `1` for the current lifecycle state (gauge, label `state`).
pub const LIFECYCLE_STATE: &str = "health_lifecycle_state";
/// `health_live`: whether liveness passes (gauge).
pub const LIVE: &str = "health_live";
/// `health_probe_responses_total`: probe answers (counter, labels `probe` and `code`).
pub const PROBE_RESPONSES_TOTAL: &str = "health_probe_responses_total";

static METADATA: Metadata<'static> = Metadata::new(
    "tower_health::metrics",
    Level::INFO,
    Some("tower_health::metrics"),
);

/// Describes every metric to the installed recorder and sets the lifecycle gauges: called
/// once when a [`Health`](crate::Health) is built.
pub(crate) fn register(phase: Phase) {
    ::metrics::with_recorder(|recorder| {
        let describe = [
            (
                CHECK_STATUS,
                None,
                "Status of each dependency check as probes report it: 1 pass, 0.5 warn, 0 fail.",
            ),
            (
                CHECK_DURATION_SECONDS,
                Some(Unit::Seconds),
                "Duration of each dependency check run.",
            ),
            (
                CHECK_RUNS_TOTAL,
                None,
                "Dependency check runs by outcome: pass, warn, fail, timeout, panic.",
            ),
            (
                LIFECYCLE_STATE,
                None,
                "1 for the application's current lifecycle state, 0 for the others.",
            ),
            (
                LIVE,
                None,
                "1 while liveness passes, 0 once the application marked it failed.",
            ),
            (
                PROBE_RESPONSES_TOTAL,
                None,
                "Probe answers by probe and status code.",
            ),
        ];
        for (name, unit, help) in describe {
            let name = ::metrics::KeyName::from_const_str(name);
            match name.as_str() {
                CHECK_STATUS | LIFECYCLE_STATE | LIVE => {
                    recorder.describe_gauge(name, unit, help.into())
                }
                CHECK_DURATION_SECONDS => recorder.describe_histogram(name, unit, help.into()),
                _ => recorder.describe_counter(name, unit, help.into()),
            }
        }
    });
    lifecycle(phase);
}

/// A check's status changed (after damping): the one call, where it changes.
pub(crate) fn check_status(check: &Arc<str>, status: Status) {
    let value = match status {
        Status::Pass => 1.0,
        Status::Warn => 0.5,
        Status::Fail => 0.0,
        // A check never goes back to having no result.
        Status::Unknown => return,
    };
    let key = Key::from_parts(CHECK_STATUS, vec![Label::new("check", check.clone())]);
    ::metrics::with_recorder(|r| r.register_gauge(&key, &METADATA)).set(value);
}

/// A run of a check ended: the one call, where it ends.
pub(crate) fn check_run(check: &Arc<str>, outcome: RunOutcome, took: Duration) {
    let label = Label::new("check", check.clone());
    let duration = Key::from_parts(CHECK_DURATION_SECONDS, vec![label.clone()]);
    let runs = Key::from_parts(
        CHECK_RUNS_TOTAL,
        vec![label, Label::from_static_parts("outcome", outcome.as_str())],
    );
    ::metrics::with_recorder(|r| {
        r.register_histogram(&duration, &METADATA)
            .record(took.as_secs_f64());
        r.register_counter(&runs, &METADATA).increment(1);
    });
}

/// The lifecycle state or the liveness flag changed.
pub(crate) fn lifecycle(phase: Phase) {
    static STATES: [[Label; 1]; 3] = [
        [Label::from_static_parts(
            "state",
            Lifecycle::ALL[0].as_str(),
        )],
        [Label::from_static_parts(
            "state",
            Lifecycle::ALL[1].as_str(),
        )],
        [Label::from_static_parts(
            "state",
            Lifecycle::ALL[2].as_str(),
        )],
    ];
    static KEYS: [Key; 3] = [
        Key::from_static_parts(LIFECYCLE_STATE, &STATES[0]),
        Key::from_static_parts(LIFECYCLE_STATE, &STATES[1]),
        Key::from_static_parts(LIFECYCLE_STATE, &STATES[2]),
    ];
    static LIVE_KEY: Key = Key::from_static_name(LIVE);
    let current = phase.state().index();
    ::metrics::with_recorder(|r| {
        for (i, key) in KEYS.iter().enumerate() {
            let on = if i == current { 1.0 } else { 0.0 };
            r.register_gauge(key, &METADATA).set(on);
        }
        let live = if phase.is_live() { 1.0 } else { 0.0 };
        r.register_gauge(&LIVE_KEY, &METADATA).set(live);
    });
}

/// A probe was answered with `code`. Keys are static, so counting allocates nothing.
pub(crate) fn probe_answer(probe: Probe, code: StatusCode) {
    macro_rules! keys {
        ($($probe:expr),*) => {
            [$(
                {
                    static LABELS: [[Label; 2]; 3] = [
                        [Label::from_static_parts("probe", $probe), Label::from_static_parts("code", "200")],
                        [Label::from_static_parts("probe", $probe), Label::from_static_parts("code", "503")],
                        [Label::from_static_parts("probe", $probe), Label::from_static_parts("code", "405")],
                    ];
                    static KEYS: [Key; 3] = [
                        Key::from_static_parts(PROBE_RESPONSES_TOTAL, &LABELS[0]),
                        Key::from_static_parts(PROBE_RESPONSES_TOTAL, &LABELS[1]),
                        Key::from_static_parts(PROBE_RESPONSES_TOTAL, &LABELS[2]),
                    ];
                    &KEYS
                }
            ),*]
        };
    }
    static BY_PROBE: [&[Key; 3]; 3] = keys!(
        Probe::ALL[0].name(),
        Probe::ALL[1].name(),
        Probe::ALL[2].name()
    );
    let code = match code {
        StatusCode::OK => 0,
        StatusCode::SERVICE_UNAVAILABLE => 1,
        StatusCode::METHOD_NOT_ALLOWED => 2,
        // A probe answers nothing else.
        _ => return,
    };
    let key = &BY_PROBE[probe.index()][code];
    ::metrics::with_recorder(|r| r.register_counter(key, &METADATA)).increment(1);
}
