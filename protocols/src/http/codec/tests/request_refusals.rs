//! What the request decoder refuses, and with which status: request smuggling attempts,
//! malformed heads, targets in a form their method does not allow, other versions, `Host`.
//! Each input fed in every chunk size (the harness of `request_decode.rs`).

use http::StatusCode;

use super::super::*;
use super::request_decode::*;

#[test]
fn each_target_form_goes_with_its_methods() {
    // RFC 9112 §3.2: origin-form and absolute-form for any method but CONNECT,
    // authority-form for CONNECT only, asterisk-form for OPTIONS only.
    for (target, line) in [
        ("OPTIONS *", "OPTIONS *"),
        ("OPTIONS /x", "OPTIONS /x"),
        ("CONNECT example.org:443", "CONNECT example.org:443"),
        ("CONNECT [::1]:8080", "CONNECT [::1]:8080"),
        ("GET http://b/x", "GET http://b/x"),
        ("GET HTTPS://b", "GET https://b/"),
        ("POST https://b:8443/x?y", "POST https://b:8443/x?y"),
        ("GET /a?b", "GET /a?b"),
        ("GET //double", "GET //double"),
    ] {
        let input = format!("{target} HTTP/1.1\r\nHost: b\r\n\r\n");
        assert_eq!(head(&decode(input.as_bytes()), 0).line, line, "{target}");
    }
}

#[test]
fn a_target_in_the_wrong_form_for_its_method_is_400() {
    for target in [
        "GET index.txt",
        "GET evil.com:80",
        "GET http:",
        "GET http:x",
        "GET http:///x",
        "GET ftp://b/x",
        "GET http://user@b/x",
        "GET ?x",
        "GET *",
        "POST *",
        "OPTIONS index.txt",
        "CONNECT /x",
        "CONNECT http://b:443/",
        "CONNECT example.org",
        "CONNECT user@example.org:443",
        "CONNECT *",
    ] {
        let input = format!("{target} HTTP/1.1\r\nHost: b\r\n\r\n");
        let error = refused(input.as_bytes());
        assert!(
            matches!(
                error,
                HttpError::InvalidTarget | HttpError::MalformedHead("invalid request line")
            ),
            "{target}: {error:?}"
        );
        assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{target}");
    }
    // The `http` crate reads these as an authority: only the form check refuses them.
    for target in ["GET index.txt", "GET evil.com:80", "GET http:"] {
        let input = format!("{target} HTTP/1.1\r\nHost: b\r\n\r\n");
        assert_eq!(
            refused(input.as_bytes()),
            HttpError::InvalidTarget,
            "{target}"
        );
    }
}

// Request smuggling: every ambiguity about where a request ends is a 400.

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
        // `:` is the byte after `9`: not a digit.
        "Content-Length: 1:",
        "Content-Length: :",
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
        // Malformed codings are 400 before any other coding could make it 501: an empty
        // name, a byte that is not a token's, parameters on chunked.
        ";q=1, chunked",
        "g(z, chunked",
        "gz@p, chunked",
        "chunked ;q=1",
        "chunked;",
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
        "gzip ; q=1 , chunked",
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
    assert_eq!(
        refused(input),
        HttpError::TransferEncodingInHttp10 { what: "request" }
    );
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
        // A chunk-size line's CR not followed by LF, after the size and after an extension.
        "5\rXhello\r\n0\r\n\r\n",
        "5;ext\r5hello\r\n0\r\n\r\n",
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
        b"\r\n\nGET / HTTP/2.0\r\nHost: a\r\n\r\n",
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
