//! [`Capped`]: text formatted into at most a given number of bytes, and no more work.
//!
//! A check's error, or a panic's message, may format to any size; what the layer keeps of
//! it is its first KiB. Formatting it whole first costs the whole size in memory and in
//! time (inside the check's timeout); formatting it into a `Capped` costs the cap, because
//! once the cap is reached every write fails, and `Display` impls stop at the first
//! failed write.

use std::fmt;

/// A `fmt::Write` into a `String` of at most `cap` bytes. Text past the cap is cut on a
/// character boundary and marked with `mark` (within the cap), and the write that
/// reached it, and every one after, fails with `fmt::Error`, which stops the formatting.
pub(crate) struct Capped {
    out: String,
    cap: usize,
    mark: &'static str,
    cut: bool,
}

impl Capped {
    /// An empty text that will hold at most `cap` bytes, `mark` included when cut. A
    /// `mark` longer than `cap` is cut down to it.
    pub(crate) fn new(cap: usize, mark: &'static str) -> Capped {
        Capped {
            out: String::new(),
            cap,
            mark: &mark[..floor_char_boundary(mark, cap)],
            cut: false,
        }
    }

    /// `value`'s text, cut at `cap` bytes and marked as [`Capped`] says.
    pub(crate) fn format(value: &dyn fmt::Display, cap: usize, mark: &'static str) -> String {
        let mut capped = Capped::new(cap, mark);
        // An error is the cut, or the value's own `Display` failing: either way what was
        // written so far is the text.
        let _ = fmt::write(&mut capped, format_args!("{value}"));
        capped.into_string()
    }

    /// The text written, marked if it was cut.
    pub(crate) fn into_string(self) -> String {
        self.out
    }

    /// Appends `s`, which fits, growing the string as `String` does but never past the
    /// cap.
    fn push(&mut self, s: &str) {
        let needed = self.out.len() + s.len();
        if needed > self.out.capacity() {
            let target = needed.max(self.out.capacity() * 2).min(self.cap);
            self.out.reserve_exact(target - self.out.len());
        }
        self.out.push_str(s);
    }
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Err(fmt::Error);
        }
        if self.out.len() + s.len() <= self.cap {
            self.push(s);
            return Ok(());
        }
        // The text is longer than the cap: keep what fits before the mark, growing the
        // string once, to its final length.
        let keep = self.cap - self.mark.len();
        let tail = if self.out.len() > keep {
            let end = floor_char_boundary(&self.out, keep);
            self.out.truncate(end);
            ""
        } else {
            &s[..floor_char_boundary(s, keep - self.out.len())]
        };
        self.out.reserve_exact(tail.len() + self.mark.len());
        self.out.push_str(tail);
        self.out.push_str(self.mark);
        self.cut = true;
        Err(fmt::Error)
    }
}

/// The largest character boundary of `s` at or below `index`.
fn floor_char_boundary(s: &str, index: usize) -> usize {
    if index >= s.len() {
        return s.len();
    }
    let mut end = index;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    const MARK: &str = " [cut]";

    /// Writes `piece` `times` times, stopping at the first failed write, and counts the
    /// writes it made.
    struct Pieces<'a> {
        piece: &'a str,
        times: usize,
        writes: std::cell::Cell<usize>,
    }

    impl fmt::Display for Pieces<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for _ in 0..self.times {
                self.writes.set(self.writes.get() + 1);
                f.write_str(self.piece)?;
            }
            Ok(())
        }
    }

    fn pieces(piece: &str, times: usize) -> Pieces<'_> {
        Pieces {
            piece,
            times,
            writes: std::cell::Cell::new(0),
        }
    }

    #[test]
    fn text_within_the_cap_is_kept_whole() {
        assert_eq!(Capped::format(&"", 16, MARK), "");
        assert_eq!(
            Capped::format(&"connection refused", 18, MARK),
            "connection refused"
        );
        assert_eq!(Capped::format(&pieces("ab", 8), 16, MARK), "ab".repeat(8));
    }

    #[test]
    fn text_past_the_cap_is_cut_marked_and_stops_the_formatting() {
        let long = pieces("0123456789", 1_000_000);
        let text = Capped::format(&long, 32, MARK);
        assert_eq!(text, "01234567890123456789012345 [cut]");
        assert_eq!(text.len(), 32);
        assert_eq!(
            long.writes.get(),
            4,
            "stopped at the write that passed the cap"
        );
        // One write past the cap, cut inside what was written before it.
        assert_eq!(Capped::format(&"x".repeat(33), 32, MARK).len(), 32);
        let mut capped = Capped::new(8, MARK);
        assert!(capped.write_str("abcdefg").is_ok());
        assert!(capped.write_str("hi").is_err());
        assert!(capped.write_str("more").is_err(), "and every write after");
        assert_eq!(capped.into_string(), "ab [cut]");
    }

    #[test]
    fn a_cut_falls_on_a_character_boundary() {
        for cap in 6..40 {
            let text = Capped::format(&"é𝄞".repeat(20), cap, MARK);
            assert!(text.len() <= cap, "{cap}: {text}");
            assert!(text.ends_with(MARK), "{cap}: {text}");
            assert!("é𝄞"
                .repeat(20)
                .starts_with(text.strip_suffix(MARK).unwrap()));
        }
        assert_eq!(Capped::format(&"abcdef", 3, MARK), " [c");
    }

    #[test]
    fn small_writes_grow_the_string_by_doubling_and_never_past_the_cap() {
        let mut capped = Capped::new(1000, MARK);
        let mut capacities = vec![capped.out.capacity()];
        for _ in 0..99 {
            capped.write_str("0123456789").unwrap();
            if capped.out.capacity() != *capacities.last().unwrap() {
                capacities.push(capped.out.capacity());
            }
        }
        let text = capped.into_string();
        assert_eq!(text.len(), 990);
        assert!(text.capacity() <= 1000, "capacity {}", text.capacity());
        // 10, 20, 40 ... 640, then the cap: a handful of allocations, not one a write.
        assert!(capacities.len() <= 10, "{capacities:?}");
    }

    #[test]
    fn the_text_never_holds_more_than_the_cap() {
        let text = Capped::format(&pieces(&"y".repeat(700), 10), 1024, MARK);
        assert_eq!(text.len(), 1024);
        assert!(text.capacity() <= 1024, "capacity {}", text.capacity());
    }
}
