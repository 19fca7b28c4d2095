//! The codec against the cases of the Autobahn test suite (sections 1–7 and 9; each test
//! names its case numbers), fed whole and in every chunk size that matters.

use bytes::{BufMut, Bytes, BytesMut};

use super::{CloseCode, Event, ProtocolError, SendError, State, WebSocket};

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A frame as a client sends it: masked with `KEY`; `first` is its first byte (FIN, RSV,
/// opcode) as is, so tests can set any bit.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(first);
    match payload.len() {
        len @ 0..=125 => out.put_u8(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.put_u8(0x80 | 126);
            out.put_u16(len as u16);
        }
        len => {
            out.put_u8(0x80 | 127);
            out.put_u64(len as u64);
        }
    }
    out.put_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out.to_vec()
}

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// What the server did with `input`: its events (an error last, if any) and its output.
fn run(input: &[u8], chunk: usize) -> (Vec<Result<Event, ProtocolError>>, Bytes) {
    let mut ws = WebSocket::server().with_max_message(1 << 17);
    let mut events = Vec::new();
    let mut output = BytesMut::new();
    for piece in input.chunks(chunk.max(1)) {
        ws.receive(piece);
        while let Some(event) = ws.next_event() {
            events.push(event);
        }
        output.extend_from_slice(&ws.take_output());
    }
    (events, output.freeze())
}

/// Runs `input` whole and in chunks of 1, 2, 3, 7 and 100 bytes; every way must give the
/// same events and output, which are returned.
fn run_all_ways(input: &[u8]) -> (Vec<Result<Event, ProtocolError>>, Bytes) {
    let whole = run(input, input.len());
    for chunk in [1, 2, 3, 7, 100] {
        assert_eq!(run(input, chunk), whole, "fed in chunks of {chunk}");
    }
    whole
}

/// The close frame a server sends with `code`.
fn server_close(code: u16) -> Vec<u8> {
    let mut out = vec![0x88, 2];
    out.extend_from_slice(&code.to_be_bytes());
    out
}

fn failed_with(input: &[u8], code: CloseCode) -> Vec<Result<Event, ProtocolError>> {
    let (events, output) = run_all_ways(input);
    let last = events.last().expect("an event");
    assert_eq!(last.as_ref().map_err(|e| e.code), Err(code), "{events:?}");
    assert!(output.ends_with(&server_close(code.0)), "{output:?}");
    events
}

fn text(s: &str) -> Result<Event, ProtocolError> {
    Ok(Event::Text(s.into()))
}

fn binary(b: &[u8]) -> Result<Event, ProtocolError> {
    Ok(Event::Binary(Bytes::copy_from_slice(b)))
}

#[test]
fn text_and_binary_messages_of_every_length_class_arrive_whole_1_1_and_1_2() {
    for len in [0, 125, 126, 127, 128, 65535, 65536] {
        let payload = "*".repeat(len);
        let (events, _) = run(&frame(FIN | TEXT, payload.as_bytes()), 997);
        assert_eq!(events, [text(&payload)]);
        let (events, _) = run(&frame(FIN | BINARY, payload.as_bytes()), 997);
        assert_eq!(events, [binary(payload.as_bytes())]);
    }
}

#[test]
fn a_ping_is_answered_with_a_pong_carrying_its_payload_2_1_to_2_4() {
    for payload in [
        &b""[..],
        b"Hello, world!",
        &[0, 0xFF, 0xFE, 0xFD],
        &[0xFE; 125],
    ] {
        let (events, output) = run_all_ways(&frame(FIN | PING, payload));
        assert_eq!(events, [Ok(Event::Ping(Bytes::copy_from_slice(payload)))]);
        let mut pong = vec![0x8A, payload.len() as u8];
        pong.extend_from_slice(payload);
        assert_eq!(&output[..], &pong[..]);
    }
}

