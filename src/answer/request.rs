//! What a probe request asks for, read once its path has matched: the method, the query
//! (`verbose`, `exclude`), the `Accept` header, and whether the asker may see reasons
//! ([`Reasons`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use http::{HeaderMap, Method};

use super::render::DEFAULT_REFRESH;

/// What the request asks of the probe's answer, read from the method, the query string
/// and the `Accept` header once the path has matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodKind {
    Get,
    Head,
    Other,
}

impl MethodKind {
    #[inline]
    pub(crate) fn of(method: &Method) -> MethodKind {
        if method == Method::GET {
            MethodKind::Get
        } else if method == Method::HEAD {
            MethodKind::Head
        } else {
            MethodKind::Other
        }
    }
}

/// The recognised query parameters: `verbose`, any number of `exclude=NAME`, and
/// `refresh=SECONDS` (for the page: how often the browser reloads it), read once
/// (with the `application/x-www-form-urlencoded` rules: percent-decoding, `+` for a
/// space), in time linear in the query's length.
///
/// Unknown parameters are ignored and malformed percent-encoding is taken literally, so
/// no query string is an error.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query<'q> {
    pub(crate) verbose: bool,
    /// The decoded `exclude` values; empty (and unallocated) when there are none.
    excludes: HashSet<Cow<'q, str>>,
    /// Seconds between reloads of the page: `refresh=N` with N from 1 to 3600, or
    /// [`DEFAULT_REFRESH`] for a bare `refresh`; `None` for `refresh=0` or none.
    pub(crate) refresh: Option<u16>,
    /// A peer's question about one check: `fleet=MS`, how old a result it takes, in
    /// milliseconds (a bare or unreadable value takes any age).
    pub(crate) fleet: Option<u64>,
}

impl<'q> Query<'q> {
    pub(crate) fn parse(raw: Option<&'q str>) -> Query<'q> {
        let mut query = Query::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match &*key {
                "verbose" => query.verbose = !matches!(&*value, "0" | "false" | "no" | "off"),
                "exclude" if !value.is_empty() => {
                    query.excludes.insert(value);
                }
                crate::check::fleet::QUERY => {
                    query.fleet = Some(value.parse().unwrap_or(u64::MAX));
                }
                "refresh" => {
                    query.refresh = match value.parse::<u32>() {
                        Ok(0) => None,
                        Ok(n) => Some(n.min(3600) as u16),
                        // A bare `refresh`, or a number too odd to read.
                        Err(_) => Some(DEFAULT_REFRESH),
                    };
                }
                _ => {}
            }
        }
        query
    }

    /// Whether any check is excluded.
    pub(crate) fn has_excludes(&self) -> bool {
        !self.excludes.is_empty()
    }

    /// Whether `name` is among the `exclude` values.
    pub(crate) fn excludes(&self, name: &str) -> bool {
        self.excludes.contains(name)
    }
}

/// The parts of a probe request that a [`Reasons`] predicate can look at.
#[derive(Debug, Clone, Copy)]
pub struct ProbeRequest<'a> {
    method: &'a Method,
    uri: &'a http::Uri,
    headers: &'a HeaderMap,
    extensions: &'a http::Extensions,
}

