//! Kubernetes liveness, readiness and startup probes for any tower HTTP service, answered
//! before routing, with cached dependency checks and a shutdown that loses no request.
//!
//! Wrap the service with [`Health::layer`]; requests to the probe paths are answered by
//! the layer and every other request goes to your service untouched. Call
//! [`Health::ready`] when start-up is done, and hand [`Health::shutdown_signal`] to the
//! server so that SIGTERM fails readiness first and stops the server only once traffic
//! has moved away; [`Health::with_deadline`] makes sure the shutdown ends.
//!
//! The sections below are the guide: [where to put the layer](#where-to-put-the-layer),
//! [probes](#probes), [dependency checks](#dependency-checks),
//! [a dependency every replica shares](#readiness-that-never-empties-the-fleet-feature-fleet),
//! [telling health what you know](#telling-health-what-you-know),
//! [graceful shutdown](#graceful-shutdown-on-kubernetes), [gRPC](#grpc-health-feature-grpc),
//! [probes without an HTTP server](#probes-without-an-http-server-feature-probe-server) and
//! [observability](#observability). The repository's `examples/` folder has a runnable
//! program for each.
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
//! # Tokio and Rust versions
//!
//! tower-health turns on the tokio features it uses itself (`rt`, `time`, `sync`,
//! `signal`, `macros`). Your application adds its runtime and I/O: `rt-multi-thread` and
//! `macros` for `#[tokio::main]` (or neither, with a runtime you build yourself), and `net`
//! for `TcpListener`.
//!
//! The library needs Rust 1.82 or later (its `rust-version`). Some of its dependencies'
//! newest releases need more (tokio 1.54 and prost 0.14.4 need 1.85): with cargo 1.84 or
//! later, `resolver = "3"` in your workspace (the default with edition 2024) picks
//! releases that your compiler supports; with Rust 1.82 or 1.83, pin them once with
//! `cargo update -p tokio --precise 1.53.3` (with `grpc`, also
//! `cargo update -p prost --precise 0.14.3` and `-p prost-derive --precise 0.14.3`).
//! A ready-made check's feature needs what its client crate needs: Rust 1.94 for
//! `check-sqlx-*` (sqlx 0.9), 1.88 for `check-redis`, `check-deadpool-redis`,
//! `check-lapin` and `check-grpc`, 1.85 for the PostgreSQL ones and `check-reqwest`.
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
//!   use tower_health::{Health, ResponseBody};
//!
//!   #[tokio::main]
//!   async fn main() -> std::io::Result<()> {
//!       let health = Health::builder().build();
//!       let router = Router::new().route("/", get(|| async { "hello" }));
//!       let app = ServiceBuilder::new()
//!           .map_response(|response: Response<ResponseBody<Body>>| response.map(Body::new))
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
//!   does go through axum's route matching first, which costs a little.
//! - **Not `Router::route_layer`**: it wraps only the routes that matched, so requests to
//!   `/readyz` and the other probe paths, which match no route, would get the router's
//!   404 without the layer ever seeing them.
//! - **tonic**: `Server::builder().accept_http1(true).layer(health.layer())`. The kubelet's
//!   HTTP probes are HTTP/1.1 and tonic's server speaks only HTTP/2 unless told otherwise:
//!   without `accept_http1(true)` an HTTP probe fails at the connection, before the layer,
//!   and nothing is logged. See [gRPC health](#grpc-health-feature-grpc).
//! - **hyper**: wrap the service before handing it to hyper-util's `TowerToHyperService`;
//!   the repository's `examples/hyper.rs` shows a whole server with its graceful shutdown.
//!
//! # Probes
//!
//! | state of the application | liveness | readiness | startup |
//! |---|---|---|---|
//! | [`Lifecycle::Starting`] | 200 | 503 `starting` | 503 |
//! | [`Lifecycle::Ready`], all critical checks pass | 200 | 200 | 200 |
//! | [`Lifecycle::Ready`], a critical check fails | 200 | 503, names the check | 200 |
//! | [`Lifecycle::Ready`], a [shared](Check::shared) check fails on most of the fleet | 200 | 200 with status `warn` | 200 |
//! | [`Lifecycle::Ready`], only non-critical checks fail | 200 | 200 with status `warn` | 200 |
//! | [`Lifecycle::Draining`] | 200 | 503 `draining` | 200 |
//! | liveness marked failed ([`Health::fail_liveness`]) | 503 | 503 | unchanged |
//! | a critical liveness entry fails (a wedge, a late heartbeat, a liveness check) | 503 | 503, `liveness` names it | unchanged |
//!
//! Readiness fails with liveness so that a pod about to be restarted leaves the Service
//! first. A liveness check with no result yet fails liveness alone.
//!
//! - Paths default to `/livez`, `/readyz`, `/startupz`; [`Paths`] changes them, and
//!   [`Paths::health`] gives `/health`, `/health/ready`, `/health/started`.
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
//! So with [`Paths::health`], `/health/ready/db` is the `db` check's readiness answer,
//! never liveness's, and `/health/db` is its liveness answer only if `db` gates liveness.
//! `/readyzz`, `/readyz/`, `/readyz/not-a-check`, `/readyz/db/more` and a check below a
//! probe it does not gate all go to the inner service, so that an application route below
//! a probe path keeps working. Check names never hold a `/`, and matching is a few byte
//! compares: no allocation, no regex, the query read only once the path has matched.
//! Then the method: `GET` and `HEAD` are answered, anything else gets the `405`.
//!
//! ## Probes never wait on your service
//!
//! A probe is answered whatever the inner service's readiness: a concurrency limit, a
//! buffer or a load shedder inside the layer never holds a liveness probe back, so a
//! replica that is only busy is not restarted for it. Requests that pass through still
//! reach the inner service only once it is ready, as tower requires: such a request waits
//! in its response future, which owns the service while it waits; that is why the inner
//! service must be `Clone`, as axum's routers, tonic's servers and tower's `Buffer` are.
//! See [`HealthService`].
//!
//! # Dependency checks
//!
//! A check is a name and an async function that returns `Result<(), E>` (any error, a
//! `String` or a `&str`); [`Check::with_state`] hands each run the application's own pool
//! or client, and lets `?` work on any error without a type annotation. A failure's reason
//! is the error with its chain of causes. The layer runs every check a probe needs
//! concurrently, each under its own timeout and all under one budget, and caches the
//! results:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use tokio::net::TcpStream;
//! use tokio_postgres::NoTls;
//! use tower_health::{Check, Health};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let (db, connection) =
//!         tokio_postgres::connect("host=127.0.0.1 port=5432 user=postgres", NoTls).await?;
//!     tokio::spawn(connection);
//!     let db = Arc::new(db);
//!
//!     let health = Health::builder()
//!         .check(
//!             Check::with_state("postgres", db.clone(), |db| async move {
//!                 db.simple_query("SELECT 1").await?;
//!                 Ok(())
//!             })
//!             .timeout(Duration::from_millis(800)),
//!         )
//!         .check(
//!             Check::new("cache", || async {
//!                 TcpStream::connect("127.0.0.1:6379").await.map(drop)
//!             })
//!             .non_critical(),
//!         )
//!         .build();
//!
//!     // Run every check now and print what each said; a server would call ready() here.
//!     for check in health.refresh().await.checks() {
//!         println!("{}: {} {:?}", check.name(), check.status().as_str(), check.output());
//!     }
//!     Ok(())
//! }
//! ```
//!
//! - Checks run in the background on an interval (the cache time, 1 s, unless
//!   [`Builder::refresh_every`], [`Builder::every`] or a check's own
//!   [`every`](Check::every) say otherwise), so results are warm before the first probe, no
//!   answer is older than the interval, and checks run at a steady rate that no storm of
//!   probes can raise. [`Builder::background_refresh`]`(false)` turns it off: checks then
//!   run only behind probes, and a stale result is answered at once while it starts one
//!   refresh.
//! - A probe is answered from the cached results at once; only a probe that finds no
//!   result at all waits, never longer than the budget ([`Builder::budget`], 900 ms unless
//!   set, inside the kubelet's default 1 s timeout).
//! - [`Builder::build`] checks the whole configuration once and panics on a mistake (a
//!   path that is not a path, a check name given twice or reserved: `liveness`,
//!   `readiness`, `startup`, `lifecycle`, a check's timeout over the budget); for a
//!   configuration read at run time, [`Builder::try_build`] returns every mistake as a
//!   [`BuildError`] instead.
//! - However many probes arrive together, a check has at most one run in flight. A
//!   [`Check::blocking`] check that overruns its timeout is reported failed at the
//!   timeout, but no new run of it starts until its thread returns: a check that hangs
//!   forever holds one thread, never more.
//! - A check that has never finished is `unknown` and gates like a failure; one that
//!   panics fails with "panicked: <the panic's message>", and the service and the other
//!   checks go on.
//! - A check's output is kept to 1 KiB, cut on a character boundary and marked ` [cut]`,
//!   and formatted only that far.
//! - When the last [`Health`], layer and service are dropped, the background refresh and
//!   every run in flight end. A runtime built without a timer gets answers (the check
//!   fails, saying the runtime has no timer), never a panic.
//!
//! | option | what it does | when to use it |
//! |---|---|---|
//! | [`.timeout(d)`](Check::timeout) | a run longer than `d` fails with "timed out after N ms"; the budget unless set, and never over it | every check that does I/O; raise [`Builder::budget`] (and the probes' `timeoutSeconds`) for timeouts over 900 ms |
//! | [`.non_critical()`](Check::non_critical) | its failure answers 200 with status `warn` instead of 503 | a cache or an optional API the service can do without: a flaky extra must not take every replica out of service |
//! | [`.probes([..])`](Check::probes) | the probes it gates, instead of readiness alone | `[Probe::Startup, Probe::Readiness]` for something that must load first; liveness almost never, since a shared dependency that is down would restart every replica |
//! | [`.every(d)`](Check::every) | how often it runs, and how long its result stays fresh | an expensive or paid-for dependency: once a minute, not once a second |
//! | [`.shared()`](Check::shared) | with a fleet, a failure most replicas share holds readiness | the database, the queue, an upstream every replica uses |
//! | [`.fail_after(n)`](Check::fail_after), [`.pass_after(m)`](Check::pass_after) | fail only after `n` failed runs in a row, pass again only after `m` successes | a dependency that drops the odd request |
//! | [`Check::blocking`] | runs a synchronous function on Tokio's blocking pool | a synchronous client |
//! | [`Check::from_health_check`] | a type implementing [`HealthCheck`], which returns an [`Outcome`]: pass, `warn` or fail, optionally with an observed value | a check that reports degradation (a queue backing up) or a value |
//!
//! **What an answer says.** A failing probe names the failing checks
//! (`{"status":"fail","output":"failed: postgres"}`) and by default never says why: the
//! reason goes to the log, where it cannot leak a host name or a driver's message to
//! whoever reaches the probe port. [`Builder::reasons`] shows it to requests you trust:
//! [`Reasons::always`], [`Reasons::when`], or [`Reasons::loopback_peer`] for `curl` inside
//! the pod and `kubectl port-forward`; other clients read `reason withheld`.
//!
//! - `?verbose` lists every check: in JSON a `checks` object with each check's `status`,
//!   `time`, `observedValue`/`observedUnit` (the run's duration in ms, or the value a
//!   [`HealthCheck`] observed) and `output` where the policy allows; in text one line per
//!   check (`[-]database failed: reason withheld`).
//! - `?exclude=NAME`, repeatable, leaves a check out of this one answer
//!   (`[+]database excluded: failed`): to look past a failure you know about.
//!
//! ## Ready-made checks (features `check-*`)
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
//! # Readiness that never empties the fleet (feature `fleet`)
//!
//! A database that is down is down for every replica. If each then fails readiness, the
//! Service has no endpoints: the answers that need no database are lost too, and recovery
//! waits for every replica's checks and the load balancer. Mark such a dependency
//! [shared](Check::shared) and give the builder the [fleet](Builder::fleet):
//!
//! ```no_run
//! # #[cfg(feature = "fleet")]
//! # fn main() {
//! use tower_health::{Check, Fleet, Health};
//! # async fn select_1() -> Result<(), std::io::Error> { Ok(()) }
//!
//! let health = Health::builder()
//!     .check(Check::new("postgres", select_1).shared())
//!     // A headless Service with `publishNotReadyAddresses: true` lists every replica.
//!     .fleet(Fleet::dns("app-peers.default.svc.cluster.local", 3000))
//!     .build();
//! # drop(health);
//! # }
//! # #[cfg(not(feature = "fleet"))]
//! # fn main() {}
//! ```
//!
//! While a shared check fails here, the replica asks its peers, on the probe port they
//! already serve, for that check's own result. A strict majority of the fleet, this replica
//! included, failing makes the outage shared: readiness holds and the check shows `warn`
//! (`failing on 3 of 3 replicas: readiness held; here: connection refused`) in every
//! answer, the page, gRPC, metrics, the change stream and one log line when it starts and
//! ends. Otherwise the failure is this replica's own and readiness fails as usual.
//!
//! | outage | readiness |
//! |---|---|
//! | one replica lost the database (its node, network, credentials) | that replica fails |
//! | every replica lost it (the database is down) | every replica stays ready, `warn` |
//! | a replica cut off from the database and from its peers | fails: nobody confirms |
//! | a new release that cannot reach the database, beside healthy replicas | stays unready: the rollout halts |
//! | one replica alone | stays ready: it is the whole fleet |
//!
//! Peers are asked only while a shared check fails, concurrently, within the check's
//! timeout plus 250 ms, at most 10 of them (a random sample beyond) and at most once per
//! check per cache time; a peer that does not answer does not confirm. A peer runs its
//! check first when its pass is older than the asker's failing run, so the first replica to
//! see an outage is not told "pass" by stale results. Without `fleet` (or with no peers), a
//! shared check is an ordinary one. [`Health::recheck`] from a request whose query just
//! failed runs the check at once (at most every 250 ms). The repository's
//! `examples/postgres_redis.rs` reads the fleet from `PEERS`, and
//! `examples/kubernetes/fleet-deployment.yaml` is its Deployment.
//!
//! # Telling health what you know
//!
//! A check is for a dependency the application cannot see change, so the layer asks it on
//! an interval. What the application knows itself it says at once, through a handle, and
//! the very next probe (HTTP, gRPC Check or an open Watch, the page, metrics, the change
//! stream) shows it, with no run and no refresh:
//!
//! | handle | for | gates | it fails |
//! |---|---|---|---|
//! | [`Gate`] | a start-up step: migrations, a model, a warm cache | startup and readiness | until [`open`](Gate::open) (one-way) |
//! | [`Switch`] | a status set and set again: maintenance, leadership, a dependency the application watches | readiness | after [`fail`](Switch::fail), until [`pass`](Switch::pass) |
//! | [`Heartbeat`] | a background loop | liveness | when no [`beat`](Heartbeat::beat) came within its maximum age, or the handle was dropped before the drain |
//! | [`Builder::liveness_fails_when_stuck`] | a wedged request path (every handler stuck on a lock) | liveness | while requests wait for a response head and none came for the duration; long-polls left out with [`Builder::stuck_exempt_paths`] |
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
//! - **Gates and `ready()`** compose by "and": `ready()` says the application as a whole
//!   has started, each gate names one step, so `/readyz?verbose` and the page show which
//!   step a slow start waits on. Draining wins over both.
//! - Each is an entry like a check: one namespace with checks and the reserved names, a
//!   line in verbose answers (JSON gives its `componentType`: `gate`, `switch`,
//!   `heartbeat`), `/readyz/NAME`, a gRPC name, a status gauge, and events on the change
//!   stream. A switch or a heartbeat takes `probes(..)` and `non_critical()` as a check
//!   does.
//! - `beat()` is one atomic store: no allocation, no lock. An expired heartbeat is seen by
//!   the next probe, and pushed to Watch and the change stream when its age runs out.
//! - The wedge detector shows as the entry `requests`. Any response head is progress, so a
//!   slow service that still answers something never trips it; a streaming body stops
//!   counting once its head is out; probes are never progress; an idle service is never
//!   stuck. It costs nothing when off.
//!
//! # Graceful shutdown on Kubernetes
//!
//! Three lines of application code: ask for [`Health::shutdown_signal`] first, before
//! start-up work (SIGTERM and Ctrl-C are caught from that call on), hand it to your
//! server's graceful shutdown (`axum::serve(..).with_graceful_shutdown(..)`, tonic's
//! `serve_with_shutdown`, or the accept loop of a hyper-util server), and run the server
//! inside [`Health::with_deadline`], which returns when the server has finished or at the
//! deadline, whichever comes first. What happens from the moment Kubernetes decides to
//! stop the pod, with the defaults, a 1 s `preStop` and a 30 s grace period (as in the
//! repository's `examples/kubernetes/deployment.yaml`):
//!
//! | when | what happens | governed by |
//! |---|---|---|
//! | t = 0 s | The pod is marked terminating; the endpoints controller drops it from the Service, and load balancers start catching up. The kubelet runs the `preStop` hook (`sleep: 1`). | `lifecycle.preStop` (optional) |
//! | t = 1 s | SIGTERM, caught since `shutdown_signal()` was called, even during start-up. [`Lifecycle::Draining`] at once: readiness answers 503, liveness and startup stay 200, and HTTP/1 responses carry `Connection: close`, so keep-alive clients reconnect elsewhere. The server goes on serving. [`Health::wait_for`]`(Lifecycle::Draining)` wakes background tasks. The deadline's clock starts. | [`Builder::close_connections_when_draining`] (on) |
//! | t = 1 to 6 s | The drain delay: traffic is still served while every load balancer lets go of the pod. A second SIGTERM or Ctrl-C ends the delay at once. | [`Builder::drain_delay`] (5 s) |
//! | t = 6 s | `shutdown_signal()` resolves: the server stops accepting, HTTP/2 clients get GOAWAY, requests in flight run to the end; gRPC Watch streams and responses ended with [`Health::drain_delay_over`] end now. | your handlers |
//! | t = 6 s to the end | The last response ends ([`Health::drained`] tells, with [`Builder::track_in_flight`]) and the server future returns; `with_deadline` then waits for every [`DrainGuard`] still held, and returns. With `track_in_flight(true)` it stops the server as soon as nothing is in flight and no guard is held, with the idle connections of clients that never acknowledge GOAWAY. | your handlers and guards |
//! | t = 21 s | **The deadline**, 20 s after SIGTERM, if anything still holds the shutdown (a client that never acknowledges GOAWAY, a long-lived stream, a guard never dropped): `with_deadline` drops the server, logs one warning saying what it cut, and returns `None`. | [`Builder::shutdown_timeout`] (20 s) |
//! | t = 30 s | `terminationGracePeriodSeconds`: anything still running would get SIGKILL; with the defaults nothing is. | the pod spec |
//!
//! So keep `terminationGracePeriodSeconds` above preStop + shutdown deadline + your
//! clean-up after the server returns, keep the deadline above the drain delay + your
//! longest request, and raise the drain delay when your load balancers are slow to
//! converge. [`Health::shutdown_on`] starts the same sequence from a future of your own
//! instead of a signal; [`Health::start_draining`] alone only flips the state.
//!
//! ## Background work
//!
//! A queue consumer, a scheduler or a cache refresher takes a [`DrainGuard`] with
//! [`Health::drain_guard`], `select!`s on
//! [`health.wait_for(Lifecycle::Draining)`](Health::wait_for) to stop taking new work,
//! finishes its batch and drops the guard; `with_deadline` waits for every guard once the
//! server has stopped, no longer than the deadline, when it names those it cut.
//! While the drain runs, verbose answers and the page list who still holds it
//! (`drain:queue-consumer`), as does [`Report::drain_holders`].
//!
//! ```no_run
//! use axum::Router;
//! use tower_health::{Health, Lifecycle};
//!
//! async fn next_message() -> u64 {
//!     // ... the queue's next message ...
//!     std::future::pending().await
//! }
//!
//! async fn handle(_message: u64) {}
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let health = Health::builder().build();
//!     let shutdown = health.shutdown_signal();
//!
//!     let guard = health.drain_guard("queue-consumer"); // holds the shutdown open
//!     let draining = health.wait_for(Lifecycle::Draining);
//!     tokio::spawn(async move {
//!         tokio::pin!(draining);
//!         loop {
//!             tokio::select! {
//!                 _ = &mut draining => break, // SIGTERM: take no new messages
//!                 message = next_message() => handle(message).await,
//!             }
//!         }
//!         // ... commit offsets, flush the batch ...
//!         drop(guard); // now the shutdown may end
//!     });
//!
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//!     health.ready();
//!     let app = Router::new().layer(health.layer());
//!     let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
//!     health.with_deadline(server).await.unwrap_or(Ok(())) // waits for the guard too
//! }
//! ```
//!
//! ## Long-lived responses
//!
//! A server-sent events stream, a streaming body or a websocket holds the graceful shutdown
//! until its client goes away, which may be never. End it when the drain delay is over
//! with `take_until(health.drain_delay_over())`: the stream carries on through the delay,
//! while load balancers still send this pod traffic, and ends as the server stops
//! accepting, so that its client reconnects to another replica; the deadline is the
//! backstop for anything that does not.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use axum::response::sse::{Event, Sse};
//! use axum::{routing::get, Router};
//! use futures_util::{Stream, StreamExt as _};
//! use tower_health::Health;
//!
//! fn events(health: &Health) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
//!     let ticks = futures_util::stream::unfold(0u64, |n| async move {
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         Some((Ok(Event::default().data(n.to_string())), n + 1))
//!     });
//!     Sse::new(ticks.take_until(health.drain_delay_over()))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let health = Health::builder().build();
//! let app: Router = Router::new()
//!     .route("/events", get({
//!         let health = health.clone();
//!         move || std::future::ready(events(&health))
//!     }))
//!     .layer(health.layer());
//! # drop(app);
//! # }
//! ```
//!
//! # gRPC health (feature `grpc`)
//!
//! With the `grpc` feature the layer answers `grpc.health.v1` itself, before routing:
//! `Check`, `Watch`, and `List` from gRPC proposal A90, on any server that speaks HTTP/2
//! (tonic, `axum::serve` with axum's `http2` feature, hyper-util's auto builder), from the
//! same state as the HTTP probes. The kubelet's gRPC probes, `grpc_health_probe`,
//! client-side health checking and service meshes see what `/readyz` says. On tonic, one
//! `.layer(health.layer())` replaces tonic-health and the code that fed it, and
//! `accept_http1(true)` lets the kubelet's HTTP probes reach the layer too:
//! `Server::builder().accept_http1(true).layer(health.layer())`.
//!
//! | service name | status |
//! |---|---|
//! | `""` | readiness: exactly the HTTP readiness verdict, checks included |
//! | `liveness`, `readiness`, `startup` | that probe's verdict |
//! | a check's name | that check alone (a failing non-critical check is `NOT_SERVING` under its own name, while `""` stays `SERVING`) |
//! | a service mapped with `Builder::grpc_service` | the probe it is mapped to; with tonic, `<GreeterServer<_> as NamedService>::NAME` |
//! | anything else | `Check`: `NOT_FOUND`; `Watch`: `SERVICE_UNKNOWN`, stream kept open |
//!
//! - Pass and warn are `SERVING`, anything else `NOT_SERVING`; while draining, every known
//!   name is `NOT_SERVING`.
//! - `Watch` sends the current status, then one message per change, pushed by the change
//!   (a lifecycle transition, a check whose status changed); a watcher that reads slowly
//!   is told the latest status, never a backlog. After the drain delay its stream ends
//!   with `grpc-status: 0`, so that open streams never hold up a graceful shutdown.
//! - `Check` and `List` are answered from the cached results. `List` names at most 100
//!   services, as A90 says; past that it answers `RESOURCE_EXHAUSTED`.
//! - A request on `/grpc.health.v1.Health/...` that is not a gRPC call (not `POST`, or
//!   not `application/grpc`) passes through to the inner service. A gRPC call over
//!   HTTP/1 gets a trailers-only `INTERNAL` error: gRPC needs HTTP/2. A malformed call
//!   gets a trailers-only error (`INTERNAL`, `RESOURCE_EXHAUSTED` for a request message
//!   over 4 KiB, `UNIMPLEMENTED` for compression or a codec other than protobuf).
//!
//! Compared with tonic-health: the statuses come from the lifecycle and the checks rather
//! than from the application setting them by hand; `List` is answered; `Watch` on an
//! unknown name answers `SERVICE_UNKNOWN` and stays open, as the proto says; the drain
//! turns every name `NOT_SERVING` and ends the streams at the drain delay; and it works on
//! any tower stack that speaks HTTP/2. The repository's `examples/tonic.rs` is a tonic
//! server wired this way, and `examples/grpc_health_client.py` asks it with the gRPC
//! project's own Python client.
//!
//! # Probes without an HTTP server (feature `probe-server`)
//!
//! A queue consumer, a scheduler or a stream processor has no HTTP server for the layer to
//! wrap, and a service whose main port speaks only TLS or mTLS cannot take the kubelet's
//! plaintext probes there. `Health::serve_probes` binds a listener of its own, returning a
//! `ProbeServer` that answers what the layer answers, from the same [`Health`]:
//!
//! ```no_run
//! use std::future::IntoFuture;
//! use std::time::Duration;
//!
//! use tower_health::{Gate, Health, Heartbeat, Lifecycle};
//!
//! async fn next_batch() -> Vec<u64> {
//!     tokio::time::sleep(Duration::from_millis(300)).await; // waits on the queue
//!     vec![1, 2, 3]
//! }
//!
//! async fn handle(_batch: Vec<u64>) {}
//!
//! # #[cfg(feature = "probe-server")]
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let queue = Gate::new("queue");
//!     let consumer = Heartbeat::new("consumer", Duration::from_secs(5));
//!     let health = Health::builder().gate(&queue).heartbeat(&consumer).build();
//!     // Bound, and SIGTERM caught, from here; it serves once spawned or awaited.
//!     let probes = health.serve_probes("0.0.0.0:8081").await?;
//!     println!("listening on http://{}", probes.local_addr());
//!     let probes = tokio::spawn(probes.into_future());
//!     health.ready();
//!
//!     // ... connect to the queue ...
//!     queue.open();
//!     let guard = health.drain_guard("consumer");
//!     let draining = health.wait_for(Lifecycle::Draining);
//!     tokio::spawn(async move {
//!         tokio::pin!(draining);
//!         loop {
//!             tokio::select! {
//!                 biased;
//!                 _ = &mut draining => break,
//!                 // A batch once taken is finished: the drain only stops the next one.
//!                 batch = next_batch() => {
//!                     handle(batch).await;
//!                     consumer.beat();
//!                 }
//!             }
//!         }
//!         drop(guard); // the shutdown may end now
//!     });
//!
//!     // The drain delay, then the listener closes; then the guard, within the deadline.
//!     probes.await?
//! }
//! # #[cfg(not(feature = "probe-server"))]
//! # fn main() {}
//! ```
//!
//! - The probes, `/readyz/NAME`, the page, the `405`s and gRPC health over HTTP/2 with
//!   prior knowledge, as the kubelet's gRPC probes speak it; HTTP/1.1 and HTTP/2 are told
//!   apart on each connection. Any other path gets `404` with no body.
//! - Port 0 works: the listener is bound before `serve_probes` returns, and `local_addr()`
//!   says which port was picked.
//! - A client has 2 s to send a request's header; a connection with no request in flight
//!   for that long is closed. At most 256 connections; at the cap the oldest idle one is
//!   closed to make room, so a new probe is always answered. The `ProbeServer` docs give
//!   the settings.
//! - The same drain as the layer, and the same deadline, as [`Health::with_deadline`]
//!   keeps it.
//!
//! Serve the probes on the application's own port, with the layer, whenever the kubelet
//! can reach it: a probe answered there went through the same listener, accept loop and
//! connection handling as real traffic, while a probe on an admin port can pass while the
//! main port is dead. Choose a port of its own when there is no main port (a worker), or
//! when the kubelet cannot speak to it. The repository's `examples/worker.rs` is a whole
//! worker, and `examples/axum.rs` with `ADMIN_ADDR` shows an admin port.
//!
//! The probe listener bounds its own connections; the main port's are the server's, and a
//! flood of idle connections there takes file descriptors from the whole process, the
//! probe listener's too. Bound them where the server is built, below the file limit:
//!
//! - hyper: a semaphore permit per connection, taken before `accept` and held by the
//!   connection's task, HTTP/1's `header_read_timeout`, HTTP/2's `keep_alive_interval`
//!   and `keep_alive_timeout` (the repository's `examples/hyper.rs` does all three).
//! - tonic: `Server::builder().http2_keepalive_interval(..).http2_keepalive_timeout(..)`,
//!   and `serve_with_incoming_shutdown` over an accept stream that takes the same permits.
//! - axum: `axum::serve` takes any `axum::serve::Listener`; implement one over a
//!   `TcpListener` whose `accept` takes a permit and returns it inside the stream (the
//!   repository's `examples/axum.rs` does).
//!
//! # Observability
//!
//! What the layer knows about each dependency reaches people and machines four ways: a
//! page for a person with a browser, metrics, a span per check run, and a stream of
//! changes for the application itself. The repository's `examples/observability.rs` shows
//! all four.
//!
//! ## A page for people
//!
//! Open a probe path with `?verbose` in a browser (through `kubectl port-forward`, say)
//! and the layer answers a small page: the verdict, then the liveness flag, the lifecycle
//! and every check with its status, the age of its result, its duration, and the reason
//! where [`Reasons`] allows it.
//!
//! - Who gets it: a client that ranks `text/html` above every machine format it accepts,
//!   as browsers do. The kubelet's `*/*`, `curl` and `application/json` keep
//!   `application/health+json`; `text/plain` keeps the text.
//! - Without `?verbose` a browser gets the verdict and a link to the verbose page.
//!   `?refresh=N` (or a bare `?refresh`, 5 s) makes the browser reload it every N seconds.
//! - The page loads nothing (no script, no image, no external style sheet), escapes
//!   everything a check says, and is served under `Content-Security-Policy: default-src
//!   'none'` with its one inline style sheet allowed by hash.
//! - Ages are measured when the verbose page is rendered, which the page states.
//!
//! ## Metrics (feature `metrics`)
//!
//! The layer reports through the [`metrics`](https://docs.rs/metrics) facade, so any
//! exporter works: `metrics-exporter-prometheus`, OpenTelemetry through a bridge, StatsD.
//! Install the exporter's recorder before building the [`Health`]. The names and labels are
//! in the `metrics` module.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use tower_health::{Check, Health};
//!
//! # #[cfg(feature = "metrics")]
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // The recorder first, so that the layer's metrics reach it from the start.
//!     let prometheus = PrometheusBuilder::new()
//!         .set_buckets_for_metric(
//!             Matcher::Full(tower_health::metrics::CHECK_DURATION_SECONDS.into()),
//!             &[0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0],
//!         )?
//!         .install_recorder()?;
//!     let health = Health::builder()
//!         .check(Check::new("disk", || async { tokio::fs::metadata("/").await.map(drop) }))
//!         .build();
//!     let app = Router::new()
//!         .route("/metrics", get(move || std::future::ready(prometheus.render())))
//!         .layer(health.layer());
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     health.ready();
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(health.shutdown_signal())
//!         .await?;
//!     Ok(())
//! }
//! # #[cfg(not(feature = "metrics"))]
//! # fn main() {}
//! ```
//!
//! - Requests that are not probes are never counted. A probe costs one counter increment.
//! - Give the histogram buckets as above: without them `metrics-exporter-prometheus`
//!   writes a summary.
//! - A non-critical check that fails is `0` in `health_check_status`, although readiness
//!   only degrades to `warn`; alert on `health_check_status == 0` for what is down and on
//!   `rate(health_check_runs_total{outcome="timeout"}[5m]) > 0` for what is slow.
//!
//! ## Changes
//!
//! [`Health::changes`] is a subscription to every change from the moment it is made: one
//! [`Change`] per lifecycle transition, per change of the liveness flag and per change of a
//! check's status after damping ([`CheckChange`], with its reason even where probe answers
//! withhold it: the application decides where it goes).
//!
//! ```
//! use tower_health::{Change, Health};
//!
//! #[tokio::main]
//! async fn main() {
//!     let health = Health::builder().build();
//!     let mut changes = health.changes();
//!     let log = tokio::spawn(async move {
//!         while let Some(change) = changes.next().await {
//!             println!("{change:?}"); // or log it, or post it to a webhook
//!             if let Change::Lifecycle { .. } = change {
//!                 break;
//!             }
//!         }
//!     });
//!     health.ready(); // a change: Lifecycle { from: Starting, to: Ready, .. }
//!     log.await.unwrap();
//! }
//! ```
//!
//! - A run that changes no status publishes nothing, so the stream is quiet while all is
//!   well.
//! - Each subscriber has a backlog of 256 changes; one that falls further behind gets
//!   `Change::Missed { count }`, then the newest changes. A subscriber never holds up the
//!   layer or the other subscribers.
//! - To wait for the lifecycle alone, [`Health::wait_for`] resolves once a state is
//!   reached.
//!
//! ## Tracing
//!
//! Every check run is a span, `health_check` (target `tower_health::check`, level INFO),
//! with the fields `check`, `outcome` (`pass`, `warn`, `fail`, `timeout`, `panic`) and
//! `duration_ms`; whatever the check logs happens inside it. Probes log nothing per
//! request. Changes are logged once each: a check that starts or stops failing (with the
//! reason, at WARN) and lifecycle transitions under the target `tower_health::observer`,
//! SIGTERM and the drain under `tower_health::shutdown` and `tower_health::drain`. A filter
//! such as `tower_health=info,tower_health::check=warn` keeps the changes and drops the
//! per-run spans.
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs, rust_2018_idioms, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod cache;
mod capped;
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
mod error;
mod health;
mod lifecycle;
mod middleware;
mod observe;
#[cfg(feature = "probe-server")]
mod server;
mod shutdown;
mod time;
mod vocabulary;

pub use crate::answer::matching::Paths;
pub use crate::answer::request::{ProbeRequest, Reasons};
#[cfg(feature = "fleet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fleet")))]
pub use crate::check::Fleet;
pub use crate::check::{
    Check, CheckError, CheckReport, Gate, HealthCheck, Heartbeat, Outcome, Report, Switch,
};
pub use crate::error::{BuildError, BuildProblem};
pub use crate::health::Builder;
pub use crate::health::Health;
pub use crate::middleware::{
    HealthLayer, HealthService, RequestBody, ResponseBody, ResponseFuture,
};
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use crate::observe::metrics;
pub use crate::observe::{Change, Changes, CheckChange};
#[cfg(feature = "probe-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "probe-server")))]
pub use crate::server::{ProbeServer, ProbeServerFuture};
pub use crate::shutdown::DrainGuard;
pub use crate::vocabulary::{CheckKind, Lifecycle, Observed, ObservedValue, Probe, Status};

/// The README's Rust blocks, each compiled (and run, unless marked `no_run`) as a doc
/// test, so that what a reader copies from it compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
