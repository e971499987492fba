//! An axum application with its own middleware, routes and fallback, and the health layer
//! outermost: probes are answered before the token check and before routing, so the
//! kubelet needs no token and never meets the application's 404.
//!
//! ```text
//! cargo run -p examples --example axum
//! curl -i localhost:3000/readyz                                   # 200, no token needed
//! curl -i localhost:3000/items/7                                  # 401
//! curl -i -H 'authorization: Bearer demo-token' localhost:3000/items/7
//! ```
//!
//! With `ADMIN_ADDR` set, the probes are served on that address instead, by a probe
//! listener of their own (feature `probe-server`), and `ADDR` serves the router alone: there
//! `/readyz` gets the token check's 401 like any path. It prints a second line,
//! `probes on http://ADMIN_ADDR`. Prefer the same port (the default) unless the kubelet
//! cannot reach it: see "Probes without an HTTP server" in the crate docs.
//!
//! ```text
//! ADMIN_ADDR=127.0.0.1:9090 cargo run -p examples --example axum
//! curl -i localhost:9090/readyz                                   # 200
//! curl -i localhost:3000/readyz                                   # 401: the router's
//! ```
//!
//! The main port serves at most 512 connections at once (`Bounded`, below): a flood
//! waits in the kernel's backlog instead of taking every file descriptor of the process,
//! and with them the probe listener's.
//!
//! Environment: `ADDR` (default `127.0.0.1:3000`), `ADMIN_ADDR` (unset by default),
//! `DRAIN_DELAY_MS` (how long to keep serving after SIGTERM, default 5000),
//! `SHUTDOWN_TIMEOUT_MS` (the hard deadline of the whole shutdown, counted from SIGTERM,
//! default 20000), `RUST_LOG` (default `info`).

use std::error::Error;
use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{Path, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_health::Health;

#[path = "support/mod.rs"]
mod support;

const TOKEN: &str = "Bearer demo-token";

/// The most connections the main port serves at once: keep it below the process's file
/// limit (`ulimit -n`, often 1,024) less what the application opens itself.
const MAX_CONNECTIONS: usize = 512;

#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn Error>> {
    support::init_tracing();

    let health = support::shutdown_from_env(Health::builder())?.build();
    // SIGTERM is caught from here on: a signal during start-up drains, it never kills.
    let shutdown = health.shutdown_signal();

    let app = Router::new()
        .route("/", get(root))
        .route("/items/{id}", get(item))
        .fallback(not_found)
        .layer(middleware::from_fn(require_token));
    let admin = std::env::var("ADMIN_ADDR").ok();
    let app = match admin {
        // The probes have a port of their own: the router gets every request on this one.
        Some(_) => app,
        // Last, so outermost: it sees every request first.
        None => app.layer(health.layer()),
    };

    let listener = TcpListener::bind(support::addr()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let probes = match admin {
        Some(admin) => {
            let probes = health.serve_probes(admin).await?;
            println!("probes on http://{}", probes.local_addr());
            Some(probes)
        }
        None => None,
    };
    health.ready();

    let listener = Bounded {
        listener,
        permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let served = async move {
        match probes {
            // Both drain on the same signal; the probes are answered until the delay ends.
            Some(probes) => {
                let (served, probed) = tokio::join!(server.into_future(), probes.into_future());
                served?;
                probed
            }
            None => server.await,
        }
    };
    // Returns when the servers have finished, or at the shutdown deadline, whatever their
    // clients do (one that never acknowledges HTTP/2's GOAWAY would hold them for ever).
    health.with_deadline(served).await.unwrap_or(Ok(()))?;
    tracing::info!("server stopped");
    Ok(())
}

async fn root() -> &'static str {
    "Hello from axum!\n"
}

async fn item(Path(id): Path<u32>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id, "name": format!("item {id}") }))
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "no such page\n")
}

/// Stands for any authentication middleware: it would reject the kubelet's probes if they
/// ever reached it.
async fn require_token(request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value == TOKEN);
    if authorized {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "missing or wrong token\n").into_response()
    }
}

/// A listener that accepts a connection only with a permit, which the connection holds
/// until it is closed: at most `MAX_CONNECTIONS` at once.
struct Bounded {
    listener: TcpListener,
    permits: Arc<Semaphore>,
}

impl axum::serve::Listener for Bounded {
    type Io = Permitted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Permitted, SocketAddr) {
        let permit = (self.permits.clone().acquire_owned().await).expect("never closed");
        // axum's own accept, which retries (and backs off) when accepting fails.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        let stream = Permitted {
            stream,
            _permit: permit,
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection and its permit, given back when the connection is dropped.
struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
