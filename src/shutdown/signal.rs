//! The OS signals that start a drain: SIGTERM and SIGINT, caught as early as possible.

/// The target of its log lines, kept from before it moved into this folder.
const TARGET: &str = "tower_health::shutdown";

// === impl Signals ===

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment this is made on a Tokio runtime,
/// so that a signal that arrives before anything waits for it is never the default action
/// (ending the process at once, exit 143): it is kept, and the next [`Signals::next`]
/// returns at once. Made outside a runtime, the handlers are installed at the first
/// `next`.
///
/// A handler that cannot be installed (no IO driver in the runtime, the OS refused) is
/// logged, and that signal never arrives, rather than stopping the server at once.
#[derive(Debug)]
pub(crate) struct Signals {
    installed: bool,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(crate) fn catch() -> Signals {
        let mut signals = Signals {
            installed: false,
            #[cfg(unix)]
            terminate: None,
            #[cfg(unix)]
            interrupt: None,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            signals.install();
        }
        signals
    }

    fn install(&mut self) {
        self.installed = true;
        #[cfg(unix)]
        {
            use tokio::signal::unix::SignalKind;
            self.terminate = unix_signal(SignalKind::terminate(), "SIGTERM");
            self.interrupt = unix_signal(SignalKind::interrupt(), "Ctrl-C (SIGINT)");
        }
    }

    /// The next signal caught, logged by name.
    pub(crate) async fn next(&mut self) {
        if !self.installed {
            self.install();
        }
        #[cfg(unix)]
        {
            async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.terminate) => {
                    tracing::info!(target: TARGET, "health: SIGTERM received");
                }
                () = recv(&mut self.interrupt) => {
                    tracing::info!(target: TARGET, "health: Ctrl-C received");
                }
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(target: TARGET, %error, "health: cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!(target: TARGET, "health: Ctrl-C received");
        }
    }
}

/// The handler for `kind`, or `None` (logged) when it cannot be had. tokio panics rather
/// than erring on a runtime built without its IO driver; that is caught here, once per
/// call, so that a shutdown future never takes the process down.
#[cfg(unix)]
fn unix_signal(
    kind: tokio::signal::unix::SignalKind,
    name: &str,
) -> Option<tokio::signal::unix::Signal> {
    match std::panic::catch_unwind(|| tokio::signal::unix::signal(kind)) {
        Ok(Ok(signal)) => Some(signal),
        Ok(Err(error)) => {
            tracing::error!(target: TARGET, %error, "health: cannot listen for {name}");
            None
        }
        Err(_) => {
            tracing::error!(
                target: TARGET,
                "health: cannot listen for {name}: the Tokio runtime has no IO driver \
                 (build it with enable_io or enable_all)"
            );
            None
        }
    }
}

/// SIGTERM or Ctrl-C, whichever comes first, with handlers installed when first polled.
pub(crate) async fn os_signal() {
    Signals {
        installed: false,
        #[cfg(unix)]
        terminate: None,
        #[cfg(unix)]
        interrupt: None,
    }
    .next()
    .await
}
