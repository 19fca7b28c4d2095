//! Every input is fed in every chunk size from 1 byte up, and also with a consumer that stops
//! after one or two frames per feed (as a paused protocol does), and must give the same frames.

use super::*;

/// A frame, owned, with consecutive raw runs merged (how reads split raw data is arbitrary).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Line(Vec<u8>),
    Raw(Vec<u8>),
    TooLong(Vec<u8>),
}

fn line(s: &str) -> Ev {
    Ev::Line(s.as_bytes().to_vec())
}

fn raw(s: &str) -> Ev {
    Ev::Raw(s.as_bytes().to_vec())
}

fn too_long(s: &str) -> Ev {
    Ev::TooLong(s.as_bytes().to_vec())
}

/// A consumer in the style of an HTTP/1.0 peer: after a line `BODY n` come `n` raw bytes, then
/// lines again (given back with `set_line_mode_with_extra`); after `RAW` everything is raw.
/// With `raw_after_too_long`, a too-long line switches to raw mode for good.
#[derive(Default)]
struct Consumer {
    events: Vec<Ev>,
    body_left: usize,
    raw_after_too_long: bool,
}

impl Consumer {
    /// Takes at most `budget` frames from `frames`; returns how many it took.
    fn take(&mut self, frames: &mut LineFrames<'_, '_>, budget: usize) -> usize {
        let mut taken = 0;
        while taken < budget {
            let Some(frame) = frames.next() else { break };
            taken += 1;
            match frame {
                Ok(LineFrame::Line(l)) => {
                    self.events.push(Ev::Line(l.to_vec()));
                    if let Some(n) = l.strip_prefix(b"BODY ") {
                        self.body_left = std::str::from_utf8(n)
                            .ok()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                    } else if l == b"RAW" {
                        self.body_left = usize::MAX;
                    }
                    if self.body_left > 0 {
                        frames.set_raw_mode();
                    }
                }
                Ok(LineFrame::Raw(data)) => {
                    assert!(!data.is_empty());
                    let used = data.len().min(self.body_left);
                    let extra = data.len() - used;
                    self.push_raw(&data[..used]);
                    self.body_left -= used;
                    if self.body_left == 0 {
                        frames.set_line_mode_with_extra(extra);
                    }
                }
                Err(LineError::TooLong { buffered, .. }) => {
                    self.events.push(Ev::TooLong(buffered.to_vec()));
                    if self.raw_after_too_long {
                        self.body_left = usize::MAX;
                        frames.set_raw_mode();
                    }
                }
            }
        }
        taken
    }

    fn push_raw(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match self.events.last_mut() {
            Some(Ev::Raw(run)) => run.extend_from_slice(data),
            _ => self.events.push(Ev::Raw(data.to_vec())),
        }
    }
}

/// Feeds `input` in chunks of `size`, taking at most `budget` frames per feed, then drains
/// what is left with empty feeds. Returns the events and what stays buffered.
fn run(
    mut framer: LineFramer,
    input: &[u8],
    size: usize,
    budget: usize,
    raw_after_too_long: bool,
) -> (Vec<Ev>, Vec<u8>) {
    let mut consumer = Consumer {
        raw_after_too_long,
        ..Consumer::default()
    };
    for chunk in input.chunks(size) {
        consumer.take(&mut framer.feed(chunk), budget);
    }
    while consumer.take(&mut framer.feed(&[]), budget) > 0 {}
    (consumer.events, framer.buffered().to_vec())
}

/// Asserts that every chunk size and every budget give `expected` and leave `left` buffered.
fn check_with(make: impl Fn() -> LineFramer, input: &[u8], expected: &[Ev], left: &str) {
    check_all(make, input, expected, left, false);
}

fn check_all(
    make: impl Fn() -> LineFramer,
    input: &[u8],
    expected: &[Ev],
    left: &str,
    raw_after_too_long: bool,
) {
    for size in 1..=input.len().max(1) {
        for budget in [1, 2, usize::MAX] {
            let (events, buffered) = run(make(), input, size, budget, raw_after_too_long);
            assert_eq!(events, expected, "chunk size {size}, budget {budget}");
            assert_eq!(
                buffered,
                left.as_bytes(),
                "left buffered, chunk size {size}, budget {budget}"
            );
        }
    }
}

fn check(input: &str, expected: &[Ev], left: &str) {
    check_with(LineFramer::new, input.as_bytes(), expected, left);
}

#[test]
fn lines_in_every_chunk_size() {
    check(
        "hello\r\nworld\r\npartial",
        &[line("hello"), line("world")],
        "partial",
    );
}

