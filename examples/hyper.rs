//! The layer on a plain hyper 1 service, served by hyper-util's HTTP/1 + HTTP/2 connection
//! builder with a graceful shutdown: when `shutdown_signal()` resolves the accept loop
//! stops, and the server waits for the open connections to finish, no later than the
//! shutdown deadline (`Health::with_deadline`).
//!
//! ```text
//! cargo run -p examples --example hyper
//! curl -i localhost:3000/livez
//! curl -i -d 'hi' localhost:3000/echo
//! ```
//!
//! The main port is bounded as the probe listener bounds its own: at most 512
//! connections at once (a flood waits in the kernel's backlog rather than taking every
//! file descriptor of the process), HTTP/1 clients have 10 s to send a header, and HTTP/2
//! peers are pinged so that a dead one is let go.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `DRAIN_DELAY_MS` (how long to keep
//! serving after SIGTERM, default 5000), `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the
//! whole shutdown, counted from SIGTERM, default 20000), `RUST_LOG` (default `info`).

use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_health::Health;

#[path = "support/mod.rs"]
mod support;

/// The most connections served at once: keep it below the process's file limit
/// (`ulimit -n`, often 1,024) less what the application opens itself.
const MAX_CONNECTIONS: usize = 512;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let health = support::shutdown_from_env(Health::builder())?.build();
    // SIGTERM is caught from here on: a signal during start-up drains, it never kills.
    let shutdown = health.shutdown_signal();

    let service = ServiceBuilder::new()
        .layer(health.layer())
        .service_fn(handle);

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    health.ready();

    let mut connections = auto::Builder::new(TokioExecutor::new());
    connections
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    connections
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10));
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let server = async move {
        tokio::pin!(shutdown);
        loop {
            // A connection is accepted only with a permit, which it holds until it ends.
            let permit = tokio::select! {
                permit = limit.clone().acquire_owned() => permit.expect("never closed"),
                () = &mut shutdown => break,
            };
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let connection = connections.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(service.clone()),
                    );
                    let connection = graceful.watch(connection.into_owned());
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                        drop(permit);
                    });
                }
                () = &mut shutdown => break,
            }
        }
        // Closing the listener refuses new connections; open ones finish their requests.
        drop(listener);
        graceful.shutdown().await;
    };
    // Returns when every connection has finished, or at the shutdown deadline, whatever
    // the clients do (one that never acknowledges HTTP/2's GOAWAY would hold it for ever).
    health.with_deadline(server).await;
    tracing::info!("server stopped");
    Ok(())
}

/// The application: `/` and `POST /echo`; `HEAD` gets headers only.
pub(crate) async fn handle(
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = request.method() == Method::HEAD;
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/") => Response::new(Full::from("Hello from hyper!\n")),
        (&Method::POST, "/echo") => match request.into_body().collect().await {
            Ok(body) => Response::new(Full::new(body.to_bytes())),
            Err(_) => status(StatusCode::BAD_REQUEST),
        },
        _ => status(StatusCode::NOT_FOUND),
    };
    Ok(if head {
        without_body(response)
    } else {
        response
    })
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(code.canonical_reason().unwrap_or("")));
    *response.status_mut() = code;
    response
}

/// The answer to a `HEAD`: the headers of the `GET` answer and no body. hyper drops the
/// body of a `HEAD` answer itself over HTTP/1 but not over HTTP/2, where sending one is a
/// protocol error.
fn without_body(response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let length = response.body().size_hint().exact().unwrap_or(0);
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(CONTENT_LENGTH, length.into());
    Response::from_parts(parts, Full::default())
}
