//! The sans-I/O line framer: bytes in, lines (or raw data) out. The design is explained in
//! the [`line`](super) module docs.

use std::error::Error;
use std::fmt;
use std::ops::Range;

use crate::input::{Backlog, Input};

/// Twisted's `LineReceiver.MAX_LENGTH`: 16 KiB.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16 * 1024;

/// What ends a line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Delimiter {
    /// `\r\n` only (the default, as Twisted): a bare `\n` is part of the line.
    #[default]
    CrLf,
    /// `\n`, with a `\r` just before it stripped: accepts both `\r\n` and a bare `\n` (what
    /// `nc` and most terminals send).
    Newline,
    /// These exact bytes (not empty).
    Custom(Box<[u8]>),
}

impl Delimiter {
    /// The bytes a sender should end its lines with: `\r\n` for [`CrLf`](Delimiter::CrLf) and
    /// [`Newline`](Delimiter::Newline) (strict in what it sends), the bytes themselves for
    /// [`Custom`](Delimiter::Custom).
    pub fn line_ending(&self) -> &[u8] {
        match self {
            Delimiter::CrLf | Delimiter::Newline => b"\r\n",
            Delimiter::Custom(bytes) => bytes,
        }
    }

    /// The bytes searched for.
    fn needle(&self) -> &[u8] {
        match self {
            Delimiter::CrLf => b"\r\n",
            Delimiter::Newline => b"\n",
            Delimiter::Custom(bytes) => bytes,
        }
    }
}

/// One frame out of a [`LineFrames`] cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFrame<'a> {
    /// A complete line in line mode, without its delimiter. May be empty.
    Line(&'a [u8]),
    /// Bytes received in raw mode: a run of the stream as it arrived, never empty. Runs are
    /// split wherever reads split them.
    Raw(&'a [u8]),
}

/// Bad framing found by the [`LineFramer`]. The framer stays usable: after the error it skips
/// the rest of the offending line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError<'a> {
    /// The peer sent a line longer than `max_length` bytes (delimiter excluded).
    TooLong {
        /// The limit it went over.
        max_length: usize,
        /// What had been buffered of the line when it went over: always its first
        /// `max_length + 1` bytes, however the reads split it.
        buffered: &'a [u8],
    },
}

impl fmt::Display for LineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLong { max_length, .. } => {
                write!(f, "peer sent a line longer than {max_length} bytes")
            }
        }
    }
}

impl Error for LineError<'_> {}

/// The line framer's state machine: what the next bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bytes up to each delimiter are lines.
    Line,
    /// In line mode, skipping the rest of a too-long line through its delimiter.
    Discarding,
    /// Bytes are handed out as they come.
    Raw,
}

/// Splits a byte stream into lines, with a switch to raw mode and back; see the
/// [module docs](super) for the design and an example.
#[derive(Debug, Default)]
pub struct LineFramer {
    framing: Framing,
    backlog: Backlog,
}

/// Everything but the backlog, so a cursor can borrow the two apart.
#[derive(Debug)]
struct Framing {
    delimiter: Delimiter,
    max_line_length: usize,
    mode: Mode,
    /// Bytes at the front of the backlog known not to start a delimiter: the search resumes
    /// here when more bytes arrive.
    scanned: usize,
    /// Bytes examined by delimiter searches, for the test that proves framing is linear.
    #[cfg(test)]
    scanned_total: usize,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            delimiter: Delimiter::default(),
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            mode: Mode::Line,
            scanned: 0,
            #[cfg(test)]
            scanned_total: 0,
        }
    }
}

impl LineFramer {
    /// A framer in line mode, splitting on `\r\n`, with lines of at most 16 KiB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits lines on `delimiter` instead.
    ///
    /// # Panics
    /// If `delimiter` is an empty [`Delimiter::Custom`]: nothing could end a line.
    pub fn with_delimiter(mut self, delimiter: Delimiter) -> Self {
        assert!(
            !delimiter.needle().is_empty(),
            "a line delimiter cannot be empty"
        );
        self.framing.delimiter = delimiter;
        self
    }

    /// Allows lines of at most `max` bytes (delimiter excluded) instead.
    pub fn with_max_line_length(mut self, max: usize) -> Self {
        self.framing.max_line_length = max;
        self
    }

    /// The delimiter lines are split on.
    pub fn delimiter(&self) -> &Delimiter {
        &self.framing.delimiter
    }

    /// The longest line accepted, in bytes, delimiter excluded.
    pub fn max_line_length(&self) -> usize {
        self.framing.max_line_length
    }

    /// Whether bytes are being handed out raw.
    pub fn is_raw_mode(&self) -> bool {
        self.framing.mode == Mode::Raw
    }

