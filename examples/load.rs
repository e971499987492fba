//! An end-to-end load run over loopback HTTP/1.1 with keep-alive, all in one process.
//!
//! ```text
//! cargo run --release -p examples --example load
//! ```
//!
//! It starts, each on its own `127.0.0.1:0` listener and served the same way (hyper's
//! HTTP/1 connection, one task per connection):
//!
//! - a bare hyper service answering fixed bytes, the baseline;
//! - the same as a tower service, through hyper-util's `TowerToHyperService` as every
//!   tower service below is: what the tower adapter itself costs;
//! - a tower `service_fn` answering exactly what the layer's `/readyz` answers (the same
//!   body and the same four headers, rendered once): the floor for the layer's probe;
//! - an axum `/health` route returning `Json`, as hand-written health endpoints do;
//! - the layer's `/readyz` on an axum router (`.layer(health.layer())`), one passing
//!   check, answered from cache;
//! - the same with the layer wrapped around the whole router (`health.layer().layer(router)`),
//!   so that probes never reach the router;
//! - a normal route of that router, behind the layer;
//! - the same route on the same router without the layer;
//! - the layer's `/readyz` while its one check hangs on every run after the first.
//!
//! A hyper client drives each over `LOAD_CONNECTIONS` keep-alive connections (default 32),
//! one request at a time per connection, in `LOAD_ROUNDS` rounds (default 8) of
//! `LOAD_MILLIS` milliseconds (default 500) per server, each round preceded by 200 ms that
//! are not counted. The servers take turns round by round, and each server's round is
//! compared with the bare server's round just before it, so that a change in the
//! machine's load cancels out. It prints one table: requests per second (the median
//! round), p50 and p99 latency (over every request counted), the ratio to the bare server
//! (the median of the rounds' ratios) and the range of those ratios. Client and servers
//! share one runtime and the machine, so the figures are for comparing rows with one
//! another, not for sizing a server. Then it prints the layer's `/readyz` (layer around
//! the router) against the floor, each round against the floor's round just before it.
//! It stops by itself, in about 50 s.
//!
//! The `/readyz, check hanging` row answers 503 once the hanging check has overrun its
//! timeout (900 ms, the default budget): what matters there is that the answer comes from
//! the cache at once, whatever it says.

use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::Layer;
use tower_health::{Check, Health};

type BoxError = Box<dyn Error + Send + Sync>;

use kit::readyz_floor;

use readyz_floor::{readyz_answer, PASS};
/// The floor for the layer's probe, and the layer's probe measured against it.
const FLOOR: &str = "service_fn, /readyz's answer";
const LAYER: &str = "/readyz, layer(router)";
const WARM_UP: Duration = Duration::from_millis(200);

struct Target {
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
}

#[derive(Default)]
struct Tally {
    rounds: Vec<f64>,
    latencies: Vec<u32>,
    not_ok: usize,
    errors: usize,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let connections = from_env("LOAD_CONNECTIONS", 32)?;
    let rounds = from_env("LOAD_ROUNDS", 8)?.max(1);
    let seconds = Duration::from_millis(from_env("LOAD_MILLIS", 500)? as u64);

