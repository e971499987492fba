//! The state that every [`Health`](crate::Health) clone, layer and service share, and the
//! answer to a request whose path matched a probe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Request;

use crate::check::Engine;
use crate::future::ResponseFuture;
use crate::lifecycle::{Lifecycle, Phase};
use crate::probe::{Matcher, Probe};
use crate::render::{self, Answers, Detail, Reply, Scope, Style};
use crate::report::Report;
use crate::request::{Format, MethodKind, ProbeRequest, Query, Reasons};
use crate::shutdown::InFlight;

/// The settings of a [`Builder`](crate::Builder) that the shared state keeps.
pub(crate) struct Options {
    pub(crate) reasons: Reasons,
    pub(crate) refresh_every: Option<Duration>,
    pub(crate) drain_delay: Duration,
    pub(crate) close_when_draining: bool,
    pub(crate) track_in_flight: bool,
}

/// The state every clone of a [`Health`](crate::Health) and every layer and service made
/// from it share.
pub(crate) struct Shared {
    pub(crate) lifecycle: Lifecycle,
    pub(crate) matcher: Matcher,
    pub(crate) close_when_draining: bool,
    pub(crate) in_flight: Option<Arc<InFlight>>,
    pub(crate) drain_delay: Duration,
    pub(crate) engine: Engine,
    reasons: Reasons,
    refresh_every: Option<Duration>,
    background: AtomicBool,
    /// The answers for the phase and results they were rendered from.
    answers: ArcSwap<Cached>,
    render_lock: Mutex<()>,
}

struct Cached {
    phase: Phase,
    generation: u64,
    answers: Answers,
}

/// What a probe request asks for, owned, so that a probe on a cold cache can carry it
/// while it waits.
struct Ask {
    probe: Probe,
    only: Option<usize>,
    style: Style,
    head: bool,
    excluded: Option<Box<[bool]>>,
}

impl Shared {
    pub(crate) fn new(
        lifecycle: Lifecycle,
        engine: Engine,
        matcher: Matcher,
        options: Options,
    ) -> Shared {
        let phase = lifecycle.phase();
        let report = Report {
            phase,
            checks: engine.snapshot(),
        };
        Shared {
            answers: ArcSwap::from_pointee(Cached {
                phase,
                generation: engine.generation(),
                answers: Answers::new(&report),
            }),
            render_lock: Mutex::new(()),
            lifecycle,
            engine,
            reasons: options.reasons,
            refresh_every: options.refresh_every,
            background: AtomicBool::new(false),
            matcher,
            drain_delay: options.drain_delay,
            close_when_draining: options.close_when_draining,
            in_flight: options.track_in_flight.then(Default::default),
        }
    }

    /// Whether a request that is not a probe needs more than passing through: counting,
    /// or `Connection: close` while draining.
    #[inline]
    pub(crate) fn tracks_pass_through(&self) -> bool {
        self.in_flight.is_some() || (self.close_when_draining && self.lifecycle.is_draining())
    }

    pub(crate) fn report(&self, phase: Phase) -> Report {
        Report {
            phase,
            checks: self.engine.snapshot(),
        }
    }

    /// The rendered answers for the current phase and results, rendering them if the
    /// cached ones are older.
    fn current(&self) -> arc_swap::Guard<Arc<Cached>> {
        let is_current = |c: &Cached| {
            c.phase == self.lifecycle.phase() && c.generation == self.engine.generation()
        };
        let cached = self.answers.load();
        if is_current(&cached) {
            return cached;
        }
        drop(cached);
        let _lock = self.render_lock.lock().unwrap_or_else(|e| e.into_inner());
        let cached = self.answers.load();
        if is_current(&cached) {
            return cached;
        }
        // Read the generation before the results, so that a run finishing meanwhile
        // makes the next probe render again rather than be missed.
        let generation = self.engine.generation();
        let phase = self.lifecycle.phase();
        self.answers.store(Arc::new(Cached {
            phase,
            generation,
            answers: Answers::new(&self.report(phase)),
        }));
        self.answers.load()
    }

    fn respond(&self, ask: &Ask) -> Reply {
        let cached = self.current();
        let rendered = match ask.only {
            Some(index) => cached.answers.check(index, ask.probe),
            None if ask.excluded.is_none() => Some(cached.answers.probe(ask.probe)),
            None => None,
        };
        if let Some(rendered) = rendered {
            return rendered.reply(ask.style, ask.head);
        }
        let scope = match (&ask.excluded, ask.only) {
            (_, Some(index)) => Scope::Check(index),
            (Some(excluded), None) => Scope::Probe { excluded },
            (None, None) => Scope::Probe { excluded: &[] },
        };
        let report = self.report(cached.phase);
        render::reply(&report, ask.probe, scope, ask.style, ask.head)
    }
}

