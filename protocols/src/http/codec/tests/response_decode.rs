//! The response decoder: each response fed in every chunk size from 1 byte up (with a
//! consumer that takes one event per feed, and with one that takes all), then the EOF: the
//! same events and the same error every way.

use http::{Method, StatusCode, Version};

use super::super::*;

/// An owned event, the body's pieces joined.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Head(StatusCode, Version, ResponseFraming, bool),
    Body(Vec<u8>),
    End(Vec<(String, String)>),
    Error(HttpError),
}

fn push(events: &mut Vec<Ev>, event: Result<ResponseEvent<'_>, HttpError>) {
    match event {
        Ok(ResponseEvent::Head(h)) => {
            events.push(Ev::Head(h.status, h.version, h.framing, h.keep_alive))
        }
        Ok(ResponseEvent::Data(data)) => {
            assert!(!data.is_empty(), "Data is never empty");
            if let Some(Ev::Body(body)) = events.last_mut() {
                body.extend_from_slice(data);
            } else {
                events.push(Ev::Body(data.to_vec()));
            }
        }
        Ok(ResponseEvent::End { trailers }) => events.push(Ev::End(
            trailers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect(),
        )),
        Err(error) => events.push(Ev::Error(error)),
    }
}

/// Takes up to `budget` events from `cursor`; how many it took.
fn take(events: &mut Vec<Ev>, mut cursor: ResponseEvents<'_, '_>, budget: usize) -> usize {
    let mut taken = 0;
    while taken < budget {
        match cursor.next() {
            Some(event) => push(events, event),
            None => break,
        }
        taken += 1;
    }
    taken
}

fn run(method: &Method, limits: &Limits, input: &[u8], size: usize, budget: usize) -> Vec<Ev> {
    let mut decoder = ResponseDecoder::with_limits(method, limits.clone());
    let mut events = Vec::new();
    for chunk in input.chunks(size) {
        take(&mut events, decoder.feed(chunk), budget);
        assert!(decoder.buffered_len() <= limits.max_head_len + size + 1);
    }
    while take(&mut events, decoder.feed(&[]), budget) > 0 {}
    while take(&mut events, decoder.eof(), budget) > 0 {}
    events
}

/// The events of `input` then the EOF, the same in every chunk size and budget.
fn decode_with(method: &Method, limits: &Limits, input: &[u8]) -> Vec<Ev> {
    let expected = run(method, limits, input, input.len().max(1), usize::MAX);
    for size in 1..=input.len().max(1) {
        for budget in [1, usize::MAX] {
            let events = run(method, limits, input, size, budget);
            assert_eq!(events, expected, "chunk size {size}, budget {budget}");
        }
    }
    expected
}

fn decode(input: &[u8]) -> Vec<Ev> {
    decode_with(&Method::GET, &Limits::default(), input)
}

