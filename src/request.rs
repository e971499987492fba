//! What a probe request asks for, read once its path has matched: the method, the query
//! (`verbose`, `exclude`), the `Accept` header, and whether the asker may see reasons
//! ([`Reasons`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use http::{HeaderMap, Method};

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

/// The body formats a probe can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    /// `application/health+json`.
    Json,
    /// The Kubernetes API server's `text/plain`.
    Text,
    /// A page for people, for a browser.
    Html,
}

impl Format {
    /// Every format, in the order of [`Format::index`].
    pub(crate) const ALL: [Format; 3] = [Format::Json, Format::Text, Format::Html];

    /// The format's place in [`Format::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// What the `Accept` header asks for. Machines keep their answer: JSON unless the
    /// client prefers `text/plain` (a `text/plain` or `text/*` range whose quality is
    /// higher than every JSON-capable range's, or equal and listed first), and HTML only
    /// when the client ranks `text/html` strictly above every machine format it accepts,
    /// as a browser does (`text/html,...,*/*;q=0.8`). So `*/*` (the kubelet, curl) and
    /// `application/json` get JSON, and `text/html, application/json` gets JSON too.
    pub(crate) fn negotiate(headers: &HeaderMap) -> Format {
        // What most probes send: nothing, or `*/*` first (the kubelet, curl). A first
        // range of `*/*` at full quality is JSON whatever follows: nothing can rank
        // above it, and it wins a tie by coming first.
        let mut values = headers.get_all(http::header::ACCEPT).iter();
        match values.next().map(|v| v.as_bytes()) {
            None => return Format::Json,
            Some(first) if first == b"*/*" || first.starts_with(b"*/*,") => return Format::Json,
            Some(_) => {}
        }
        let mut best_json: Option<(u16, usize)> = None;
        let mut best_text: Option<(u16, usize)> = None;
        let mut best_html: Option<(u16, usize)> = None;
        let mut position = 0usize;
        for value in headers.get_all(http::header::ACCEPT) {
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                position += 1;
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or("").trim();
                let quality = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .map(parse_quality)
                    .next()
                    .unwrap_or(1000);
                if quality == 0 {
                    continue;
                }
                let is = |name: &str| media.eq_ignore_ascii_case(name);
                let slot = if is("text/plain") || is("text/*") {
                    &mut best_text
                } else if is("application/health+json")
                    || is("application/json")
                    || is("application/*")
                    || media == "*/*"
                {
                    &mut best_json
                } else if is("text/html") || is("application/xhtml+xml") {
                    &mut best_html
                } else {
                    continue;
                };
                if slot.is_none_or(|(q, _)| quality > q) {
                    *slot = Some((quality, position));
                }
            }
        }
        let machine = match (best_text, best_json) {
            (Some(text), None) => Some((Format::Text, text.0)),
            (Some((tq, tp)), Some((jq, jp))) if tq > jq || (tq == jq && tp < jp) => {
                Some((Format::Text, tq))
            }
            (_, Some((jq, _))) => Some((Format::Json, jq)),
            (None, None) => None,
        };
        match (best_html, machine) {
            (Some((hq, _)), Some((_, mq))) if hq > mq => Format::Html,
            (Some(_), None) => Format::Html,
            (_, Some((format, _))) => format,
            (None, None) => Format::Json,
        }
    }
}

