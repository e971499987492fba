//! What people and machines see of the application's health: the [`Observer`] that turns
//! each transition, run and status change into a log line, a metric and a [`Change`], the
//! change stream those changes go to, and the metrics facade (feature `metrics`).

mod changes;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod observer;

pub use changes::{Change, Changes, CheckChange};
pub(crate) use observer::Observer;
