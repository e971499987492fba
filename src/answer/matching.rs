//! Which requests are probes: the paths of the three [`Probe`]s ([`Paths`]) and the
//! matching rule.
//!
//! Matching compares path bytes only and allocates nothing; what else a probe request asks
//! for is read in [`super::request`], once the path has matched.

use std::borrow::Cow;

use crate::vocabulary::Probe;

/// The paths the three probes answer on.
///
/// The default is the Kubernetes components' own convention, [`Paths::kubernetes`]:
/// `/livez`, `/readyz`, `/startupz`. Each path also answers for a single check below it:
/// `/readyz/postgres` is the readiness answer of the `postgres` check alone. Paths may
/// nest (as in [`Paths::health`]); the crate docs give the one rule that says
/// [which requests are probes](crate#which-requests-are-probes).
///
/// # Example
///
/// ```
/// use tower_health::{Health, Paths, Probe};
///
/// let health = Health::builder()
///     .paths(Paths::health().readiness("/health/ready"))
///     .build();
/// assert_eq!(health.paths().path(Probe::Readiness), "/health/ready");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    by_probe: [Cow<'static, str>; 3],
}

impl Default for Paths {
    fn default() -> Self {
        Paths::kubernetes()
    }
}

impl Paths {
    /// `/livez`, `/readyz` and `/startupz`, as the Kubernetes API server names them.
    pub fn kubernetes() -> Self {
        Paths {
            by_probe: [
                Cow::Borrowed("/livez"),
                Cow::Borrowed("/readyz"),
                Cow::Borrowed("/startupz"),
            ],
        }
    }

    /// `/health` (liveness), `/health/ready` and `/health/started`: the layout many
    /// FastAPI and Spring-style services use.
    pub fn health() -> Self {
        Paths {
            by_probe: [
                Cow::Borrowed("/health"),
                Cow::Borrowed("/health/ready"),
                Cow::Borrowed("/health/started"),
            ],
        }
    }

    /// Sets the liveness path.
    pub fn liveness(self, path: impl Into<Cow<'static, str>>) -> Self {
        self.with(Probe::Liveness, path)
    }

    /// Sets the readiness path.
    pub fn readiness(self, path: impl Into<Cow<'static, str>>) -> Self {
        self.with(Probe::Readiness, path)
    }

    /// Sets the startup path.
    pub fn startup(self, path: impl Into<Cow<'static, str>>) -> Self {
        self.with(Probe::Startup, path)
    }

    /// The path of `probe`.
    pub fn path(&self, probe: Probe) -> &str {
        &self.by_probe[probe.index()]
    }

    fn with(mut self, probe: Probe, path: impl Into<Cow<'static, str>>) -> Self {
        self.by_probe[probe.index()] = path.into();
        self
    }

    /// Whether `path` can be a probe's path: it starts with `/`, does not end with one,
    /// and holds only visible ASCII without `?` or `#`.
    pub(crate) fn is_valid(path: &str) -> bool {
        path.starts_with('/')
            && path.len() > 1
            && !path.ends_with('/')
            && !path.contains(['?', '#'])
            && path.bytes().all(|b| b.is_ascii_graphic())
    }
}

/// What a request path is to the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matched {
    /// A probe's path, alone or followed by `/NAME` where `NAME` is the check (by its
    /// index) that this probe is asked about.
    Probe(Probe, Option<usize>),
    /// A path of the `grpc.health.v1.Health` service.
    #[cfg(feature = "grpc")]
    Grpc(super::grpc::Method),
}

/// How many paths the pre-filter knows: the three probes', and gRPC health's.
const FILTERED: usize = if cfg!(feature = "grpc") { 4 } else { 3 };

/// [`Paths`] (and, with the `grpc` feature, the gRPC health service's path) with a
/// pre-filter that turns most requests away after a byte or two.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    paths: Paths,
    shortest: usize,
    /// The byte after the leading `/` of each path: a request path whose second byte is
    /// none of them cannot match.
    second: [u8; FILTERED],
}

