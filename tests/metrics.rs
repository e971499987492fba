//! Feature `metrics`: what the layer reports through the `metrics` facade, read back from
//! `metrics-exporter-prometheus`'s recorder as a Prometheus scrape would read it.
//!
//! Each test installs a recorder for its own thread only and runs a current-thread runtime
//! inside it, so that check runs spawned on the runtime report to it too.
#![cfg(feature = "metrics")]

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use kit::prometheus::{self, Scrape, Value};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::{Layer, ServiceExt};
use tower_health::metrics::{
    CHECK_DURATION_SECONDS, CHECK_RUNS_TOTAL, CHECK_STATUS, LIFECYCLE_STATE, LIVE,
    PROBE_RESPONSES_TOTAL,
};
use tower_health::{Check, Health, HealthCheck, Outcome};

/// The recorder's exposition, parsed.
struct Recorded(Scrape);

impl Recorded {
    fn take(handle: &PrometheusHandle) -> Recorded {
        let text = handle.render();
        Recorded(prometheus::parse(&text))
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        prometheus::sample(&self.0, name, labels)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(name, labels) {
            Some(Value::Counter(n)) => *n,
            None => 0.0,
            other => panic!("{name} {labels:?} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels) {
            Some(Value::Gauge(v)) => Some(*v),
            None => None,
            other => panic!("{name} {labels:?} is not a gauge: {other:?}"),
        }
    }

    /// A histogram's `_count` and `_sum`.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (f64, f64) {
        let part = |suffix: &str| match self.find(&format!("{name}{suffix}"), labels) {
            Some(Value::Untyped(v)) => *v,
            other => panic!("{name}{suffix} {labels:?}: {other:?}"),
        };
        assert!(
            matches!(self.find(name, labels), Some(Value::Histogram(_))),
            "{name} {labels:?} is not a histogram"
        );
        (part("_count"), part("_sum"))
    }
}

/// Runs `test` on a current-thread runtime with paused time, with a fresh recorder
/// installed for this thread.
fn with_recorder<F: Future<Output = ()>>(test: impl FnOnce(PrometheusHandle) -> F) {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(CHECK_DURATION_SECONDS.into()),
            &[0.001, 0.01, 0.1, 1.0],
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(test(handle)));
}

struct Degraded;

impl HealthCheck for Degraded {
    async fn check(&self) -> Outcome {
        Outcome::warn("slow")
    }
}

async fn probe(health: &Health, method: Method, uri: &str) -> StatusCode {
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
    });
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .unwrap();
    let service = health.layer().layer(inner);
    tokio::time::timeout(Duration::from_secs(5), service.oneshot(request))
        .await
        .expect("an answer")
        .unwrap()
        .status()
}

#[test]
fn check_runs_are_counted_by_outcome_with_their_duration() {
    with_recorder(|handle| async move {
        let health = Health::builder()
            .budget(Duration::from_secs(2))
            .check(Check::new("ok", || async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok::<(), &str>(())
            }))
            .check(Check::from_health_check("slow", Degraded))
            .check(Check::new("down", || async { Err::<(), _>("refused") }))
            .check(
                Check::new("stuck", std::future::pending::<Result<(), &str>>)
                    .timeout(Duration::from_millis(250)),
            )
            .check(Check::new("broken", || async {
                panic!("bug in a check");
                #[allow(unreachable_code)]
                Ok::<(), &str>(())
            }))
            .build();
        health.refresh().await;
        health.refresh().await;

        let got = Recorded::take(&handle);
        for (check, outcome) in [
            ("ok", "pass"),
            ("slow", "warn"),
            ("down", "fail"),
            ("stuck", "timeout"),
            ("broken", "panic"),
        ] {
            let runs = [("check", check), ("outcome", outcome)];
            assert_eq!(got.counter(CHECK_RUNS_TOTAL, &runs), 2.0, "{check}");
            let (count, _) = got.histogram(CHECK_DURATION_SECONDS, &[("check", check)]);
            assert_eq!(count, 2.0, "{check}");
        }
        // Time is paused and advances only by the checks' own sleeps and timeouts.
        let (_, ok) = got.histogram(CHECK_DURATION_SECONDS, &[("check", "ok")]);
        assert!((0.060..0.062).contains(&ok), "{ok}");
        let (_, stuck) = got.histogram(CHECK_DURATION_SECONDS, &[("check", "stuck")]);
        assert!((0.500..0.502).contains(&stuck), "{stuck}");
        assert_eq!(
            got.counter(CHECK_RUNS_TOTAL, &[("check", "ok"), ("outcome", "fail")]),
            0.0
        );
    });
}

