//! The Kubernetes API server's `text/plain` answers: `ok`, or one `[+]name ok` /
//! `[-]name failed: reason` line per entry and a closing `readyz check passed` line.

use std::fmt::Write as _;

use super::{Entry, Style};
use crate::check::report::Verdict;
use crate::vocabulary::{Probe, Status};

pub(super) fn body(probe: Probe, verdict: &Verdict, entries: &[Entry<'_>], style: Style) -> String {
    let passing = verdict.status.is_passing();
    if passing && !style.verbose {
        return "ok".to_owned();
    }
    // Like the API server, a failing answer always lists its entries.
    let mut out = String::with_capacity(128);
    for entry in entries {
        let reason = |out: &mut String| {
            let why = entry.reason(style.detail);
            push_one_line(out, why.unwrap_or("reason withheld"));
        };
        let soft = entry.check.is_some_and(|c| !c.is_critical());
        match (entry.excluded, entry.status) {
            (true, status) => {
                let word = if status == Status::Pass {
                    "ok"
                } else {
                    "failed"
                };
                out.push_str("[+]");
                push_one_line(&mut out, entry.name);
                let _ = writeln!(out, " excluded: {word}");
            }
            (false, Status::Pass) => {
                out.push_str("[+]");
                push_one_line(&mut out, entry.name);
                out.push_str(" ok\n");
            }
            (false, Status::Warn) => {
                out.push_str("[+]");
                push_one_line(&mut out, entry.name);
                out.push_str(" warn: ");
                reason(&mut out);
                out.push('\n');
            }
            (false, Status::Fail | Status::Unknown) => {
                out.push_str("[-]");
                push_one_line(&mut out, entry.name);
                out.push_str(" failed: ");
                reason(&mut out);
                if soft {
                    out.push_str(" (non-critical)");
                }
                out.push('\n');
            }
        }
    }
    let _ = writeln!(
        out,
        "{probe} check {}",
        if passing { "passed" } else { "failed" }
    );
    out
}

/// `s` on one line: every character a line reader may split on becomes a space. That is
/// every control character (line feed, carriage return, vertical tab, form feed, U+0085
/// and the rest of C0 and C1) and the Unicode line and paragraph separators (U+2028,
/// U+2029), on which Python's `str.splitlines` and JavaScript split too.
fn push_one_line(out: &mut String, s: &str) {
    let splits = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    out.extend(s.chars().map(|c| if splits(c) { ' ' } else { c }));
}