impl Matcher {
    pub(crate) fn new(paths: Paths) -> Matcher {
        // Each path the filter knows, and the length of the shortest request path it
        // stands for.
        let mut known: [(&str, usize); FILTERED] = [("", 0); FILTERED];
        for probe in Probe::ALL {
            let path = paths.path(probe);
            known[probe.index()] = (path, path.len());
        }
        #[cfg(feature = "grpc")]
        {
            let service = super::grpc::SERVICE_PATH;
            known[3] = (service, service.len() + 1);
        }
        let second = known.map(|(p, _)| p.as_bytes().get(1).copied().unwrap_or(0));
        let shortest = known.iter().map(|(_, len)| *len).min().unwrap_or(0);
        Matcher {
            paths,
            shortest,
            second,
        }
    }

    pub(crate) fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The pre-filter: whether `path` may match at all. Most paths that are not the
    /// layer's are turned away here, by their length or their second byte.
    #[inline(always)]
    pub(crate) fn may_match(&self, path: &str) -> bool {
        let bytes = path.as_bytes();
        bytes.len() >= self.shortest && self.second.contains(&bytes[1])
    }

    /// The matching rule, whole: what `path` is to the layer, given `gating`, which tells
    /// the index of the check called `NAME` if it gates `probe`.
    ///
    /// - A probe path itself is that probe.
    /// - Otherwise, a probe path followed by `/NAME`, where `NAME` is a check gating that
    ///   probe, is that check's answer on that probe. A check name never holds a `/`, so of
    ///   the probe paths that `path` starts with followed by `/NAME`, only the longest
    ///   can be followed by a name: `/health/ready/db` is `db` on readiness with
    ///   [`Paths::health`], never on liveness. A name that is no check of that probe
    ///   leaves the path to the application.
    /// - With the `grpc` feature, a path of the `grpc.health.v1.Health` service.
    /// - Anything else passes through. Most paths are turned away by the pre-filter.
    #[inline]
    pub(crate) fn match_path(
        &self,
        path: &str,
        gating: impl FnOnce(Probe, &str) -> Option<usize>,
    ) -> Option<Matched> {
        if !self.may_match(path) {
            return None;
        }
        self.match_filtered(path, gating)
    }

