//! What the application tells its health itself: gates, switches, heartbeats and the
//! wedge detector in process (`in_process`), and the examples built on them run as real
//! processes (`examples`).

mod examples;
mod in_process;