impl<'a> ProbeRequest<'a> {
    pub(crate) fn new<B>(req: &'a http::Request<B>) -> Self {
        ProbeRequest {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a http::Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions, where servers put the peer's address (axum's
    /// `ConnectInfo`, tonic's `TcpConnectInfo`).
    pub fn extensions(&self) -> &'a http::Extensions {
        self.extensions
    }
}

type Predicate = std::sync::Arc<dyn Fn(&ProbeRequest<'_>) -> bool + Send + Sync>;

/// Whether probe answers say why a check failed.
///
/// By default they do not: an answer names the failing check and says "reason withheld",
/// and the reason goes to the log, because an error's text (a host name, a user name, a
/// driver's message) is no business of whoever can reach the probe port. Allow reasons
/// where the asker is trusted: [`Reasons::loopback_peer`] for `curl` inside the pod and
/// `kubectl port-forward`, [`Reasons::when`] for anything else you can tell from the
/// request, [`Reasons::always`] where the probe port is private.
///
/// # Example
///
/// ```
/// use std::net::SocketAddr;
/// use tower_health::{Health, Reasons};
///
/// // With axum's `into_make_service_with_connect_info::<SocketAddr>()`:
/// let health = Health::builder()
///     .reasons(Reasons::loopback_peer(|ext| {
///         ext.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
///     }))
///     .build();
/// # drop(health);
/// ```
///
/// Or for requests that carry a header your ingress strips from outside traffic:
///
/// ```
/// use tower_health::{Health, Reasons};
///
/// let health = Health::builder()
///     .reasons(Reasons::when(|req| req.headers().contains_key("x-internal-probe")))
///     .build();
/// # drop(health);
/// ```
#[derive(Clone, Default)]
pub struct Reasons {
    predicate: Option<Predicate>,
}

impl Reasons {
    /// Never show reasons (the default).
    pub fn withheld() -> Self {
        Reasons { predicate: None }
    }

    /// Always show reasons.
    pub fn always() -> Self {
        Reasons::when(|_| true)
    }

    /// Show reasons to requests that `predicate` accepts (a header carrying a token, an
    /// internal network...).
    pub fn when(predicate: impl Fn(&ProbeRequest<'_>) -> bool + Send + Sync + 'static) -> Self {
        Reasons {
            predicate: Some(std::sync::Arc::new(predicate)),
        }
    }

    /// Show reasons to requests from a loopback address, such as `kubectl port-forward` or
    /// `curl` inside the pod.
    ///
    /// A loopback address is one in `127.0.0.0/8`, `::1`, or `::ffff:127.0.0.0/104` (as a
    /// dual-stack listener reports IPv4 peers). `peer` reads the peer's address
    /// from the request's extensions, where the server put it; a request whose peer is
    /// unknown gets no reasons.
    pub fn loopback_peer(
        peer: impl Fn(&http::Extensions) -> Option<std::net::IpAddr> + Send + Sync + 'static,
    ) -> Self {
        Reasons::when(move |req| {
            // A dual-stack listener sees an IPv4 peer as `::ffff:127.0.0.1`.
            peer(req.extensions()).is_some_and(|ip| ip.to_canonical().is_loopback())
        })
    }

    pub(crate) fn allow(&self, req: &ProbeRequest<'_>) -> bool {
        self.predicate.as_ref().is_some_and(|p| p(req))
    }
}

impl fmt::Debug for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.predicate {
            None => "Reasons::withheld()",
            Some(_) => "Reasons::when(..)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(MethodKind::of(&Method::GET), MethodKind::Get);
        assert_eq!(MethodKind::of(&Method::HEAD), MethodKind::Head);
        assert_eq!(MethodKind::of(&Method::POST), MethodKind::Other);
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(MethodKind::of(&odd), MethodKind::Other);
    }

    #[test]
    fn query_verbose() {
        assert!(!Query::parse(None).verbose);
        assert!(!Query::parse(Some("")).verbose);
        assert!(Query::parse(Some("verbose")).verbose);
        assert!(Query::parse(Some("verbose=")).verbose);
        assert!(Query::parse(Some("verbose=1")).verbose);
        assert!(Query::parse(Some("a=b&verbose&c")).verbose);
        assert!(!Query::parse(Some("verbose=false")).verbose);
        assert!(!Query::parse(Some("verbosee")).verbose);
        assert!(!Query::parse(Some("&&&=&")).verbose);
    }

    #[test]
    fn query_excludes() {
        let q = Query::parse(Some("exclude=a&exclude=b%2Dc&verbose"));
        assert!(q.verbose);
        assert!(q.excludes("a"));
        assert!(q.excludes("b-c"));
        assert!(!q.excludes("c"));
        assert!(!q.excludes(""));
        let q = Query::parse(Some("exclude="));
        assert!(!q.has_excludes());
        assert!(!q.excludes(""));
        assert!(Query::parse(Some("exclude=two+words")).excludes("two words"));
    }

    #[test]
    fn malformed_percent_encoding_is_taken_literally() {
        let q = Query::parse(Some("exclude=%zz&exclude=%&exclude=%4&exclude=%E2%82"));
        assert!(q.excludes("%zz"));
        assert!(q.excludes("%"));
        assert!(q.excludes("%4"));
        assert!(!q.excludes("€"));
    }

    #[test]
    fn very_long_queries_are_fine() {
        let long = "x=".to_string() + &"y".repeat(100_000) + "&verbose&exclude=db";
        let q = Query::parse(Some(&long));
        assert!(q.verbose);
        assert!(q.excludes("db"));
        let many = "exclude=a&".repeat(10_000);
        assert!(Query::parse(Some(&many)).excludes("a"));
    }

    #[test]
    fn query_refresh() {
        assert_eq!(Query::parse(None).refresh, None);
        assert_eq!(Query::parse(Some("verbose")).refresh, None);
        assert_eq!(Query::parse(Some("refresh=10")).refresh, Some(10));
        assert_eq!(Query::parse(Some("refresh")).refresh, Some(DEFAULT_REFRESH));
        assert_eq!(
            Query::parse(Some("refresh=")).refresh,
            Some(DEFAULT_REFRESH)
        );
        assert_eq!(
            Query::parse(Some("refresh=soon")).refresh,
            Some(DEFAULT_REFRESH)
        );
        assert_eq!(Query::parse(Some("refresh=0")).refresh, None);
        assert_eq!(
            Query::parse(Some("refresh=99999999999")).refresh,
            Some(DEFAULT_REFRESH),
            "too big to read: the default"
        );
        assert_eq!(Query::parse(Some("refresh=86400")).refresh, Some(3600));
    }
}
