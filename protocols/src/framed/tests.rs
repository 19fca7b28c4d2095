//! What the netstring and prefixed adapters' tests share: a handler that records and echoes
//! what it receives, and the checks both framings pass. (The line adapter has its own, richer
//! recorder, for raw mode.)

use std::time::Duration;

use torsion_reactor::testing::Harness;

use super::{FramedContext, FramedProtocol, Framing, Handler};

/// Records what it receives and pauses for 1 s on `pause`. Each framing's receiver impl (in
/// that framing's tests) echoes every frame back in the framing, and calls
/// [`heard`](Echo::heard).
#[derive(Default)]
pub(crate) struct Echo {
    pub(crate) events: Vec<String>,
}

impl Echo {
    /// Records `frame`; on `pause`, pauses delivery for 1 s.
    pub(crate) fn heard<K: Framing>(&mut self, cx: &mut FramedContext<'_, '_, K>, frame: &[u8])
    where
        Echo: Handler<K>,
    {
        self.events
            .push(String::from_utf8_lossy(frame).into_owned());
        if frame == b"pause" {
            cx.pause_producing();
            cx.call_later(Duration::from_secs(1), |_: &mut Echo, cx| {
                cx.resume_producing()
            });
        }
    }
}

/// What the [`Echo`] in `h` recorded.
pub(crate) fn events<K: Framing>(h: &Harness<FramedProtocol<K, Echo>>) -> Vec<String>
where
    Echo: Handler<K>,
{
    h.protocol().handler().events.clone()
}

/// Feeds `input` in every chunk size to a new `make()`: the frames `expected` are delivered,
/// and echoed back byte for byte. `label` starts the failure message.
pub(crate) fn echoes_in_every_chunk_size<K: Framing>(
    make: impl Fn() -> FramedProtocol<K, Echo>,
    input: &[u8],
    expected: &[&str],
    label: &str,
) where
    Echo: Handler<K>,
{
    for size in 1..=input.len() {
        let mut h = Harness::new(make());
        for chunk in input.chunks(size) {
            h.feed(chunk);
        }
        assert_eq!(events(&h), expected, "{label} size {size}");
        assert_eq!(h.take_written(), input, "{label} size {size}");
    }
}

/// Feeds `protocol` the frames `pause`, `a`, `b` (encoded in `wire`) and the peer's EOF: `a`,
/// `b` and the EOF (which closes) wait until the pause ends, 1 s later.
pub(crate) fn pause_holds_back_frames_and_eof<K: Framing>(
    protocol: FramedProtocol<K, Echo>,
    wire: &[u8],
) where
    Echo: Handler<K>,
{
    let mut h = Harness::new(protocol);
    h.feed(wire);
    h.feed_eof();
    assert_eq!(events(&h), ["pause"]);
    assert!(!h.is_closed());
    h.advance(Duration::from_secs(1));
    assert_eq!(events(&h), ["pause", "a", "b"]);
    assert!(h.is_closed());
}
