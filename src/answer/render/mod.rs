//! Probe answers as bytes: what an answer is made of (its entries and verdict), the cache
//! of rendered answers, and one file per body format: [`json`] (`application/health+json`,
//! the IETF draft "Health Check Response Format for HTTP APIs"), [`text`] (the
//! Kubernetes API server's `text/plain`) and [`html`] (a page for people).
//!
//! An answer is rendered when it is first asked for after a change of what it shows, and
//! kept as shared [`Bytes`] with its headers; answering a probe then only picks it.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH};
use http::{HeaderMap, StatusCode};

use crate::cache::{lock, Keyed, KeyedCache};
use crate::check::report::{fails_liveness, lifecycle_blocker, verdict, Blocker, Verdict};
use crate::check::{CheckReport, Report};
use crate::vocabulary::{Phase, Probe, Status, LIFECYCLE};

mod format;
mod html;
mod json;
mod text;

pub(crate) use format::Format;
pub(crate) use html::DEFAULT_REFRESH;

/// What to say about why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    Withheld,
    Shown,
}

/// The shape of one answer body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub(crate) format: Format,
    pub(crate) verbose: bool,
    pub(crate) detail: Detail,
}

impl Style {
    /// How many styles there are: every format, plain or verbose, reasons withheld or
    /// shown.
    pub(crate) const COUNT: usize = Format::ALL.len() * 4;

    pub(crate) fn index(self) -> usize {
        self.format.index() * 4
            + usize::from(self.verbose) * 2
            + usize::from(self.detail == Detail::Shown)
    }

    /// Whether an answer in this style shows more than statuses (the time, duration and
    /// output of each check), so that it changes with every run rather than with every
    /// change of status.
    fn shows_results(self) -> bool {
        self.verbose || self.detail == Detail::Shown
    }
}

/// Which part of the report an answer covers.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// The probe as a whole, minus the checks whose index is `true` in `excluded` (an
    /// empty slice leaves none out).
    Probe { excluded: &'a [bool] },
    /// One check alone (`/readyz/<name>`).
    Check(usize),
}

/// One rendered answer.
#[derive(Debug)]
pub(crate) struct Rendered {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// A rendered answer with the key of the state it was rendered from.
type CachedAnswer = Keyed<u128, Rendered>;

impl Rendered {
    fn new(status: StatusCode, format: Format, body: Bytes) -> Rendered {
        Rendered {
            status,
            headers: probe_headers(format, body.len()),
            body,
        }
    }
}

/// A reply rendered for this request alone (with exclusions).
pub(crate) fn reply(
    report: &Report,
    probe: Probe,
    scope: Scope<'_>,
    style: Style,
    head: bool,
) -> Reply {
    let (status, body) = render(report, probe, scope, style);
    Reply::Made(Box::new(Made {
        status,
        headers: probe_headers(style.format, body.len()),
        body: (!head).then_some(body),
    }))
}

/// What the engine and the lifecycle say has changed since an answer was rendered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Generations {
    /// The lifecycle word.
    pub(crate) phase: u8,
    /// Bumped when a check's status changes.
    pub(crate) statuses: u64,
    /// Bumped when any run finishes.
    pub(crate) results: u64,
    /// Bumped when a drain guard is taken or dropped; 0 unless draining, since only
    /// then do answers show the guards.
    pub(crate) holders: u64,
}

impl Generations {
    fn key(self, style: Style) -> u128 {
        let generation = if style.shows_results() {
            self.results
        } else {
            self.statuses
        };
        (u128::from(self.holders) << 64 | u128::from(generation)) << 3 | u128::from(self.phase)
    }
}

/// Answers rendered on demand: the first request for an answer after a change renders it,
/// the requests after it share its bytes. Nothing is rendered that nobody asks for, and a
/// finished run renders nothing at all.
pub(crate) struct AnswerCache {
    /// The whole-probe answers, one slot per probe and style.
    probes: Box<[KeyedCache<u128, Rendered>]>,
    /// Each check's own answers (`/readyz/NAME`), made the first time one is asked for.
    checks: Box<[Mutex<Option<CheckAnswers>>]>,
}

/// One check's answers, one per probe and style, each rendered when first asked for.
type CheckAnswers = Box<[Option<Arc<CachedAnswer>>]>;

