//! The adapter driven through the in-memory harness, as the reactor drives it over sockets.

use std::time::Duration;

use torsion_reactor::testing::Harness;

use super::*;

/// Records what it hears, and reacts to a few commands:
/// `BODY n` (n raw bytes follow), `RAW` (raw for good), `pause` (resume after 1 s), `quit`,
/// `abort` (on the transport itself).
/// Every line is answered with `got LINE`.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    body_left: usize,
    /// Answer over-long lines with an ERR line and go on, instead of the default close.
    tolerate_long_lines: bool,
}

impl LineReceiver for Recorder {
    fn connection_made(&mut self, cx: &mut LineContext<'_, '_>) {
        cx.send_line(b"hello");
    }

    fn line_received(&mut self, cx: &mut LineContext<'_, '_>, line: &[u8]) {
        let text = String::from_utf8_lossy(line).into_owned();
        cx.write(b"got ");
        cx.send_line(line);
        if let Some(n) = text.strip_prefix("BODY ") {
            self.body_left = n.parse().unwrap();
            cx.set_raw_mode();
        } else if text == "RAW" {
            self.body_left = usize::MAX;
            cx.set_raw_mode();
        } else if text == "pause" {
            cx.pause_producing();
            assert!(cx.is_paused());
            cx.call_later(Duration::from_secs(1), |this: &mut Recorder, cx| {
                this.events.push("resumed".into());
                cx.resume_producing();
            });
        } else if text == "quit" {
            cx.send_line(b"bye");
            cx.lose_connection();
        } else if text == "abort" {
            // Straight on the transport, bypassing the adapter's context.
            cx.transport().abort_connection();
        }
        self.events.push(format!("line {text}"));
    }

    fn raw_data_received(&mut self, cx: &mut LineContext<'_, '_>, data: &[u8]) {
        let used = data.len().min(self.body_left);
        let body = String::from_utf8_lossy(&data[..used]);
        match self.events.last_mut() {
            Some(last) if last.starts_with("raw ") => last.push_str(&body),
            _ => self.events.push(format!("raw {body}")),
        }
        self.body_left -= used;
        if self.body_left == 0 {
            cx.set_line_mode_with_extra(data.len() - used);
        }
    }

    fn line_length_exceeded(&mut self, cx: &mut LineContext<'_, '_>, buffered: &[u8]) {
        self.events.push(format!("too long {}", buffered.len()));
        if self.tolerate_long_lines {
            cx.send_line(b"ERR line too long");
        } else {
            cx.lose_connection();
        }
    }

    fn eof_received(&mut self, cx: &mut LineContext<'_, '_>) {
        self.events.push("eof".into());
        cx.lose_connection();
    }

    fn connection_lost(&mut self, _cx: &mut LineContext<'_, '_>, reason: &DisconnectReason) {
        self.events
            .push(format!("lost clean={}", reason.is_clean()));
    }
}

fn events(h: &Harness<LineProtocol<Recorder>>) -> Vec<String> {
    h.protocol().handler().events.clone()
}

/// Feeds `input` in every chunk size to a fresh protocol from `make`, checks that each run
/// gives the same events, output and closed state as feeding it whole, and returns that
/// harness with its output as text.
fn same_in_every_chunk_size(
    make: impl Fn() -> LineProtocol<Recorder>,
    input: &[u8],
) -> (Harness<LineProtocol<Recorder>>, String) {
    let mut whole = Harness::new(make());
    whole.feed(input);
    let written = whole.take_text();
    let expected = (events(&whole), written.clone(), whole.is_closed());
    for size in 1..input.len() {
        let mut h = Harness::new(make());
        for chunk in input.chunks(size) {
            h.feed(chunk);
        }
        let got = (events(&h), h.take_text(), h.is_closed());
        assert_eq!(got, expected, "chunk size {size}");
    }
    (whole, written)
}

#[test]
fn lines_are_delivered_and_answered_in_every_chunk_size() {
    let make = || LineProtocol::new(Recorder::default());
    let (h, written) = same_in_every_chunk_size(make, b"one\r\n\r\ntwo\r\nthr");
    assert_eq!(events(&h), ["line one", "line ", "line two"]);
    assert_eq!(written, "hello\r\ngot one\r\ngot \r\ngot two\r\n");
    assert_eq!(h.protocol().framer().buffered(), b"thr");
}