// === impl SharedRef ===

/// How layers and services hold the shared state: by a counted reference, or borrowed
/// for the rest of the program ([`Health::static_layer`](crate::Health::static_layer)), which makes cloning a service
/// a plain copy.
#[derive(Clone)]
pub(crate) enum SharedRef {
    Counted(Arc<Shared>),
    Static(&'static Shared),
}

impl std::ops::Deref for SharedRef {
    type Target = Shared;

    #[inline]
    fn deref(&self) -> &Shared {
        match self {
            SharedRef::Counted(shared) => shared,
            SharedRef::Static(shared) => shared,
        }
    }
}

/// A [`SharedRef`] that does not keep the state alive.
enum WeakRef {
    Counted(Weak<Shared>),
    Static(&'static Shared),
}

impl WeakRef {
    fn upgrade(&self) -> Option<SharedRef> {
        match self {
            WeakRef::Counted(weak) => weak.upgrade().map(SharedRef::Counted),
            WeakRef::Static(shared) => Some(SharedRef::Static(shared)),
        }
    }
}

impl SharedRef {
    fn downgrade(&self) -> WeakRef {
        match self {
            SharedRef::Counted(shared) => WeakRef::Counted(Arc::downgrade(shared)),
            SharedRef::Static(shared) => WeakRef::Static(shared),
        }
    }

    /// Starts the `refresh_every` task once, if configured and a runtime is at hand.
    pub(crate) fn start_background(&self) {
        let Some(every) = self.refresh_every else {
            return;
        };
        if self.background.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = self.downgrade();
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Hold the state only while starting runs, so that dropping the last
                // handle ends this task.
                let Some(shared) = weak.upgrade() else {
                    tracing::debug!("health: background refresh stopped");
                    return;
                };
                shared
                    .engine
                    .claim(None, None, true, |i| shared.spawn_run(i));
            }
        });
    }

    /// Starts the claimed run of check `index` on the current runtime; without one, gives
    /// the claim back and returns `false`.
    pub(crate) fn spawn_run(&self, index: usize) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.engine.release(index);
            return false;
        };
        let shared = self.clone();
        runtime.spawn(async move {
            shared.engine.run(index).await;
            // Render now, so that the next probe finds the answers ready.
            let _ = shared.current();
        });
        true
    }

    /// The answer to a request whose path matched `probe` (with `rest` after a `/`), or
    /// `None` when it is not a probe after all and goes to the inner service.
    #[inline(never)]
    pub(crate) fn answer<B, F>(
        &self,
        probe: Probe,
        rest: Option<&str>,
        req: &Request<B>,
    ) -> Option<ResponseFuture<F>> {
        // Below a probe path only a check that gates that probe is a probe; anything
        // else belongs to the application.
        let only = match rest {
            None => None,
            Some(name) => Some(self.engine.find(probe, name)?),
        };
        let method = MethodKind::of(req.method());
        if method == MethodKind::Other {
            return Some(ResponseFuture::reply(Reply::method_not_allowed()));
        }
        let query = Query::parse(req.uri().query());
        let shown = self.reasons.allow(&ProbeRequest::new(req));
        let ask = Ask {
            probe,
            only,
            style: Style {
                format: Format::negotiate(req.headers()),
                verbose: query.verbose,
                detail: if shown {
                    Detail::Shown
                } else {
                    Detail::Withheld
                },
            },
            head: method == MethodKind::Head,
            excluded: (query.has_excludes && only.is_none())
                .then(|| self.engine.names().map(|n| query.excludes(n)).collect()),
        };
        if self.engine.is_empty() {
            return Some(ResponseFuture::reply(self.respond(&ask)));
        }
        self.start_background();
        let mut runtime = true;
        let complete = self.engine.claim(Some(probe), only, false, |i| {
            let started = self.spawn_run(i);
            runtime &= started;
            started
        });
        if complete || !runtime {
            return Some(ResponseFuture::reply(self.respond(&ask)));
        }
        // Nothing cached for a check this probe needs: wait for it, at most the budget.
        let shared = self.clone();
        let deadline = tokio::time::Instant::now() + self.engine.budget();
        Some(ResponseFuture::pending(Box::pin(async move {
            shared.engine.wait_for_results(probe, only, deadline).await;
            shared.respond(&ask)
        })))
    }
}
