//! A Prometheus exposition read as Prometheus reads it (`prometheus-parse`), and one
//! sample of it found by name and labels.

pub use prometheus_parse::{Scrape, Value};

/// `text`, a Prometheus exposition, parsed.
///
/// # Panics
///
/// If it does not parse.
pub fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("a Prometheus exposition")
}

/// The value of the sample named `name` with exactly `labels`, if there is one.
pub fn sample<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Value> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
        })
        .map(|s| &s.value)
}