    let answer = readyz_answer();
    let targets = [
        Target {
            name: "bare hyper, fixed bytes",
            addr: serve(hyper::service::service_fn(
                |_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(PASS))))
                },
            ))
            .await?,
            path: "/health",
        },
        Target {
            name: "tower service_fn, same bytes",
            addr: serve_tower(tower::service_fn(|_req: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(PASS))))
            }))
            .await?,
            path: "/health",
        },
        Target {
            name: FLOOR,
            addr: serve_tower(tower::service_fn(move |_req: Request<Incoming>| {
                let mut response = Response::new(Full::new(answer.1.clone()));
                *response.headers_mut() = answer.0.clone();
                std::future::ready(Ok::<_, Infallible>(response))
            }))
            .await?,
            path: "/readyz",
        },
        Target {
            name: "axum /health, Json",
            addr: serve_tower(Router::new().route(
                "/health",
                get(|| async { Json(serde_json::json!({"status": "pass"})) }),
            ))
            .await?,
            path: "/health",
        },
        Target {
            name: "/readyz, router.layer(..)",
            addr: serve_tower(app().layer(passing().layer())).await?,
            path: "/readyz",
        },
        Target {
            name: LAYER,
            addr: serve_tower(passing().layer().layer(app())).await?,
            path: "/readyz",
        },
        Target {
            name: "/ route, with the layer",
            addr: serve_tower(app().layer(passing().layer())).await?,
            path: "/",
        },
        Target {
            name: "/ route, without the layer",
            addr: serve_tower(app()).await?,
            path: "/",
        },
        Target {
            name: "/readyz, check hanging",
            addr: serve_tower(app().layer(hanging().await.layer())).await?,
            path: "/readyz",
        },
    ];

    // The floor answers byte for byte what the layer does.
    let address_of = |name: &str| {
        targets
            .iter()
            .find(|t| t.name == name)
            .expect("a target")
            .addr
    };
    let (floor, layer) = (
        answer_of(address_of(FLOOR), "/readyz").await?,
        answer_of(address_of(LAYER), "/readyz").await?,
    );
    if floor != layer {
        return Err(format!("the floor answers {floor:?}, the layer {layer:?}").into());
    }

    println!(
        "{} keep-alive connections, {rounds} rounds of {:?} per server, loopback HTTP/1.1",
        connections, seconds
    );
    let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
    for _ in 0..rounds {
        for (target, tally) in targets.iter().zip(&mut tallies) {
            drive(target, connections, seconds, tally).await?;
        }
    }

    // The layer's probe against its floor, round by round, before the rounds are sorted.
    let rounds_of = |name: &str| {
        let i = targets
            .iter()
            .position(|t| t.name == name)
            .expect("a target");
        tallies[i].rounds.clone()
    };
    let mut against_floor: Vec<f64> = rounds_of(LAYER)
        .iter()
        .zip(rounds_of(FLOOR))
        .map(|(layer, floor)| layer / floor)
        .collect();
    against_floor.sort_by(f64::total_cmp);

    println!();
    println!(
        "| {:<28} | {:>9} | {:>9} | {:>9} | {:>13} | {:>13} |",
        "server", "req/s", "p50", "p99", "ratio to bare", "rounds' range"
    );
    println!(
        "|{:-<30}|{:->11}|{:->11}|{:->11}|{:->15}|{:->15}|",
        "", "", "", "", "", ""
    );
    let bare_rounds = tallies[0].rounds.clone();
    for (target, tally) in targets.iter().zip(&mut tallies) {
        // Each round is compared with the bare server's round just before it, so that a
        // change in the machine's load between rounds cancels out.
        let mut ratios: Vec<f64> = tally
            .rounds
            .iter()
            .zip(&bare_rounds)
            .map(|(rps, bare)| rps / bare)
            .collect();
        ratios.sort_by(f64::total_cmp);
        tally.rounds.sort_by(f64::total_cmp);
        tally.latencies.sort_unstable();
        println!(
            "| {:<28} | {:>9.0} | {:>9} | {:>9} | {:>12.3}x | {:>13} |",
            target.name,
            median(&tally.rounds),
            micros(percentile(&tally.latencies, 0.50)),
            micros(percentile(&tally.latencies, 0.99)),
            median(&ratios),
            format!("{:.2}-{:.2}x", ratios[0], ratios[ratios.len() - 1]),
        );
    }
    println!();
    println!(
        "{LAYER} against {FLOOR}: {:.3}x (median of the rounds; range {:.2}-{:.2}x)",
        median(&against_floor),
        against_floor[0],
        against_floor[against_floor.len() - 1],
    );
    for (target, tally) in targets.iter().zip(&tallies) {
        if tally.not_ok > 0 || tally.errors > 0 {
            println!(
                "{}: {} answers other than 200, {} failed requests",
                target.name, tally.not_ok, tally.errors
            );
        }
    }
    Ok(())
}

