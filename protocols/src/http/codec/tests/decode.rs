//! The decoder: each input fed in every chunk size from 1 byte up, and with a consumer that
//! takes one event per feed (as a paused server does): the same events and the same error.

use http::{StatusCode, Version};

use super::super::*;

/// An owned event, with the body's pieces joined (reads split them differently).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Head(Head),
    Body(Vec<u8>),
    End(Vec<(String, String)>),
    Error(HttpError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    line: String,
    version: Version,
    headers: Vec<(String, String)>,
    body: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
}

fn pairs(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn push(events: &mut Vec<Ev>, event: Result<RequestEvent<'_>, HttpError>) {
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

fn run(limits: &Limits, input: &[u8], size: usize, budget: usize) -> (Vec<Ev>, RequestDecoder) {
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
fn decode_with(limits: &Limits, input: &[u8]) -> Vec<Ev> {
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

fn decode(input: &[u8]) -> Vec<Ev> {
    decode_with(&Limits::default(), input)
}

/// The error `input` ends with, after every event before it.
fn refused_with(limits: &Limits, input: &[u8]) -> HttpError {
    match decode_with(limits, input).pop() {
        Some(Ev::Error(error)) => error,
        other => panic!(
            "{:?} was not refused: {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn refused(input: &[u8]) -> HttpError {
    refused_with(&Limits::default(), input)
}

fn status(input: &[u8]) -> StatusCode {
    let error = refused(input);
    assert!(error.is_peer_fault());
    error.status()
}

fn bodies(events: &[Ev]) -> Vec<Vec<u8>> {
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

fn head(events: &[Ev], n: usize) -> &Head {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Head(h) => Some(h),
            _ => None,
        })
        .nth(n)
        .expect("a head")
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
fn other_target_forms_parse() {
    let events = decode(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nCONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\nGET http://b/x HTTP/1.1\r\nHost: b\r\n\r\n");
    assert_eq!(head(&events, 0).line, "OPTIONS *");
    assert_eq!(head(&events, 1).line, "CONNECT example.org:443");
    assert_eq!(head(&events, 2).line, "GET http://b/x");
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

// Request smuggling: every ambiguity about where a request ends is a 400.

const POST: &str = "POST / HTTP/1.1\r\nHost: a\r\n";

fn post(rest: &str) -> Vec<u8> {
    format!("{POST}{rest}").into_bytes()
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    let input = post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(
        refused(&input),
        HttpError::ContentLengthWithTransferEncoding
    );
    let input = post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n");
    assert_eq!(status(&input), StatusCode::BAD_REQUEST);
}

#[test]
fn bad_content_lengths_are_400() {
    for value in [
        "Content-Length: 3\r\nContent-Length: 4",
        "Content-Length: 3, 4",
        "Content-Length: 3,",
        "Content-Length: ,3",
        "Content-Length: +3",
        "Content-Length: -3",
        "Content-Length: 3a",
        "Content-Length: 0x3",
        "Content-Length: 3 3",
        "Content-Length: ",
        "Content-Length: 18446744073709551616",
        "Content-Length: 99999999999999999999999",
    ] {
        let input = post(&format!("{value}\r\n\r\nabc"));
        assert_eq!(refused(&input), HttpError::InvalidContentLength, "{value}");
        assert_eq!(status(&input), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn transfer_encoding_not_ending_in_one_chunked_is_400() {
    for value in [
        "chunked, gzip",
        "gzip",
        "identity",
        "chunked, chunked",
        "chunked;q=1",
        "chunked\r\nTransfer-Encoding: gzip",
        "\"chunked\"",
        "",
    ] {
        let input = post(&format!("Transfer-Encoding: {value}\r\n\r\n0\r\n\r\n"));
        assert_eq!(refused(&input), HttpError::ChunkedNotLast, "{value}");
        assert_eq!(status(&input), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn an_unknown_coding_before_chunked_is_501() {
    for value in [
        "gzip, chunked",
        "x-custom;p=1, chunked",
        "identity\r\nTransfer-Encoding: chunked",
    ] {
        let input = post(&format!("Transfer-Encoding: {value}\r\n\r\n0\r\n\r\n"));
        assert_eq!(
            refused(&input),
            HttpError::UnsupportedTransferCoding,
            "{value}"
        );
        assert_eq!(status(&input), StatusCode::NOT_IMPLEMENTED);
    }
}

#[test]
fn transfer_encoding_in_http10_is_400() {
    let input = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(refused(input), HttpError::TransferEncodingInHttp10);
}

#[test]
fn malformed_header_lines_are_400() {
    for line in [
        &b"X-Folded: a\r\n  continued"[..],
        b"X-Space : a",
        b"X-Tab\t: a",
        b" Leading: a",
        b"X-Cr: a\rb",
        b"X-Nul: a\0b",
        b"X-Ctl: a\x01b",
        b"X-Del: a\x7fb",
        b"X\0Name: a",
        b"X\x01Name: a",
        b"X(Paren): a",
        b"No-Colon",
        b": empty name",
    ] {
        let mut input = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"\r\n\r\n");
        let error = refused(&input);
        assert!(
            matches!(error, HttpError::MalformedHead(_)),
            "{line:?}: {error:?}"
        );
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn malformed_request_lines_are_400() {
    for line in [
        &b"GET  / HTTP/1.1"[..],
        b"GET / HTTP/1.1 ",
        b"GET /a b HTTP/1.1",
        b"G(T / HTTP/1.1",
        b"GET / http/1.1",
        b"GET / HTTP/1.1x",
        b"GET /\x01 HTTP/1.1",
        b" GET / HTTP/1.1",
    ] {
        let mut input = line.to_vec();
        input.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        assert_eq!(status(&input), StatusCode::BAD_REQUEST, "{line:?}");
    }
}

#[test]
fn bad_chunk_sizes_are_400() {
    for chunks in [
        "g\r\n",
        "\r\n",
        " 5\r\n",
        "5 \r\n",
        "-5\r\n",
        "0x5\r\n",
        "5\n",
        "5\rx",
        "10000000000000000\r\n",
        "00000000000000001\r\n",
        "5;a\x01\r\n",
        "5;a\nhello",
    ] {
        let input = post(&format!(
            "Transfer-Encoding: chunked\r\n\r\n{chunks}hello\r\n0\r\n\r\n"
        ));
        let error = refused(&input);
        assert!(
            matches!(
                error,
                HttpError::InvalidChunkSize | HttpError::BadChunkTerminator
            ),
            "{chunks:?}: {error:?}"
        );
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn bad_chunk_terminators_are_400() {
    for chunks in [
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\rX0\r\n\r\n",
    ] {
        let input = post(&format!("Transfer-Encoding: chunked\r\n\r\n{chunks}"));
        assert_eq!(refused(&input), HttpError::BadChunkTerminator, "{chunks:?}");
    }
}

#[test]
fn the_largest_chunk_size_is_413_not_an_overflow() {
    let input = post("Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n");
    assert_eq!(
        refused(&input),
        HttpError::BodyTooLarge {
            max: Limits::DEFAULT_MAX_BODY_LEN
        }
    );
}

#[test]
fn malformed_trailers_are_400() {
    let input = post("Transfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: x\r\n\r\n");
    assert!(matches!(refused(&input), HttpError::MalformedTrailers(_)));
}

#[test]
fn other_versions_are_505() {
    for line in [
        &b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
        b"GET / HTTP/0.9\r\n\r\n",
        b"GET / HTTP/3\r\n\r\n",
        b"GET /\r\n\r\n",
    ] {
        assert_eq!(refused(line), HttpError::UnsupportedVersion, "{line:?}");
        assert_eq!(status(line), StatusCode::HTTP_VERSION_NOT_SUPPORTED);
    }
}

#[test]
fn host_is_required_once_in_http11() {
    assert_eq!(refused(b"GET / HTTP/1.1\r\n\r\n"), HttpError::MissingHost);
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        HttpError::RepeatedHost
    );
    assert_eq!(
        refused(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
        HttpError::RepeatedHost
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"),
        HttpError::InvalidHost
    );
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
        HttpError::InvalidHost
    );
    for ok in [
        &b"Host: \r\n"[..],
        b"Host: [::1]:8080\r\n",
        b"Host: 127.0.0.1\r\n",
    ] {
        let mut input = b"GET / HTTP/1.1\r\n".to_vec();
        input.extend_from_slice(ok);
        input.extend_from_slice(b"\r\n");
        assert_eq!(decode(&input).len(), 2);
    }
    assert_eq!(
        decode(b"GET / HTTP/1.0\r\n\r\n").len(),
        2,
        "HTTP/1.0 needs no Host"
    );
}

fn small() -> Limits {
    Limits::default()
        .with_max_head_len(200)
        .with_max_target_len(40)
        .with_max_headers(4)
        .with_max_body_len(10)
        .with_max_chunk_extensions_len(8)
}

#[test]
fn an_over_long_target_is_414() {
    let target = "/".repeat(41);
    for input in [
        format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n"),
        format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(150)),
        format!("GET /{}", "x".repeat(150)),
    ] {
        let error = refused_with(&small(), input.as_bytes());
        assert_eq!(error, HttpError::TargetTooLong { max: 40 });
        assert_eq!(error.status(), StatusCode::URI_TOO_LONG);
    }
    let input = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(39));
    assert_eq!(decode_with(&small(), input.as_bytes()).len(), 2);
}

#[test]
fn too_many_or_too_large_headers_are_431() {
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let error = refused_with(&small(), many.as_bytes());
    assert_eq!(error, HttpError::TooManyHeaders { max: 4 });
    assert_eq!(error.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let large = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nA: {}\r\n\r\n",
        "v".repeat(200)
    );
    let error = refused_with(&small(), large.as_bytes());
    assert_eq!(error, HttpError::HeadTooLarge { max: 200 });
    assert_eq!(error.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // Refused before its end arrives: a peer cannot make the decoder hold more.
    let endless = format!("GET / HTTP/1.1\r\nHost: a\r\nA: {}", "v".repeat(300));
    assert_eq!(
        refused_with(&small(), endless.as_bytes()),
        HttpError::HeadTooLarge { max: 200 }
    );
}

#[test]
fn a_body_over_the_limit_is_413() {
    let error = refused_with(&small(), &post("Content-Length: 11\r\n\r\n"));
    assert_eq!(error, HttpError::BodyTooLarge { max: 10 });
    assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let chunked = post("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n");
    assert_eq!(
        refused_with(&small(), &chunked),
        HttpError::BodyTooLarge { max: 10 }
    );
    let events = decode_with(
        &small(),
        &post("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"),
    );
    assert_eq!(bodies(&events), [b"helloworld".to_vec()]);
}

#[test]
fn chunk_extensions_are_bounded_over_the_whole_body() {
    let ok = post("Transfer-Encoding: chunked\r\n\r\n1;abc\r\nx\r\n1;def\r\ny\r\n0\r\n\r\n");
    assert_eq!(bodies(&decode_with(&small(), &ok)), [b"xy".to_vec()]);
    let over = post("Transfer-Encoding: chunked\r\n\r\n1;abcd\r\nx\r\n1;efgh\r\ny\r\n0\r\n\r\n");
    let error = refused_with(&small(), &over);
    assert_eq!(error, HttpError::ChunkExtensionsTooLong { max: 8 });
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn trailers_are_bounded_like_the_head() {
    let many =
        post("Transfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n");
    assert_eq!(refused_with(&small(), &many), HttpError::TrailersTooLarge);
    let large = post(&format!(
        "Transfer-Encoding: chunked\r\n\r\n0\r\nA: {}\r\n\r\n",
        "v".repeat(300)
    ));
    let error = refused_with(&small(), &large);
    assert_eq!(error, HttpError::TrailersTooLarge);
    assert_eq!(error.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[test]
fn a_head_is_judged_the_same_whether_it_came_whole_or_in_pieces() {
    // Over both the header count and the head length: the length is judged first, since a
    // head arriving in pieces is refused once it passes the limit, before its end is seen.
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "Host: a\r\n".repeat(30));
    assert_eq!(
        refused_with(&small(), many.as_bytes()),
        HttpError::HeadTooLarge { max: 200 }
    );
    // A bad byte in a head whose end has not come, and bytes after a request that do not end
    // a line yet: nothing is judged before a line's end, however the bytes were read.
    assert_eq!(decode(b"GET / HTTP/1.1\r\nHo\x01st: a\r\n"), []);
    let mut after = post("Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    after.extend_from_slice(b"rh\xa7\x91");
    assert_eq!(decode(&after).len(), 2);
    // A consumer that stops after each event leaves the next head's bytes buffered: they are
    // judged as far as the scan has reached, as a head arriving whole is (here the bad value
    // is never parsed, since the head passes the limit before its end).
    let mut pipelined =
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nX: a\rb\r\n".to_vec();
    pipelined.extend_from_slice(format!("Y: {}\r\n\r\n", "v".repeat(200)).as_bytes());
    assert_eq!(
        refused_with(&small(), &pipelined),
        HttpError::HeadTooLarge { max: 200 }
    );
    // A request line must end within the target limit and 64 bytes, even when it arrives
    // whole (here a long method with a short target; `small` allows 40 + 64).
    let long_method = format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(110));
    assert_eq!(
        refused_with(&small(), long_method.as_bytes()),
        HttpError::MalformedHead("request line too long")
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
