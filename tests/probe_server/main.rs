//! The probe listener of its own (`Health::serve_probes`, feature `probe-server`): over real
//! sockets and through a real SIGTERM (`listener`), and the examples that serve their
//! probes on it, run as real processes (`examples`).

mod examples;
mod listener;
