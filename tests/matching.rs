//! Which requests are probes, through `oneshot`: the one matching rule of the crate docs
//! (an exact probe path; else the longest probe path followed by `/NAME`, where `NAME` is
//! a check gating that probe; else the inner service), on the presets and on generated
//! configurations compared with a naive model of the rule.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};
use tower_health::{Check, Health, Paths, Probe};

const INNER_STATUS: StatusCode = StatusCode::IM_A_TEAPOT;

/// What answered a request: the inner service, or a probe (with the check it was asked
/// about alone, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answered {
    Inner,
    Probe(Probe, Option<String>),
}

fn probe_named(word: &str) -> Probe {
    match word {
        "livez" => Probe::Liveness,
        "readyz" => Probe::Readiness,
        "startupz" => Probe::Startup,
        other => panic!("no probe is called {other:?}"),
    }
}

fn passing(name: &str) -> Check {
    Check::new(name.to_owned(), || async { Ok::<(), Infallible>(()) })
}

/// A ready `Health` on `paths` with `checks` (name, gated probes), every check passed.
async fn ready(paths: Paths, checks: &[(String, Vec<Probe>)]) -> Health {
    let mut builder = Health::builder().paths(paths);
    for (name, probes) in checks {
        builder = builder.check(passing(name).probes(probes.iter().copied()));
    }
    let health = builder.build();
    health.refresh().await;
    health.ready();
    health
}

/// Sends `GET path?verbose` asking for text, and reads which answer came back: a verbose
/// text answer ends with `<probe> check passed`, and one for a check alone lists that
/// check and nothing else.
async fn answered(health: &Health, path: &str) -> Answered {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        let mut response = Response::new(Full::new(Bytes::from_static(b"inner")));
        *response.status_mut() = INNER_STATUS;
        Ok::<_, Infallible>(response)
    });
    let request = Request::get(format!("{path}?verbose"))
        .header(ACCEPT, "text/plain")
        .body(Full::default())
        .expect("request");
    let response = health
        .layer()
        .layer(inner)
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let body = response.into_body().collect().await.expect("body");
    let text = String::from_utf8(body.to_bytes().to_vec()).expect("UTF-8");
    if status == INNER_STATUS {
        assert_eq!(text, "inner", "{path}");
        return Answered::Inner;
    }
    assert_eq!(status, StatusCode::OK, "{path}: {text}");
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().expect("a closing line");
    let probe = last
        .strip_suffix(" check passed")
        .map(probe_named)
        .unwrap_or_else(|| panic!("{path}: closing line {last:?}"));
    let names: Vec<&str> = lines
        .iter()
        .map(|line| {
            line.strip_prefix("[+]")
                .and_then(|l| l.strip_suffix(" ok"))
                .unwrap_or_else(|| panic!("{path}: line {line:?}"))
        })
        .collect();
    // A whole probe's answer starts with the liveness flag or the lifecycle; a check's
    // lists that check alone.
    match names.as_slice() {
        ["liveness" | "lifecycle", ..] => Answered::Probe(probe, None),
        [name] => Answered::Probe(probe, Some(name.to_string())),
        _ => panic!("{path}: {text}"),
    }
}

// === the presets ===

#[tokio::test]
async fn per_check_paths_under_the_health_preset_answer_for_their_check() {
    let checks = [
        ("openai".to_owned(), vec![Probe::Readiness]),
        (
            "embedding-model".to_owned(),
            vec![Probe::Startup, Probe::Readiness],
        ),
        ("worker".to_owned(), vec![Probe::Liveness]),
    ];
    let health = ready(Paths::health(), &checks).await;
    let check = |probe, name: &str| Answered::Probe(probe, Some(name.to_owned()));
    for (path, expected) in [
        ("/health/ready/openai", check(Probe::Readiness, "openai")),
        (
            "/health/ready/embedding-model",
            check(Probe::Readiness, "embedding-model"),
        ),
        (
            "/health/started/embedding-model",
            check(Probe::Startup, "embedding-model"),
        ),
        ("/health/worker", check(Probe::Liveness, "worker")),
        ("/health", Answered::Probe(Probe::Liveness, None)),
        ("/health/ready", Answered::Probe(Probe::Readiness, None)),
        ("/health/started", Answered::Probe(Probe::Startup, None)),
        // Not gating the probe whose path is before it: the application's.
        ("/health/started/openai", Answered::Inner),
        ("/health/openai", Answered::Inner),
        ("/health/ready/worker", Answered::Inner),
        ("/health/ready/unknown", Answered::Inner),
        ("/health/ready/openai/more", Answered::Inner),
        ("/health/ready/", Answered::Inner),
        ("/health/", Answered::Inner),
    ] {
        assert_eq!(answered(&health, path).await, expected, "{path}");
    }
}

