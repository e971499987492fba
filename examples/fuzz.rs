//! A longer fuzz run than the test's: random and mutated HTTP/1.1 and HTTP/2 requests over
//! real loopback connections to a server wearing the layer, with any seed and count.
//!
//! ```text
//! cargo run --release -p examples --example fuzz                          # 20,000 cases, seed 1
//! FUZZ_CASES=200000 FUZZ_SEED=7 cargo run --release -p examples --example fuzz
//! ```
//!
//! `FUZZ_CASES` is split 60 % raw HTTP/1.1, 20 % HTTP/2 from a real client and 20 %
//! mutated HTTP/2 byte streams. It prints what the server answered and exits with an error
//! on a panic, a malformed answer, a hung connection or a server that stopped answering;
//! `tests/fuzz.rs` runs the same with a fixed seed and count in CI.

use std::error::Error;
use std::sync::atomic::Ordering;
use std::time::Instant;

use kit::fuzz;

fn from_env(name: &str, default: u64) -> Result<u64, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(value) => Ok(value
            .parse()
            .map_err(|e| format!("{name}={value:?}: {e}"))?),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let cases = from_env("FUZZ_CASES", 20_000)? as usize;
    let seed = from_env("FUZZ_SEED", 1)?;
    let plan = fuzz::Plan {
        seed,
        http1: cases * 6 / 10,
        http2: cases * 2 / 10,
        http2_raw: cases - cases * 6 / 10 - cases * 2 / 10,
    };
    let panics = fuzz::panics();
    let server = fuzz::Server::start().await;
    println!("{plan:?} against http://{}", server.addr);
    let started = Instant::now();
    let outcome = fuzz::run(&server, plan).await;
    println!("{outcome:#?}");
    println!("{:.1} s", started.elapsed().as_secs_f64());
    let panics = panics.load(Ordering::SeqCst);
    if panics > 0 || !server.is_running() || !outcome.failures.is_empty() {
        return Err(format!(
            "{panics} panics, {} failed checks, server running: {}",
            outcome.failures.len(),
            server.is_running()
        )
        .into());
    }
    Ok(())
}
