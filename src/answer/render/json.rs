//! `application/health+json`, in the form of the IETF draft "Health Check Response Format
//! for HTTP APIs".

use std::fmt::Write as _;

use super::{rfc3339, summary, Detail, Entry, Style};
use crate::check::report::Verdict;
use crate::check::CheckReport;
use crate::vocabulary::{CheckKind, ObservedValue};

pub(super) fn body(verdict: &Verdict, entries: &[Entry<'_>], style: Style) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("{\"status\":");
    push_json_str(&mut out, verdict.status.as_str());
    if let Some(summary) = summary(verdict, entries) {
        out.push_str(",\"output\":");
        push_json_str(&mut out, &summary);
    }
    if style.verbose {
        out.push_str(",\"checks\":{");
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, entry.name);
            out.push_str(":[{\"status\":");
            push_json_str(&mut out, entry.status.as_str());
            match entry.check {
                None => {
                    out.push_str(",\"componentType\":\"system\"");
                    if let Some(value) = entry.public {
                        out.push_str(",\"observedValue\":");
                        push_json_str(&mut out, value);
                    }
                }
                Some(check) => push_check_fields(&mut out, entry, check, style.detail),
            }
            if entry.excluded {
                out.push_str(",\"excluded\":true");
            }
            out.push_str("}]");
        }
        out.push('}');
    }
    out.push('}');
    out
}

fn push_check_fields(out: &mut String, entry: &Entry<'_>, check: &CheckReport, detail: Detail) {
    // A check is what an entry is unless said; what the application sets says so.
    if check.kind() != CheckKind::Check {
        out.push_str(",\"componentType\":");
        push_json_str(out, check.kind().as_str());
    }
    if !check.is_critical() {
        out.push_str(",\"critical\":false");
    }
    if let Some(time) = check.time() {
        out.push_str(",\"time\":");
        let _ = write!(out, "\"{}\"", rfc3339(time));
    }
    match (check.observed(), check.duration()) {
        (Some(observed), _) => {
            out.push_str(",\"observedValue\":");
            push_observed(out, observed.value());
            if let Some(unit) = observed.unit() {
                out.push_str(",\"observedUnit\":");
                push_json_str(out, unit);
            }
        }
        (None, Some(duration)) => {
            let ms = duration.as_secs_f64() * 1000.0;
            let _ = write!(
                out,
                ",\"observedValue\":{},\"observedUnit\":\"ms\"",
                (ms * 1000.0).round() / 1000.0
            );
        }
        (None, None) => {}
    }
    if let Some(output) = entry.reason(detail) {
        out.push_str(",\"output\":");
        push_json_str(out, output);
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // Serialising a str into a String cannot fail.
    out.push_str(&serde_json::Value::from(s).to_string());
}

/// An observed value as JSON: a number, `true`/`false`, a string, or `null` for a number
/// that is not finite (JSON has none).
fn push_observed(out: &mut String, value: &ObservedValue) {
    match value {
        ObservedValue::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        ObservedValue::Unsigned(n) => {
            let _ = write!(out, "{n}");
        }
        ObservedValue::Float(n) if n.is_finite() => {
            let _ = write!(out, "{n}");
        }
        ObservedValue::Float(_) => out.push_str("null"),
        ObservedValue::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        ObservedValue::Text(text) => push_json_str(out, text),
    }
}