    /// From the next byte not yet handed out, hands bytes out raw (Twisted's `setRawMode`).
    /// Bytes already buffered (a partial line) come out first, as raw data.
    pub fn set_raw_mode(&mut self) {
        self.framing.set_raw_mode();
    }

    /// From the next byte not yet handed out, frames lines again (Twisted's `setLineMode`).
    /// A no-op in line mode.
    pub fn set_line_mode(&mut self) {
        self.framing.set_line_mode();
    }

    /// Bytes received and not yet handed out: a partial line, or what a cursor dropped early
    /// left unread.
    pub fn buffered(&self) -> &[u8] {
        self.backlog.pending()
    }

    /// Takes the bytes received and not yet handed out, leaving the framer empty (Twisted's
    /// `clearLineBuffer`), e.g. to hand the stream over to another protocol.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.framing.scanned = 0;
        self.backlog.take()
    }

    /// Feeds `data`, which follows the bytes fed before, and returns the cursor over the
    /// frames now complete. Bytes the cursor does not reach (it was dropped early, or they
    /// are a partial line) are kept for the next `feed`; `feed(&[])` goes on with just those.
    pub fn feed<'f, 'd>(&'f mut self, data: &'d [u8]) -> LineFrames<'f, 'd> {
        LineFrames {
            framing: &mut self.framing,
            input: Input::new(&mut self.backlog, data),
            last_raw: None,
        }
    }

    /// Bytes examined by delimiter searches so far.
    #[cfg(test)]
    fn scanned_total(&self) -> usize {
        self.framing.scanned_total
    }
}

impl crate::framer::Framer for LineFramer {
    type Frames<'s> = LineFrames<'s, 's>;
    type Frame<'x> = Result<LineFrame<'x>, LineError<'x>>;

    fn feed<'s>(&'s mut self, data: &'s [u8]) -> LineFrames<'s, 's> {
        self.feed(data)
    }

    fn next<'x>(frames: &'x mut LineFrames<'_, '_>) -> Option<Self::Frame<'x>> {
        frames.next()
    }
}

/// Where a frame's bytes lie: ranges stay valid until the next call on the cursor.
enum Span {
    Chunk(Range<usize>),
    Backlog(Range<usize>),
}

/// The outcome of one step of the state machine.
enum Step {
    Line(Span),
    TooLong(Span),
    Raw(Span),
    /// The state changed; step again.
    Again,
    /// Nothing more until more bytes arrive.
    Done,
}

/// Where the last raw frame came from, and its length, for
/// [`set_line_mode_with_extra`](LineFrames::set_line_mode_with_extra).
#[derive(Debug, Clone, Copy)]
enum RawFrom {
    Chunk(usize),
    Backlog(usize),
}

/// The frames of one [`LineFramer::feed`]: call [`next`](LineFrames::next) until it returns
/// `None`, switching modes between frames as the protocol requires. Dropping it early keeps
/// the bytes not yet handed out for the next `feed`.
#[derive(Debug)]
pub struct LineFrames<'f, 'd> {
    framing: &'f mut Framing,
    input: Input<'f, 'd>,
    last_raw: Option<RawFrom>,
}

