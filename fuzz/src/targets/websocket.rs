//! The WebSocket codec, as a server (masked frames expected) and as a client (unmasked).

use torsion_protocols::websocket::{Event, WebSocket};

use super::{check_stream, events_whole, Target};
use crate::chunking::{feed_all, Plan};
use crate::trace::Trace;

/// The WebSocket codec.
pub const TARGET: Target = Target {
    name: "websocket",
    about: "WebSocket (server and client sides), messages of at most 64 bytes",
    run,
    events: |input| events_whole(|plan, trace| decode_both(input, plan, trace)),
    dictionary: &[
        b"\x81\x85",
        b"\x01\x83",
        b"\x80\x81",
        b"\x89\x80",
        b"\x88\x82\x00\x00\x00\x00\x03\xe8",
        b"\x81\x05hello",
        b"\x01\x02he",
        b"\x80\x03llo",
        b"\x7e\x00\x7e",
        b"\x7f\x00\x00\x00\x00\x00\x01\x00\x00",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xce\xba",
    ],
};

const MAX: usize = 64;

/// What the codec may hold: one frame (a control frame's 125 bytes and a 14-byte header,
/// more than a 64-byte message), the rest of a read, the message being assembled, and the
/// answers queued (a pong, a close); four times over for a vector's doubling and the consumed
/// bytes kept, plus the codec's own boxes.
fn bound(piece: usize) -> usize {
    4 * (125 + 14 + piece + MAX + 2 * 140) + 512
}

fn run(input: &[u8]) {
    check_stream(
        input,
        |plan| bound(plan.max_piece(input)),
        |plan, trace| decode_both(input, plan, trace),
    );
}

fn decode_both(input: &[u8], plan: Plan, trace: &mut Trace) {
    decode(WebSocket::server(), input, plan, trace);
    decode(
        WebSocket::client_with_mask_keys(|| [1, 2, 3, 4]),
        input,
        plan,
        trace,
    );
}

/// Decodes `input` into `trace`, checking what each event promises.
fn decode(ws: WebSocket, input: &[u8], plan: Plan, trace: &mut Trace) {
    let mut ws = ws.with_max_message(MAX);
    let mut failed = false;
    feed_all(input, plan, |bytes, stop| {
        ws.receive(bytes);
        while let Some(event) = ws.next_event() {
            assert!(!failed, "an event after the connection failed");
            match event {
                Ok(Event::Text(text)) => {
                    assert!(text.len() <= MAX, "a message over the limit");
                    trace.event(format_args!("text {text:?}"));
                }
                Ok(Event::Binary(data)) => {
                    assert!(data.len() <= MAX, "a message over the limit");
                    trace.event(format_args!("binary {}", data.escape_ascii()));
                }
                Ok(event) => trace.event(format_args!("{event:?}")),
                Err(error) => {
                    failed = true;
                    trace.event(format_args!("error {error}"));
                }
            }
            // What the codec answers (pongs, closes) is part of its behaviour.
            let out = ws.take_output();
            trace.event(format_args!("out {}", out.escape_ascii()));
            if stop() {
                return true;
            }
        }
        false
    });
    trace.event(format_args!("state {:?}", ws.state()));
}
