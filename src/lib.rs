//! Kubernetes liveness, readiness and startup probes for any tower HTTP service, answered
//! before routing, with a lock-free lifecycle and a shutdown that loses no request.
//!
//! Wrap the service with [`Health::layer`]; requests to the probe paths are answered by
//! the layer and every other request goes to your service untouched. Call
//! [`Health::ready`] when start-up is done, and hand [`Health::shutdown_signal`] to the
//! server so that SIGTERM fails readiness first and stops the server only once traffic
//! has moved away; [`Health::with_deadline`] makes sure the shutdown ends.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use tower_health::{Check, Health};
//!
//! # async fn ping_database() -> Result<(), std::io::Error> { Ok(()) }
//! # async fn ping_cache() -> Result<(), std::io::Error> { Ok(()) }
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let health = Health::builder()
//!         .check(Check::new("database", ping_database).timeout(Duration::from_millis(800)))
//!         .check(Check::new("cache", ping_cache).non_critical())
//!         .build();
//!     // SIGTERM and Ctrl-C are caught from here on, start-up included.
//!     let shutdown = health.shutdown_signal();
//!     let app = Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .layer(health.layer());
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     // ... start-up work: connect pools, warm caches ...
//!     health.refresh().await; // first check results, so the first probe need not wait
//!     health.ready();
//!     let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
//!     // The server's end, or `None` when the shutdown deadline cut it short.
//!     health.with_deadline(server).await.unwrap_or(Ok(()))
//! }
//! ```
//!
//! # Where to put the layer
//!
//! Outermost: the layer must see a probe before anything that could refuse, delay or
//! reroute it (authentication, rate and concurrency limits, timeouts, body limits,
//! routing), or the kubelet meets a 401, a 404 or a queue instead of an answer.
//!
//! - **Around the whole service**, the surest: `health.layer().layer(app)`, or the first
//!   layer of a `tower::ServiceBuilder` that wraps it (the first one added is the
//!   outermost). A probe then never enters the application at all, axum's routing
//!   included. `axum::serve` wants axum's own body type back, which `map_response` gives
//!   it:
//!
//!   ```no_run
//!   use axum::{body::Body, http::Response, routing::get, Router};
//!   use tower::{make::Shared, ServiceBuilder};
//!   use tower_health::{Health, HealthBody};
//!
//!   #[tokio::main]
//!   async fn main() -> std::io::Result<()> {
//!       let health = Health::builder().build();
//!       let router = Router::new().route("/", get(|| async { "hello" }));
//!       let app = ServiceBuilder::new()
//!           .map_response(|response: Response<HealthBody<Body>>| response.map(Body::new))
//!           .layer(health.layer())
//!           .service(router);
//!
//!       let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//!       health.ready();
//!       axum::serve(listener, Shared::new(app))
//!           .with_graceful_shutdown(health.shutdown_signal())
//!           .await
//!   }
//!   ```
//!
//! - **axum's `Router::layer`**, as in the example above, works too when it is the
//!   **last** `.layer(..)` call: each call wraps what the calls before it built, so a
//!   layer added after this one (an authentication middleware, say) would see the probes
//!   first. `Router::layer` wraps every route added before it and the fallback, so a
//!   probe is answered whether or not the router has a route for its path (the router's
//!   404 never shows), but a route added after it is not wrapped at all. The request
//!   does go through axum's route matching first, which costs a little (see the README's
//!   load figures).
//! - **Not `Router::route_layer`**: it wraps only the routes that matched, so requests to
//!   `/readyz` and the other probe paths, which match no route, would get the router's
//!   404 without the layer ever seeing them.
//! - **tonic**: `Server::builder().accept_http1(true).layer(health.layer())`; see
//!   [With tonic](#with-tonic).
//!
//! # Probes
//!
//! | state of the application | liveness | readiness | startup |
//! |---|---|---|---|
//! | [`State::Starting`] | 200 | 503 `starting` | 503 |
//! | [`State::Ready`], all critical checks pass | 200 | 200 | 200 |
//! | [`State::Ready`], a critical check fails | 200 | 503, names the check | 200 |
//! | [`State::Ready`], a [shared](Check::shared) check fails on most of the fleet | 200 | 200 with status `warn` | 200 |
//! | [`State::Ready`], only non-critical checks fail | 200 | 200 with status `warn` | 200 |
//! | [`State::Draining`] | 200 | 503 `draining` | 200 |
//! | liveness marked failed ([`Health::fail_liveness`]) | 503 | 503 | unchanged |
//! | a critical liveness entry fails (a wedge, a late heartbeat, a liveness check) | 503 | 503, `liveness` names it | unchanged |
//!
//! Readiness fails with liveness so that a pod about to be restarted leaves the Service
//! first. A liveness check with no result yet fails liveness alone.
//!
//! - Paths default to `/livez`, `/readyz`, `/startupz` ([`Paths`] changes them; see
//!   [which requests are probes](#which-requests-are-probes)).
//! - `GET` and `HEAD` are answered (`HEAD` with the same status and headers and no body);
//!   any other method on a probe path gets `405` with `Allow: GET, HEAD`.
//! - Bodies are `application/health+json` (`{"status":"pass"}`), or the Kubernetes API
//!   server's text (`ok`) when the client asks for `text/plain`, or a page for people when
//!   a browser asks (see [Observability](#observability)). `?verbose` lists what the
//!   answer was made of; `?exclude=NAME` leaves a check out; `/readyz/NAME` answers for
//!   one check alone, with its own status, critical or not (as gRPC `Check(NAME)` does).
//! - A failure names the check and withholds the reason unless [`Reasons`] allows it.
//! - Answers carry `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.
//!
//! ## Which requests are probes
//!
//! One rule, for every configuration of [`Paths`], presets included. It looks at the
//! request's path (`uri().path()`, without the query) and nothing else:
//!
//! 1. A path equal to a probe's path is that probe.
//! 2. Otherwise, of the probe paths that the path starts with, followed by `/NAME` where
//!    `NAME` is the name of a check gating that probe, the **longest** wins: the path is
//!    that check's answer for that probe, alone.
//! 3. Otherwise the request is not a probe: it goes to the inner service, untouched.
//!
//! So with [`Paths::health`] (`/health`, `/health/ready`, `/health/started`),
//! `/health/ready/db` is the `db` check's readiness answer, never liveness's, and
//! `/health/db` is its liveness answer only if `db` gates liveness. `/readyzz`,
//! `/readyz/`, `/readyz/not-a-check`, `/readyz/db/more` and a check below a probe it
//! does not gate all go to the inner service, so that an application route below a
//! probe path keeps working. Check names never hold a `/`, and matching is a few byte
//! compares: no allocation, no regex, the query read only once the path has matched.
//! Then the method: `GET` and `HEAD` are answered, anything else gets the `405`.
//!
//! ## Probes never wait on your service
//!
//! A probe is answered whatever the inner service's readiness: a concurrency limit, a
//! buffer or a load shedder inside the layer never holds a liveness probe back, so a
//! replica that is only busy is not restarted for it. Requests that pass through still
//! reach the inner service only once it is ready, as tower requires; see
//! [`HealthService`] for how, and why the inner service must be `Clone`.
//!
//! # Checks
//!
//! Checks run concurrently, each under its own timeout and all under one budget, and
//! their results are cached: a probe never waits on I/O except on a cold cache, and then
//! at most the budget. See [`Check`] for when to make a check non-critical, when (almost
//! never) to put one on liveness, and when to raise the budget.
//!
//! # A dependency every replica shares (feature `fleet`)
//!
//! Mark a check [shared](Check::shared) and give the builder the [fleet](Builder::fleet):
//! while it fails here, the replica asks its peers for that check's own result, and when
//! most of the fleet fails too, readiness holds (the check shows `warn`) instead of
//! taking every replica out of the Service. A failure of this replica alone still fails
//! readiness. The table of outages is on `Fleet`; [`Health::recheck`] runs a check at
//! once when the application has seen its dependency fail.
//!
//! # Telling health what you know
//!
//! What the application knows itself it says through a handle, and the very next probe
//! shows it: a start-up [`Gate`] (startup and readiness fail until it is opened; they
//! pass once [`Health::ready`] was called and every gate is open), a [`Switch`] (a status
//! set and set again, with a reason withheld like any reason), a [`Heartbeat`] for a
//! background loop (liveness fails when no [`beat`](Heartbeat::beat) came in time, or the
//! handle was dropped before the drain), and [`Builder::liveness_fails_when_stuck`], which fails liveness
//! while requests wait for a response head that never comes (a deadlock). Each shows
//! wherever a check shows.
//!
//! ```
//! use std::time::Duration;
//! use tower_health::{Gate, Health, Heartbeat, Probe, Status, Switch};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let migrations = Gate::new("migrations");
//! let maintenance = Switch::new("maintenance");
//! let consumer = Heartbeat::new("consumer", Duration::from_secs(30));
//! let health = Health::builder()
//!     .gate(&migrations)
//!     .switch(&maintenance)
//!     .heartbeat(&consumer)
//!     .build();
//! health.ready();
//! assert_eq!(health.report().status(Probe::Readiness), Status::Fail); // gate closed
//! migrations.open();
//! assert_eq!(health.report().status(Probe::Readiness), Status::Pass);
//! maintenance.fail("in maintenance until 02:00");
//! assert_eq!(health.report().status(Probe::Readiness), Status::Fail);
//! consumer.beat(); // from the loop, every turn
//! assert_eq!(health.report().status(Probe::Liveness), Status::Pass);
//! # }
//! ```
//!
//! # Shutdown
//!
//! [`Health::shutdown_signal`] catches SIGTERM and Ctrl-C from the moment it is called
//! (ask for it before start-up work: a signal during start-up then drains instead of
//! killing the process), and resolves after the signal and the drain delay; in between,
//! readiness fails and HTTP/1 responses carry `Connection: close`. With
//! [`Builder::track_in_flight`], [`Health::drained`] resolves once the last response body
//! has ended.
//!
//! A shutdown always ends: [`Health::with_deadline`] runs the server future until it
//! finishes or until the [deadline](Builder::shutdown_timeout) (20 s after the signal by
//! default, drain delay included), when it drops what still holds it (a client that never
//! acknowledges HTTP/2's GOAWAY, a long-lived stream) and says in one warning what it cut.
//! Background work takes a [`DrainGuard`] ([`Health::drain_guard`]) to hold the shutdown
//! open until its batch is done, and waits for [`Health::drain_started`] to stop taking
//! more; long-lived responses (server-sent events, streaming bodies) end at
//! [`Health::drain_delay_over`] with `take_until`.
//!
//! # Observability
//!
//! - **A page for people.** A client that ranks `text/html` above JSON and text (a
//!   browser; not the kubelet's `*/*`) gets a self-contained HTML page: with `?verbose`,
//!   the lifecycle and every check with its status, the age of its result, its duration
//!   and the reason where [`Reasons`] allows; without, the verdict and a link.
//!   `?refresh=N` makes the browser reload it every N seconds. It loads nothing, escapes
//!   everything, and is served under `Content-Security-Policy: default-src 'none'` with its
//!   one inline style sheet allowed by hash.
//! - **Metrics** (feature `metrics`): each check's status, run durations and outcomes, the
//!   lifecycle and the probe answers through the `metrics` facade, so any exporter works;
//!   the names are in the `tower_health::metrics` module.
//! - **Tracing.** Each check run is a `health_check` span (target `tower_health::check`)
//!   with the fields `check`, `outcome` and `duration_ms`. Probes log nothing per
//!   request; the layer logs changes (a check starting or stopping to fail, lifecycle
//!   transitions, the drain).
//!
//! # Ready-made checks (features `check-*`)
//!
//! The `checks` module has a check for each dependency most services have, each behind a
//! feature of its own so that nobody compiles a client they do not use: TCP connect
//! (`check-tcp`), DNS (`check-dns`), HTTP `GET` with hyper-util (`check-hyper`) or
//! reqwest (`check-reqwest`), PostgreSQL with tokio-postgres (`check-postgres`),
//! deadpool-postgres (`check-deadpool-postgres`) or sqlx (`check-sqlx-postgres`),
//! MySQL/MariaDB with sqlx (`check-sqlx-mysql`), Redis with `redis` (`check-redis`) or
//! deadpool-redis (`check-deadpool-redis`), RabbitMQ with lapin (`check-lapin`), an
//! upstream's gRPC health (`check-grpc`), free disk space (`check-disk`), cgroup memory
//! (`check-memory`) and a TLS certificate file's expiry (`check-tls-cert`). Each takes the
//! client or pool the application already has, observes its latency, reports a failure's
//! whole chain of causes, and a pool check warns when the pool is saturated.
//!
//! ```no_run
//! # #[cfg(all(feature = "check-deadpool-postgres", feature = "check-redis"))]
//! # fn example(pool: deadpool_postgres::Pool, redis: redis::aio::ConnectionManager) {
//! use std::time::Duration;
//! use tower_health::{checks, Health};
//!
//! let health = Health::builder()
//!     .check(checks::postgres::deadpool("postgres", pool.clone()).timeout(Duration::from_millis(500)))
//!     .check(checks::redis::connection("redis", redis.clone()).non_critical())
//!     .build();
//! # drop(health);
//! # }
//! ```
//!
//! # With tonic
//!
//! Kubelet probes are HTTP/1.1 and tonic's server speaks only HTTP/2 unless told
//! otherwise: build it with `Server::builder().accept_http1(true).layer(health.layer())`
//! so that the layer sees the probes (see `examples/tonic.rs`).
//!
//! # gRPC health (feature `grpc`)
//!
//! With the `grpc` feature the layer also answers `grpc.health.v1` (`Check`, `Watch`, and
//! `List` from gRPC proposal A90) before routing, on any server that speaks HTTP/2 (tonic,
//! `axum::serve`, hyper-util's auto builder), from the same state as the HTTP probes: the
//! kubelet's gRPC probes, `grpc_health_probe`, client-side health checking and meshes see
//! what `/readyz` says.
//!
//! | service name | status |
//! |---|---|
//! | `""` | readiness: exactly the HTTP readiness verdict, checks included |
//! | `liveness`, `readiness`, `startup` | that probe's verdict |
//! | a check's name | that check alone |
//! | a service mapped with `Builder::grpc_service` | the probe it is mapped to |
//! | anything else | `Check`: `NOT_FOUND`; `Watch`: `SERVICE_UNKNOWN`, stream kept open |
//!
//! - Pass and warn are `SERVING`, anything else `NOT_SERVING`; while draining, every
//!   known name is `NOT_SERVING`.
//! - `Watch` sends the current status, then one message per change, pushed by the change
//!   (a lifecycle transition, a check whose status changed); a watcher that reads slowly
//!   is told the latest status, never a backlog. After the drain delay its stream ends
//!   with `grpc-status: 0`, so that open streams never hold up a graceful shutdown.
//! - A request on `/grpc.health.v1.Health/...` that is not a gRPC call (not `POST`, or
//!   not `application/grpc`) passes through to the inner service. A gRPC call over
//!   HTTP/1 gets a trailers-only `INTERNAL` error: gRPC needs HTTP/2. A malformed call
//!   gets a trailers-only error (`INTERNAL`, `RESOURCE_EXHAUSTED` for a request message
//!   over 4 KiB, `UNIMPLEMENTED` for compression or a codec other than protobuf).
//!
//! # Probes without an HTTP server (feature `server`)
//!
//! A worker with no HTTP server to wrap, or a service whose main port the kubelet cannot
//! reach (TLS or mTLS only), serves its probes on a listener of its own:
//! `Health::serve_probes` binds it and returns a `ProbeServer` that answers what the layer
//! answers (gRPC health included) and `404` to anything else, and drains as the layer
//! does. Prefer the layer on the application's own port whenever the kubelet can reach
//! it: the `ProbeServer` docs say why.
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs, rust_2018_idioms, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod builder;
mod cache;
mod capped;
mod changes;
mod check;
#[cfg(any(
    feature = "check-tcp",
    feature = "check-dns",
    feature = "check-hyper",
    feature = "check-reqwest",
    feature = "check-postgres",
    feature = "check-deadpool-postgres",
    feature = "check-sqlx-postgres",
    feature = "check-sqlx-mysql",
    feature = "check-redis",
    feature = "check-deadpool-redis",
    feature = "check-lapin",
    feature = "check-grpc",
    feature = "check-disk",
    feature = "check-memory",
    feature = "check-tls-cert",
))]
pub mod checks;
mod drain;
mod error;
mod fleet;
mod future;
#[cfg(feature = "grpc")]
mod grpc;
mod health;
mod layer;
mod lifecycle;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod observer;
mod probe;
mod progress;
mod render;
mod report;
mod request;
#[cfg(feature = "server")]
mod server;
mod service;
mod shared;
mod shutdown;
mod signals;
mod vocabulary;

pub use crate::body::HealthBody;
pub use crate::builder::Builder;
pub use crate::changes::Changes;
pub use crate::check::{Check, CheckError, HealthCheck, Outcome};
pub use crate::drain::DrainGuard;
pub use crate::error::{BuildError, BuildProblem};
#[cfg(feature = "fleet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fleet")))]
pub use crate::fleet::Fleet;
pub use crate::future::ResponseFuture;
pub use crate::health::Health;
pub use crate::layer::HealthLayer;
pub use crate::probe::Paths;
pub use crate::report::Report;
pub use crate::request::{ProbeRequest, Reasons};
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use crate::server::{ProbeServer, ProbeServerFuture};
pub use crate::service::{HealthService, RequestBody};
pub use crate::signals::{Gate, Heartbeat, Switch};
pub use crate::vocabulary::{
    Change, CheckChange, CheckReport, Kind, Observed, ObservedValue, Probe, State, Status,
};

/// The README's Rust blocks, each compiled (and run, unless marked `no_run`) as a doc
/// test, so that what a reader copies from it compiles. One block needs the `metrics`
/// feature, so they run with `--all-features`, as the test command gives it.
#[cfg(all(doctest, feature = "metrics"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
