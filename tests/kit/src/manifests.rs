//! The Kubernetes manifests users copy (`examples/kubernetes/`), read as far as the tests
//! check them: a value after a key, found below a line that names where to look.

use std::path::Path;

/// The text of `examples/kubernetes/{file}`.
///
/// # Panics
///
/// If the file cannot be read.
pub fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/kubernetes")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value after `key:` on the first line, from the first that holds `from` on, that
/// has it; comments left out, quotes taken off.
///
/// # Panics
///
/// If there is no such line.
pub fn value<'a>(yaml: &'a str, from: &str, key: &str) -> &'a str {
    let mut lines = yaml
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .skip_while(|line| !line.contains(from));
    lines
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(|value| value.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no {key} after {from}"))
}

/// [`value`] as a number.
///
/// # Panics
///
/// If there is no such line or its value is not a number.
pub fn number(yaml: &str, from: &str, key: &str) -> u64 {
    let value = value(yaml, from, key);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key} after {from} is {value:?}, not a number"))
}
