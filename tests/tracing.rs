//! What the layer tells `tracing`: one span per check run, with the check's name, how the
//! run ended and how long it took; nothing per probe.
//!
//! Each test installs a subscriber that keeps every span and event, for its own thread
//! only, and runs a current-thread runtime inside it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use tower::{Layer as _, ServiceExt};
use tower_health::{Check, Health};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as it was when it closed.
#[derive(Debug, Clone)]
struct Closed {
    name: &'static str,
    target: String,
    fields: BTreeMap<String, String>,
    /// Messages of the events inside it.
    events: Vec<String>,
}

#[derive(Default, Clone)]
struct Kept {
    closed: Arc<Mutex<Vec<Closed>>>,
    events: Arc<Mutex<Vec<String>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Kept {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = ctx.span(id).unwrap();
        span.extensions_mut().insert(Closed {
            name: attrs.metadata().name(),
            target: attrs.metadata().target().to_owned(),
            fields,
            events: Vec::new(),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut ext = span.extensions_mut();
        values.record(&mut Fields(&mut ext.get_mut::<Closed>().unwrap().fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        if let Some(span) = ctx.event_span(event) {
            if let Some(closed) = span.extensions_mut().get_mut::<Closed>() {
                closed.events.push(message.clone());
            }
        }
        self.events.lock().unwrap().push(message);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let closed = span.extensions_mut().remove::<Closed>().unwrap();
        self.closed.lock().unwrap().push(closed);
    }
}

/// Runs `test` on a current-thread runtime with paused time under a subscriber that keeps
/// everything, and returns what it kept.
fn kept<F: Future<Output = ()>>(test: impl FnOnce() -> F) -> Kept {
    let kept = Kept::default();
    let subscriber = tracing_subscriber::registry().with(kept.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(test()));
    kept
}

fn check_spans(kept: &Kept) -> Vec<Closed> {
    let closed = kept.closed.lock().unwrap();
    closed
        .iter()
        .filter(|s| s.name == "health_check")
        .cloned()
        .collect()
}

#[test]
fn each_check_run_is_a_span_with_its_name_outcome_and_duration() {
    let kept = kept(|| async {
        let health = Health::builder()
            .check(Check::new("db", || async {
                tracing::info!("connecting");
                tokio::time::sleep(Duration::from_millis(40)).await;
                Ok::<(), &str>(())
            }))
            .check(Check::new("cache", || async { Err::<(), _>("refused") }))
            .check(
                Check::new("search", std::future::pending::<Result<(), &str>>)
                    .timeout(Duration::from_millis(100)),
            )
            .build();
        health.refresh().await;
        // Keep the handle until the runs' spans have closed.
        drop(health);
    });
    let mut spans = check_spans(&kept);
    spans.sort_by(|a, b| a.fields["check"].cmp(&b.fields["check"]));
    let summary: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| (s.fields["check"].as_str(), s.fields["outcome"].as_str()))
        .collect();
    assert_eq!(
        summary,
        [("cache", "fail"), ("db", "pass"), ("search", "timeout")]
    );
    for span in &spans {
        assert_eq!(span.target, "tower_health::check", "{span:?}");
    }
    let ms = |check: &str| -> f64 {
        let span = spans.iter().find(|s| s.fields["check"] == check).unwrap();
        span.fields["duration_ms"].parse().unwrap()
    };
    // Paused time: durations are exactly the checks' own sleeps and timeouts.
    assert!((40.0..41.0).contains(&ms("db")), "{}", ms("db"));
    assert!((100.0..101.0).contains(&ms("search")), "{}", ms("search"));
    let db = spans.iter().find(|s| s.fields["check"] == "db").unwrap();
    assert_eq!(
        db.events,
        ["connecting"],
        "the check's own events are inside its span"
    );
}

#[test]
fn probes_log_nothing_per_request() {
    let kept = kept(|| async {
        let health = Health::builder()
            .check(Check::new("db", || async { Ok::<(), &str>(()) }))
            .every(Duration::from_secs(3600))
            .build();
        health.refresh().await;
        health.ready();
        let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
        });
        let service = health.layer().layer(inner);
        tracing::info!("probes start");
        for (method, uri) in [
            (Method::GET, "/readyz"),
            (Method::GET, "/readyz?verbose"),
            (Method::HEAD, "/livez"),
            (Method::GET, "/startupz"),
            (Method::GET, "/readyz/db"),
            (Method::POST, "/readyz"),
            (Method::GET, "/"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .body(Full::default())
                .unwrap();
            let _ = service.clone().oneshot(request).await.unwrap();
        }
        tracing::info!("probes end");
    });
    let events = kept.events.lock().unwrap();
    let start = events.iter().position(|e| e == "probes start").unwrap();
    let end = events.iter().position(|e| e == "probes end").unwrap();
    assert_eq!(
        &events[start + 1..end],
        &[] as &[String],
        "no event between the probes"
    );
    assert_eq!(
        check_spans(&kept).len(),
        1,
        "only the refresh ran the check"
    );
    let closed = kept.closed.lock().unwrap();
    assert!(
        closed.iter().all(|s| s.name == "health_check"),
        "no other span: {closed:?}"
    );
}

#[test]
fn a_service_still_starting_a_minute_after_build_says_once_that_ready_may_be_forgotten() {
    let kept = kept(|| async {
        let health = Health::builder().build();
        let service = health
            .layer()
            .layer(tower::service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }));
        let probe = |uri: &'static str| {
            let service = service.clone();
            async move {
                let request = Request::get(uri).body(Full::default()).unwrap();
                service.oneshot(request).await.unwrap().status()
            }
        };
        // Early in start-up: nothing said.
        probe("/readyz").await;
        tracing::info!("a minute later");
        tokio::time::sleep(Duration::from_secs(61)).await;
        // Liveness alone says nothing; readiness and startup say it, once.
        probe("/livez").await;
        tracing::info!("after liveness");
        for _ in 0..3 {
            probe("/readyz").await;
            probe("/startupz").await;
        }
        health.ready();
        probe("/readyz").await;
    });
    let events = kept.events.lock().unwrap();
    let said: Vec<&String> = events.iter().filter(|e| e.contains("ready()")).collect();
    assert_eq!(said.len(), 1, "{events:?}");
    assert!(said[0].contains("still starting 60 s after the Health was built"));
    let minute = events.iter().position(|e| e == "a minute later").unwrap();
    let after_liveness = events.iter().position(|e| e == "after liveness").unwrap();
    let at = events.iter().position(|e| e.contains("ready()")).unwrap();
    assert!(at > after_liveness && after_liveness > minute, "{events:?}");
}

#[test]
fn with_deadline_without_a_shutdown_future_warns_that_sigterm_is_not_caught() {
    let warned = |with_signal: bool| {
        let kept = kept(|| async move {
            let health = Health::builder().build();
            if with_signal {
                let _shutdown = health.shutdown_on(std::future::pending());
            }
            health.with_deadline(async {}).await;
        });
        let events = kept.events.lock().unwrap();
        events.iter().any(|e| e.contains("SIGTERM is not caught"))
    };
    assert!(warned(false));
    assert!(!warned(true));
}
