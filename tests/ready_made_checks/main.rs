//! The ready-made checks (`tower_health::checks`): against real servers of each kind
//! (`live`), and those that ask the machine rather than a server, DNS, disk, memory and a
//! certificate file (`local`).
//!
//! A `harness = false` target: a test that needs a server's binaries the machine lacks is
//! reported as ignored with the reason, or fails when `CI` is set (see `kit::needs`).

use std::process::ExitCode;

mod live;
mod local;

fn main() -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = live::trials();
    trials.extend(local::trials());
    libtest_mimic::run(&args, trials).exit_code()
}

/// A current-thread runtime for one test. A run of a check then ends (its claim given
/// back) before the refresh that awaited it goes on, so that every refresh of a test runs
/// its check.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}