#[test]
fn empty_lines_and_empty_input() {
    check(
        "\r\n\r\nx\r\n\r\n",
        &[line(""), line(""), line("x"), line("")],
        "",
    );
    check("", &[], "");
}

#[test]
fn delimiter_split_across_reads() {
    let mut framer = LineFramer::new();
    assert_eq!(framer.feed(b"abc\r").next(), None);
    let mut frames = framer.feed(b"\ndef\r");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"abc"))));
    assert_eq!(frames.next(), None);
    drop(frames);
    assert_eq!(framer.buffered(), b"def\r");
    assert_eq!(framer.feed(b"\n").next(), Some(Ok(LineFrame::Line(b"def"))));
}

#[test]
fn many_lines_in_one_read_are_slices_of_that_read() {
    let chunk = b"one\r\ntwo\r\nthree\r\nfour";
    let mut framer = LineFramer::new();
    let mut frames = framer.feed(chunk);
    let range = chunk.as_ptr_range();
    let mut lines = Vec::new();
    while let Some(Ok(LineFrame::Line(l))) = frames.next() {
        assert!(range.contains(&l.as_ptr()), "line {l:?} was copied");
        lines.push(l.to_vec());
    }
    drop(frames);
    assert_eq!(lines, [&b"one"[..], b"two", b"three"]);
    // Only the trailing partial line was copied.
    assert_eq!(framer.backlog.copied, 4);
}

#[test]
fn strict_crlf_keeps_bare_lf_and_cr_in_the_line() {
    check(
        "a\nb\r\n\r\r\nc\rd\r\n",
        &[line("a\nb"), line("\r"), line("c\rd")],
        "",
    );
}

#[test]
fn newline_mode_accepts_lf_and_crlf() {
    let make = || LineFramer::new().with_delimiter(Delimiter::Newline);
    check_with(
        make,
        b"a\nb\r\nc\r\r\n\n\r\nx\ry\nend\r",
        &[
            line("a"),
            line("b"),
            line("c\r"),
            line(""),
            line(""),
            line("x\ry"),
        ],
        "end\r",
    );
}

#[test]
fn custom_delimiters_with_self_overlap() {
    fn make(d: &'static [u8]) -> impl Fn() -> LineFramer {
        move || LineFramer::new().with_delimiter(Delimiter::Custom(d.into()))
    }
    check_with(make(b"--"), b"x---y--", &[line("x"), line("-y")], "");
    check_with(
        make(b"aab"),
        b"xaaab-aaaab--aab",
        &[line("xa"), line("-aa"), line("--")],
        "",
    );
    check_with(make(b"\0"), b"a\0\0b", &[line("a"), line("")], "b");
}

/// Strict in what it sends: `\r\n` for both built-in delimiters (a `Newline` framer accepts a
/// bare `\n` but never sends one), a custom delimiter's own bytes.
#[test]
fn senders_end_lines_with_crlf_or_the_custom_delimiter() {
    assert_eq!(Delimiter::CrLf.line_ending(), b"\r\n");
    assert_eq!(Delimiter::Newline.line_ending(), b"\r\n");
    let custom = Delimiter::Custom((*b"<END>").into());
    assert_eq!(custom.line_ending(), b"<END>");
}

#[test]
#[should_panic(expected = "cannot be empty")]
fn an_empty_custom_delimiter_is_refused() {
    let _ = LineFramer::new().with_delimiter(Delimiter::Custom(Box::new([])));
}

#[test]
fn raw_mode_switch_inside_a_read_and_back() {
    check(
        "BODY 5\r\nhelloline2\r\nRAW\r\nrest of\r\nstream",
        &[
            line("BODY 5"),
            raw("hello"),
            line("line2"),
            line("RAW"),
            raw("rest of\r\nstream"),
        ],
        "",
    );
}

#[test]
fn raw_data_may_hold_delimiters_and_lines_resume_exactly_after_it() {
    check(
        "BODY 4\r\n\r\n\r\nX\r\nBODY 1\r\n\r\r\nBODY 2\r\nab",
        &[
            line("BODY 4"),
            raw("\r\n\r\n"),
            line("X"),
            line("BODY 1"),
            raw("\r"),
            line(""),
            line("BODY 2"),
            raw("ab"),
        ],
        "",
    );
}

#[test]
fn switching_to_raw_hands_out_a_buffered_partial_line_first() {
    let mut framer = LineFramer::new();
    drop(framer.feed(b"par"));
    framer.set_raw_mode();
    assert!(framer.is_raw_mode());
    let mut frames = framer.feed(b"tial");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Raw(b"par"))));
    assert_eq!(frames.next(), Some(Ok(LineFrame::Raw(b"tial"))));
    assert_eq!(frames.next(), None);
    frames.set_line_mode();
    drop(frames);
    assert!(!framer.is_raw_mode());
}