impl AnswerCache {
    pub(crate) fn new(checks: usize) -> AnswerCache {
        AnswerCache {
            probes: (0..Probe::ALL.len() * Style::COUNT)
                .map(|_| KeyedCache::default())
                .collect(),
            checks: (0..checks).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The answer of `probe` in `style` for the state `now` describes, rendered from
    /// `report()` unless a current one is cached.
    pub(crate) fn probe(
        &self,
        probe: Probe,
        style: Style,
        now: Generations,
        report: impl FnOnce() -> Report,
        head: bool,
    ) -> Reply {
        let slot = &self.probes[probe.index() * Style::COUNT + style.index()];
        let answer = slot.get(now.key(style), || {
            let scope = Scope::Probe { excluded: &[] };
            let (status, body) = render(&report(), probe, scope, style);
            Rendered::new(status, style.format, body)
        });
        Reply::cached(answer, head)
    }

    /// Check `index`'s own answer on `probe` in `style`, after `runs` recorded runs,
    /// rendered from `report()` (the check's last result) unless a current one is
    /// cached.
    pub(crate) fn check(
        &self,
        index: usize,
        probe: Probe,
        style: Style,
        runs: u64,
        report: impl FnOnce() -> CheckReport,
        head: bool,
    ) -> Reply {
        let mut answers = lock(&self.checks[index]);
        let answers = answers
            .get_or_insert_with(|| (0..Probe::ALL.len() * Style::COUNT).map(|_| None).collect());
        let slot = &mut answers[probe.index() * Style::COUNT + style.index()];
        if let Some(answer) = slot.as_ref().filter(|a| a.key == u128::from(runs)) {
            return Reply::cached(answer.clone(), head);
        }
        let report = Report {
            // A check's own answer does not depend on the lifecycle.
            phase: Phase::default(),
            checks: vec![report()],
            drain_holders: Vec::new(),
        };
        let (status, body) = render(&report, probe, Scope::Check(0), style);
        let answer = Arc::new(Keyed {
            key: u128::from(runs),
            value: Rendered::new(status, style.format, body),
        });
        *slot = Some(answer.clone());
        Reply::cached(answer, head)
    }
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache").finish_non_exhaustive()
    }
}

/// One entry of an answer: a lifecycle line or a check.
pub(crate) struct Entry<'a> {
    pub(crate) name: &'a str,
    /// The status shown on the entry itself.
    pub(crate) status: Status,
    /// Shown whatever the detail policy: the lifecycle and the drain are no secret.
    pub(crate) public: Option<&'a str>,
    pub(crate) check: Option<&'a CheckReport>,
    pub(crate) excluded: bool,
}

fn entries<'a>(report: &'a Report, probe: Probe, scope: Scope<'a>) -> (Verdict, Vec<Entry<'a>>) {
    let mut out = Vec::new();
    match scope {
        Scope::Check(i) => {
            // A check's own answer is its own status, critical or not: the same verdict
            // as gRPC `Check` for its name gives.
            let check = &report.checks[i];
            out.push(check_entry(check, false));
            let status = match check.status {
                Status::Unknown => Status::Fail,
                status => status,
            };
            let verdict = Verdict {
                status,
                blocker: None,
            };
            (verdict, out)
        }
        Scope::Probe { excluded } => {
            let phase = report.phase;
            let is_excluded = |i: usize| excluded.get(i).copied().unwrap_or(false);
            if matches!(probe, Probe::Liveness | Probe::Readiness) {
                // In readiness, the liveness line also fails with a failing liveness entry
                // not left out (which fails readiness too), and names it.
                let failing = (report.checks.iter().enumerate())
                    .find(|(i, c)| !is_excluded(*i) && fails_liveness(c, probe))
                    .map(|(_, c)| c.name());
                let live = phase.is_live() && failing.is_none();
                out.push(Entry {
                    name: Probe::Liveness.name(),
                    status: if live { Status::Pass } else { Status::Fail },
                    public: if phase.is_live() {
                        failing
                    } else {
                        Some("marked failed")
                    },
                    check: None,
                    excluded: false,
                });
            }
            if matches!(probe, Probe::Readiness | Probe::Startup) {
                // The lifecycle's own line fails exactly when the lifecycle blocks this
                // probe for a reason other than liveness, which has its own line.
                let blocked =
                    lifecycle_blocker(phase, probe).is_some_and(|b| b != Blocker::NotLive);
                out.push(Entry {
                    name: LIFECYCLE,
                    status: if blocked { Status::Fail } else { Status::Pass },
                    public: Some(phase.state().as_str()),
                    check: None,
                    excluded: false,
                });
                // While draining, who still holds the shutdown open.
                for holder in &report.drain_holders {
                    out.push(Entry {
                        name: &holder.entry,
                        status: Status::Pass,
                        public: Some(&holder.text),
                        check: None,
                        excluded: false,
                    });
                }
            }
            let gating = (report.checks.iter().enumerate()).filter(|(_, c)| c.gates(probe));
            for (i, check) in gating {
                out.push(check_entry(check, is_excluded(i)));
            }
            let counted = (report.checks.iter().enumerate())
                .filter(|(i, _)| !is_excluded(*i))
                .map(|(_, c)| c);
            let verdict = verdict(phase, probe, counted);
            (verdict, out)
        }
    }
}

