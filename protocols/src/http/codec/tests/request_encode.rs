//! The request encoder's exact bytes: the head with its framing header, and a body framed by
//! the encoder it returns.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method};

use super::super::*;

fn host() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("example.org"));
    // The caller's framing headers are dropped: the framing is the encoder's.
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
    headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
    headers
}

#[test]
fn the_request_head_carries_its_framing() {
    let mut out = Vec::new();
    let body =
        RequestEncoder::new(&Method::GET, "/a?b", BodyKind::Length(0)).write(&host(), &mut out);
    body.finish(&mut out).unwrap();
    assert_eq!(out, b"GET /a?b HTTP/1.1\r\nhost: example.org\r\n\r\n");
    out.clear();
    let body =
        RequestEncoder::new(&Method::POST, "/", BodyKind::Length(0)).write(&host(), &mut out);
    body.finish(&mut out).unwrap();
    assert_eq!(
        out,
        b"POST / HTTP/1.1\r\nhost: example.org\r\ncontent-length: 0\r\n\r\n"
    );
    out.clear();
    let mut body =
        RequestEncoder::new(&Method::PUT, "/", BodyKind::Chunked).write(&host(), &mut out);
    body.data(b"hello", &mut out).unwrap();
    body.finish(&mut out).unwrap();
    assert_eq!(
        out,
        &b"PUT / HTTP/1.1\r\nhost: example.org\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..]
    );
}

#[test]
fn a_request_body_must_match_its_content_length() {
    let mut out = Vec::new();
    let mut body =
        RequestEncoder::new(&Method::PUT, "/", BodyKind::Length(3)).write(&host(), &mut out);
    assert!(body.sends_body());
    let error = body.data(b"four", &mut out).unwrap_err();
    assert_eq!(
        error,
        HttpError::BodyLengthMismatch {
            declared: 3,
            written: 4
        }
    );
    assert_eq!(
        error.to_string(),
        "local error: body of 4 bytes does not match its Content-Length 3"
    );
    body.data(b"ab", &mut out).unwrap();
    assert!(body.finish(&mut out).is_err(), "short of its length");
}

#[test]
fn connection_close_is_reported_by_the_body_encoder() {
    let mut headers = host();
    let body = RequestEncoder::new(&Method::GET, "/", BodyKind::Length(0))
        .write(&headers, &mut Vec::new());
    assert!(body.keep_alive());
    headers.append(
        header::CONNECTION,
        HeaderValue::from_static("Keep-Alive, Close"),
    );
    let body = RequestEncoder::new(&Method::GET, "/", BodyKind::Length(0))
        .write(&headers, &mut Vec::new());
    assert!(!body.keep_alive());
}

#[test]
fn the_request_decoder_reads_what_the_encoder_writes() {
    let mut wire = Vec::new();
    let mut body =
        RequestEncoder::new(&Method::POST, "/up?x=1", BodyKind::Chunked).write(&host(), &mut wire);
    body.data(b"hello ", &mut wire).unwrap();
    body.data(b"world", &mut wire).unwrap();
    body.finish(&mut wire).unwrap();
    let mut decoder = RequestDecoder::new();
    let mut events = decoder.feed(&wire);
    let Some(Ok(RequestEvent::Head(head))) = events.next() else {
        panic!("a head expected");
    };
    assert_eq!(
        (head.method, head.uri.to_string()),
        (Method::POST, "/up?x=1".into())
    );
    assert_eq!(head.body, BodyKind::Chunked);
    let mut got = Vec::new();
    while let Some(Ok(RequestEvent::Data(data))) = events.next() {
        got.extend_from_slice(data);
    }
    assert_eq!(got, b"hello world");
}
