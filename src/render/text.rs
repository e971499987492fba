//! The Kubernetes API server's `text/plain` answers: `ok`, or one `[+]name ok` /
//! `[-]name failed: reason` line per entry and a closing `readyz check passed` line.

use std::fmt::Write as _;

use super::{Detail, Entry, Style};
use crate::probe::Probe;
use crate::report::{Status, Verdict};

pub(super) fn body(probe: Probe, verdict: &Verdict, entries: &[Entry<'_>], style: Style) -> String {
    let passing = verdict.status.is_passing();
    if passing && !style.verbose {
        return "ok".to_owned();
    }
    // Like the API server, a failing answer always lists its entries.
    let mut out = String::with_capacity(128);
    for entry in entries {
        let reason = |out: &mut String| {
            let why = entry.public.or(match (style.detail, entry.check) {
                (Detail::Shown, Some(check)) => check.output(),
                _ => None,
            });
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
                let _ = writeln!(out, "[+]{} excluded: {word}", entry.name);
            }
            (false, Status::Pass) => {
                let _ = writeln!(out, "[+]{} ok", entry.name);
            }
            (false, Status::Warn) => {
                let _ = write!(out, "[+]{} warn: ", entry.name);
                reason(&mut out);
                out.push('\n');
            }
            (false, Status::Fail | Status::Unknown) => {
                let _ = write!(out, "[-]{} failed: ", entry.name);
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

fn push_one_line(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| if c.is_control() { ' ' } else { c }));
}
