//! The response encoder's exact output, and a chunked body it writes read back by the decoder.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use super::super::*;

fn request(wire: &[u8]) -> RequestHead {
    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(wire);
    match events.next() {
        Some(Ok(RequestEvent::Head(head))) => head,
        other => panic!("no head: {other:?}"),
    }
}

fn text(out: &[u8]) -> &str {
    std::str::from_utf8(out).unwrap()
}

fn plain() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers
}

const DATE: u64 = 784_111_777;

#[test]
fn a_small_fixed_response() {
    let date = HttpDate::from_unix_secs(DATE);
    let mut headers = plain();
    // Framing headers from the caller are replaced by the encoder's own.
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    headers.insert(header::DATE, HeaderValue::from_static("yesterday"));
    let mut out = Vec::with_capacity(256);
    let capacity = out.capacity();
    let mut body = ResponseEncoder::new(StatusCode::OK, BodyKind::Length(13))
        .date(&date)
        .write(&headers, &mut out);
    body.data(b"Hello, World!", &mut out).unwrap();
    body.finish(&mut out).unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
         content-length: 13\r\n\r\nHello, World!"
    );
    assert_eq!(
        out.capacity(),
        capacity,
        "written into the caller's buffer only"
    );
}

#[test]
fn a_chunked_body_with_its_last_chunk_and_trailers() {
    let mut out = Vec::new();
    let mut body =
        ResponseEncoder::new(StatusCode::OK, BodyKind::Chunked).write(&plain(), &mut out);
    body.data(b"hello", &mut out).unwrap();
    body.data(b"", &mut out).unwrap();
    body.data(&[b'x'; 26], &mut out).unwrap();
    let mut trailers = HeaderMap::new();
    trailers.insert("x-sum", HeaderValue::from_static("1"));
    body.finish_with_trailers(&trailers, &mut out).unwrap();
    let expected = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n\
         5\r\nhello\r\n1a\r\n{}\r\n0\r\nx-sum: 1\r\n\r\n",
        "x".repeat(26)
    );
    assert_eq!(text(&out), expected);
}

#[test]
fn the_chunk_encoder_and_decoder_agree() {
    let mut wire = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut head = Vec::new();
    let mut body =
        ResponseEncoder::new(StatusCode::OK, BodyKind::Chunked).write(&HeaderMap::new(), &mut head);
    let pieces: Vec<Vec<u8>> = (0..40)
        .map(|n| vec![b'a' + (n % 26) as u8; n * 7])
        .collect();
    for piece in &pieces {
        body.data(piece, &mut wire).unwrap();
    }
    body.finish(&mut wire).unwrap();
    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(&wire);
    let mut got = Vec::new();
    while let Some(event) = events.next() {
        if let RequestEvent::Data(data) = event.unwrap() {
            got.extend_from_slice(data);
        }
    }
    drop(events);
    assert_eq!(got, pieces.concat());
    assert!(decoder.is_idle());
}

#[test]
fn start_data_frames_bytes_the_caller_sends_itself() {
    let mut out = Vec::new();
    let mut body =
        ResponseEncoder::new(StatusCode::OK, BodyKind::Chunked).write(&HeaderMap::new(), &mut out);
    out.clear();
    assert!(body.start_data(300, &mut out).unwrap());
    body.end_data(&mut out);
    assert_eq!(out, b"12c\r\n\r\n");
}

#[test]
fn head_keeps_the_headers_of_get_without_the_body() {
    let get = request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let head = request(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut answers = Vec::new();
    for req in [&get, &head] {
        let mut out = Vec::new();
        let mut body = ResponseEncoder::new(StatusCode::OK, BodyKind::Length(5))
            .answering(req)
            .write(&plain(), &mut out);
        assert_eq!(body.sends_body(), req.method == Method::GET);
        body.data(b"hello", &mut out).unwrap();
        body.finish(&mut out).unwrap();
        answers.push(out);
    }
    assert_eq!(answers[0], [&answers[1][..], b"hello"].concat());
    assert!(text(&answers[1]).contains("content-length: 5\r\n"));
}

#[test]
fn no_content_has_no_framing_headers_and_no_body() {
    for kind in [BodyKind::Length(5), BodyKind::Chunked] {
        let mut out = Vec::new();
        let mut body =
            ResponseEncoder::new(StatusCode::NO_CONTENT, kind).write(&HeaderMap::new(), &mut out);
        body.data(b"hello", &mut out).unwrap();
        body.finish(&mut out).unwrap();
        assert_eq!(text(&out), "HTTP/1.1 204 No Content\r\n\r\n");
    }
}

#[test]
fn not_modified_keeps_the_length_but_sends_no_body() {
    let mut out = Vec::new();
    let mut body = ResponseEncoder::new(StatusCode::NOT_MODIFIED, BodyKind::Length(5))
        .write(&HeaderMap::new(), &mut out);
    body.data(b"hello", &mut out).unwrap();
    body.finish(&mut out).unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n"
    );
    let mut out = Vec::new();
    let body = ResponseEncoder::new(StatusCode::NOT_MODIFIED, BodyKind::Chunked)
        .write(&HeaderMap::new(), &mut out);
    body.finish(&mut out).unwrap();
    assert_eq!(text(&out), "HTTP/1.1 304 Not Modified\r\n\r\n");
}

