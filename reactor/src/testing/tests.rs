//! The harness itself: feeding, writing back, closing, flow control, several connections.

use super::*;
use crate::Context;

/// Echoes, records what it saw, and follows flow control like a good server.
#[derive(Default)]
struct Recorder {
    received: Vec<u8>,
    events: Vec<String>,
}

impl Protocol for Recorder {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.received.extend_from_slice(data);
        cx.write(data);
    }
    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.events.push("eof".into());
        cx.write(b"bye");
        cx.lose_connection();
    }
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.events.push("pause".into());
        cx.pause_reading();
    }
    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.events.push("resume".into());
        cx.resume_reading();
    }
    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.events
            .push(format!("lost clean={}", reason.is_clean()));
    }
}

#[test]
fn bytes_fed_reach_the_protocol_and_its_writes_reach_the_peer() {
    let mut h = Harness::new(Recorder::default());
    h.feed(b"hello ");
    h.feed(b"world");
    assert_eq!(h.take_written(), b"hello world");
    assert_eq!(h.protocol().received, b"hello world");
    assert!(!h.is_closed());
}

#[test]
fn eof_then_close_is_seen_with_the_protocol_kept_for_inspection() {
    let mut h = Harness::new(Recorder::default());
    h.feed(b"x");
    h.feed_eof();
    assert_eq!(h.take_written(), b"xbye");
    assert!(h.is_closed());
    assert!(h.close_reason().unwrap().is_clean());
    assert_eq!(h.protocol().events, ["eof", "lost clean=true"]);
}

#[test]
fn a_reset_closes_with_reset() {
    let mut h = Harness::new(Recorder::default());
    h.reset();
    assert!(matches!(
        *h.close_reason().unwrap(),
        DisconnectReason::Reset(_)
    ));
}

/// Paused reading does not hide a reset, as a socket's error event does not wait for a
/// read either.
#[test]
fn a_reset_while_reading_is_paused_closes_with_reset() {
    struct Paused;
    impl Protocol for Paused {
        fn connection_made(&mut self, cx: &mut Context<'_>) {
            cx.pause_reading();
        }
        fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    }
    let mut h = Harness::new(Paused);
    h.reset();
    assert!(matches!(
        *h.close_reason().unwrap(),
        DisconnectReason::Reset(_)
    ));
}

#[test]
fn a_slow_peer_pauses_writing_and_reading_and_nothing_is_lost() {
    let mut h = Harness::new(Recorder::default());
    h.connection().set_write_room(Some(10));
    let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    h.feed(&data);
    assert_eq!(h.protocol().events, ["pause"]);
    assert!(h.protocol().received.len() < data.len(), "reading paused");
    h.connection().set_write_room(None);
    h.test_reactor().run_pending();
    // Each turn reads up to its budget, which queues past the high watermark: pause,
    // flush to the now-willing peer, resume.
    let events = &h.protocol().events;
    assert!(
        events.chunks(2).all(|pair| pair == ["pause", "resume"]),
        "{events:?}"
    );
    assert_eq!(h.take_written(), data, "every byte echoed, in order");
}

/// Records whether its context says it is closing, before and after asking to close.
#[derive(Default)]
struct Closer(Vec<bool>);

impl Protocol for Closer {
    fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
        self.0.push(cx.is_closing());
        cx.lose_connection();
        self.0.push(cx.is_closing());
    }
}

#[test]
fn is_closing_follows_lose_connection() {
    let mut h = Harness::new(Closer::default());
    h.feed(b"x");
    assert_eq!(h.protocol().0, [false, true]);
    assert!(h.is_closed());
}

#[test]
fn several_connections_share_one_reactor() {
    let mut test = TestReactor::new();
    let a = test.connect(Recorder::default());
    let b = test.connect(Recorder::default());
    assert_ne!(a.id(), b.id());
    test.feed(&a, b"to a");
    assert!(test.reactor().write_to(b.id(), b"from a"));
    test.run_pending();
    assert_eq!(a.take_written(), b"to a");
    assert_eq!(b.take_written(), b"from a");
    test.reactor().abort_connection(a.id());
    test.run_pending();
    assert!(a.is_closed() && !b.is_closed());
    assert_eq!(
        test.protocol::<Recorder>(&a).unwrap().events,
        ["lost clean=false"]
    );
}

/// Pauses reading when the peer's stream ends, noting what `is_reading_paused` says then.
#[derive(Default)]
struct PausesAtEof(Vec<bool>);

impl Protocol for PausesAtEof {
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    fn eof_received(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
        self.0.push(cx.is_reading_paused());
    }
}

#[test]
fn reading_paused_after_the_peers_eof_reads_as_paused() {
    let mut h = Harness::new(PausesAtEof::default());
    h.feed_eof();
    assert_eq!(h.protocol().0, [true]);
}