impl LineFrames<'_, '_> {
    /// The next frame, or `None` once every complete frame was handed out (the bytes of a
    /// partial line are then kept in the framer).
    #[allow(
        clippy::should_implement_trait,
        reason = "a lending iterator: each frame borrows the cursor, which Iterator cannot say"
    )]
    pub fn next(&mut self) -> Option<Result<LineFrame<'_>, LineError<'_>>> {
        self.last_raw = None;
        self.input.backlog.reclaim();
        let step = loop {
            let step = match self.framing.mode {
                Mode::Line => self.line_step(),
                Mode::Discarding => self.discard_step(),
                Mode::Raw => self.raw_step(),
            };
            if !matches!(step, Step::Again) {
                break step;
            }
        };
        let max_length = self.framing.max_line_length;
        match step {
            Step::Line(span) => Some(Ok(LineFrame::Line(self.slice(span)))),
            Step::Raw(span) => Some(Ok(LineFrame::Raw(self.slice(span)))),
            Step::TooLong(span) => Some(Err(LineError::TooLong {
                max_length,
                buffered: self.slice(span),
            })),
            Step::Again | Step::Done => None,
        }
    }

    /// Hands the bytes after the current frame out raw; see [`LineFramer::set_raw_mode`].
    pub fn set_raw_mode(&mut self) {
        self.framing.set_raw_mode();
    }

    /// Frames the bytes after the current frame as lines; see [`LineFramer::set_line_mode`].
    pub fn set_line_mode(&mut self) {
        self.framing.set_line_mode();
    }

    /// Frames lines again, starting with the last `extra` bytes of the raw frame just handed
    /// out, which the consumer did not use (Twisted's `setLineMode(extra)`, where `extra` is
    /// the unused tail of the raw data). `extra` is capped at that frame's length; after any
    /// other frame this is [`set_line_mode`](LineFrames::set_line_mode).
    pub fn set_line_mode_with_extra(&mut self, extra: usize) {
        match self.last_raw.take() {
            Some(RawFrom::Chunk(len)) => self.input.pos -= extra.min(len),
            Some(RawFrom::Backlog(len)) => self.input.backlog.unconsume(extra.min(len)),
            None => {}
        }
        self.framing.set_line_mode();
    }

    fn slice(&self, span: Span) -> &[u8] {
        match span {
            Span::Chunk(range) => &self.input.chunk[range],
            Span::Backlog(range) => &self.input.backlog.raw()[range],
        }
    }

    fn line_step(&mut self) -> Step {
        if self.input.backlog.is_empty() {
            self.line_from_chunk()
        } else {
            self.line_from_backlog()
        }
    }

    /// Nothing buffered: a line wholly inside the chunk is lent from it.
    fn line_from_chunk(&mut self) -> Step {
        let framing = &mut *self.framing;
        let rest = self.input.rest();
        if rest.is_empty() {
            return Step::Done;
        }
        let window = framing.window();
        let head = &rest[..rest.len().min(window)];
        let from = self.input.pos;
        if let Some(end) = framing.search(head) {
            self.input.pos += end + framing.needle_len();
            return framing.complete(&head[..end], from, Span::Chunk);
        }
        if head.len() >= window {
            let cut = framing.max_line_length + 1;
            self.input.pos += cut;
            framing.start_discarding();
            return Step::TooLong(Span::Chunk(from..from + cut));
        }
        self.input.backlog.append(rest);
        self.input.pos = self.input.chunk.len();
        framing.scanned = rest.len().saturating_sub(framing.needle_len() - 1);
        Step::Done
    }

    /// A partial line is buffered: finish it from the buffer alone, across the boundary, or
    /// with the chunk's bytes up to the delimiter appended.
    fn line_from_backlog(&mut self) -> Step {
        let framing = &mut *self.framing;
        let rest = self.input.rest();
        let backlog = &mut *self.input.backlog;
        let (window, needle_len) = (framing.window(), framing.needle_len());
        let pending = backlog.pending();
        let limit = pending.len().min(window);
        let scanned = framing.scanned.min(limit);
        // Fewer than a delimiter's bytes past `scanned`: searched already when they came.
        if limit - scanned >= needle_len {
            if let Some(i) = framing.search(&pending[scanned..limit]) {
                let end = scanned + i;
                return framing.complete_in_backlog(backlog, end, end + needle_len);
            }
        }
        if pending.len() >= window {
            return framing.too_long_in_backlog(backlog);
        }
        framing.scanned = limit.saturating_sub(needle_len - 1).max(scanned);
        if rest.is_empty() {
            return Step::Done;
        }
        let head = &rest[..rest.len().min(window - pending.len())];
        let tail_from = framing.scanned;
        if let Some(s) = framing.straddle(&pending[tail_from..], head) {
            let end = tail_from + s;
            self.input.pos += needle_len - (pending.len() - end);
            let all = pending.len();
            return framing.complete_in_backlog(backlog, end, all);
        }
        if let Some(end) = framing.search(head) {
            backlog.append(&head[..end]);
            self.input.pos += end + needle_len;
            let all = backlog.len();
            return framing.complete_in_backlog(backlog, all, all);
        }
        backlog.append(head);
        self.input.pos += head.len();
        if backlog.len() >= window {
            return framing.too_long_in_backlog(backlog);
        }
        framing.scanned = backlog.len().saturating_sub(needle_len - 1);
        Step::Done
    }

    /// Skips the rest of a too-long line, keeping only bytes that may start its delimiter.
    fn discard_step(&mut self) -> Step {
        let framing = &mut *self.framing;
        let rest = self.input.rest();
        let backlog = &mut *self.input.backlog;
        if !backlog.is_empty() {
            if let Some(i) = framing.search(backlog.pending()) {
                backlog.consume(i + framing.needle_len());
                framing.mode = Mode::Line;
                framing.scanned = 0;
                return Step::Again;
            }
            backlog.consume(backlog.len() - framing.delimiter_start_in(backlog.pending()));
        }
        if rest.is_empty() {
            return Step::Done;
        }
        let found = match framing.straddle(backlog.pending(), rest) {
            Some(s) => Some(framing.needle_len() - (backlog.len() - s)),
            None => framing.search(rest).map(|i| i + framing.needle_len()),
        };
        if let Some(through) = found {
            backlog.consume(backlog.len());
            self.input.pos += through;
            framing.mode = Mode::Line;
            return Step::Again;
        }
        backlog.append(&rest[rest.len().saturating_sub(framing.needle_len() - 1)..]);
        backlog.consume(backlog.len() - framing.delimiter_start_in(backlog.pending()));
        self.input.pos = self.input.chunk.len();
        Step::Done
    }

    /// Hands out whatever is buffered, then the rest of the chunk.
    fn raw_step(&mut self) -> Step {
        let backlog = &mut *self.input.backlog;
        if !backlog.is_empty() {
            let (from, len) = (backlog.start(), backlog.len());
            backlog.consume(len);
            self.last_raw = Some(RawFrom::Backlog(len));
            return Step::Raw(Span::Backlog(from..from + len));
        }
        let (from, to) = (self.input.pos, self.input.chunk.len());
        if from == to {
            return Step::Done;
        }
        self.input.pos = to;
        self.last_raw = Some(RawFrom::Chunk(to - from));
        Step::Raw(Span::Chunk(from..to))
    }
}