#[test]
fn newline_mode_accepts_bare_lf_and_still_sends_crlf() {
    let make = || LineProtocol::new(Recorder::default()).with_delimiter(Delimiter::Newline);
    let (h, written) = same_in_every_chunk_size(make, b"a\nb\r\n");
    assert_eq!(events(&h), ["line a", "line b"]);
    assert_eq!(written, "hello\r\ngot a\r\ngot b\r\n");
}

#[test]
fn a_custom_delimiter_is_also_the_line_ending_unless_one_is_given() {
    let custom = || Delimiter::Custom((*b"\0").into());
    let mut h = Harness::new(LineProtocol::new(Recorder::default()).with_delimiter(custom()));
    h.feed(b"x\0");
    assert_eq!(h.take_text(), "hello\0got x\0");
    let mut h = Harness::new(
        LineProtocol::new(Recorder::default())
            .with_line_ending(b"\n")
            .with_delimiter(custom()),
    );
    h.feed(b"x\0");
    assert_eq!(h.take_text(), "hello\ngot x\n");
}

#[test]
fn raw_mode_switch_inside_a_read_and_back() {
    let make = || LineProtocol::new(Recorder::default());
    let (h, _) = same_in_every_chunk_size(make, b"BODY 5\r\nhe\r\nonext\r\nRAW\r\nrest\r\nof it");
    assert_eq!(
        events(&h),
        [
            "line BODY 5",
            "raw he\r\no",
            "line next",
            "line RAW",
            "raw rest\r\nof it"
        ]
    );
}

#[test]
fn an_over_long_line_closes_the_connection_by_default() {
    struct Plain(Vec<String>);
    impl LineReceiver for Plain {
        fn line_received(&mut self, _cx: &mut LineContext<'_, '_>, line: &[u8]) {
            self.0.push(String::from_utf8_lossy(line).into_owned());
        }
    }
    let mut h = Harness::new(LineProtocol::new(Plain(Vec::new())).with_max_line_length(4));
    h.feed(b"1234\r\n12345\r\nnever\r\n");
    assert!(h.is_closed());
    assert!(h.close_reason().unwrap().is_clean());
    assert_eq!(h.protocol().handler().0, ["1234"]);
}

#[test]
fn an_over_long_line_split_across_reads_is_caught_before_it_ends() {
    let make = || LineProtocol::new(Recorder::default()).with_max_line_length(8);
    let (h, written) = same_in_every_chunk_size(make, b"ok\r\n0123456789");
    assert_eq!(events(&h), ["line ok", "too long 9", "lost clean=true"]);
    assert!(h.is_closed());
    assert_eq!(written, "hello\r\ngot ok\r\n");
}

#[test]
fn a_handler_may_answer_an_over_long_line_and_go_on() {
    let make = || {
        LineProtocol::new(Recorder {
            tolerate_long_lines: true,
            ..Recorder::default()
        })
        .with_max_line_length(4)
    };
    let (h, written) = same_in_every_chunk_size(make, b"12345678\r\nok\r\n");
    assert_eq!(events(&h), ["too long 5", "line ok"]);
    assert_eq!(written, "hello\r\nERR line too long\r\ngot ok\r\n");
    assert!(!h.is_closed());
}

#[test]
fn lose_connection_stops_delivery_of_lines_already_received() {
    let mut h = Harness::new(LineProtocol::new(Recorder::default()));
    h.feed(b"a\r\nquit\r\nafter\r\n");
    assert_eq!(events(&h), ["line a", "line quit", "lost clean=true"]);
    assert_eq!(h.take_text(), "hello\r\ngot a\r\ngot quit\r\nbye\r\n");
    assert!(h.is_closed());
}

#[test]
fn a_close_straight_on_the_transport_also_stops_delivery() {
    let mut h = Harness::new(LineProtocol::new(Recorder::default()));
    h.feed(b"a\r\nabort\r\nafter\r\n");
    assert_eq!(events(&h), ["line a", "line abort", "lost clean=false"]);
    assert!(h.is_closed());
}

