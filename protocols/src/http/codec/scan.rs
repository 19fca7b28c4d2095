//! Finding where a header section may end, looking at each byte once.
//!
//! httparse parses a whole head at a time. When a head arrives in pieces, calling it on every
//! piece would re-read the head from its start each time (quadratic in a slow peer's bytes), so
//! the pieces are first scanned here and httparse runs only when the head may be complete: at the
//! end of the request line (so a bad request line is refused as soon as it is whole) and at an
//! empty line.

/// Where in a line the scan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum At {
    /// At the start of a line.
    #[default]
    Start,
    /// After a CR at the start of a line.
    StartCr,
    /// Inside a line.
    Mid,
}

/// The scan's state across pieces: how many bytes of the pending section it has looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct SectionScan {
    /// Bytes of the section scanned so far.
    pub(super) scanned: usize,
    at: At,
    /// Non-empty lines ended so far.
    lines: u32,
    /// Bytes of the empty lines before the first line (RFC 9112 §2.2 lets a server skip
    /// them): part of the section, counted against its limit, but not of the request line.
    leading: usize,
}

impl SectionScan {
    /// Whether a non-empty line (the request line, for a head) has ended.
    pub(super) fn first_line_done(&self) -> bool {
        self.lines > 0
    }

    /// How many of the section's first bytes are empty lines before its first line.
    pub(super) fn leading_empty_lines(&self) -> usize {
        self.leading
    }

    /// Scans `bytes` (the next bytes of the section) and returns how many of them lead up to and
    /// include the next place where the section may be complete, or `None` if none is in them
    /// (then all were scanned). For a head (`trailers` false) those places are the end of the
    /// first non-empty line and an empty line after it (httparse skips empty lines before the
    /// request line, RFC 9112 §2.2); for trailers any empty line ends the section.
    pub(super) fn scan(&mut self, bytes: &[u8], trailers: bool) -> Option<usize> {
        for (i, &byte) in bytes.iter().enumerate() {
            let interesting = match (self.at, byte) {
                (At::Start | At::StartCr, b'\n') => {
                    self.at = At::Start;
                    if self.lines == 0 {
                        self.leading = self.scanned + i + 1;
                    }
                    trailers || self.lines > 0
                }
                (At::Start, b'\r') => {
                    self.at = At::StartCr;
                    false
                }
                (At::Mid, b'\n') => {
                    self.at = At::Start;
                    self.lines = self.lines.saturating_add(1);
                    !trailers && self.lines == 1
                }
                _ => {
                    self.at = At::Mid;
                    false
                }
            };
            if interesting {
                self.scanned += i + 1;
                return Some(i + 1);
            }
        }
        self.scanned += bytes.len();
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_request_line_and_the_empty_line() {
        let head = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
        let mut scan = SectionScan::default();
        assert_eq!(scan.scan(head, false), Some(18));
        assert_eq!(scan.scan(&head[18..], false), Some(11));
        assert_eq!(scan.scanned, 29);
    }

    #[test]
    fn empty_lines_before_the_first_line_are_counted_apart() {
        let mut scan = SectionScan::default();
        assert_eq!(scan.scan(b"\r\n\n\r", false), None);
        assert_eq!(scan.leading_empty_lines(), 3);
        assert_eq!(scan.scan(b"\nGET / HTTP/1.1\r\n\r\n", false), Some(17));
        assert_eq!(scan.leading_empty_lines(), 5);
        assert!(scan.first_line_done());
        assert_eq!(scan.scan(b"\r\n", false), Some(2));
        assert_eq!(
            scan.leading_empty_lines(),
            5,
            "an empty line after the first one"
        );
    }

    #[test]
    fn trailers_end_at_the_first_empty_line() {
        let mut scan = SectionScan::default();
        assert_eq!(scan.scan(b"\r\nx", true), Some(2));
        let mut scan = SectionScan::default();
        assert_eq!(scan.scan(b"A: b\r", true), None);
        assert_eq!(scan.scan(b"\n\r\n", true), Some(3));
    }
}