impl Framing {
    fn needle_len(&self) -> usize {
        self.delimiter.needle().len()
    }

    fn strips_cr(&self) -> bool {
        self.delimiter == Delimiter::Newline
    }

    /// How many bytes of a line must be seen to find a delimiter ending a line of the
    /// maximum length. A line with no delimiter inside its first `window` bytes is too long,
    /// and a delimiter inside it ends a line of at most `max + 1` bytes (`Newline` mode, no
    /// `\r`), so the verdict never depends on how reads split the stream.
    fn window(&self) -> usize {
        self.max_line_length
            .saturating_add(self.needle_len())
            .saturating_add(usize::from(self.strips_cr()))
    }

    fn set_raw_mode(&mut self) {
        self.mode = Mode::Raw;
        self.scanned = 0;
    }

    fn set_line_mode(&mut self) {
        if self.mode == Mode::Raw {
            self.mode = Mode::Line;
            self.scanned = 0;
        }
    }

    fn start_discarding(&mut self) {
        self.mode = Mode::Discarding;
        self.scanned = 0;
    }

    /// The length of the longest end of `bytes` that may begin a delimiter: what a discarding
    /// framer must keep.
    fn delimiter_start_in(&self, bytes: &[u8]) -> usize {
        let needle = self.delimiter.needle();
        (1..needle.len())
            .rev()
            .find(|&k| bytes.ends_with(&needle[..k]))
            .unwrap_or(0)
    }

    /// The first delimiter wholly inside `hay`.
    fn search(&mut self, hay: &[u8]) -> Option<usize> {
        let needle = self.delimiter.needle();
        let found = find(hay, needle);
        self.note_scanned(found.map_or(hay.len(), |i| i + needle.len()));
        found
    }

    /// Where in `tail` (shorter than the delimiter) a delimiter starts that `head` completes.
    fn straddle(&mut self, tail: &[u8], head: &[u8]) -> Option<usize> {
        self.note_scanned(tail.len());
        let needle = self.delimiter.needle();
        (0..tail.len()).find(|&s| {
            let (start, end) = needle.split_at(tail.len() - s);
            start == &tail[s..] && head.starts_with(end)
        })
    }

    #[cfg_attr(not(test), allow(unused_variables, reason = "counted in tests only"))]
    fn note_scanned(&mut self, n: usize) {
        #[cfg(test)]
        {
            self.scanned_total += n;
        }
    }

    /// The line whose bytes (before the delimiter) are `raw`, starting at `from` in the
    /// storage `span` names: a line, or the error if it is too long.
    fn complete(&mut self, raw: &[u8], from: usize, span: fn(Range<usize>) -> Span) -> Step {
        let len = match raw.last() {
            Some(b'\r') if self.strips_cr() => raw.len() - 1,
            _ => raw.len(),
        };
        self.scanned = 0;
        if len > self.max_line_length {
            Step::TooLong(span(from..from + self.max_line_length + 1))
        } else {
            Step::Line(span(from..from + len))
        }
    }

    /// The line is the backlog's first `end` bytes; `consumed` bytes (line and the part of the
    /// delimiter in the backlog) are used up.
    fn complete_in_backlog(&mut self, backlog: &mut Backlog, end: usize, consumed: usize) -> Step {
        let from = backlog.start();
        let step = self.complete(&backlog.pending()[..end], from, Span::Backlog);
        backlog.consume(consumed);
        step
    }

    fn too_long_in_backlog(&mut self, backlog: &mut Backlog) -> Step {
        let (from, cut) = (backlog.start(), self.max_line_length + 1);
        backlog.consume(cut);
        self.start_discarding();
        Step::TooLong(Span::Backlog(from..from + cut))
    }
}

/// Where `needle` (not empty) first lies wholly inside `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        match hay.get(at + 1..at + needle.len()) {
            Some(tail) if tail == rest => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests;