#[test]
fn pause_producing_holds_back_buffered_lines_until_resumed() {
    let mut h = Harness::new(LineProtocol::new(Recorder::default()));
    h.take_written();
    h.feed(b"pause\r\na\r\nb");
    assert_eq!(events(&h), ["line pause"]);
    // Paused: bytes fed now are not even read.
    h.feed(b"\r\nc\r\n");
    assert_eq!(events(&h), ["line pause"]);
    h.advance(Duration::from_millis(999));
    assert_eq!(events(&h), ["line pause"]);
    h.advance(Duration::from_millis(1));
    assert_eq!(
        events(&h),
        ["line pause", "resumed", "line a", "line b", "line c"]
    );
    assert_eq!(h.take_text(), "got pause\r\ngot a\r\ngot b\r\ngot c\r\n");
}

#[test]
fn a_pause_inside_a_read_leaves_the_rest_of_it_in_order_even_a_raw_switch() {
    let make = || LineProtocol::new(Recorder::default());
    let mut h = Harness::new(make());
    h.feed(b"pause\r\nBODY 3\r\nabcpause\r\nRAW\r\nxyz");
    h.advance(Duration::from_secs(1));
    h.advance(Duration::from_secs(1));
    assert_eq!(
        events(&h),
        [
            "line pause",
            "resumed",
            "line BODY 3",
            "raw abc",
            "line pause",
            "resumed",
            "line RAW",
            "raw xyz"
        ]
    );
}

#[test]
fn eof_waits_behind_lines_held_back_by_a_pause() {
    let mut h = Harness::new(LineProtocol::new(Recorder::default()));
    h.feed(b"pause\r\na\r\npartial");
    h.feed_eof();
    assert_eq!(events(&h), ["line pause"]);
    assert!(!h.is_closed());
    h.advance(Duration::from_secs(1));
    assert_eq!(
        events(&h),
        ["line pause", "resumed", "line a", "eof", "lost clean=true"]
    );
    assert!(h.is_closed());
}

#[test]
fn the_default_eof_closes_and_connection_lost_follows() {
    struct Quiet;
    impl LineReceiver for Quiet {
        fn line_received(&mut self, _cx: &mut LineContext<'_, '_>, _line: &[u8]) {}
    }
    let mut h = Harness::new(LineProtocol::new(Quiet));
    h.feed(b"x\r\n");
    h.feed_eof();
    assert!(h.is_closed());
    assert!(h.close_reason().unwrap().is_clean());
}

#[test]
fn a_reset_reaches_connection_lost() {
    let mut h = Harness::new(LineProtocol::new(Recorder::default()));
    h.reset();
    assert_eq!(events(&h), ["lost clean=false"]);
}

#[test]
fn a_handler_can_follow_write_backpressure_with_pause_producing() {
    /// Answers every line with 20 KiB, and stops taking lines while its answers back up.
    #[derive(Default)]
    struct Big(usize);
    impl LineReceiver for Big {
        fn line_received(&mut self, cx: &mut LineContext<'_, '_>, _line: &[u8]) {
            self.0 += 1;
            cx.send_line(&[b'x'; 20 * 1024]);
        }
        fn pause_writing(&mut self, cx: &mut LineContext<'_, '_>) {
            cx.pause_producing();
        }
        fn resume_writing(&mut self, cx: &mut LineContext<'_, '_>) {
            cx.resume_producing();
        }
    }
    let mut h = Harness::new(LineProtocol::new(Big::default()));
    h.connection().set_write_room(Some(0));
    for _ in 0..4 {
        h.feed(b"more\r\n");
    }
    // 80 KiB queued is past the 64 KiB high watermark: the handler paused.
    assert_eq!(h.protocol().handler().0, 4);
    h.feed(b"more\r\nmore\r\n");
    assert_eq!(h.protocol().handler().0, 4);
    h.connection().set_write_room(None);
    h.test_reactor().run_pending();
    assert_eq!(h.protocol().handler().0, 6);
    assert_eq!(h.take_written().len(), 6 * (20 * 1024 + 2));
}
