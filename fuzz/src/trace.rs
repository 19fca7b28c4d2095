//! A decoder's events in a canonical form, so two runs over differently split input can be
//! compared. Data events are joined (decoders split body bytes wherever reads split them);
//! every other event is one line. The fuzzing loop keeps only a hash of the trace (it
//! allocates nothing, so the allocation bound measures the decoder alone); a mismatch is then
//! re-run as text to show where the two differ.

use std::fmt::{self, Write};

/// The events of one decoding, hashed or as text.
#[derive(Debug)]
pub struct Trace {
    text: Option<String>,
    hash: u64,
    /// Within a run of data bytes.
    in_data: bool,
}

impl Trace {
    /// A trace that keeps only a hash of the events (no allocation).
    pub fn hashed() -> Trace {
        Trace {
            text: None,
            hash: 0xcbf2_9ce4_8422_2325,
            in_data: false,
        }
    }

    /// A trace that keeps the events as text, one line each.
    pub fn text() -> Trace {
        Trace {
            text: Some(String::new()),
            ..Trace::hashed()
        }
    }

    /// An event other than data: one line.
    pub fn event(&mut self, args: fmt::Arguments<'_>) {
        self.end_data();
        let _ = self.write_fmt(args);
        let _ = self.write_char('\n');
    }

    /// Data bytes, joined to the data just before them.
    pub fn data(&mut self, bytes: &[u8]) {
        if !self.in_data {
            let _ = self.write_str("data ");
            self.in_data = true;
        }
        let _ = write!(self, "{}", bytes.escape_ascii());
    }

    fn end_data(&mut self) {
        if self.in_data {
            self.in_data = false;
            let _ = self.write_char('\n');
        }
    }

    /// The hash of everything so far.
    pub fn hash(&mut self) -> u64 {
        self.end_data();
        self.hash
    }

    /// The text so far (empty for a hashed trace).
    pub fn into_text(mut self) -> String {
        self.end_data();
        self.text.unwrap_or_default()
    }
}

impl Write for Trace {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        if let Some(text) = &mut self.text {
            text.push_str(s);
        }
        Ok(())
    }
}

/// Where two traces part, for a failure message: the first differing line of each, with the
/// line before it.
pub fn first_difference(a: &str, b: &str) -> String {
    let (a_lines, b_lines): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let at = a_lines
        .iter()
        .zip(&b_lines)
        .position(|(x, y)| x != y)
        .unwrap_or(a_lines.len().min(b_lines.len()));
    let show = |lines: &[&str]| {
        let from = at.saturating_sub(1);
        let mut out = String::new();
        for line in lines.iter().skip(from).take(2) {
            let cut: String = line.chars().take(300).collect();
            out.push_str(&format!("\n      {cut}"));
        }
        if at >= lines.len() {
            out.push_str("\n      (no more events)");
        }
        out
    };
    format!(
        "at event {at}:\n    one gives:{}\n    the other:{}",
        show(&a_lines),
        show(&b_lines)
    )
}

#[cfg(test)]
mod tests {
    use super::Trace;

    #[test]
    fn data_runs_are_joined_however_they_are_split() {
        let mut a = Trace::text();
        a.event(format_args!("head"));
        a.data(b"hel");
        a.data(b"lo");
        a.event(format_args!("end"));
        let mut b = Trace::text();
        b.event(format_args!("head"));
        b.data(b"hello");
        b.event(format_args!("end"));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.into_text(), "head\ndata hello\nend\n");
    }

    #[test]
    fn a_hashed_trace_hashes_as_the_text_one() {
        let (mut a, mut b) = (Trace::hashed(), Trace::text());
        for t in [&mut a, &mut b] {
            t.data(b"x\r\n");
            t.event(format_args!("error {}", 3));
        }
        assert_eq!(a.hash(), b.hash());
    }
}
