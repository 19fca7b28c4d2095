//! The line framer, with each delimiter, switching to raw mode and back as a protocol would.
//!
//! The consumer is scripted by the input: a line `RAW n` (n up to 9999) switches to raw mode
//! for the next n bytes, then back to lines with the unused tail of the last raw frame
//! (`set_line_mode_with_extra`), as a protocol reading a body of known length does.

use torsion_protocols::line::{Delimiter, LineError, LineFrame, LineFramer};

use super::{check_stream, events_whole, Target};
use crate::chunking::{feed_all, Plan};
use crate::trace::Trace;

/// The line framer.
pub const TARGET: Target = Target {
    name: "line",
    about: "LineFramer with \\r\\n, \\n and a custom delimiter, lines of at most 64 bytes, \
            `RAW n` lines switching to raw mode for n bytes",
    run,
    events: |input| {
        let mut out = String::new();
        for delimiter in delimiters() {
            out += &format!("-- {delimiter:?}\n");
            out += &events_whole(|plan, trace| decode(input, &delimiter, true, plan, trace, None));
        }
        out
    },
    dictionary: &[
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b"RAW 5\r\n",
        b"RAW 0\r\n",
        b"RAW 70\r\n",
    ],
};

const MAX_LINE: usize = 64;

fn delimiters() -> [Delimiter; 3] {
    [
        Delimiter::CrLf,
        Delimiter::Newline,
        // Overlapping with itself, so a search must not skip a start inside a near miss.
        Delimiter::Custom(b"\r\n\r\n".to_vec().into_boxed_slice()),
    ]
}

/// What the framer may keep pending: a partial line (the limit and a partial delimiter) and
/// the rest of a read a consumer stopped early in. Its buffer may also hold as many consumed
/// bytes (they are dropped once they outnumber the pending ones, so each byte moves at most
/// once), and a vector's capacity may be twice its length: four times that, and the delimiter.
fn bound(piece: usize) -> usize {
    4 * (MAX_LINE + 4 + piece) + 64
}

fn run(input: &[u8]) {
    for delimiter in delimiters() {
        check_stream(
            input,
            |plan| bound(plan.max_piece(input)),
            |plan, trace| decode(input, &delimiter, true, plan, trace, None),
        );
        round_trip(input, &delimiter);
    }
}

/// What the consumer does after a frame.
enum Switch {
    ToRaw,
    ToLines { extra: usize },
}

fn decode(
    input: &[u8],
    delimiter: &Delimiter,
    scripted: bool,
    plan: Plan,
    trace: &mut Trace,
    mut lines: Option<&mut Vec<Vec<u8>>>,
) {
    let mut framer = LineFramer::new()
        .with_delimiter(delimiter.clone())
        .with_max_line_length(MAX_LINE);
    let mut raw_left = 0;
    feed_all(input, plan, |bytes, stop| {
        let mut frames = framer.feed(bytes);
        while let Some(frame) = frames.next() {
            let mut switch = None;
            match frame {
                Ok(LineFrame::Line(line)) => {
                    assert!(line.len() <= MAX_LINE, "a line over the limit");
                    trace.event(format_args!("line {}", line.escape_ascii()));
                    if let Some(lines) = lines.as_deref_mut() {
                        lines.push(line.to_vec());
                    }
                    if let Some(n) = raw_command(line).filter(|_| scripted) {
                        raw_left = n;
                        if n > 0 {
                            switch = Some(Switch::ToRaw);
                        }
                    }
                }
                Ok(LineFrame::Raw(raw)) => {
                    assert!(!raw.is_empty(), "an empty raw frame");
                    assert!(raw_left > 0, "a raw frame in line mode");
                    let used = raw.len().min(raw_left);
                    trace.data(&raw[..used]);
                    raw_left -= used;
                    if raw_left == 0 {
                        switch = Some(Switch::ToLines {
                            extra: raw.len() - used,
                        });
                    }
                }
                Err(LineError::TooLong {
                    max_length,
                    buffered,
                }) => {
                    assert_eq!(buffered.len(), max_length + 1, "TooLong's bytes");
                    trace.event(format_args!("too long {}", buffered.escape_ascii()));
                }
                Err(error) => trace.event(format_args!("error {error:?}")),
            }
            match switch {
                Some(Switch::ToRaw) => frames.set_raw_mode(),
                Some(Switch::ToLines { extra }) => frames.set_line_mode_with_extra(extra),
                None => {}
            }
            if stop() {
                return true;
            }
        }
        false
    });
    trace.event(format_args!(
        "raw={} buffered={}",
        framer.is_raw_mode(),
        framer.buffered().escape_ascii()
    ));
}

/// `RAW n`: switch to raw mode for n bytes.
fn raw_command(line: &[u8]) -> Option<usize> {
    let digits = line.strip_prefix(b"RAW ")?;
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The lines decoded (raw data aside), each written with the delimiter's line ending, decode
/// to themselves.
fn round_trip(input: &[u8], delimiter: &Delimiter) {
    let mut lines = Vec::new();
    decode(
        input,
        delimiter,
        true,
        Plan::Whole,
        &mut Trace::hashed(),
        Some(&mut lines),
    );
    let mut wire = Vec::new();
    for line in &lines {
        wire.extend_from_slice(line);
        wire.extend_from_slice(delimiter.line_ending());
    }
    let mut again = Vec::new();
    decode(
        &wire,
        delimiter,
        false,
        Plan::Whole,
        &mut Trace::hashed(),
        Some(&mut again),
    );
    assert_eq!(
        again,
        lines,
        "lines re-encoded as \"{}\" with {delimiter:?}",
        wire.escape_ascii()
    );
}
