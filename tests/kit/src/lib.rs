//! The test kit: what the workspace's tests, benches and examples share to drive the
//! library through real interfaces. Each module is one kind of plumbing.
//!
//! - [`common`]: the probe table, bounded waits, servers on loopback (axum, hyper, tonic)
//!   with the layer, HTTP/1.1 and HTTP/2 clients, a check whose outcome the test sets.
//! - [`in_process`]: a layered service over a fixed inner service, driven by `oneshot`,
//!   and a check that counts its runs.
//! - [`example`]: an example, or any binary that prints `listening on http://ADDR`, as a
//!   real process: started, signalled, waited for, killed when dropped.
//! - [`needs`]: tests that need a server or a browser from the machine (`libtest-mimic`
//!   trials, ignored with the reason when it is missing, failed under `CI`).
//! - [`servers`]: PostgreSQL, Redis, MariaDB and RabbitMQ servers owned by a test.
//! - [`health_client`]: a gRPC health client (Check, Watch, List).
//! - [`greeter`]: `helloworld.Greeter`, a gRPC service for the layer to stand in front of.
//! - [`fuzz`]: random and mutated HTTP/1.1 and HTTP/2 requests against a layered server.
//! - [`manifests`]: the Kubernetes manifests of `examples/kubernetes/`, read for a value.
//! - [`prometheus`]: a Prometheus exposition parsed, and a sample found by its labels.
//! - [`readyz_floor`]: the cheapest possible `/readyz` answer, the floor a bench or a load
//!   run compares the layer with.

pub mod common;
pub mod example;
pub mod fuzz;
pub mod greeter;
pub mod health_client;
pub mod in_process;
pub mod manifests;
pub mod needs;
pub mod prometheus;
pub mod readyz_floor;
pub mod servers;