impl<'a> Entry<'a> {
    /// What an answer may say of why this entry is as it is: its public word (`starting`,
    /// `no result yet`...) or, where the detail policy shows reasons, the check's output.
    /// `None` is a reason withheld, or none to give.
    pub(crate) fn reason(&self, detail: Detail) -> Option<&'a str> {
        self.public.or(match (detail, self.check) {
            (Detail::Shown, Some(check)) => check.output(),
            _ => None,
        })
    }
}

/// A time as answers write it: RFC 3339 in UTC, to the millisecond.
pub(crate) fn rfc3339(time: std::time::SystemTime) -> impl std::fmt::Display {
    humantime::format_rfc3339_millis(time)
}

fn check_entry(check: &CheckReport, excluded: bool) -> Entry<'_> {
    Entry {
        name: check.name(),
        status: check.status(),
        public: (check.status() == Status::Unknown).then_some("no result yet"),
        check: Some(check),
        excluded,
    }
}

/// The status code and body of one answer.
pub(crate) fn render(
    report: &Report,
    probe: Probe,
    scope: Scope<'_>,
    style: Style,
) -> (StatusCode, Bytes) {
    let (verdict, entries) = entries(report, probe, scope);
    let code = if verdict.status.is_passing() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = style.format.body(probe, &verdict, &entries, style);
    (code, Bytes::from(body))
}

/// Names of the checks that make the verdict what it is, for a plain answer's `output`.
pub(crate) fn summary(verdict: &Verdict, entries: &[Entry<'_>]) -> Option<String> {
    if let Some(blocker) = verdict.blocker {
        return Some(blocker.as_str().to_owned());
    }
    let (word, wanted) = match verdict.status {
        Status::Pass => return None,
        Status::Warn => ("degraded", Status::Warn),
        Status::Fail | Status::Unknown => ("failed", Status::Fail),
    };
    // A start-up gate still closed is no failure: the application is waiting for it.
    let mut culprits: Vec<&str> = Vec::new();
    let mut waiting: Vec<&str> = Vec::new();
    for e in entries.iter().filter(|e| !e.excluded) {
        match e.check {
            Some(c) if c.gating_status() == wanted => {
                if c.kind() == crate::vocabulary::CheckKind::Gate {
                    waiting.push(c.name());
                } else {
                    culprits.push(c.name());
                }
            }
            Some(_) => {}
            // Readiness's liveness line, failing with a liveness entry.
            None => {
                if wanted == Status::Fail && e.status == Status::Fail {
                    culprits.push(e.name);
                }
            }
        }
    }
    let failed = (!culprits.is_empty()).then(|| format!("{word}: {}", culprits.join(", ")));
    let waiting = (!waiting.is_empty()).then(|| format!("waiting for: {}", waiting.join(", ")));
    match (failed, waiting) {
        (Some(failed), Some(waiting)) => Some(format!("{failed}; {waiting}")),
        (failed, waiting) => failed.or(waiting).or_else(|| Some(format!("{word}: "))),
    }
}

/// A probe's answer, as a response future carries it until it is polled: small, so that
/// it does not make every response future larger, and made without allocating when the
/// answer is cached.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A cached answer: its headers (built once per rendered answer) and body are cloned
    /// into the response, the body but for `HEAD`.
    Cached {
        answer: Arc<CachedAnswer>,
        head: bool,
    },
    /// An answer made for this request alone: a `405`, or one with exclusions.
    Made(Box<Made>),
}

