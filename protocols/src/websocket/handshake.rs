//! The opening handshake (RFC 6455 §4): the server's checks of an upgrade request and its
//! answer; the client's request and its checks of the answer.

use std::fmt;

use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

use super::sha1::{base64, is_base64_of_16_bytes, sha1};
use crate::http::codec::RequestHead;

/// The GUID a key is joined with before hashing (RFC 6455 §1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` answering `key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut joined = key.to_vec();
    joined.extend_from_slice(GUID.as_bytes());
    base64(&sha1(&joined))
}

/// A fresh `Sec-WebSocket-Key`: 16 bytes an observer cannot predict, in base64.
pub fn new_key() -> String {
    let mut bytes = [0; 16];
    for chunk in bytes.chunks_exact_mut(4) {
        chunk.copy_from_slice(&super::random_mask_key());
    }
    base64(&bytes)
}

/// Why an upgrade request is refused: answer [`status`](Refusal::status) with
/// [`headers`](Refusal::headers) and the reason as the body.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// 400, or 426 for a version other than 13.
    pub status: StatusCode,
    /// `Sec-WebSocket-Version: 13` with a 426 (RFC 6455 §4.4), else none.
    pub headers: HeaderMap,
    /// What was wrong, for the body.
    pub reason: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebSocket upgrade refused ({}): {}",
            self.status, self.reason
        )
    }
}

impl std::error::Error for Refusal {}

/// Whether the comma-separated header `name` lists `token` (case-insensitive), in any of
/// its lines.
fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Checks an upgrade request (RFC 6455 §4.2.1) and returns the `Sec-WebSocket-Accept` to
/// answer it with, or why it is refused.
pub fn check_request(head: &RequestHead) -> Result<String, Refusal> {
    let refuse = |reason| Refusal {
        status: StatusCode::BAD_REQUEST,
        headers: HeaderMap::new(),
        reason,
    };
    if head.method != Method::GET {
        return Err(refuse("a WebSocket upgrade must be a GET"));
    }
    if head.version != Version::HTTP_11 {
        return Err(refuse("a WebSocket upgrade needs HTTP/1.1"));
    }
    if !has_token(&head.headers, "upgrade", "websocket") {
        return Err(refuse("missing Upgrade: websocket"));
    }
    if !has_token(&head.headers, "connection", "upgrade") {
        return Err(refuse("missing Connection: upgrade"));
    }
    if head
        .headers
        .get("sec-websocket-version")
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut headers = HeaderMap::new();
        headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
        return Err(Refusal {
            status: StatusCode::UPGRADE_REQUIRED,
            headers,
            reason: "only WebSocket version 13 is supported",
        });
    }
    match head.headers.get("sec-websocket-key") {
        Some(key) if is_base64_of_16_bytes(key.as_bytes()) => Ok(accept_key(key.as_bytes())),
        _ => Err(refuse("Sec-WebSocket-Key is not 16 bytes in base64")),
    }
}

/// The headers of a `101 Switching Protocols` accepting an upgrade with `accept`.
pub fn response_headers(accept: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    headers.insert("connection", HeaderValue::from_static("Upgrade"));
    let accept = HeaderValue::from_str(accept).expect("base64 is a valid header value");
    headers.insert("sec-websocket-accept", accept);
    headers
}