fn refused(input: &[u8]) -> HttpError {
    match decode(input).pop() {
        Some(Ev::Error(error)) => error,
        other => panic!(
            "{:?} was not refused: {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn ok_head(framing: ResponseFraming, keep_alive: bool) -> Ev {
    Ev::Head(StatusCode::OK, Version::HTTP_11, framing, keep_alive)
}

#[test]
fn a_content_length_body() {
    let events = decode(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(
        events,
        [
            ok_head(ResponseFraming::Length(5), true),
            Ev::Body(b"hello".to_vec()),
            Ev::End(vec![])
        ]
    );
}

#[test]
fn a_chunked_body_with_extensions_and_trailers() {
    let events = decode(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=value\r\nhello\r\n6 ; q=\"a;b\"\r\n world\r\n0;last\r\nX-Sum: 42\r\n\r\n",
    );
    assert_eq!(
        events,
        [
            ok_head(ResponseFraming::Chunked, true),
            Ev::Body(b"hello world".to_vec()),
            Ev::End(vec![("x-sum".into(), "42".into())])
        ]
    );
}

#[test]
fn a_body_without_length_ends_with_the_connection() {
    let events = decode(b"HTTP/1.1 200 OK\r\n\r\nuntil the close");
    assert_eq!(
        events,
        [
            ok_head(ResponseFraming::UntilClose, false),
            Ev::Body(b"until the close".to_vec()),
            Ev::End(vec![])
        ]
    );
}

#[test]
fn head_204_and_304_have_no_body_whatever_the_headers_say() {
    let events = decode_with(
        &Method::HEAD,
        &Limits::default(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    );
    assert_eq!(
        events,
        [ok_head(ResponseFraming::Length(0), true), Ev::End(vec![])]
    );
    for status in [204, 304] {
        let wire = format!("HTTP/1.1 {status} X\r\nContent-Length: 7\r\n\r\n");
        let events = decode(wire.as_bytes());
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(
            matches!(events[0], Ev::Head(s, _, ResponseFraming::Length(0), true) if s == status)
        );
    }
    // The codings a body would have are not judged where none follows (RFC 9112 §6.1).
    let events = decode_with(
        &Method::HEAD,
        &Limits::default(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    );
    assert_eq!(
        events,
        [ok_head(ResponseFraming::Length(0), true), Ev::End(vec![])]
    );
    let events = decode(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert!(
        matches!(events[0], Ev::Head(s, _, ResponseFraming::Length(0), true) if s == 304),
        "{events:?}"
    );
}

#[test]
fn interim_responses_are_skipped() {
    let events = decode(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(events[0], ok_head(ResponseFraming::Length(2), true));
    assert_eq!(events[1], Ev::Body(b"ok".to_vec()));
}

#[test]
fn interim_responses_are_bounded_in_all_by_the_head_limit() {
    const CONTINUE: &str = "HTTP/1.1 100 Continue\r\n\r\n"; // 25 bytes
    let limits = Limits::default().with_max_head_len(64);
    let fine = format!("{CONTINUE}{CONTINUE}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let events = decode_with(&Method::GET, &limits, fine.as_bytes());
    assert_eq!(events[0], ok_head(ResponseFraming::Length(0), true));
    let over = format!("{CONTINUE}{CONTINUE}{CONTINUE}HTTP/1.1 200 OK\r\n\r\n");
    let events = decode_with(&Method::GET, &limits, over.as_bytes());
    let error = HttpError::InterimResponsesTooLarge { max: 64 };
    assert_eq!(events, [Ev::Error(error.clone())]);
    assert_eq!(
        error.reason().to_string(),
        "interim (1xx) responses longer than 64 bytes in all"
    );
    // 200,000 of them in one read: refused after the first 32 KiB of them.
    let flood = CONTINUE.repeat(200_000);
    let mut decoder = ResponseDecoder::new(&Method::GET);
    let mut events = decoder.feed(flood.as_bytes());
    assert_eq!(
        events.next().map(|e| e.map(|_| ())),
        Some(Err(HttpError::InterimResponsesTooLarge {
            max: Limits::DEFAULT_MAX_HEAD_LEN
        }))
    );
    assert!(events.next().is_none());
    drop(events);
    assert!(decoder.has_failed());
}

#[test]
fn keep_alive_follows_version_and_connection() {
    let close = decode(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(close[0], ok_head(ResponseFraming::Length(0), false));
    let old = decode(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(old[0], Ev::Head(_, Version::HTTP_10, _, false)));
    let kept = decode(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(kept[0], Ev::Head(_, Version::HTTP_10, _, true)));
}

#[test]
fn ambiguous_framing_is_refused() {
    assert_eq!(
        refused(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc"),
        HttpError::ContentLengthWithTransferEncoding
    );
    for length in ["-1", "+3", "3x", "", "3, 4", "99999999999999999999999"] {
        let wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\nabc");
        assert_eq!(
            refused(wire.as_bytes()),
            HttpError::InvalidContentLength,
            "{length}"
        );
    }
    let two = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc";
    assert_eq!(refused(two), HttpError::InvalidContentLength);
    let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
    assert_eq!(refused(gzip), HttpError::ChunkedNotLast);
    let old = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(
        refused(old),
        HttpError::TransferEncodingInHttp10 { what: "response" }
    );
}

#[test]
fn malformed_heads_are_refused() {
    for wire in [
        &b"HTTP/1.1 2OO OK\r\n\r\n"[..],
        b"hello world\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    ] {
        assert!(
            matches!(refused(wire), HttpError::MalformedHead(_)),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    assert_eq!(
        refused(b"HTTP/2 200 OK\r\n\r\n"),
        HttpError::UnsupportedVersion
    );
    assert_eq!(
        refused(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
        HttpError::UnexpectedSwitchingProtocols
    );
}

#[test]
fn a_head_is_judged_the_same_whether_it_came_whole_or_in_pieces() {
    // A bad byte in a head the server never finished: the head is cut short, however it was
    // read (read whole, httparse would see the bad byte before its end).
    assert_eq!(
        decode(b"HTTP/1.1 200 OK\r\nA\x01: b\r\n"),
        [Ev::Error(HttpError::Incomplete {
            what: "response head"
        })]
    );
    // A status line with a bare CR, ending past the head limit: over the limit.
    let limits = Limits::default().with_max_head_len(100);
    let wire = format!("HTTP/1.1 200 {}\rX\r\n\r\n", "Ok".repeat(60));
    assert_eq!(
        decode_with(&Method::GET, &limits, wire.as_bytes()),
        [Ev::Error(HttpError::HeadTooLarge { max: 100 })]
    );
}

#[test]
fn bare_lf_in_chunk_lines_is_refused() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n";
    assert_eq!(refused(wire), HttpError::InvalidChunkSize);
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n";
    assert_eq!(refused(wire), HttpError::BadChunkTerminator);
}

#[test]
fn limits_bound_the_head_and_every_framing_of_the_body() {
    let limits = Limits::default().with_max_head_len(64).with_max_body_len(4);
    let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(100));
    let events = decode_with(&Method::GET, &limits, long.as_bytes());
    assert_eq!(events, [Ev::Error(HttpError::HeadTooLarge { max: 64 })]);
    for wire in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nhello",
    ] {
        let events = decode_with(&Method::GET, &limits, wire);
        assert_eq!(
            events.last(),
            Some(&Ev::Error(HttpError::BodyTooLarge { max: 4 }))
        );
    }
}

#[test]
fn a_head_exactly_at_the_limit_passes_one_more_is_refused() {
    let limits = Limits::default().with_max_head_len(64);
    let exact = format!(
        "HTTP/1.1 204 No Content\r\nX: {}\r\n\r\n",
        "a".repeat(64 - 32)
    );
    assert_eq!(exact.len(), 64);
    let events = decode_with(&Method::GET, &limits, exact.as_bytes());
    assert!(
        matches!(events[0], Ev::Head(s, ..) if s == 204),
        "{events:?}"
    );
    let over = exact.replacen("X: ", "X: a", 1);
    let events = decode_with(&Method::GET, &limits, over.as_bytes());
    assert_eq!(events, [Ev::Error(HttpError::HeadTooLarge { max: 64 })]);
}

#[test]
fn max_headers_above_the_stack_slots_is_honoured() {
    let head = |lines: usize| {
        let mut head = b"HTTP/1.1 204 No Content\r\n".to_vec();
        head.extend_from_slice(&b"X: v\r\n".repeat(lines));
        head.extend_from_slice(b"\r\n");
        head
    };
    let limits = Limits::default().with_max_headers(150);
    let events = run(&Method::GET, &limits, &head(150), 7, usize::MAX);
    assert!(
        matches!(events[0], Ev::Head(s, ..) if s == 204),
        "{events:?}"
    );
    let events = run(&Method::GET, &limits, &head(151), 7, usize::MAX);
    assert_eq!(events, [Ev::Error(HttpError::TooManyHeaders { max: 150 })]);
}

#[test]
fn a_response_cut_short_is_incomplete() {
    let cases: [(&[u8], &str); 4] = [
        (b"", "response head"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "response head"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            "response body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "chunked response body",
        ),
    ];
    for (wire, what) in cases {
        assert_eq!(
            decode(wire).last(),
            Some(&Ev::Error(HttpError::Incomplete { what }))
        );
    }
}

#[test]
fn freshness_and_bytes_after_the_response() {
    let mut decoder = ResponseDecoder::new(&Method::GET);
    assert!(decoder.is_fresh());
    let mut events = Vec::new();
    take(
        &mut events,
        decoder.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra"),
        usize::MAX,
    );
    assert!(!decoder.is_fresh() && decoder.is_complete());
    assert_eq!(decoder.buffered_len(), 5);
    // A server that goes on sending after the response: counted, yielding no event.
    for _ in 0..1000 {
        take(&mut events, decoder.feed(&[b'x'; 1024]), usize::MAX);
    }
    assert_eq!(decoder.buffered_len(), 5 + 1000 * 1024);
    assert!(decoder.is_complete());
    assert_eq!(events.len(), 2, "only the head and the end: {events:?}");
}