/// The status, headers and body of an answer made for one request.
#[derive(Debug)]
pub(crate) struct Made {
    status: StatusCode,
    headers: HeaderMap,
    body: Option<Bytes>,
}

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// The headers of a probe answer in `format` whose body is `length` bytes long. `HEAD`
/// gets the length `GET` would have, so it is set here rather than left to the server.
pub(crate) fn probe_headers(format: Format, length: usize) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(5);
    format.insert_headers(&mut headers);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(CACHE_CONTROL, NO_STORE);
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers
}

impl Reply {
    fn cached(answer: Arc<CachedAnswer>, head: bool) -> Reply {
        Reply::Cached { answer, head }
    }

    pub(crate) fn method_not_allowed() -> Reply {
        const ALLOWED: HeaderValue = HeaderValue::from_static("GET, HEAD");
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(ALLOW, ALLOWED);
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers.insert(CACHE_CONTROL, NO_STORE);
        headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        Reply::Made(Box::new(Made {
            status: StatusCode::METHOD_NOT_ALLOWED,
            headers,
            body: None,
        }))
    }

    /// The answer to a peer that asked about one check: its own `status` and who this
    /// replica is, in `application/health+json`, with no reason.
    pub(crate) fn peer(status: Status, replica: u64, head: bool) -> Reply {
        let body = Bytes::from(crate::check::fleet::peer_body(status, replica));
        Reply::Made(Box::new(Made {
            status: if status.is_passing() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            headers: probe_headers(Format::Json, body.len()),
            body: (!head).then_some(body),
        }))
    }

