//! A small page for people: what a browser gets when it opens a probe path, for instance
//! through `kubectl port-forward`.
//!
//! With `?verbose` the page lists every entry of the answer (the liveness flag, the
//! lifecycle and each check with its status, the age of its result, how long the run
//! took and, where the detail policy allows, why it failed); without it, the verdict and a
//! link to the verbose page. Everything the page shows is escaped, it loads nothing (no
//! script, no image, no external style sheet), and its one inline style sheet is allowed
//! by its hash in the `Content-Security-Policy` header ([`CONTENT_SECURITY_POLICY`]).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::{rfc3339, summary, Detail, Entry, Style};
use crate::check::report::Verdict;
use crate::vocabulary::{Probe, Status};

/// The page's only style sheet. The policy below allows exactly this text, by its hash:
/// change one and the test `the_policy_allows_the_style_sheet_by_its_hash` says what the
/// other must be.
const STYLE: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1f2328;background:#fff}\
h1{font-size:1.35rem;margin:0 0 .4rem}\
p{margin:.4rem 0}\
table{border-collapse:collapse;margin-top:1rem}\
th,td{text-align:left;padding:.4rem .9rem .4rem 0;border-bottom:1px solid #d0d7de;vertical-align:top}\
thead th{font-weight:600;color:#57606a}\
tbody th{font-weight:600}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;min-width:4.2em;text-align:center;padding:.05rem .4rem;border-radius:.3rem;font-weight:600;color:#fff}\
.pass{background:#1a7f37}.warn{background:#9a6700}.fail{background:#cf222e}.unknown{background:#6e7781}\
.tag{font-size:.8em;font-weight:400;color:#57606a;margin-left:.5em}\
.muted{color:#6e7781}\
.detail{max-width:40rem;white-space:pre-wrap;overflow-wrap:anywhere}\
.foot{margin-top:1.2rem;color:#57606a;font-size:.9em}\
@media (prefers-color-scheme:dark){body{color:#e6edf3;background:#0d1117}th,td{border-color:#30363d}thead th,.tag,.foot{color:#9198a1}}";

/// The `Content-Security-Policy` of every page: nothing may load, no script may run, the
/// page may not be framed, and the one inline style sheet is allowed by its SHA-256.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     style-src 'sha256-BQSBKMd5EUMopk+DxMbJI5uWcVrQsI+ZUPkKLR21GfA='; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How often a page asked for with a bare `?refresh` reloads, in seconds.
pub(crate) const DEFAULT_REFRESH: u16 = 5;

pub(super) fn body(
    probe: Probe,
    verdict: &Verdict,
    entries: &[Entry<'_>],
    style: Style,
    now: SystemTime,
) -> String {
    let mut out = String::with_capacity(2048 + entries.len() * 256);
    let status = status_word(verdict.status);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{probe}: {status}</title>");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        out,
        "<h1 id=\"verdict\" data-status=\"{status}\"><span class=\"badge {status}\">{status}</span> {probe}</h1>"
    );
    if let Some(summary) = summary(verdict, entries) {
        out.push_str("<p id=\"summary\">");
        push_escaped(&mut out, &summary);
        out.push_str("</p>\n");
    }
    if style.verbose {
        push_table(&mut out, entries, style.detail, now);
        // Only a verbose page is rendered again after every run, so only it can say how
        // old it is; a plain one changes with the statuses alone.
        let as_of = humantime::format_rfc3339_seconds(now);
        let every = DEFAULT_REFRESH;
        let _ = writeln!(
            out,
            "<p class=\"foot\">As of <time datetime=\"{as_of}\">{as_of}</time> \
             · <a href=\"?verbose&amp;refresh={every}\">refresh every {every} s</a> \
             · <a href=\"?verbose\">stop refreshing</a></p>"
        );
    } else {
        out.push_str("<p><a href=\"?verbose\">Show every check</a></p>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn push_table(out: &mut String, entries: &[Entry<'_>], detail: Detail, now: SystemTime) {
    out.push_str(
        "<table id=\"entries\">\n<thead><tr><th scope=\"col\">name</th><th scope=\"col\">status</th>\
         <th scope=\"col\">age</th><th scope=\"col\">duration</th><th scope=\"col\">detail</th></tr></thead>\n<tbody>\n",
    );
    for entry in entries {
        let status = status_word(entry.status);
        let kind = if entry.check.is_some() {
            "check"
        } else {
            "lifecycle"
        };
        out.push_str("<tr data-name=\"");
        push_escaped(out, entry.name);
        let _ = write!(
            out,
            "\" data-kind=\"{kind}\" data-status=\"{status}\"{}><th scope=\"row\">",
            if entry.excluded {
                " class=\"muted\""
            } else {
                ""
            }
        );
        push_escaped(out, entry.name);
        if entry.check.is_some_and(|c| !c.is_critical()) {
            out.push_str("<span class=\"tag\">non-critical</span>");
        }
        if entry.excluded {
            out.push_str("<span class=\"tag\">excluded</span>");
        }
        let _ = write!(
            out,
            "</th><td><span class=\"badge {status}\">{status}</span></td>"
        );
        // Age and duration: a check's last run; lifecycle entries have neither.
        out.push_str("<td class=\"num\">");
        if let Some(time) = entry.check.and_then(|c| c.time()) {
            let stamp = rfc3339(time);
            let age = now.duration_since(time).unwrap_or(Duration::ZERO);
            let _ = write!(
                out,
                "<time datetime=\"{stamp}\" title=\"{stamp}\">{}</time>",
                Age(age)
            );
        }
        out.push_str("</td><td class=\"num\">");
        if let Some(duration) = entry.check.and_then(|c| c.duration()) {
            let _ = write!(out, "{}", Human(duration));
        }
        out.push_str("</td><td class=\"detail\">");
        match entry.reason(detail) {
            Some(text) => push_escaped(out, text),
            None if matches!(entry.status, Status::Pass) => {}
            None => out.push_str("<span class=\"muted\">reason withheld</span>"),
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The page says `unknown` where the JSON says `fail`: a person may tell the two apart.
fn status_word(status: Status) -> &'static str {
    match status {
        Status::Unknown => "unknown",
        status => status.as_str(),
    }
}

/// A duration as a person reads it: `2.5 ms`, `1.20 s`, `42 s`, `3 min`, `5 h`.
struct Human(Duration);

impl std::fmt::Display for Human {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs_f64();
        if secs < 0.001 {
            write!(f, "{} µs", self.0.as_micros())
        } else if secs < 1.0 {
            let ms = secs * 1000.0;
            if ms < 10.0 {
                write!(f, "{ms:.1} ms")
            } else {
                write!(f, "{ms:.0} ms")
            }
        } else if secs < 10.0 {
            write!(f, "{secs:.2} s")
        } else if secs < 120.0 {
            write!(f, "{secs:.0} s")
        } else if secs < 7200.0 {
            write!(f, "{} min", self.0.as_secs() / 60)
        } else {
            write!(f, "{} h", self.0.as_secs() / 3600)
        }
    }
}

/// How old a result is, to a tenth of a second below 10 s, then as [`Human`].
struct Age(Duration);

impl std::fmt::Display for Age {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 < Duration::from_secs(10) {
            write!(f, "{:.1} s", self.0.as_secs_f64())
        } else {
            Human(self.0).fmt(f)
        }
    }
}

/// Text as HTML character data or a quoted attribute value.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than line breaks and tabs are not allowed in HTML
            // text; a check's error could carry any.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::render::Format;
    use crate::answer::render::{render, Scope};
    use crate::check::{CheckReport, Report};
    use crate::vocabulary::{Gates, Phase};
    use crate::Lifecycle;
    use base64::Engine as _;
    use sha2::Digest as _;
    use std::sync::Arc;

    fn check(name: &str, status: Status, critical: bool, output: Option<&str>) -> CheckReport {
        CheckReport {
            kind: crate::vocabulary::CheckKind::Check,
            name: Arc::from(name),
            status,
            critical,
            gates: Gates::READINESS,
            time: (status != Status::Unknown).then(SystemTime::now),
            duration: (status != Status::Unknown).then_some(Duration::from_micros(2_500)),
            observed: None,
            output: output.map(Arc::from),
        }
    }

    fn render_page(checks: Vec<CheckReport>, verbose: bool, detail: Detail) -> (u16, String) {
        let report = Report {
            phase: Phase::new(Lifecycle::Ready, true),
            checks,
            drain_holders: Vec::new(),
        };
        let style = Style {
            format: Format::Html,
            verbose,
            detail,
        };
        let (code, body) = render(
            &report,
            Probe::Readiness,
            Scope::Probe { excluded: &[] },
            style,
        );
        (code.as_u16(), String::from_utf8(body.to_vec()).unwrap())
    }

    /// The `<tr>` of the entry called `name`.
    fn row<'p>(page: &'p str, name: &str) -> &'p str {
        let start = page
            .find(&format!("<tr data-name=\"{name}\""))
            .unwrap_or_else(|| panic!("no row for {name} in {page}"));
        let end = start + page[start..].find("</tr>").unwrap();
        &page[start..end]
    }

    fn evil() -> Vec<CheckReport> {
        vec![
            check(
                "db",
                Status::Fail,
                true,
                Some("<img src=x onerror=alert(1)> & 'quotes\""),
            ),
            check("cache", Status::Warn, false, Some("slow")),
            check("queue", Status::Pass, true, None),
            check("model", Status::Unknown, true, None),
        ]
    }

    #[test]
    fn the_verbose_page_has_a_row_per_entry_with_status_age_and_duration() {
        let (code, page) = render_page(evil(), true, Detail::Shown);
        assert_eq!(code, 503);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.contains("<title>readyz: fail</title>"), "{page}");
        assert!(
            page.contains("<p id=\"summary\">failed: db, model</p>"),
            "{page}"
        );
        assert!(row(&page, "liveness").contains("data-status=\"pass\""));
        let lifecycle = row(&page, "lifecycle");
        assert!(lifecycle.contains("data-status=\"pass\""), "{lifecycle}");
        assert!(lifecycle.contains(">ready</td>"), "{lifecycle}");
        let db = row(&page, "db");
        assert!(
            db.contains("data-kind=\"check\" data-status=\"fail\""),
            "{db}"
        );
        assert!(db.contains(">2.5 ms</td>"), "{db}");
        assert!(db.contains("<time datetime=\""), "{db}");
        assert!(
            db.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &#39;quotes&quot;"),
            "{db}"
        );
        let cache = row(&page, "cache");
        assert!(cache.contains("data-status=\"warn\""), "{cache}");
        assert!(cache.contains("non-critical"), "{cache}");
        assert!(cache.contains(">slow</td>"), "{cache}");
        assert!(row(&page, "queue").contains("data-status=\"pass\""));
        let model = row(&page, "model");
        assert!(model.contains("data-status=\"unknown\""), "{model}");
        assert!(model.contains(">no result yet</td>"), "{model}");
        assert!(page.contains("href=\"?verbose&amp;refresh=5\""), "{page}");
    }

    #[test]
    fn nothing_a_check_says_becomes_markup() {
        let (_, page) = render_page(evil(), true, Detail::Shown);
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert_eq!(page.matches("<style>").count(), 1);
        assert!(
            !page.contains(" style="),
            "inline style attributes are not hashed"
        );
        for loads in ["<img", "<link", "<iframe", "<object", "<embed", "url("] {
            assert!(!page.contains(loads), "the page loads nothing: {page}");
        }
    }

    #[test]
    fn the_page_withholds_reasons_unless_the_policy_allows_them() {
        let (_, page) = render_page(evil(), true, Detail::Withheld);
        assert!(!page.contains("onerror"), "{page}");
        assert!(!page.contains("slow"), "{page}");
        assert!(row(&page, "db").contains("reason withheld"));
        assert!(row(&page, "cache").contains("reason withheld"));
        assert!(!row(&page, "queue").contains("reason withheld"));
        // What is no secret still shows: the lifecycle, and a check with no result yet.
        assert!(row(&page, "lifecycle").contains(">ready</td>"));
        assert!(row(&page, "model").contains("no result yet"));
    }

    #[test]
    fn a_plain_browser_request_gets_the_verdict_and_a_link_to_every_check() {
        let (code, page) = render_page(evil(), false, Detail::Shown);
        assert_eq!(code, 503);
        assert!(page.contains("data-status=\"fail\""), "{page}");
        assert!(page.contains("failed: db, model"), "{page}");
        assert!(page.contains("<a href=\"?verbose\">"), "{page}");
        assert!(!page.contains("<table"), "{page}");
        let (code, page) = render_page(
            vec![check("queue", Status::Pass, true, None)],
            false,
            Detail::Withheld,
        );
        assert_eq!(code, 200);
        assert!(page.contains("<title>readyz: pass</title>"), "{page}");
        assert!(!page.contains("id=\"summary\""), "{page}");
    }

    #[test]
    fn the_policy_allows_the_style_sheet_by_its_hash() {
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
        let allowed = format!("style-src 'sha256-{hash}'");
        assert!(
            CONTENT_SECURITY_POLICY.contains(&allowed),
            "the policy must say {allowed:?}"
        );
        assert!(
            !STYLE.contains("</"),
            "the style sheet must not close its element"
        );
    }

    #[test]
    fn escaping_covers_markup_quotes_and_control_characters() {
        let mut out = String::new();
        push_escaped(&mut out, "<script>alert('x&y')</script>\"\u{7}\nok");
        assert_eq!(
            out,
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;\u{fffd}\nok"
        );
    }

    #[test]
    fn durations_read_like_a_person_writes_them() {
        let cases = [
            (Duration::from_micros(250), "250 µs"),
            (Duration::from_micros(2_500), "2.5 ms"),
            (Duration::from_millis(42), "42 ms"),
            (Duration::from_millis(1_200), "1.20 s"),
            (Duration::from_secs(42), "42 s"),
            (Duration::from_secs(200), "3 min"),
            (Duration::from_secs(5 * 3600 + 59), "5 h"),
        ];
        for (duration, want) in cases {
            assert_eq!(Human(duration).to_string(), want);
        }
        assert_eq!(Age(Duration::from_micros(3)).to_string(), "0.0 s");
        assert_eq!(Age(Duration::from_millis(2_340)).to_string(), "2.3 s");
        assert_eq!(Age(Duration::from_secs(42)).to_string(), "42 s");
    }
}
