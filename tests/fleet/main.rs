//! Readiness that never empties the fleet (feature `fleet`): the rule on a paused clock
//! with replicas in process (`paused`), and end to end with three replicas on loopback,
//! a real PostgreSQL and the Kubernetes manifest (`postgres`).
//!
//! A `harness = false` target: a test that needs PostgreSQL on a machine without it is
//! reported as ignored with the reason, or fails when `CI` is set (see `kit::needs`).

use std::process::ExitCode;

mod paused;
mod postgres;

fn main() -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = paused::trials();
    trials.extend(postgres::trials());
    libtest_mimic::run(&args, trials).exit_code()
}