/// The application: one normal route.
fn app() -> Router {
    Router::new().route("/", get(|| async { "hello, world" }))
}

/// A `Health` with one check that passes at once.
fn passing() -> Health {
    let health = Health::builder()
        .check(Check::new("db", || async { Ok::<(), Infallible>(()) }))
        .build();
    health.ready();
    health
}

/// A `Health` whose one check passed once and hangs on every run since, with results that
/// go stale after 1 ms: a refresh is always hanging behind the probes.
async fn hanging() -> Health {
    let runs = Arc::new(AtomicUsize::new(0));
    let health = Health::builder()
        .check(Check::new("db", move || {
            let first = runs.fetch_add(1, Ordering::Relaxed) == 0;
            async move {
                if !first {
                    std::future::pending::<()>().await;
                }
                Ok::<(), Infallible>(())
            }
        }))
        .every(Duration::from_millis(1))
        .build();
    health.refresh().await;
    health.ready();
    health
}

async fn serve_tower<S, B>(service: S) -> Result<SocketAddr, BoxError>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve(TowerToHyperService::new(service)).await
}

/// Serves `service` on a fresh loopback port until the process ends.
async fn serve<S, B>(service: S) -> Result<SocketAddr, BoxError>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service.clone());
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    });
    Ok(addr)
}

/// One round against one server: `connections` clients, each sending one request after
/// the other for the warm-up and then `seconds`.
async fn drive(
    target: &Target,
    connections: usize,
    seconds: Duration,
    tally: &mut Tally,
) -> Result<(), BoxError> {
    let start = Instant::now() + WARM_UP;
    let end = start + seconds;
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{}: handshake: {e}", target.name))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        clients.push(tokio::spawn(client(sender, target.path, start, end)));
    }
    let mut counted = 0;
    for handle in clients {
        let (latencies, not_ok, errors) = handle.await?;
        counted += latencies.len();
        tally.latencies.extend(latencies);
        tally.not_ok += not_ok;
        tally.errors += errors;
    }
    tally.rounds.push(counted as f64 / seconds.as_secs_f64());
    Ok(())
}

/// Sends requests on one connection until `end`; returns the latencies (in ns) of those
/// sent from `start` on, the answers other than 200 and the failed requests.
async fn client(
    mut sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &'static str,
    start: Instant,
    end: Instant,
) -> (Vec<u32>, usize, usize) {
    let mut latencies = Vec::new();
    let (mut not_ok, mut errors) = (0, 0);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        if sender.ready().await.is_err() {
            errors += 1;
            break;
        }
        let request = Request::get(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .body(Empty::new())
            .expect("request");
        let answer = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.map(|_| status)
            }
            Err(error) => Err(error),
        };
        let elapsed = sent.elapsed();
        if sent < start {
            continue;
        }
        match answer {
            Ok(status) => {
                if status != StatusCode::OK {
                    not_ok += 1;
                }
                latencies.push(elapsed.as_nanos().min(u32::MAX as u128) as u32);
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    (latencies, not_ok, errors)
}

/// The status, headers (but `date`) and body of one `GET path`.
async fn answer_of(
    addr: SocketAddr,
    path: &str,
) -> Result<(StatusCode, hyper::HeaderMap, Bytes), BoxError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(hyper::header::DATE);
    Ok((
        parts.status,
        parts.headers,
        body.collect().await?.to_bytes(),
    ))
}

fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

fn micros(ns: u32) -> String {
    format!("{:.1} µs", f64::from(ns) / 1_000.0)
}

fn from_env(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(value) => Ok(value
            .parse()
            .map_err(|e| format!("{name}={value:?}: {e}"))?),
        Err(_) => Ok(default),
    }
}
