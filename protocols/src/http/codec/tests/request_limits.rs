//! The request decoder's limits: each at its edge (exactly at it passes, one more is
//! refused) and past it, the empty lines before a request counted against the head's, a head
//! judged the same whether read whole or in pieces, and a slow peer's head parsed in linear
//! time. Each input fed in every chunk size (the harness of
//! `request_decode.rs`).

use http::StatusCode;

use super::super::*;
use super::request_decode::*;

fn small() -> Limits {
    Limits::default()
        .with_max_head_len(200)
        .with_max_target_len(40)
        .with_max_headers(4)
        .with_max_body_len(10)
        .with_max_chunk_extensions_len(8)
}

/// A request of 27 bytes after `empty` bare LFs.
fn after_empty_lines(empty: usize) -> Vec<u8> {
    let mut input = b"\n".repeat(empty);
    input.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    input
}

#[test]
fn empty_lines_before_a_request_count_against_the_head_limit() {
    // 173 + 27 bytes: exactly the head limit (200), in every chunk size. The empty lines
    // alone are longer than a request line may be (40 + 64), which does not matter.
    let events = decode_with(&small(), &after_empty_lines(173));
    assert_eq!(head(&events, 0).line, "GET /");
    let error = refused_with(&small(), &after_empty_lines(174));
    assert_eq!(error, HttpError::HeadTooLarge { max: 200 });
    assert_eq!(error.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // Without end: refused at the limit, holding no more than it.
    let endless = b"\r\n".repeat(1000);
    assert_eq!(
        refused_with(&small(), &endless),
        HttpError::HeadTooLarge { max: 200 }
    );
    // And between two requests on one connection, the same.
    let mut two = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    two.extend_from_slice(&after_empty_lines(174));
    let events = decode_with(&small(), &two);
    assert_eq!(head(&events, 0).line, "GET /1");
    assert_eq!(
        events.last(),
        Some(&Ev::Error(HttpError::HeadTooLarge { max: 200 }))
    );
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
fn a_head_exactly_at_its_limits_passes_one_more_is_431() {
    // 200 bytes with 4 header lines: the most `small()` allows of both.
    let exact = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: {}\r\n\r\n",
        "v".repeat(200 - 44)
    );
    assert_eq!(exact.len(), 200);
    assert_eq!(decode_with(&small(), exact.as_bytes()).len(), 2);
    let over = exact.replacen("C: ", "C: v", 1);
    assert_eq!(
        refused_with(&small(), over.as_bytes()),
        HttpError::HeadTooLarge { max: 200 }
    );
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

/// The events of `input` in a few chunk sizes (for inputs too long to try every size).
fn decode_some_ways(limits: &Limits, input: &[u8]) -> Vec<Ev> {
    let (expected, _) = run(limits, input, input.len(), usize::MAX);
    for size in [1, 2, 3, 61, 512] {
        for budget in [1, usize::MAX] {
            assert_eq!(run(limits, input, size, budget).0, expected, "size {size}");
        }
    }
    expected
}

#[test]
fn max_headers_above_the_stack_slots_is_honoured() {
    let head = |lines: usize| {
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        head.extend_from_slice(&b"X: v\r\n".repeat(lines - 1));
        head.extend_from_slice(b"\r\n");
        head
    };
    let limits = Limits::default().with_max_headers(150);
    let events = decode_some_ways(&limits, &head(150));
    assert_eq!(super::request_decode::head(&events, 0).headers.len(), 150);
    let events = decode_some_ways(&limits, &head(151));
    assert_eq!(
        events.last(),
        Some(&Ev::Error(HttpError::TooManyHeaders { max: 150 }))
    );
    let events = decode_some_ways(&Limits::default(), &head(101));
    assert_eq!(
        events.last(),
        Some(&Ev::Error(HttpError::TooManyHeaders { max: 100 })),
        "the default"
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