#[test]
fn the_status_gauge_follows_the_status_probes_report() {
    with_recorder(|handle| async move {
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = down.clone();
        let health = Health::builder()
            .check(
                Check::new("db", move || {
                    let down = flag.load(std::sync::atomic::Ordering::SeqCst);
                    async move {
                        if down {
                            Err("refused")
                        } else {
                            Ok(())
                        }
                    }
                })
                .fail_after(2),
            )
            .check(Check::from_health_check("cache", Degraded).non_critical())
            .check(Check::new("never", || {
                std::future::pending::<Result<(), &str>>()
            }))
            .build();
        let status = |check: &str| Recorded::take(&handle).gauge(CHECK_STATUS, &[("check", check)]);
        assert_eq!(status("db"), None, "no series before a first result");

        health.refresh().await;
        let got = Recorded::take(&handle);
        assert_eq!(got.gauge(CHECK_STATUS, &[("check", "db")]), Some(1.0));
        assert_eq!(got.gauge(CHECK_STATUS, &[("check", "cache")]), Some(0.5));
        assert_eq!(
            got.gauge(CHECK_STATUS, &[("check", "never")]),
            None,
            "a check with no result has no status"
        );

        // Damping: one failed run is not yet a failure, two are.
        down.store(true, std::sync::atomic::Ordering::SeqCst);
        health.refresh().await;
        assert_eq!(status("db"), Some(1.0));
        health.refresh().await;
        assert_eq!(status("db"), Some(0.0));
        down.store(false, std::sync::atomic::Ordering::SeqCst);
        health.refresh().await;
        assert_eq!(status("db"), Some(1.0));
    });
}

#[test]
fn the_lifecycle_gauges_follow_every_transition() {
    with_recorder(|handle| async move {
        let lifecycle = || {
            let got = Recorded::take(&handle);
            let state = ["starting", "ready", "draining"]
                .map(|s| got.gauge(LIFECYCLE_STATE, &[("state", s)]).unwrap());
            (state, got.gauge(LIVE, &[]).unwrap())
        };
        let health = Health::new();
        assert_eq!(lifecycle(), ([1.0, 0.0, 0.0], 1.0));
        health.ready();
        assert_eq!(lifecycle(), ([0.0, 1.0, 0.0], 1.0));
        health.fail_liveness();
        assert_eq!(lifecycle(), ([0.0, 1.0, 0.0], 0.0));
        health.recover_liveness();
        health.start_draining();
        assert_eq!(lifecycle(), ([0.0, 0.0, 1.0], 1.0));
    });
}

#[test]
fn probe_answers_are_counted_by_probe_and_code_and_nothing_else_is() {
    with_recorder(|handle| async move {
        let health = Health::new();
        assert_eq!(probe(&health, Method::GET, "/readyz").await, 503);
        health.ready();
        assert_eq!(probe(&health, Method::GET, "/readyz?verbose").await, 200);
        assert_eq!(probe(&health, Method::HEAD, "/livez").await, 200);
        assert_eq!(probe(&health, Method::POST, "/startupz").await, 405);
        for path in ["/", "/readyzz", "/readyz/unknown", "/metrics"] {
            assert_eq!(probe(&health, Method::GET, path).await, 200, "{path}");
        }

        let got = Recorded::take(&handle);
        let answers = |probe: &str, code: &str| {
            got.counter(PROBE_RESPONSES_TOTAL, &[("probe", probe), ("code", code)])
        };
        assert_eq!(answers("readiness", "503"), 1.0);
        assert_eq!(answers("readiness", "200"), 1.0);
        assert_eq!(answers("liveness", "200"), 1.0);
        assert_eq!(answers("startup", "405"), 1.0);
        let counted: f64 = (got.0.samples.iter())
            .filter(|s| s.metric == PROBE_RESPONSES_TOTAL)
            .map(|s| match s.value {
                Value::Counter(n) => n,
                _ => 0.0,
            })
            .sum();
        assert_eq!(counted, 4.0, "requests that are not probes are not counted");
    });
}

#[test]
fn a_signal_has_a_status_gauge_from_the_start_that_follows_each_set() {
    with_recorder(|handle| async move {
        let model = tower_health::Gate::new("model");
        let maintenance = tower_health::Switch::new("maintenance");
        let health = Health::builder().gate(&model).switch(&maintenance).build();
        let status = |name: &str| Recorded::take(&handle).gauge(CHECK_STATUS, &[("check", name)]);
        assert_eq!(status("model"), Some(0.0), "a gate starts closed");
        assert_eq!(status("maintenance"), Some(1.0), "a switch starts passing");
        model.open();
        maintenance.warn("draining the queue");
        assert_eq!(status("model"), Some(1.0));
        assert_eq!(status("maintenance"), Some(0.5));
        maintenance.fail("down for maintenance");
        assert_eq!(status("maintenance"), Some(0.0));
        drop(health);
    });
}
