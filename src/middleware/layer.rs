//! [`HealthLayer`]: the `tower_layer::Layer` that wraps a service in a [`HealthService`].

use tower_layer::Layer;

use super::service::HealthService;
use crate::answer::shared::SharedRef;

/// Wraps a service so that it answers the probes of the [`Health`](crate::Health) it came
/// from, made with [`Health::layer`](crate::Health::layer).
///
/// Cloning it is cheap, and every service it makes shares the one `Health`'s state.
#[derive(Clone)]
pub struct HealthLayer {
    shared: SharedRef,
    exempt: bool,
}

impl HealthLayer {
    pub(crate) fn new(shared: SharedRef) -> Self {
        HealthLayer {
            shared,
            exempt: false,
        }
    }

    /// The same layer, whose services' pass-through requests the wedge detector leaves
    /// out: for the probe listener, whose other answers are the library's own.
    #[cfg(feature = "probe-server")]
    pub(crate) fn exempt(mut self) -> Self {
        self.exempt = true;
        self
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = HealthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthService::new(inner, self.shared.clone(), self.exempt)
    }
}

impl std::fmt::Debug for HealthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthLayer")
            .field("paths", self.shared.matcher().paths())
            .finish_non_exhaustive()
    }
}
