//! What every example needs and none is about: logs on stderr, the listen address, and
//! durations read from the environment.
#![allow(dead_code)] // each example uses what it needs

use std::env;
use std::error::Error;
use std::io::IsTerminal;
use std::time::Duration;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Logs to stderr at `RUST_LOG` (default `info`), so that stdout carries only the
/// `listening on` line.
///
/// `RUST_LOG` takes a level (`debug`) or comma-separated `target=level` pairs
/// (`info,tower_health=debug`). That is `tracing_subscriber`'s `Targets` filter rather than
/// its `EnvFilter`, which would add a regular-expression engine to every example's build.
pub fn init_tracing() {
    let default = || Targets::new().with_default(Level::INFO);
    let filter = match env::var("RUST_LOG") {
        Ok(value) => value.parse().unwrap_or_else(|e| {
            eprintln!("RUST_LOG={value:?} is not a filter like `info,tower_health=debug` ({e}); logging at info");
            default()
        }),
        Err(_) => default(),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
}

/// `ADDR`, or `127.0.0.1:3000`.
pub fn addr() -> String {
    env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
}

/// A duration given in milliseconds by the environment variable `name`, if it is set.
pub fn millis_from_env(name: &str) -> Result<Option<Duration>, Box<dyn Error>> {
    match env::var(name) {
        Ok(value) => {
            let ms: u64 = value
                .parse()
                .map_err(|e| format!("{name}={value:?} is not a number of milliseconds: {e}"))?;
            Ok(Some(Duration::from_millis(ms)))
        }
        Err(env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(format!("{name}: {e}").into()),
    }
}

/// `builder` with the shutdown's timeline from the environment: the drain delay from
/// `DRAIN_DELAY_MS` (how long to keep serving after SIGTERM, default 5000) and the hard
/// deadline of the whole shutdown from `SHUTDOWN_TIMEOUT_MS` (counted from the first
/// signal, drain delay included, default 20000), each if set.
pub fn shutdown_from_env(
    builder: tower_health::Builder,
) -> Result<tower_health::Builder, Box<dyn Error>> {
    let mut builder = builder;
    if let Some(delay) = millis_from_env("DRAIN_DELAY_MS")? {
        builder = builder.drain_delay(delay);
    }
    if let Some(timeout) = millis_from_env("SHUTDOWN_TIMEOUT_MS")? {
        builder = builder.shutdown_timeout(timeout);
    }
    Ok(builder)
}
