//! The body formats a probe can answer in, and the one place that knows each: how a
//! request's `Accept` header chooses it, its `Content-Type` and the headers that go with
//! it, and which renderer writes it.

use http::header::{HeaderValue, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::HeaderMap;

use super::{html, json, text, Entry, Style};
use crate::check::report::Verdict;
use crate::vocabulary::Probe;

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
        // above it, and it wins a tie by coming first. But only in a value that is read
        // at all: one that is not visible ASCII is passed over whole, below.
        let mut values = headers.get_all(http::header::ACCEPT).iter();
        match values.next() {
            None => return Format::Json,
            Some(first) if first.as_bytes() == b"*/*" => return Format::Json,
            Some(first) if first.as_bytes().starts_with(b"*/*,") && first.to_str().is_ok() => {
                return Format::Json
            }
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

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub(crate) fn content_type(self) -> HeaderValue {
        match self {
            Format::Json => HeaderValue::from_static("application/health+json"),
            Format::Text => HeaderValue::from_static("text/plain; charset=utf-8"),
            Format::Html => HeaderValue::from_static("text/html; charset=utf-8"),
        }
    }

    /// The headers this format adds to an answer: its content type, and for the page its
    /// `Content-Security-Policy`.
    pub(crate) fn insert_headers(self, headers: &mut HeaderMap) {
        headers.insert(CONTENT_TYPE, self.content_type());
        if self == Format::Html {
            const POLICY: HeaderValue = HeaderValue::from_static(html::CONTENT_SECURITY_POLICY);
            headers.insert(CONTENT_SECURITY_POLICY, POLICY);
        }
    }

    /// The body of an answer in this format.
    pub(crate) fn body(
        self,
        probe: Probe,
        verdict: &Verdict,
        entries: &[Entry<'_>],
        style: Style,
    ) -> String {
        match self {
            Format::Json => json::body(verdict, entries, style),
            Format::Text => text::body(probe, verdict, entries, style),
            Format::Html => {
                html::body(probe, verdict, entries, style, std::time::SystemTime::now())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_first_value_that_cannot_be_read_is_passed_over_even_when_it_starts_with_any() {
        let mut headers = HeaderMap::new();
        let unreadable = HeaderValue::from_bytes(b"*/*, text/plain\xe9").unwrap();
        headers.append(http::header::ACCEPT, unreadable);
        headers.append(http::header::ACCEPT, HeaderValue::from_static("text/plain"));
        assert_eq!(Format::negotiate(&headers), Format::Text);
        assert_eq!(
            Format::negotiate(&accept(&["*/*, text/plain", "text/plain"])),
            Format::Json,
            "a readable first */* still wins at once"
        );
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
}