    /// The answer's status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Reply::Cached { answer, .. } => answer.value.status,
            Reply::Made(made) => made.status,
        }
    }

    /// Adds a header to this answer alone (a cached answer is copied first).
    pub(crate) fn insert_header(&mut self, name: http::header::HeaderName, value: HeaderValue) {
        if let Reply::Cached { answer, head } = self {
            *self = Reply::Made(Box::new(Made {
                status: answer.value.status,
                headers: answer.value.headers.clone(),
                body: (!*head).then(|| answer.value.body.clone()),
            }));
        }
        if let Reply::Made(made) = self {
            made.headers.insert(name, value);
        }
    }

    /// The answer's status, headers and body (none for `HEAD` and `405`).
    pub(crate) fn into_parts(self) -> (StatusCode, HeaderMap, Option<Bytes>) {
        match self {
            Reply::Cached { answer, head } => (
                answer.value.status,
                answer.value.headers.clone(),
                (!head).then(|| answer.value.body.clone()),
            ),
            Reply::Made(made) => (made.status, made.headers, made.body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Gates;
    use crate::Lifecycle;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    fn style(format: Format, verbose: bool, detail: Detail) -> Style {
        Style {
            format,
            verbose,
            detail,
        }
    }

    fn body(report: &Report, probe: Probe, style: Style) -> (u16, String) {
        let (code, bytes) = render(report, probe, Scope::Probe { excluded: &[] }, style);
        (code.as_u16(), String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn report(state: Lifecycle, live: bool, checks: Vec<CheckReport>) -> Report {
        Report {
            phase: Phase::new(state, live),
            checks,
            drain_holders: Vec::new(),
        }
    }

    fn failing(name: &str, critical: bool) -> CheckReport {
        CheckReport {
            kind: crate::vocabulary::CheckKind::Check,
            name: Arc::from(name),
            status: Status::Fail,
            critical,
            gates: Gates::READINESS,
            time: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
            duration: Some(Duration::from_micros(2_500)),
            observed: None,
            output: Some(Arc::from("connection refused\nsecret")),
        }
    }

    #[test]
    fn style_indices_are_a_bijection() {
        let mut seen = [false; Style::COUNT];
        let all = Format::ALL.into_iter().flat_map(|format| {
            [
                (false, Detail::Withheld),
                (false, Detail::Shown),
                (true, Detail::Withheld),
                (true, Detail::Shown),
            ]
            .map(|(verbose, detail)| Style {
                format,
                verbose,
                detail,
            })
        });
        for s in all {
            assert!(!seen[s.index()]);
            seen[s.index()] = true;
        }
    }

    #[test]
    fn plain_json_answers() {
        let j = style(Format::Json, false, Detail::Withheld);
        let r = report(Lifecycle::Ready, true, vec![]);
        assert_eq!(
            body(&r, Probe::Readiness, j),
            (200, r#"{"status":"pass"}"#.into())
        );
        let r = report(Lifecycle::Starting, true, vec![]);
        assert_eq!(
            body(&r, Probe::Readiness, j),
            (503, r#"{"status":"fail","output":"starting"}"#.into())
        );
        let r = report(Lifecycle::Draining, true, vec![]);
        assert_eq!(
            body(&r, Probe::Readiness, j),
            (503, r#"{"status":"fail","output":"draining"}"#.into())
        );
        assert_eq!(body(&r, Probe::Startup, j).0, 200);
    }

    #[test]
    fn failures_name_the_check_and_withhold_the_reason() {
        let r = report(
            Lifecycle::Ready,
            true,
            vec![failing("db", true), failing("cache", false)],
        );
        let (code, b) = body(
            &r,
            Probe::Readiness,
            style(Format::Json, false, Detail::Withheld),
        );
        assert_eq!(code, 503);
        assert_eq!(b, r#"{"status":"fail","output":"failed: db"}"#);
        let (_, b) = body(
            &r,
            Probe::Readiness,
            style(Format::Json, true, Detail::Withheld),
        );
        assert!(!b.contains("refused"), "{b}");
        assert!(b.contains(r#""time":"2023-11-14T22:13:20.123Z""#), "{b}");
        assert!(
            b.contains(r#""observedValue":2.5,"observedUnit":"ms""#),
            "{b}"
        );
        let (_, b) = body(
            &r,
            Probe::Readiness,
            style(Format::Json, true, Detail::Shown),
        );
        assert!(
            b.contains(r#""output":"connection refused\nsecret""#),
            "{b}"
        );

        let (_, t) = body(
            &r,
            Probe::Readiness,
            style(Format::Text, false, Detail::Withheld),
        );
        assert_eq!(
            t,
            "[+]liveness ok\n[+]lifecycle ok\n[-]db failed: reason withheld\n\
             [-]cache failed: reason withheld (non-critical)\nreadyz check failed\n"
        );
        let (_, t) = body(
            &r,
            Probe::Readiness,
            style(Format::Text, true, Detail::Shown),
        );
        assert!(
            t.contains("[-]db failed: connection refused secret\n"),
            "{t}"
        );
    }

    #[test]
    fn non_critical_failures_warn() {
        let r = report(Lifecycle::Ready, true, vec![failing("cache", false)]);
        let (code, b) = body(
            &r,
            Probe::Readiness,
            style(Format::Json, false, Detail::Withheld),
        );
        assert_eq!(
            (code, b.as_str()),
            (200, r#"{"status":"warn","output":"degraded: cache"}"#)
        );
        let (code, t) = body(
            &r,
            Probe::Readiness,
            style(Format::Text, false, Detail::Withheld),
        );
        assert_eq!((code, t.as_str()), (200, "ok"));
    }

    #[test]
    fn text_answers_follow_the_api_server() {
        let r = report(Lifecycle::Ready, true, vec![]);
        let t = style(Format::Text, false, Detail::Withheld);
        let v = style(Format::Text, true, Detail::Withheld);
        assert_eq!(body(&r, Probe::Liveness, t), (200, "ok".into()));
        assert_eq!(
            body(&r, Probe::Readiness, v),
            (
                200,
                "[+]liveness ok\n[+]lifecycle ok\nreadyz check passed\n".into()
            )
        );
        let r = report(Lifecycle::Starting, true, vec![]);
        assert_eq!(
            body(&r, Probe::Startup, t),
            (
                503,
                "[-]lifecycle failed: starting\nstartupz check failed\n".into()
            )
        );
        let r = report(Lifecycle::Ready, false, vec![]);
        assert_eq!(
            body(&r, Probe::Liveness, t),
            (
                503,
                "[-]liveness failed: marked failed\nlivez check failed\n".into()
            )
        );
    }

    #[test]
    fn excluded_checks_are_listed_but_do_not_count() {
        let r = report(Lifecycle::Ready, true, vec![failing("db", true)]);
        let (code, b) = render(
            &r,
            Probe::Readiness,
            Scope::Probe { excluded: &[true] },
            style(Format::Text, true, Detail::Withheld),
        );
        assert_eq!(code, 200);
        assert!(std::str::from_utf8(&b)
            .unwrap()
            .contains("[+]db excluded: failed\n"));
    }
}