#[tokio::test]
async fn per_check_paths_under_the_kubernetes_preset_answer_for_their_check() {
    let checks = [
        ("db".to_owned(), vec![Probe::Readiness]),
        ("model".to_owned(), vec![Probe::Startup, Probe::Readiness]),
    ];
    let health = ready(Paths::kubernetes(), &checks).await;
    for (path, expected) in [
        (
            "/readyz/db",
            Answered::Probe(Probe::Readiness, Some("db".into())),
        ),
        (
            "/startupz/model",
            Answered::Probe(Probe::Startup, Some("model".into())),
        ),
        ("/livez/db", Answered::Inner),
        ("/startupz/db", Answered::Inner),
        ("/readyz/db/", Answered::Inner),
    ] {
        assert_eq!(answered(&health, path).await, expected, "{path}");
    }
}

// === generated configurations against the model ===

/// The rule as the docs write it, as plainly as it can be written: an exact probe path;
/// else, of the probe paths that `path` starts with followed by `/NAME` where `NAME` is a
/// check gating that probe, the longest; else the inner service.
fn model(paths: &[String; 3], checks: &[(String, Vec<Probe>)], path: &str) -> Answered {
    for (probe, probe_path) in Probe::ALL.into_iter().zip(paths) {
        if path == probe_path {
            return Answered::Probe(probe, None);
        }
    }
    let mut best: Option<(usize, Probe, &str)> = None;
    for (probe, probe_path) in Probe::ALL.into_iter().zip(paths) {
        let Some(name) = path
            .strip_prefix(probe_path.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            continue;
        };
        let gates = checks
            .iter()
            .any(|(check, probes)| check == name && probes.contains(&probe));
        if gates && best.is_none_or(|(len, _, _)| probe_path.len() > len) {
            best = Some((probe_path.len(), probe, name));
        }
    }
    match best {
        Some((_, probe, name)) => Answered::Probe(probe, Some(name.to_owned())),
        None => Answered::Inner,
    }
}

/// Path segments from a small alphabet, so that generated probe paths nest in one
/// another and generated requests hit them, their checks and their near misses often.
const SEGMENTS: [&str; 7] = ["a", "b", "ready", "db", "a.b", "x-1", "%2F"];

fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&SEGMENTS[..])
}

fn probe_path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..4).prop_map(|s| format!("/{}", s.join("/")))
}

/// Three distinct probe paths.
fn probe_paths() -> impl Strategy<Value = [String; 3]> {
    [probe_path(), probe_path(), probe_path()]
        .prop_filter("probe paths are distinct", |[l, r, s]| {
            l != r && r != s && l != s
        })
}

/// Up to four checks with distinct names (names from the segments that are valid check
/// names), each gating any set of probes.
fn checks() -> impl Strategy<Value = Vec<(String, Vec<Probe>)>> {
    const NAMES: [&str; 6] = ["a", "b", "ready", "db", "a.b", "x-1"];
    prop::sample::subsequence(&NAMES[..], 0..=4).prop_flat_map(|names| {
        let n = names.len();
        prop::collection::vec(prop::sample::subsequence(&Probe::ALL[..], 0..=3), n).prop_map(
            move |gates| {
                names
                    .iter()
                    .map(|n| n.to_string())
                    .zip(gates)
                    .collect::<Vec<_>>()
            },
        )
    })
}

/// Request paths: probe-like paths, with an empty segment now and then (`//`, a
/// trailing `/`).
fn request_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![4 => segment(), 1 => Just("")], 0..5)
        .prop_map(|s| format!("/{}", s.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn matching_follows_the_written_rule(
        paths in probe_paths(),
        checks in checks(),
        mut requests in prop::collection::vec(request_path(), 1..24),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let configured = Paths::kubernetes()
                .liveness(paths[0].clone())
                .readiness(paths[1].clone())
                .startup(paths[2].clone());
            let health = ready(configured, &checks).await;
            // Every probe path and every check path, beside the generated requests.
            requests.extend(paths.iter().cloned());
            for (name, _) in &checks {
                requests.extend(paths.iter().map(|p| format!("{p}/{name}")));
            }
            for path in &requests {
                let expected = model(&paths, &checks, path);
                prop_assert_eq!(answered(&health, path).await, expected, "{}", path);
            }
            Ok(())
        })?;
    }
}
