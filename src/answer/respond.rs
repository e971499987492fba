//! The answer to a request whose path matched a probe: read what it asks, then answer from
//! the cached render, or wait for a first check result when nothing is cached yet.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::Request;

use super::render::{self, Detail, Format, Generations, Reply, Scope, Style};
use super::request::{MethodKind, ProbeRequest, Query};
use super::shared::{Shared, SharedRef};
use crate::check::Need;
use crate::vocabulary::{Lifecycle, Probe};

/// A wait for a first check result; only a probe on a cold cache takes it.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// The layer's answer to a probe: ready, or once a first check result is in. Small, so
/// that the code deciding it can stay out of line without moving a whole response future.
pub(crate) enum Answer {
    Reply(Reply),
    Pending(Pending),
}

/// What a probe request asks for, owned, so that a probe on a cold cache can carry it
/// while it waits.
struct Ask {
    probe: Probe,
    only: Option<usize>,
    style: Style,
    head: bool,
    excluded: Option<Box<[bool]>>,
    /// For a page: how often the browser should reload it, in seconds.
    refresh: Option<u16>,
}

// === impl Shared ===

impl Shared {
    /// Every probe answer passes here on its way out, to be counted.
    #[inline]
    fn counted(&self, probe: Probe, reply: Reply) -> Reply {
        self.observer.probe_answered(probe, reply.status());
        reply
    }

    fn respond(&self, ask: &Ask) -> Reply {
        let mut reply = self.rendered(ask);
        if let Some(seconds) = ask.refresh {
            let seconds = http::HeaderValue::from(seconds);
            reply.insert_header(http::header::REFRESH, seconds);
        }
        self.counted(ask.probe, reply)
    }

    fn rendered(&self, ask: &Ask) -> Reply {
        // Read the generations before the results, so that a run finishing meanwhile
        // makes the next probe render again rather than be missed.
        let phase = self.lifecycle.phase();
        if phase.state() == Lifecycle::Starting && ask.probe != Probe::Liveness {
            self.starting();
        }
        if let Some(index) = ask.only {
            let runs = self.engine.runs_of(index);
            return self.answers.check(
                index,
                ask.probe,
                ask.style,
                runs,
                || self.engine.report(index),
                ask.head,
            );
        }
        match &ask.excluded {
            None => {
                let now = Generations {
                    phase: phase.bits(),
                    statuses: self.engine.status_generation(),
                    results: self.engine.results_generation(),
                    holders: match phase.state() {
                        Lifecycle::Draining => self.drain.generation(),
                        _ => 0,
                    },
                };
                self.answers
                    .probe(ask.probe, ask.style, now, || self.report(phase), ask.head)
            }
            Some(excluded) => {
                let scope = Scope::Probe { excluded };
                render::reply(&self.report(phase), ask.probe, scope, ask.style, ask.head)
            }
        }
    }
}

// === impl SharedRef ===

impl SharedRef {
    /// The answer to a request whose path matched `probe` (check `only` of it, when the
    /// path named one).
    pub(crate) fn answer<B>(&self, probe: Probe, only: Option<usize>, req: &Request<B>) -> Answer {
        let method = MethodKind::of(req.method());
        if method == MethodKind::Other {
            let reply = self.counted(probe, Reply::method_not_allowed());
            return Answer::Reply(reply);
        }
        // Most probes have no query: nothing to read, nothing to set up.
        let query = req.uri().query().map(|raw| Query::parse(Some(raw)));
        let query = query.as_ref();
        let shown = self.options.reasons.allow(&ProbeRequest::new(req));
        let format = Format::negotiate(req.headers());
        let ask = Ask {
            probe,
            only,
            style: Style {
                format,
                verbose: query.is_some_and(|q| q.verbose),
                detail: if shown {
                    Detail::Shown
                } else {
                    Detail::Withheld
                },
            },
            head: method == MethodKind::Head,
            // One pass over the checks, with the query read once into a set.
            excluded: query
                .filter(|q| q.has_excludes() && only.is_none())
                .map(|q| self.engine.names().map(|n| q.excludes(n)).collect()),
            refresh: query
                .and_then(|q| q.refresh)
                .filter(|_| format == Format::Html),
        };
        if let (Some(index), Some(max_age)) = (only, query.and_then(|q| q.fleet)) {
            if probe == Probe::Readiness {
                // A peer asks about one check: its own result, never the fleet's verdict.
                let shared = self.clone();
                let head = ask.head;
                return Answer::Pending(Box::pin(async move {
                    let max_age = Duration::from_millis(max_age);
                    let status = shared.engine.peer_answer(index, max_age).await;
                    Reply::peer(status, shared.options.replica, head)
                }));
            }
        }
        if self.engine.is_empty() {
            return Answer::Reply(self.respond(&ask));
        }
        match self.engine.prepare(probe, only) {
            Need::Nothing => Answer::Reply(self.respond(&ask)),
            Need::Wait => {
                // Nothing cached for a check this probe needs: wait for it, at most the
                // budget.
                let shared = self.clone();
                Answer::Pending(Box::pin(async move {
                    shared.engine.wait_for_results(probe, only).await;
                    shared.respond(&ask)
                }))
            }
        }
    }
}