#[test]
fn a_ping_over_125_bytes_fails_with_1002_2_5() {
    failed_with(&frame(FIN | PING, &[0xFE; 126]), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn unsolicited_pongs_are_delivered_and_not_answered_2_7_to_2_9() {
    let mut input = frame(FIN | PONG, b"");
    input.extend(frame(FIN | PONG, b"unsolicited pong payload"));
    input.extend(frame(FIN | PING, b"ping payload"));
    let (events, output) = run_all_ways(&input);
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[1],
        Ok(Event::Pong(Bytes::from_static(b"unsolicited pong payload")))
    );
    assert_eq!(&output[..], b"\x8a\x0cping payload");
}

#[test]
fn ten_pings_get_ten_pongs_in_order_2_10_and_2_11() {
    let input: Vec<u8> = (0..10)
        .flat_map(|i| frame(FIN | PING, format!("payload-{i}").as_bytes()))
        .collect();
    let (events, output) = run_all_ways(&input);
    assert_eq!(events.len(), 10);
    let expected: Vec<u8> = (0..10)
        .flat_map(|i| {
            let payload = format!("payload-{i}");
            let mut pong = vec![0x8A, payload.len() as u8];
            pong.extend_from_slice(payload.as_bytes());
            pong
        })
        .collect();
    assert_eq!(&output[..], &expected[..]);
}

#[test]
fn reserved_bits_fail_with_1002_whatever_the_frame_3_1_to_3_7() {
    for (rsv, opcode) in [
        (0x40, TEXT),
        (0x20, TEXT),
        (0x60, TEXT),
        (0x10, TEXT),
        (0x50, BINARY),
        (0x30, PING),
        (0x70, CLOSE),
    ] {
        failed_with(&frame(FIN | rsv | opcode, b""), CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn messages_before_a_bad_frame_are_delivered_and_answered_3_2_and_3_3() {
    let mut input = frame(FIN | TEXT, b"Hello, world!");
    input.extend(frame(FIN | 0x20 | TEXT, b"Hello, world!"));
    input.extend(frame(FIN | PING, b""));
    let events = failed_with(&input, CloseCode::PROTOCOL_ERROR);
    assert_eq!(events.len(), 2, "nothing is read after the bad frame");
    assert_eq!(events[0], text("Hello, world!"));
}

#[test]
fn reserved_opcodes_fail_with_1002_4_1_and_4_2() {
    for opcode in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        failed_with(&frame(FIN | opcode, b"reserved"), CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn fragmented_control_frames_fail_with_1002_5_1_and_5_2() {
    for opcode in [PING, PONG] {
        let mut input = frame(opcode, b"fragment1");
        input.extend(frame(FIN | CONTINUATION, b"fragment2"));
        failed_with(&input, CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn fragments_join_into_one_message_5_3_to_5_5() {
    let mut input = frame(TEXT, b"fragment1");
    input.extend(frame(FIN | CONTINUATION, b"fragment2"));
    assert_eq!(run_all_ways(&input).0, [text("fragment1fragment2")]);
}

#[test]
fn control_frames_between_fragments_are_handled_at_once_5_6_to_5_8() {
    let mut input = frame(TEXT, b"fragment1");
    input.extend(frame(FIN | PING, b"pong me"));
    input.extend(frame(FIN | CONTINUATION, b"fragment2"));
    let (events, output) = run_all_ways(&input);
    assert_eq!(
        events,
        [
            Ok(Event::Ping(Bytes::from_static(b"pong me"))),
            text("fragment1fragment2")
        ]
    );
    assert_eq!(&output[..], b"\x8a\x07pong me");
}

#[test]
fn a_continuation_with_no_message_fails_with_1002_5_9_to_5_14() {
    for first in [FIN | CONTINUATION, CONTINUATION] {
        let mut input = frame(first, b"fragment1");
        input.extend(frame(FIN | TEXT, b"fragment2"));
        let events = failed_with(&input, CloseCode::PROTOCOL_ERROR);
        assert_eq!(events.len(), 1);
    }
}

#[test]
fn a_continuation_after_the_final_fragment_fails_with_1002_5_15() {
    let mut input = frame(TEXT, b"fragment1");
    input.extend(frame(FIN | CONTINUATION, b"fragment2"));
    input.extend(frame(CONTINUATION, b"fragment3"));
    let events = failed_with(&input, CloseCode::PROTOCOL_ERROR);
    assert_eq!(events[0], text("fragment1fragment2"));
}

#[test]
fn a_new_message_inside_a_fragmented_one_fails_with_1002_5_18() {
    let mut input = frame(TEXT, b"fragment1");
    input.extend(frame(FIN | TEXT, b"fragment2"));
    failed_with(&input, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn five_fragments_with_pings_between_make_one_message_5_19_and_5_20() {
    let mut input = Vec::new();
    for i in 1..=5 {
        let first = match i {
            1 => TEXT,
            5 => FIN | CONTINUATION,
            _ => CONTINUATION,
        };
        input.extend(frame(first, format!("fragment{i}").as_bytes()));
        if i % 2 == 0 {
            input.extend(frame(FIN | PING, format!("pongme {i}!").as_bytes()));
        }
    }
    let (events, _) = run_all_ways(&input);
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2],
        text("fragment1fragment2fragment3fragment4fragment5")
    );
}

#[test]
fn empty_fragments_make_an_empty_or_joined_message_6_1() {
    let mut input = frame(TEXT, b"");
    input.extend(frame(CONTINUATION, b""));
    input.extend(frame(FIN | CONTINUATION, b""));
    assert_eq!(run_all_ways(&input).0, [text("")]);
}

const VALID_TEXT: &str = "Hello-\u{b5}@\u{df}\u{f6}\u{e4}\u{fc}\u{e0}\u{e1}-UTF-8!!";

#[test]
fn valid_utf8_split_at_every_byte_across_fragments_is_accepted_6_2() {
    let bytes = VALID_TEXT.as_bytes();
    for cut in 0..=bytes.len() {
        let mut input = frame(TEXT, &bytes[..cut]);
        input.extend(frame(FIN | CONTINUATION, &bytes[cut..]));
        assert_eq!(
            run(&input, input.len()).0,
            [text(VALID_TEXT)],
            "cut at {cut}"
        );
    }
}

/// Invalid sequences of Autobahn's section 6 (after Markus Kuhn's UTF-8 stress test).
const INVALID_UTF8: &[&[u8]] = &[
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", // 6.3
    b"\xf8\x88\x80\x80\x80",     // 6.6: 5-byte sequence
    b"\xfc\x84\x80\x80\x80\x80", // 6.6: 6-byte sequence
    b"\xf4\x90\x80\x80",         // 6.7: past U+10FFFF
    b"\x80",                     // 6.8: lone continuation byte
    b"\xbf",
    b"\xc0\x20", // 6.9: lone start byte followed by a space
    b"\xe0\x80", // 6.10: sequence missing its last byte (at the end)
    b"\xfe",     // 6.12: impossible bytes
    b"\xff",
    b"\xc0\xaf", // 6.13: overlong '/'
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xc1\xbf",     // 6.14: maximum overlong
    b"\xed\xa0\x80", // 6.15: UTF-16 surrogate
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80", // 6.16: surrogate pair
];

#[test]
fn invalid_utf8_fails_with_1007_6_3_to_6_21() {
    for bytes in INVALID_UTF8 {
        failed_with(&frame(FIN | TEXT, bytes), CloseCode::INVALID_PAYLOAD);
    }
}

#[test]
fn invalid_utf8_fails_at_its_fragment_before_the_message_ends_6_4() {
    // The invalid fragment comes first; its message never ends: the failure must not wait.
    let mut input = frame(TEXT, VALID_TEXT.as_bytes());
    input.extend(frame(
        CONTINUATION,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xed\xa0\x80",
    ));
    let events = failed_with(&input, CloseCode::INVALID_PAYLOAD);
    assert_eq!(events.len(), 1);
}

#[test]
fn a_character_cut_at_the_end_of_a_message_fails_with_1007_6_10() {
    let mut input = frame(TEXT, b"ab\xe2\x82");
    input.extend(frame(FIN | CONTINUATION, b""));
    failed_with(&input, CloseCode::INVALID_PAYLOAD);
}

#[test]
fn binary_messages_are_not_checked_for_utf8() {
    let (events, _) = run_all_ways(&frame(FIN | BINARY, b"\xff\xfe\xed\xa0\x80"));
    assert_eq!(events, [binary(b"\xff\xfe\xed\xa0\x80")]);
}

#[test]
fn a_close_is_echoed_and_nothing_after_it_is_read_7_1_1_to_7_1_4() {
    let mut input = frame(FIN | TEXT, b"Hello World!");
    input.extend(frame(FIN | CLOSE, &1000u16.to_be_bytes()));
    input.extend(frame(FIN | CLOSE, &1000u16.to_be_bytes()));
    input.extend(frame(FIN | PING, b""));
    input.extend(frame(FIN | TEXT, b"after close"));
    let (events, output) = run_all_ways(&input);
    assert_eq!(events.len(), 2);
    let close = Ok(Event::Close {
        code: Some(CloseCode::NORMAL),
        reason: String::new(),
    });
    assert_eq!(events[1], close);
    assert_eq!(
        &output[..],
        &[&b"\x88\x02"[..], &1000u16.to_be_bytes()].concat()[..]
    );
}

#[test]
fn a_close_in_the_middle_of_a_fragmented_message_drops_the_message_7_1_5() {
    let mut input = frame(TEXT, b"fragment1");
    input.extend(frame(FIN | CLOSE, &1000u16.to_be_bytes()));
    input.extend(frame(FIN | CONTINUATION, b"fragment2"));
    let (events, _) = run_all_ways(&input);
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0], Ok(Event::Close { .. })));
}

#[test]
fn an_empty_close_is_answered_by_an_empty_close_7_3_1() {
    let (events, output) = run_all_ways(&frame(FIN | CLOSE, b""));
    let close = Ok(Event::Close {
        code: None,
        reason: String::new(),
    });
    assert_eq!(events, [close]);
    assert_eq!(&output[..], b"\x88\x00");
}

#[test]
fn a_close_of_one_byte_fails_with_1002_7_3_2() {
    failed_with(&frame(FIN | CLOSE, b"\x03"), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn a_close_reason_up_to_123_bytes_is_delivered_7_3_3_to_7_3_6() {
    let reason = "*".repeat(123);
    let payload = [&1000u16.to_be_bytes()[..], reason.as_bytes()].concat();
    let (events, _) = run_all_ways(&frame(FIN | CLOSE, &payload));
    assert_eq!(
        events,
        [Ok(Event::Close {
            code: Some(CloseCode::NORMAL),
            reason: reason.clone()
        })]
    );
    let too_long = [&payload[..], b"*"].concat();
    failed_with(&frame(FIN | CLOSE, &too_long), CloseCode::PROTOCOL_ERROR);
}

#[test]
fn a_close_reason_that_is_not_utf8_fails_with_1007_7_5_1() {
    let payload = [
        &1000u16.to_be_bytes()[..],
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xed\xa0\x80",
    ]
    .concat();
    failed_with(&frame(FIN | CLOSE, &payload), CloseCode::INVALID_PAYLOAD);
}

#[test]
fn valid_close_codes_are_echoed_7_7() {
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let (events, output) = run_all_ways(&frame(FIN | CLOSE, &u16::to_be_bytes(code)));
        assert!(matches!(events[..], [Ok(Event::Close { code: Some(c), .. })] if c.0 == code));
        assert_eq!(&output[..], &server_close(code)[..]);
    }
}

#[test]
fn invalid_close_codes_fail_with_1002_7_9_and_7_13() {
    let codes = [
        0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000,
    ];
    for code in codes.into_iter().chain([65535]) {
        failed_with(
            &frame(FIN | CLOSE, &u16::to_be_bytes(code)),
            CloseCode::PROTOCOL_ERROR,
        );
    }
}

#[test]
fn a_message_over_the_limit_fails_with_1009_before_its_payload_arrives_9_x() {
    // The limit is 128 KiB in `run`; the header alone must be enough to refuse.
    let header = &frame(FIN | BINARY, &vec![0; (1 << 17) + 1])[..14];
    failed_with(header, CloseCode::MESSAGE_TOO_BIG);
    // Fragments adding up past the limit fail at the fragment that crosses it.
    let mut input = frame(BINARY, &vec![1; 1 << 16]);
    input.extend(frame(CONTINUATION, &vec![2; 1 << 16]));
    input.extend(&frame(FIN | CONTINUATION, &[3; 100])[..8]);
    failed_with(&input, CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn messages_up_to_the_limit_pass_in_one_frame_or_many_9_1_and_9_2() {
    let payload = vec![0x5A; 1 << 17];
    let (events, _) = run(&frame(FIN | BINARY, &payload), 4096);
    assert_eq!(events, [binary(&payload)]);
    let mut input = Vec::new();
    for (i, part) in payload.chunks(1000).enumerate() {
        let fin = if (i + 1) * 1000 >= payload.len() {
            FIN
        } else {
            0
        };
        input.extend(frame(
            fin | if i == 0 { BINARY } else { CONTINUATION },
            part,
        ));
    }
    let (events, _) = run(&input, 4096);
    assert_eq!(events, [binary(&payload)]);
}

#[test]
fn unmasked_client_frames_fail_with_1002() {
    failed_with(b"\x81\x02hi", CloseCode::PROTOCOL_ERROR);
}

#[test]
fn a_client_masks_with_its_keys_and_refuses_masked_server_frames() {
    let mut keys = [[1, 2, 3, 4], [5, 6, 7, 8]].into_iter().cycle();
    let mut client = WebSocket::client_with_mask_keys(move || keys.next().unwrap());
    client.send_text("Hello").unwrap();
    let out = client.take_output();
    assert_eq!(&out[..6], &[0x81, 0x85, 1, 2, 3, 4]);
    let mut server = WebSocket::server();
    server.receive(&out);
    assert_eq!(server.next_event(), Some(text("Hello")));
    client.receive(b"\x82\x82\x00\x00\x00\x00hi");
    let error = client.next_event().unwrap().unwrap_err();
    assert_eq!(error.code, CloseCode::PROTOCOL_ERROR);
    assert_eq!(&client.take_output()[..6], &[0x88, 0x82, 5, 6, 7, 8]);
}

#[test]
fn a_close_sent_first_completes_when_the_peer_answers() {
    let mut ws = WebSocket::server();
    ws.close(CloseCode::GOING_AWAY, "bye").unwrap();
    assert_eq!(ws.state(), State::CloseSent);
    assert_eq!(&ws.take_output()[..], b"\x88\x05\x03\xe9bye");
    assert_eq!(ws.send_text("late"), Err(SendError::Closed));
    // Messages still arrive until the peer's close; its close is not answered again.
    ws.receive(&frame(FIN | TEXT, b"still"));
    ws.receive(&frame(FIN | CLOSE, &1001u16.to_be_bytes()));
    assert_eq!(ws.next_event(), Some(text("still")));
    assert!(matches!(ws.next_event(), Some(Ok(Event::Close { .. }))));
    assert_eq!(ws.state(), State::Closed);
    assert!(ws.take_output().is_empty());
}

#[test]
fn codes_that_are_only_reported_cannot_be_sent() {
    let mut ws = WebSocket::server();
    for code in [1005, 1006, 1015, 999, 5000] {
        assert_eq!(
            ws.close(CloseCode(code), ""),
            Err(SendError::InvalidCloseCode)
        );
    }
    assert_eq!(
        ws.close(CloseCode::NORMAL, &"x".repeat(124)),
        Err(SendError::ControlTooLong)
    );
    assert_eq!(ws.send_ping(&[0; 126]), Err(SendError::ControlTooLong));
    assert_eq!(ws.state(), State::Open);
}

#[test]
fn invalid_utf8_fails_at_the_byte_before_its_frame_is_whole_6_4_3_and_6_4_4() {
    let payload = [VALID_TEXT.as_bytes(), b"\xed\xa0\x80", &[b'x'; 50]].concat();
    let whole = frame(FIN | TEXT, &payload);
    // The header (2 bytes and the mask key), the valid text, the surrogate; not the rest.
    let cut = 6 + VALID_TEXT.len() + 3;
    failed_with(&whole[..cut], CloseCode::INVALID_PAYLOAD);
}

#[test]
fn a_frame_arriving_in_pieces_is_delivered_once_whole() {
    let mut ws = WebSocket::server();
    let whole = frame(FIN | BINARY, &[7; 1000]);
    let (head, last) = whole.split_at(whole.len() - 1);
    for piece in head.chunks(100) {
        ws.receive(piece);
        assert_eq!(ws.next_event(), None);
    }
    ws.receive(last);
    assert_eq!(ws.next_event(), Some(binary(&[7; 1000])));
}