/// A protocol may switch back to lines outside any feed (from a timer, say): what follows the
/// raw data already handed out, including bytes a dropped cursor left unread, is lines again.
#[test]
fn switching_back_to_lines_between_feeds_frames_what_follows() {
    let mut framer = LineFramer::new();
    framer.set_raw_mode();
    let mut frames = framer.feed(b"raw\r\nbytes");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Raw(b"raw\r\nbytes"))));
    drop(frames);
    // Left unread by a cursor dropped at once (a paused protocol).
    drop(framer.feed(b"one\r\ntw"));
    framer.set_line_mode();
    assert!(!framer.is_raw_mode());
    let mut frames = framer.feed(b"o\r\nthree");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"one"))));
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"two"))));
    assert_eq!(frames.next(), None);
    drop(frames);
    assert_eq!(framer.buffered(), b"three");
}

/// `set_line_mode_with_extra` gives back at most the raw frame just handed out: bytes before
/// it (here a line) are never framed twice, whether the frame was lent from the chunk or from
/// the framer's own buffer.
#[test]
fn extra_past_the_raw_frame_gives_back_only_that_frame() {
    // Lent from the chunk.
    let mut framer = LineFramer::new();
    let mut frames = framer.feed(b"x\r\nraw");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"x"))));
    frames.set_raw_mode();
    assert_eq!(frames.next(), Some(Ok(LineFrame::Raw(b"raw"))));
    frames.set_line_mode_with_extra(100);
    assert_eq!(frames.next(), None);
    drop(frames);
    assert_eq!(framer.buffered(), b"raw");
    assert_eq!(
        framer.feed(b"\r\n").next(),
        Some(Ok(LineFrame::Line(b"raw")))
    );

    // From the framer's buffer: everything was left unread by a cursor dropped at once.
    let mut framer = LineFramer::new();
    drop(framer.feed(b"x\r\npar"));
    let mut frames = framer.feed(b"tial\r\n");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"x"))));
    frames.set_raw_mode();
    assert_eq!(frames.next(), Some(Ok(LineFrame::Raw(b"par"))));
    frames.set_line_mode_with_extra(100);
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"partial"))));
    assert_eq!(frames.next(), None);
}

/// Part of a raw frame given back from the framer's buffer is its tail, framed with what follows.
#[test]
fn extra_from_a_buffered_raw_frame_is_its_tail() {
    let mut framer = LineFramer::new();
    drop(framer.feed(b"par"));
    framer.set_raw_mode();
    let mut frames = framer.feed(b"tial\r\n");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Raw(b"par"))));
    frames.set_line_mode_with_extra(2);
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"artial"))));
    assert_eq!(frames.next(), None);
}

#[test]
fn lines_exactly_at_the_limit_pass_and_one_more_byte_fails() {
    let make = || LineFramer::new().with_max_line_length(8);
    check_with(
        make,
        b"12345678\r\n123456789\r\nok\r\n12345678",
        &[line("12345678"), too_long("123456789"), line("ok")],
        "12345678",
    );
}

#[test]
fn an_over_long_line_is_reported_early_and_skipped_through_its_delimiter() {
    let make = || LineFramer::new().with_max_line_length(8);
    let long = "x".repeat(50);
    check_with(
        make,
        format!("{long}\r{long}\r\nok\r\n{long}").as_bytes(),
        &[too_long("xxxxxxxxx"), line("ok"), too_long("xxxxxxxxx")],
        "",
    );
}

#[test]
fn the_too_long_verdict_does_not_depend_on_a_pending_cr() {
    // Eight bytes then CR: still possibly a line of 8 until the next byte.
    let make = || LineFramer::new().with_max_line_length(8);
    check_with(make, b"12345678\r", &[], "12345678\r");
    check_with(
        make,
        b"12345678\rx\r\nok\r\n",
        &[too_long("12345678\r"), line("ok")],
        "",
    );
}

#[test]
fn newline_mode_limit_counts_the_line_without_its_cr() {
    let make = || {
        LineFramer::new()
            .with_delimiter(Delimiter::Newline)
            .with_max_line_length(4)
    };
    check_with(
        make,
        b"abcd\r\nabcd\nabcde\nabcd\r\r\nok\n",
        &[
            line("abcd"),
            line("abcd"),
            too_long("abcde"),
            too_long("abcd\r"),
            line("ok"),
        ],
        "",
    );
}

