//! Random and mutated HTTP/1.1 and HTTP/2 requests over real loopback connections to a
//! server wearing the layer: a fixed seed and a fixed count, so that every run sends the
//! same requests and stays within a few seconds. `examples/fuzz.rs` runs longer, with any
//! seed and count.

use kit::fuzz;

use std::sync::atomic::Ordering;

use fuzz::{Plan, Server};

const PLAN: Plan = Plan {
    seed: 0x5eed_0010,
    http1: 600,
    http2: 200,
    http2_raw: 200,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_requests_never_break_the_server() {
    let panics = fuzz::panics();
    let server = Server::start().await;
    let outcome = fuzz::run(&server, PLAN).await;
    println!("{outcome:#?}");

    assert_eq!(panics.load(Ordering::SeqCst), 0, "panics during the run");
    assert!(server.is_running(), "the server task ended");
    assert!(
        outcome.failures.is_empty(),
        "{} of the checks failed:\n{}",
        outcome.failures.len(),
        outcome.failures.join("\n")
    );
    // The run reached the layer, with probes and bad requests both.
    assert_eq!(outcome.http1_cases, PLAN.http1);
    assert!(outcome.http1_answered > PLAN.http1 / 2, "{outcome:?}");
    assert!(
        outcome.http2_answered > outcome.http2_cases / 2,
        "{outcome:?}"
    );
    assert!(outcome.statuses_in(200..300) > 0, "{outcome:?}");
    assert!(outcome.statuses_in(400..500) > 0, "{outcome:?}");
}