/// A client's upgrade request for `target` (`/path?query`) on `host`, with `key`.
pub fn client_request(host: &str, target: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Why a client's handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The response head is malformed or over 16 KiB.
    Malformed,
    /// The server answered with another status than 101 (e.g. 404, or 426 for the version).
    Status(u16),
    /// The 101 lacks `Upgrade: websocket` or `Connection: upgrade`.
    NotUpgraded,
    /// `Sec-WebSocket-Accept` does not answer the key sent.
    WrongAccept,
    /// The connection ended before the response.
    Closed,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed => f.write_str("malformed handshake response"),
            HandshakeError::Status(status) => write!(f, "the server answered {status}, not 101"),
            HandshakeError::NotUpgraded => f.write_str("the 101 does not upgrade to websocket"),
            HandshakeError::WrongAccept => f.write_str("Sec-WebSocket-Accept does not match"),
            HandshakeError::Closed => f.write_str("the connection closed during the handshake"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The longest handshake response head a client reads.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Reads the server's answer at the start of `input` (RFC 6455 §4.1): `Ok(Some(n))` when it
/// is a valid 101 of `n` bytes (what follows is WebSocket frames), `Ok(None)` when it is not
/// whole yet.
pub fn check_response(input: &[u8], key: &str) -> Result<Option<usize>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() <= MAX_RESPONSE_HEAD => return Ok(None),
        _ => return Err(HandshakeError::Malformed),
    };
    if response.code != Some(101) {
        return Err(HandshakeError::Status(response.code.unwrap_or(0)));
    }
    let mut map = HeaderMap::new();
    for header in response.headers.iter() {
        let name = http::HeaderName::from_bytes(header.name.as_bytes());
        let value = HeaderValue::from_bytes(header.value);
        if let (Ok(name), Ok(value)) = (name, value) {
            map.append(name, value);
        }
    }
    if !has_token(&map, "upgrade", "websocket") || !has_token(&map, "connection", "upgrade") {
        return Err(HandshakeError::NotUpgraded);
    }
    let expected = accept_key(key.as_bytes());
    match map.get("sec-websocket-accept") {
        Some(accept) if accept.as_bytes() == expected.as_bytes() => Ok(Some(len)),
        _ => Err(HandshakeError::WrongAccept),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::codec::{RequestDecoder, RequestEvent};

    const SAMPLE: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn head(request: &str) -> RequestHead {
        let mut decoder = RequestDecoder::new();
        let mut events = decoder.feed(request.as_bytes());
        match events.next() {
            Some(Ok(RequestEvent::Head(head))) => head,
            other => panic!("not a head: {other:?}"),
        }
    }

    #[test]
    fn the_rfc_sample_key_is_accepted_with_its_sample_answer() {
        assert_eq!(
            check_request(&head(SAMPLE)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn requests_that_are_not_upgrades_are_refused_with_400_and_a_reason() {
        for (from, to) in [
            ("GET /chat", "POST /chat"),
            ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"),
            ("Upgrade: websocket", "Upgrade: h2c"),
            ("keep-alive, Upgrade", "keep-alive"),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ=="),
        ] {
            let refusal = check_request(&head(&SAMPLE.replace(from, to))).unwrap_err();
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{to}");
            assert!(!refusal.reason.is_empty());
        }
    }

    #[test]
    fn another_version_is_refused_with_426_naming_13() {
        let refusal = check_request(&head(&SAMPLE.replace("Version: 13", "Version: 8")));
        let refusal = refusal.unwrap_err();
        assert_eq!(refusal.status, StatusCode::UPGRADE_REQUIRED);
        assert_eq!(refusal.headers["sec-websocket-version"], "13");
    }

    #[test]
    fn a_client_checks_the_status_the_headers_and_the_accept_key() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check_response(ok.as_bytes(), key), Ok(Some(ok.len())));
        assert_eq!(check_response(&ok.as_bytes()[..40], key), Ok(None));
        let wrong = ok.replace("s3pP", "s3pQ");
        assert_eq!(
            check_response(wrong.as_bytes(), key),
            Err(HandshakeError::WrongAccept)
        );
        let refused = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(
            check_response(refused.as_bytes(), key),
            Err(HandshakeError::Status(426))
        );
        let plain = ok.replace("Upgrade: websocket\r\n", "");
        assert_eq!(
            check_response(plain.as_bytes(), key),
            Err(HandshakeError::NotUpgraded)
        );
    }

    #[test]
    fn fresh_keys_are_valid_and_differ() {
        let (a, b) = (new_key(), new_key());
        assert!(is_base64_of_16_bytes(a.as_bytes()));
        assert_ne!(a, b);
    }
}