#[test]
fn connection_close_when_the_request_or_the_server_says_so() {
    let closing = request(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let body = ResponseEncoder::new(StatusCode::OK, BodyKind::Length(0))
        .answering(&closing)
        .write(&HeaderMap::new(), &mut out);
    assert!(!body.keep_alive());
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );

    let mut out = Vec::new();
    let body = ResponseEncoder::new(StatusCode::BAD_REQUEST, BodyKind::Length(0))
        .close(true)
        .write(&HeaderMap::new(), &mut out);
    assert!(!body.keep_alive());
    assert!(text(&out).ends_with("connection: close\r\n\r\n"));
    // A request that closes is never reopened by the server.
    let body = ResponseEncoder::new(StatusCode::OK, BodyKind::Length(0))
        .answering(&closing)
        .close(false)
        .write(&HeaderMap::new(), &mut Vec::new());
    assert!(!body.keep_alive());
}

#[test]
fn http10_keep_alive_is_echoed_and_a_stream_ends_with_the_connection() {
    let kept = request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(kept.version, Version::HTTP_10);
    let mut out = Vec::new();
    let body = ResponseEncoder::new(StatusCode::OK, BodyKind::Length(0))
        .answering(&kept)
        .write(&HeaderMap::new(), &mut out);
    assert!(body.keep_alive());
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
    );

    let mut out = Vec::new();
    let mut body = ResponseEncoder::new(StatusCode::OK, BodyKind::Chunked)
        .answering(&kept)
        .write(&HeaderMap::new(), &mut out);
    assert!(
        !body.keep_alive(),
        "HTTP/1.0 has no chunked coding: the close ends the body"
    );
    body.data(b"raw", &mut out).unwrap();
    body.finish(&mut out).unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nraw"
    );
}

#[test]
fn a_body_must_match_its_content_length() {
    let mut out = Vec::new();
    let mut body = ResponseEncoder::new(StatusCode::OK, BodyKind::Length(3))
        .write(&HeaderMap::new(), &mut out);
    let before = out.len();
    let error = body.data(b"four", &mut out).unwrap_err();
    assert_eq!(
        error,
        HttpError::BodyLengthMismatch {
            declared: 3,
            written: 4
        }
    );
    assert!(!error.is_peer_fault());
    assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(out.len(), before, "nothing written");
    body.data(b"ab", &mut out).unwrap();
    let error = body.finish(&mut out).unwrap_err();
    assert_eq!(
        error,
        HttpError::BodyLengthMismatch {
            declared: 3,
            written: 2
        }
    );
    assert!(error.to_string().starts_with("local error"));
}

#[test]
fn continue_and_unknown_reasons() {
    let mut out = Vec::new();
    write_continue(&mut out);
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    let mut out = Vec::new();
    let status = StatusCode::from_u16(599).unwrap();
    let body = ResponseEncoder::new(status, BodyKind::Length(0)).write(&HeaderMap::new(), &mut out);
    body.finish(&mut out).unwrap();
    assert_eq!(text(&out), "HTTP/1.1 599 \r\ncontent-length: 0\r\n\r\n");
}

#[test]
fn dates_are_imf_fixdate() {
    let cases = [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (DATE, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
        (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ];
    for (secs, expected) in cases {
        assert_eq!(text(HttpDate::from_unix_secs(secs).as_bytes()), expected);
    }
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(DATE);
    assert_eq!(
        HttpDate::from_system_time(time),
        HttpDate::from_unix_secs(DATE)
    );
}

#[test]
fn errors_say_status_and_fault() {
    let error = HttpError::ContentLengthWithTransferEncoding;
    assert_eq!(
        error.to_string(),
        "400 Bad Request: both Content-Length and Transfer-Encoding"
    );
    assert!(error.is_peer_fault());
}