    #[inline(never)]
    fn match_filtered(
        &self,
        path: &str,
        gating: impl FnOnce(Probe, &str) -> Option<usize>,
    ) -> Option<Matched> {
        if let Some(probe) = Probe::ALL.into_iter().find(|p| path == self.paths.path(*p)) {
            return Some(Matched::Probe(probe, None));
        }
        #[cfg(feature = "grpc")]
        if let Some(method) = super::grpc::Method::of_path(path) {
            return Some(Matched::Grpc(method));
        }
        let (prefix, name) = path.rsplit_once('/')?;
        if name.is_empty() {
            return None;
        }
        let probe = Probe::ALL
            .into_iter()
            .find(|probe| prefix == self.paths.path(*probe))?;
        let check = gating(probe, name)?;
        Some(Matched::Probe(probe, Some(check)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k8s() -> Paths {
        Paths::kubernetes()
    }

    /// The rule with checks `postgres` (0) and `db` (1) that gate every probe.
    fn matched(paths: &Paths, path: &str) -> Option<(Probe, Option<usize>)> {
        let names = ["postgres", "db"];
        let gating = |_: Probe, name: &str| names.iter().position(|n| *n == name);
        match Matcher::new(paths.clone()).match_path(path, gating)? {
            Matched::Probe(probe, check) => Some((probe, check)),
            #[cfg(feature = "grpc")]
            Matched::Grpc(_) => None,
        }
    }

    #[test]
    fn exact_paths_match_their_probe() {
        assert_eq!(matched(&k8s(), "/livez"), Some((Probe::Liveness, None)));
        assert_eq!(matched(&k8s(), "/readyz"), Some((Probe::Readiness, None)));
        assert_eq!(matched(&k8s(), "/startupz"), Some((Probe::Startup, None)));
    }

    #[test]
    fn sub_paths_carry_the_rest() {
        assert_eq!(
            matched(&k8s(), "/readyz/postgres"),
            Some((Probe::Readiness, Some(0)))
        );
        assert_eq!(
            matched(&k8s(), "/livez/a/b"),
            None,
            "no check name holds a '/'"
        );
    }

    #[test]
    fn look_alikes_do_not_match() {
        for path in [
            "/readyzz",
            "/readyz/",
            "/ready",
            "/READYZ",
            "/readyz%2Fx",
            "readyz",
            "/",
            "",
            "//readyz",
            "/x/readyz",
            "/ready%7A",
        ] {
            assert_eq!(matched(&k8s(), path), None, "{path:?}");
        }
    }

    #[test]
    fn nested_preset_paths_take_the_longest_probe_path_before_a_name() {
        let paths = Paths::health();
        assert_eq!(matched(&paths, "/health"), Some((Probe::Liveness, None)));
        assert_eq!(
            matched(&paths, "/health/ready"),
            Some((Probe::Readiness, None))
        );
        assert_eq!(
            matched(&paths, "/health/started"),
            Some((Probe::Startup, None))
        );
        assert_eq!(
            matched(&paths, "/health/db"),
            Some((Probe::Liveness, Some(1)))
        );
        assert_eq!(
            matched(&paths, "/health/ready/db"),
            Some((Probe::Readiness, Some(1)))
        );
        assert_eq!(
            matched(&paths, "/health/started/db"),
            Some((Probe::Startup, Some(1)))
        );
        for path in [
            "/health/ready/db/x",
            "/health/x/db",
            "/health/ready/",
            "/health/",
        ] {
            assert_eq!(matched(&paths, path), None, "{path:?}");
        }
    }

    #[test]
    fn paths_that_cannot_be_probe_paths_are_told_apart() {
        for paths in [k8s(), Paths::health()] {
            for probe in Probe::ALL {
                assert!(Paths::is_valid(paths.path(probe)), "{probe}");
            }
        }
        for bad in ["", "/", "livez", "/livez/", "/a b", "/a?b", "/a#b", "/é"] {
            assert!(!Paths::is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_pre_filter_agrees_with_the_full_match() {
        for paths in [
            k8s(),
            Paths::health(),
            k8s().liveness("/x").readiness("/yy"),
        ] {
            let matcher = Matcher::new(paths.clone());
            for path in [
                "/",
                "",
                "/l",
                "/livez",
                "/livez/a",
                "/readyz",
                "/readyz/db",
                "/startupz",
                "/health",
                "/health/ready",
                "/health/db",
                "/x",
                "/x/y",
                "/yy",
                "/yy/",
                "/a",
                "/api/users",
                "/livezz",
                "/r",
            ] {
                // A path the pre-filter turns away is one the whole rule matches not.
                let any_name = |_: Probe, _: &str| Some(0);
                if !matcher.may_match(path) {
                    assert_eq!(matcher.match_filtered(path, any_name), None, "{path:?}");
                }
            }
        }
    }

    #[cfg(feature = "grpc")]
    #[test]
    fn grpc_health_paths_pass_the_pre_filter_whatever_the_probe_paths() {
        use crate::answer::grpc::Method;
        let long = k8s()
            .liveness("/a/rather/long/path/for/liveness/checks")
            .readiness("/a/rather/long/path/for/readiness/checks")
            .startup("/a/rather/long/path/for/startup/checks");
        for paths in [k8s(), Paths::health(), long] {
            let matcher = Matcher::new(paths);
            let cases = [
                ("/grpc.health.v1.Health/Check", Some(Method::Check)),
                ("/grpc.health.v1.Health/Watch", Some(Method::Watch)),
                ("/grpc.health.v1.Health/List", Some(Method::List)),
                ("/grpc.health.v1.Health/Other", Some(Method::Other)),
                ("/grpc.health.v1.Health/", None),
                ("/grpc.health.v1.Health", None),
                ("/grpc.health.v2.Health/Check", None),
                ("/helloworld.Greeter/SayHello", None),
            ];
            for (path, method) in cases {
                assert_eq!(
                    matcher.match_path(path, |_, _| None),
                    method.map(Matched::Grpc),
                    "{path}"
                );
            }
        }
    }
}