#[test]
fn custom_delimiter_limit() {
    let make = || {
        LineFramer::new()
            .with_delimiter(Delimiter::Custom((*b"END").into()))
            .with_max_line_length(4)
    };
    check_with(
        make,
        b"abcdENDabcdeENDENENDok",
        &[line("abcd"), too_long("abcde"), line("EN")],
        "ok",
    );
}

#[test]
fn switching_to_raw_after_a_too_long_line_starts_right_after_what_was_reported() {
    let make = || LineFramer::new().with_max_line_length(4);
    check_all(
        make,
        b"ok\r\n0123456789\r\nmore",
        &[line("ok"), too_long("01234"), raw("56789\r\nmore")],
        "",
        true,
    );
}

#[test]
fn a_zero_maximum_allows_only_empty_lines() {
    let make = || LineFramer::new().with_max_line_length(0);
    check_with(
        make,
        b"\r\na\r\n\r\n",
        &[line(""), too_long("a"), line("")],
        "",
    );
}

#[test]
fn take_buffered_empties_the_framer() {
    let mut framer = LineFramer::new();
    let mut frames = framer.feed(b"a\r\nb\r\nc");
    assert_eq!(frames.next(), Some(Ok(LineFrame::Line(b"a"))));
    drop(frames);
    assert_eq!(framer.take_buffered(), b"b\r\nc");
    assert_eq!(framer.buffered(), b"");
    assert_eq!(
        framer.feed(b"d\r\n").next(),
        Some(Ok(LineFrame::Line(b"d")))
    );
}

#[test]
fn the_error_says_what_was_wrong() {
    let mut framer = LineFramer::new().with_max_line_length(2);
    let mut frames = framer.feed(b"abcd\r\n");
    let error = frames.next().unwrap().unwrap_err();
    assert_eq!(error.to_string(), "peer sent a line longer than 2 bytes");
    assert_eq!(
        error,
        LineError::TooLong {
            max_length: 2,
            buffered: b"abc"
        }
    );
}

/// Twisted's quadratic buffering (twisted #6357, #2611) must not happen here: a 1 MiB line fed
/// one byte at a time is searched and copied a bounded number of times per byte.
#[test]
fn framing_a_long_line_fed_byte_by_byte_is_linear() {
    const SIZE: usize = 1 << 20;
    for delimiter in [
        Delimiter::CrLf,
        Delimiter::Newline,
        Delimiter::Custom((*b"<END>").into()),
    ] {
        let needle_len = delimiter.needle().len();
        let mut framer = LineFramer::new()
            .with_delimiter(delimiter)
            .with_max_line_length(SIZE);
        for _ in 0..SIZE {
            assert_eq!(framer.feed(b"a").next(), None);
        }
        let end = framer.delimiter().needle().to_vec();
        let mut frames = framer.feed(&end);
        assert!(matches!(frames.next(), Some(Ok(LineFrame::Line(l))) if l.len() == SIZE));
        drop(frames);
        // One search per byte, plus the delimiter-prefix re-check at each read boundary; every
        // byte is examined at least once (else the count proves nothing).
        assert!(framer.scanned_total() <= SIZE * needle_len + 2 * needle_len);
        assert!(framer.scanned_total() >= SIZE);
        assert!(framer.backlog.copied <= SIZE + needle_len);
    }
}

#[test]
fn an_endless_line_holds_bounded_memory_and_linear_work() {
    const SIZE: usize = 1 << 20;
    let mut framer = LineFramer::new();
    let window = framer.framing.window();
    let mut reported = 0;
    for chunk in vec![b'x'; SIZE].chunks(1000) {
        let mut frames = framer.feed(chunk);
        while let Some(frame) = frames.next() {
            assert!(frame.is_err());
            reported += 1;
        }
        drop(frames);
        assert!(framer.buffered().len() < window);
    }
    assert_eq!(reported, 1);
    assert!(framer.scanned_total() <= 2 * SIZE);
    assert!(framer.backlog.copied <= 2 * window);
}

#[test]
fn handing_out_many_buffered_lines_one_per_feed_is_linear() {
    const LINES: usize = 100_000;
    let input = b"ab\r\n".repeat(LINES);
    let mut framer = LineFramer::new();
    // The consumer stops after each line, as a paused protocol does: the rest of the read is
    // kept once and then handed out from the buffer without shifting it per line.
    let mut count = 0;
    let mut frames = framer.feed(&input);
    while frames.next().is_some() {
        count += 1;
        drop(frames);
        frames = framer.feed(&[]);
        if count == LINES {
            break;
        }
    }
    assert!(frames.next().is_none());
    drop(frames);
    assert_eq!(count, LINES);
    assert!(framer.backlog.copied <= input.len());
    assert!((input.len()..=2 * input.len()).contains(&framer.scanned_total()));
}