/// A quality value as thousandths; anything unreadable counts as 1.
fn parse_quality(q: &str) -> u16 {
    let q = q.trim();
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let whole = match int {
        "0" => 0u16,
        "1" => 1000,
        _ => return 1000,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().take(3).enumerate() {
        if !b.is_ascii_digit() {
            return 1000;
        }
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    (whole + thousandths).min(1000)
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
    /// [`Query::DEFAULT_REFRESH`] for a bare `refresh`; `None` for `refresh=0` or none.
    pub(crate) refresh: Option<u16>,
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
                "refresh" => {
                    query.refresh = match value.parse::<u32>() {
                        Ok(0) => None,
                        Ok(n) => Some(n.min(3600) as u16),
                        // A bare `refresh`, or a number too odd to read.
                        Err(_) => Some(Query::DEFAULT_REFRESH),
                    };
                }
                _ => {}
            }
        }
        query
    }

    /// The page's reload interval for a bare `refresh`, in seconds.
    pub(crate) const DEFAULT_REFRESH: u16 = 5;

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

    /// Show reasons to requests from a loopback address (`127.0.0.0/8`, `::1`, and
    /// `::ffff:127.0.0.0/104` as a dual-stack listener reports IPv4 peers), such as
    /// `kubectl port-forward` or `curl` inside the pod. `peer` reads the peer's address
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
    use http::HeaderValue;

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

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(http::header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn negotiation_prefers_json_unless_text_is_asked_for() {
        assert_eq!(Format::negotiate(&accept(&[])), Format::Json);
        assert_eq!(Format::negotiate(&accept(&["*/*"])), Format::Json);
        assert_eq!(Format::negotiate(&accept(&["text/plain"])), Format::Text);
        assert_eq!(Format::negotiate(&accept(&["TEXT/PLAIN"])), Format::Text);
        assert_eq!(
            Format::negotiate(&accept(&["text/plain, */*"])),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(&accept(&["application/json, text/plain"])),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(&accept(&["application/json;q=0.5, text/plain;q=0.9"])),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(&accept(&["text/plain;q=0"])),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(&accept(&["text/html", "text/plain; charset=utf-8"])),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(&accept(&["image/png"])),
            Format::Json,
            "nothing we can give: JSON"
        );
    }

    #[test]
    fn browsers_get_the_page_and_machines_keep_their_answer() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                        image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(Format::negotiate(&accept(&[chromium])), Format::Html);
        assert_eq!(Format::negotiate(&accept(&[firefox])), Format::Html);
        assert_eq!(Format::negotiate(&accept(&["text/html"])), Format::Html);
        assert_eq!(Format::negotiate(&accept(&["TEXT/HTML"])), Format::Html);
        // The kubelet, curl, and clients that ask for JSON or text.
        assert_eq!(Format::negotiate(&accept(&["*/*"])), Format::Json);
        assert_eq!(
            Format::negotiate(&accept(&["application/json"])),
            Format::Json
        );
        // HTML must be ranked above every machine format, not level with it.
        assert_eq!(
            Format::negotiate(&accept(&["text/html, application/json"])),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(&accept(&["text/html, */*"])),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(&accept(&["text/html;q=0.9, text/plain;q=0.5"])),
            Format::Html
        );
        assert_eq!(
            Format::negotiate(&accept(&["text/html;q=0.5, text/plain"])),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(&accept(&["text/html;q=0, */*"])),
            Format::Json
        );
    }

    #[test]
    fn query_refresh() {
        assert_eq!(Query::parse(None).refresh, None);
        assert_eq!(Query::parse(Some("verbose")).refresh, None);
        assert_eq!(Query::parse(Some("refresh=10")).refresh, Some(10));
        assert_eq!(
            Query::parse(Some("refresh")).refresh,
            Some(Query::DEFAULT_REFRESH)
        );
        assert_eq!(
            Query::parse(Some("refresh=")).refresh,
            Some(Query::DEFAULT_REFRESH)
        );
        assert_eq!(
            Query::parse(Some("refresh=soon")).refresh,
            Some(Query::DEFAULT_REFRESH)
        );
        assert_eq!(Query::parse(Some("refresh=0")).refresh, None);
        assert_eq!(
            Query::parse(Some("refresh=99999999999")).refresh,
            Some(Query::DEFAULT_REFRESH),
            "too big to read: the default"
        );
        assert_eq!(Query::parse(Some("refresh=86400")).refresh, Some(3600));
    }

    #[test]
    fn odd_accept_headers_do_not_panic() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_bytes(b"text/plain;q=\xff").unwrap(),
        );
        assert_eq!(Format::negotiate(&headers), Format::Json);
        for v in [";;;", ",,,", "text/plain;q=abc", "text/plain;q=1.5", "q=0"] {
            let _ = Format::negotiate(&accept(&[v]));
        }
        let huge = "text/html,".repeat(10_000) + "text/plain";
        assert_eq!(Format::negotiate(&accept(&[&huge])), Format::Text);
    }
}
