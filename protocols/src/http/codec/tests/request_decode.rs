//! The request decoder: each input fed in every chunk size from 1 byte up, and with a consumer
//! that takes one event per feed (as a paused server does): the same events and the same
//! error. This file holds the harness the other request decoder tests share, and the requests
//! that decode; `request_refusals.rs` has what is refused, `request_limits.rs` the limits.

use http::{StatusCode, Version};

use super::super::*;

/// An owned event, with the body's pieces joined (reads split them differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ev {
    Head(Head),
    Body(Vec<u8>),
    End(Vec<(String, String)>),
    Error(HttpError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) line: String,
    pub(super) version: Version,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: BodyKind,
    pub(super) keep_alive: bool,
    pub(super) expect_continue: bool,
}

pub(super) fn pairs(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub(super) fn push(events: &mut Vec<Ev>, event: Result<RequestEvent<'_>, HttpError>) {
    match event {
        Ok(RequestEvent::Head(head)) => events.push(Ev::Head(Head {
            line: format!("{} {}", head.method, head.uri),
            version: head.version,
            headers: pairs(&head.headers),
            body: head.body,
            keep_alive: head.keep_alive,
            expect_continue: head.expect_continue,
        })),
        Ok(RequestEvent::Data(data)) => {
            assert!(!data.is_empty(), "Data is never empty");
            if let Some(Ev::Body(body)) = events.last_mut() {
                body.extend_from_slice(data);
            } else {
                events.push(Ev::Body(data.to_vec()));
            }
        }
        Ok(RequestEvent::End { trailers }) => events.push(Ev::End(pairs(&trailers))),
        Err(error) => events.push(Ev::Error(error)),
    }
}

pub(super) fn run(
    limits: &Limits,
    input: &[u8],
    size: usize,
    budget: usize,
) -> (Vec<Ev>, RequestDecoder) {
    let mut decoder = RequestDecoder::with_limits(limits.clone());
    let mut events = Vec::new();
    let mut take = |decoder: &mut RequestDecoder, chunk: &[u8]| {
        let mut cursor = decoder.feed(chunk);
        let mut taken = 0;
        while taken < budget {
            match cursor.next() {
                Some(event) => push(&mut events, event),
                None => break,
            }
            taken += 1;
        }
        taken
    };
    for chunk in input.chunks(size) {
        take(&mut decoder, chunk);
        assert!(decoder.buffered_len() <= limits.max_head_len + size + 1);
    }
    while take(&mut decoder, &[]) > 0 {}
    (events, decoder)
}

/// The events of `input`, the same in every chunk size and budget.
pub(super) fn decode_with(limits: &Limits, input: &[u8]) -> Vec<Ev> {
    let (expected, _) = run(limits, input, input.len().max(1), usize::MAX);
    for size in 1..=input.len().max(1) {
        for budget in [1, usize::MAX] {
            let (events, decoder) = run(limits, input, size, budget);
            assert_eq!(events, expected, "chunk size {size}, budget {budget}");
            let failed = matches!(events.last(), Some(Ev::Error(_)));
            assert_eq!(decoder.has_failed(), failed);
        }
    }
    expected
}

pub(super) fn decode(input: &[u8]) -> Vec<Ev> {
    decode_with(&Limits::default(), input)
}

/// The error `input` ends with, after every event before it.
pub(super) fn refused_with(limits: &Limits, input: &[u8]) -> HttpError {
    match decode_with(limits, input).pop() {
        Some(Ev::Error(error)) => error,
        other => panic!(
            "{:?} was not refused: {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

pub(super) fn refused(input: &[u8]) -> HttpError {
    refused_with(&Limits::default(), input)
}

pub(super) fn status(input: &[u8]) -> StatusCode {
    let error = refused(input);
    assert!(error.is_peer_fault());
    error.status()
}

pub(super) fn bodies(events: &[Ev]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if let Ev::End(_) = event {
            match &events[i - 1] {
                Ev::Body(body) => out.push(body.clone()),
                _ => out.push(Vec::new()),
            }
        }
    }
    out
}

pub(super) fn head(events: &[Ev], n: usize) -> &Head {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Head(h) => Some(h),
            _ => None,
        })
        .nth(n)
        .expect("a head")
}

/// A `POST` head's start, for inputs that go on with its framing.
pub(super) const POST: &str = "POST / HTTP/1.1\r\nHost: a\r\n";

/// A `POST` with `rest` after its first header lines.
pub(super) fn post(rest: &str) -> Vec<u8> {
    format!("{POST}{rest}").into_bytes()
}

#[test]
fn a_request_without_a_body() {
    let events =
        decode(b"GET /a?b=c HTTP/1.1\r\nHost: example.org\r\nX-Long:  spaced value \r\n\r\n");
    assert_eq!(events.len(), 2);
    let h = head(&events, 0);
    assert_eq!(h.line, "GET /a?b=c");
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(
        h.headers,
        [
            ("host".into(), "example.org".into()),
            ("x-long".into(), "spaced value".into())
        ]
    );
    assert_eq!(h.body, BodyKind::Length(0));
    assert!(h.keep_alive && !h.expect_continue);
    assert_eq!(events[1], Ev::End(vec![]));
}

#[test]
fn a_content_length_body() {
    let events = decode(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
    assert_eq!(head(&events, 0).body, BodyKind::Length(11));
    assert_eq!(bodies(&events), [b"hello world".to_vec()]);
}

#[test]
fn agreeing_content_lengths_are_one() {
    let events = decode(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nContent-Length: 003\r\n\r\nabc",
    );
    assert_eq!(bodies(&events), [b"abc".to_vec()]);
}

#[test]
fn a_chunked_body_with_extensions_and_trailers() {
    let events = decode(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=value\r\nhello\r\n\
          6 ; quoted=\"a;b\"\r\n world\r\n\
          A\r\n0123456789\r\n\
          0;last\r\nExpires: never\r\nX-Sum: 42\r\n\r\n",
    );
    assert_eq!(head(&events, 0).body, BodyKind::Chunked);
    assert_eq!(bodies(&events), [b"hello world0123456789".to_vec()]);
    assert_eq!(
        events.last(),
        Some(&Ev::End(vec![
            ("expires".into(), "never".into()),
            ("x-sum".into(), "42".into())
        ]))
    );
}

#[test]
fn an_empty_chunked_body() {
    let events =
        decode(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], Ev::End(vec![]));
}

#[test]
fn transfer_codings_are_a_case_insensitive_list_across_lines() {
    let events = decode(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\nTransfer-Encoding: CHUNKED\r\n\r\n\
          1\r\nx\r\n0\r\n\r\n",
    );
    assert_eq!(bodies(&events), [b"x".to_vec()]);
}

#[test]
fn pipelined_requests_in_one_buffer_come_out_in_order() {
    let events = decode(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
          POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n\
          \r\nGET /4 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let lines: Vec<&str> = (0..4).map(|n| head(&events, n).line.as_str()).collect();
    assert_eq!(lines, ["GET /1", "POST /2", "POST /3", "GET /4"]);
    assert_eq!(
        bodies(&events),
        [vec![], b"abc".to_vec(), b"de".to_vec(), vec![]]
    );
}

#[test]
fn a_body_inside_the_chunk_is_lent_not_copied() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(wire);
    assert!(matches!(events.next(), Some(Ok(RequestEvent::Head(_)))));
    let Some(Ok(RequestEvent::Data(data))) = events.next() else {
        panic!("data expected")
    };
    assert!(std::ptr::eq(data.as_ptr(), wire[wire.len() - 5..].as_ptr()));
}

#[test]
fn http11_keeps_the_connection_unless_close() {
    let events = decode(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n");
    assert_eq!(events.len(), 2, "nothing is read after a closing request");
    assert!(!head(&events, 0).keep_alive);
    let (_, decoder) = run(
        &Limits::default(),
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        4,
        9,
    );
    assert!(decoder.is_closed());
}

#[test]
fn http10_closes_unless_keep_alive() {
    let events = decode(b"GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n");
    assert_eq!(events.len(), 2);
    let h = head(&events, 0);
    assert_eq!((h.version, h.keep_alive), (Version::HTTP_10, false));

    let events = decode(
        b"GET /1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
    );
    assert!(head(&events, 0).keep_alive && head(&events, 1).keep_alive);
    assert_eq!(bodies(&events), [vec![], b"x".to_vec()]);
}

#[test]
fn expect_100_continue_is_reported_for_an_http11_body() {
    let events =
        decode(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok");
    assert!(head(&events, 0).expect_continue);
    let events = decode(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
    assert!(!head(&events, 0).expect_continue, "no body to wait for");
    let events = decode(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok");
    assert!(!head(&events, 0).expect_continue, "ignored in HTTP/1.0");
}

#[test]
fn empty_lines_before_a_request_are_skipped() {
    let events = decode(b"\r\n\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head(&events, 0).line, "GET /");
}

#[test]
fn nothing_is_read_after_an_error() {
    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(events.next().unwrap().unwrap_err(), HttpError::MissingHost);
    assert!(events.next().is_none());
    drop(events);
    assert!(decoder.has_failed());
    assert!(decoder
        .feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .next()
        .is_none());
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn the_decoder_says_when_it_is_idle_closed_and_what_it_holds() {
    let mut decoder = RequestDecoder::new();
    assert!(decoder.is_idle() && !decoder.is_closed() && !decoder.has_failed());
    assert_eq!(decoder.buffered_len(), 0);
    // An empty line is the start of a head: not idle any more (the header timeout applies).
    assert!(decoder.feed(b"\r\n").next().is_none());
    assert!(!decoder.is_idle());
    assert_eq!(decoder.buffered_len(), 2);
    assert!(decoder.feed(b"GET / HTTP/1.1\r\nHo").next().is_none());
    assert!(!decoder.is_idle());
    assert_eq!(decoder.buffered_len(), 20);
    let mut events = decoder.feed(b"st: a\r\n\r\nGET /next");
    assert!(matches!(events.next(), Some(Ok(RequestEvent::Head(_)))));
    drop(events);
    assert!(!decoder.is_idle(), "its End is still to come");
    assert_eq!(
        decoder.buffered_len(),
        9,
        "the rest, kept for the next feed"
    );
    let mut events = decoder.feed(b"");
    assert!(matches!(events.next(), Some(Ok(RequestEvent::End { .. }))));
    assert!(events.next().is_none());
    drop(events);
    assert!(!decoder.is_idle(), "the next request has begun");
    assert!(!decoder.is_closed());

    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    while events.next().is_some() {}
    drop(events);
    assert!(decoder.is_idle() && !decoder.is_closed());

    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(b"GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n");
    while events.next().is_some() {}
    drop(events);
    assert!(decoder.is_closed() && !decoder.is_idle() && !decoder.has_failed());
    assert_eq!(
        decoder.buffered_len(),
        0,
        "nothing is kept after the last request"
    );
}

#[test]
fn a_slow_head_is_parsed_in_linear_time() {
    // 100 header lines a byte at a time: httparse runs only at the request line and the end.
    let mut input = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..98 {
        input.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(200)).as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    let (events, _) = run(&Limits::default(), &input, 1, usize::MAX);
    assert_eq!(head(&events, 0).headers.len(), 99);
}

/// The heads of one read share one copy of their bytes, which outlives the next reads; the
/// decoder keeps none of it once it waits between requests.
#[test]
fn the_heads_of_one_read_share_one_block_that_outlives_the_next_reads() {
    let mut decoder = RequestDecoder::new();
    let batch = |tag: &str| {
        (0..3)
            .map(|i| format!("GET /{tag}{i} HTTP/1.1\r\nHost: h{tag}{i}\r\n\r\n"))
            .collect::<String>()
    };
    let mut heads = Vec::new();
    for tag in ["a", "b"] {
        let wire = batch(tag);
        let mut events = decoder.feed(wire.as_bytes());
        while let Some(event) = events.next() {
            if let RequestEvent::Head(head) = event.unwrap() {
                heads.push(head);
            }
        }
    }
    assert_eq!(heads.len(), 6);
    let host = |head: &RequestHead| head.headers[http::header::HOST].as_bytes().as_ptr() as usize;
    for (i, head) in heads.iter().enumerate() {
        let name = format!("{}{}", ["a", "b"][i / 3], i % 3);
        assert_eq!(head.uri.path(), format!("/{name}"));
        assert_eq!(
            head.headers[http::header::HOST],
            format!("h{name}").as_str()
        );
    }
    // Within a read, each copy follows the one before in the same block, byte for byte.
    let head_len = "GET /a0 HTTP/1.1\r\nHost: ha0\r\n\r\n".len();
    for read in heads.chunks(3) {
        assert_eq!(host(&read[1]) - host(&read[0]), head_len);
        assert_eq!(host(&read[2]) - host(&read[1]), head_len);
    }
    assert!(decoder.is_idle());
    assert_eq!(decoder.parser_room(), 0, "an idle decoder keeps no arena");
}

/// A keep-alive request's head goes into the block the previous head used, once that head
/// was dropped: the decoders of a thread share their released blocks, so neither a request
/// nor an idle connection costs an allocation for its head.
#[test]
fn released_arena_blocks_are_reused_by_the_next_head() {
    fn host_of_next_head(decoder: &mut RequestDecoder, name: &str) -> usize {
        let request = format!("GET /{name} HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut events = decoder.feed(request.as_bytes());
        let Some(Ok(RequestEvent::Head(head))) = events.next() else {
            panic!("a head");
        };
        assert!(matches!(events.next(), Some(Ok(RequestEvent::End { .. }))));
        assert_eq!(head.uri.path(), format!("/{name}"));
        head.headers[http::header::HOST].as_bytes().as_ptr() as usize
    }
    let mut decoder = RequestDecoder::new();
    let mut other = RequestDecoder::new();
    let first = host_of_next_head(&mut decoder, "a");
    assert_eq!(decoder.parser_room(), 0, "released between requests");
    assert_eq!(
        host_of_next_head(&mut decoder, "b"),
        first,
        "the same block"
    );
    assert_eq!(
        host_of_next_head(&mut other, "c"),
        first,
        "another connection's"
    );
    // A head still held keeps its block: the next head goes elsewhere.
    let mut events = decoder.feed(b"GET /d HTTP/1.1\r\nHost: h\r\n\r\n");
    let Some(Ok(RequestEvent::Head(held))) = events.next() else {
        panic!("a head");
    };
    drop(events);
    let held_host = held.headers[http::header::HOST].as_bytes().as_ptr() as usize;
    assert_eq!(held_host, first);
    assert_ne!(
        host_of_next_head(&mut other, "e"),
        first,
        "the block is in use"
    );
    drop(held);
}

/// Bytes after a request that ends the connection are dropped, and the decoder says so.
#[test]
fn bytes_after_the_last_request_are_dropped_and_reported() {
    let last = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(last);
    while events.next().is_some() {}
    drop(events);
    assert!(decoder.is_closed() && !decoder.has_dropped_input());
    // Whatever comes later, in another read or the same one, is dropped and reported.
    decoder.feed(b"GET / HTTP/1.1\r\n");
    assert!(decoder.has_dropped_input() && decoder.buffered_len() == 0);
    let mut decoder = RequestDecoder::new();
    let mut wire = last.to_vec();
    wire.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
    let mut events = decoder.feed(&wire);
    while events.next().is_some() {}
    drop(events);
    assert!(decoder.is_closed() && decoder.has_dropped_input());
}