/// A deterministic pseudo-random generator (xorshift64*), so the model test needs no crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// What [`Consumer`] must see, computed the obvious way on the whole stream at once.
fn model(input: &[u8], framer: &LineFramer, raw_after_too_long: bool) -> Vec<Ev> {
    let needle = framer.delimiter().needle();
    let (max, window) = (framer.max_line_length(), framer.framing.window());
    let strips_cr = *framer.delimiter() == Delimiter::Newline;
    let find = |hay: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut consumer = Consumer::default();
    let (mut pos, mut mode) = (0, Mode::Line);
    loop {
        let rest = &input[pos..];
        match mode {
            Mode::Raw if rest.is_empty() => break,
            Mode::Raw => {
                let used = rest.len().min(consumer.body_left);
                consumer.push_raw(&rest[..used]);
                consumer.body_left -= used;
                pos += used;
                mode = Mode::Line;
            }
            Mode::Discarding => match find(rest) {
                Some(i) => (pos, mode) = (pos + i + needle.len(), Mode::Line),
                None => break,
            },
            Mode::Line => {
                let head = &rest[..rest.len().min(window)];
                let (end, next) = match find(head) {
                    Some(i) => (i, pos + i + needle.len()),
                    None if head.len() >= window => (usize::MAX, pos + max + 1),
                    None => break,
                };
                let len = match end {
                    usize::MAX => usize::MAX,
                    _ if strips_cr && end > 0 && rest[end - 1] == b'\r' => end - 1,
                    _ => end,
                };
                pos = next;
                if len > max {
                    consumer.events.push(Ev::TooLong(rest[..max + 1].to_vec()));
                    if raw_after_too_long {
                        consumer.body_left = usize::MAX;
                    } else if end == usize::MAX {
                        mode = Mode::Discarding;
                    }
                } else {
                    let l = &rest[..len];
                    consumer.events.push(Ev::Line(l.to_vec()));
                    if let Some(n) = l.strip_prefix(b"BODY ") {
                        consumer.body_left = std::str::from_utf8(n)
                            .ok()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                    } else if l == b"RAW" {
                        consumer.body_left = usize::MAX;
                    }
                }
                if consumer.body_left > 0 {
                    mode = Mode::Raw;
                }
            }
        }
    }
    consumer.events
}

/// Random streams of delimiter fragments, bodies and long runs, split at random, fed with
/// random budgets, for every kind of delimiter and several limits: the framer must agree
/// with the model above on every one.
#[test]
fn random_streams_match_a_whole_stream_model() {
    const TOKENS: &[&str] = &[
        "a",
        "xyz",
        "\r",
        "\n",
        "\r\n",
        "-",
        "--",
        "aab",
        "aa",
        "\0",
        "BODY 3\r\n",
        "BODY 0\r\n",
        "BODY 2\n",
        "0123456789",
    ];
    let delimiters = [
        Delimiter::CrLf,
        Delimiter::Newline,
        Delimiter::Custom((*b"--").into()),
        Delimiter::Custom((*b"aab").into()),
        Delimiter::Custom((*b"\0").into()),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3000 {
        let delimiter = delimiters[round % delimiters.len()].clone();
        let max = [0, 1, 3, 8, 30][rng.below(5)];
        let raw_after_too_long = rng.below(4) == 0;
        let input: Vec<u8> = (0..rng.below(40))
            .flat_map(|_| TOKENS[rng.below(TOKENS.len())].bytes())
            .collect();
        let make = || {
            LineFramer::new()
                .with_delimiter(delimiter.clone())
                .with_max_line_length(max)
        };
        let expected = model(&input, &make(), raw_after_too_long);
        let mut framer = make();
        let mut consumer = Consumer {
            raw_after_too_long,
            ..Consumer::default()
        };
        let mut at = 0;
        while at < input.len() {
            let size = 1 + rng.below(12);
            let chunk = &input[at..input.len().min(at + size)];
            at += chunk.len();
            let budget = [1, 2, usize::MAX][rng.below(3)];
            consumer.take(&mut framer.feed(chunk), budget);
        }
        while consumer.take(&mut framer.feed(&[]), 1) > 0 {}
        assert_eq!(
            consumer.events,
            expected,
            "round {round}: {delimiter:?}, max {max}, input {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}
