//! The HTTP/1.1 codec: the request decoder (server side), the response decoder (client side),
//! and chunked bodies through both. Round trips go through the codec's own encoders.

use ::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use ::http::{HeaderMap, Method, Version};
use torsion_protocols::http::codec::{
    BodyKind, HttpError, Limits, RequestDecoder, RequestEncoder, RequestEvent, RequestHead,
    ResponseDecoder, ResponseEncoder, ResponseEvent, ResponseFraming, ResponseHead,
};

use super::{check_stream, events_whole, pieces, Target};
use crate::chunking::{feed_all, Plan};
use crate::trace::Trace;

/// The request decoder.
pub const REQUEST: Target = Target {
    name: "http_request",
    about: "RequestDecoder: pipelined requests, every framing, limits set small",
    run: run_request,
    events: |input| events_whole(|plan, trace| decode_requests(input, plan, trace)),
    dictionary: DICTIONARY,
};

/// The response decoder.
pub const RESPONSE: Target = Target {
    name: "http_response",
    about: "ResponseDecoder (a first line `HEAD\\n` or another method picks the request's \
            method), then the connection's end",
    run: run_response,
    events: |input| {
        let (method, response) = split_method(input);
        events_whole(|plan, trace| decode_response(&method, response, plan, trace))
    },
    dictionary: DICTIONARY,
};

/// Chunked bodies, after a fixed request head and a fixed response head.
pub const CHUNKED: Target = Target {
    name: "http_chunked",
    about: "a chunked body (sizes, extensions, trailers) through both decoders",
    run: |body| {
        run_request(&[CHUNKED_REQUEST, body].concat());
        run_response(&[CHUNKED_RESPONSE, body].concat());
    },
    events: |body| {
        let request = [CHUNKED_REQUEST, body].concat();
        events_whole(|plan, trace| decode_requests(&request, plan, trace))
    },
    dictionary: DICTIONARY,
};

const CHUNKED_REQUEST: &[u8] = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
const CHUNKED_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

const DICTIONARY: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"GET ",
    b"POST ",
    b"HEAD",
    b"CONNECT a:1",
    b"OPTIONS * ",
    b"http://a/",
    b"Host: ",
    b"Content-Length: ",
    b"Transfer-Encoding: ",
    b"chunked",
    b"gzip, chunked",
    b"Connection: ",
    b"close",
    b"keep-alive",
    b"Expect: 100-continue",
    b"0\r\n\r\n",
    b";ext=\"v\"",
    b"Trailer-Field: x\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b" 101 ",
    b" 204 ",
    b" 304 ",
    b"ffffffffffffffff",
    b": ",
    b" \t",
];

/// Small limits, so that going over each is within reach of a few kilobytes of input.
fn limits() -> Limits {
    Limits::default()
        .with_max_head_len(512)
        .with_max_target_len(128)
        .with_max_headers(8)
        .with_max_body_len(1024)
        .with_max_chunk_extensions_len(64)
}

/// The most heap a decoding may hold at once, from the limits: the buffer of a head (or
/// trailer section) gathered in pieces, with the rest of a read a consumer stopped early in
/// (four times that, as for the framers: consumed bytes kept, a vector's doubling); the block
/// parsed heads are copied into (the request decoder's arena: 4 KiB, or the head if larger);
/// the head's tables (a `HeaderMap` of at most `max_headers` lines, custom names, the trailer
/// slots), allowed a fixed 4 KiB.
fn bound(limits: &Limits, piece: usize) -> usize {
    const ARENA_BLOCK: usize = 4096;
    4 * (limits.max_head_len + piece) + limits.max_head_len.max(ARENA_BLOCK) + 4096
}

fn run_request(input: &[u8]) {
    let limits = limits();
    check_stream(
        input,
        |plan| bound(&limits, plan.max_piece(input)),
        |plan, trace| decode_requests(input, plan, trace),
    );
    round_trip_requests(input);
}

fn decode_requests(input: &[u8], plan: Plan, trace: &mut Trace) {
    let mut decoder = RequestDecoder::with_limits(limits());
    feed_all(input, plan, |bytes, stop| {
        let mut events = decoder.feed(bytes);
        while let Some(event) = events.next() {
            let failed = event.is_err();
            record_request(event, trace);
            if failed {
                assert!(events.next().is_none(), "an event after an error");
            }
            if stop() {
                return true;
            }
        }
        false
    });
    trace.event(format_args!(
        "idle={} failed={} closed={} buffered={}",
        decoder.is_idle(),
        decoder.has_failed(),
        decoder.is_closed(),
        decoder.buffered_len()
    ));
}

fn record_request(event: Result<RequestEvent<'_>, HttpError>, trace: &mut Trace) {
    match event {
        Ok(RequestEvent::Head(h)) => trace.event(format_args!(
            "head {} {} {:?} {:?} keep_alive={} continue={} {:?}",
            h.method, h.uri, h.version, h.body, h.keep_alive, h.expect_continue, h.headers
        )),
        Ok(RequestEvent::Data(data)) => {
            assert!(!data.is_empty(), "an empty Data event");
            trace.data(data);
        }
        Ok(RequestEvent::End { trailers }) => trace.event(format_args!("end {trailers:?}")),
        Err(error) => record_error(&error, trace),
    }
}

fn record_error(error: &HttpError, trace: &mut Trace) {
    trace.event(format_args!(
        "error {error:?}: {} ({})",
        error,
        error.status()
    ));
}

/// A request decoded whole.
struct Request {
    head: RequestHead,
    body: Vec<u8>,
    trailers: HeaderMap,
}

/// The complete requests in `input`, and the error that stopped the decoder, if any.
fn requests(input: &[u8], limits: Limits) -> (Vec<Request>, Option<HttpError>) {
    let mut decoder = RequestDecoder::with_limits(limits);
    let mut events = decoder.feed(input);
    let (mut done, mut current) = (Vec::new(), None);
    while let Some(event) = events.next() {
        match event {
            Ok(RequestEvent::Head(head)) => current = Some((head, Vec::new())),
            Ok(RequestEvent::Data(data)) => current
                .as_mut()
                .expect("data before a head")
                .1
                .extend_from_slice(data),
            Ok(RequestEvent::End { trailers }) => {
                let (head, body) = current.take().expect("an end before a head");
                done.push(Request {
                    head,
                    body,
                    trailers,
                });
            }
            Err(error) => return (done, Some(error)),
        }
    }
    (done, None)
}

/// Every complete request, written by `RequestEncoder` and its `BodyEncoder`, decodes to
/// itself. The encoder writes HTTP/1.1 only, so HTTP/1.0 requests are skipped.
fn round_trip_requests(input: &[u8]) {
    for request in requests(input, limits()).0 {
        let head = &request.head;
        if let BodyKind::Length(length) = head.body {
            assert_eq!(
                request.body.len() as u64,
                length,
                "a body unlike its Content-Length"
            );
        }
        assert!(
            request.body.len() as u64 <= limits().max_body_len,
            "a body over the limit"
        );
        if head.version != Version::HTTP_11 {
            continue;
        }
        let wire = encode_request(&request);
        // The default limits: the encoder's own framing header can take a head that was
        // just within the small ones past them.
        let (again, error) = requests(&wire, Limits::default());
        let context = || format!("re-encoded as \"{}\"", wire.escape_ascii());
        assert!(error.is_none(), "{error:?}, {}", context());
        assert_eq!(again.len(), 1, "{}", context());
        let again = &again[0];
        assert_eq!(again.head.method, head.method, "{}", context());
        assert_eq!(again.head.uri, head.uri, "{}", context());
        assert_eq!(again.head.version, head.version, "{}", context());
        assert_eq!(again.head.body, head.body, "{}", context());
        assert_eq!(again.head.keep_alive, head.keep_alive, "{}", context());
        assert_eq!(
            again.head.expect_continue,
            head.expect_continue,
            "{}",
            context()
        );
        assert_eq!(
            without(&again.head.headers, &[CONTENT_LENGTH, TRANSFER_ENCODING]),
            without(&head.headers, &[CONTENT_LENGTH, TRANSFER_ENCODING]),
            "{}",
            context()
        );
        assert_eq!(again.body, request.body, "{}", context());
        assert_eq!(again.trailers, request.trailers, "{}", context());
    }
}

fn encode_request(request: &Request) -> Vec<u8> {
    let head = &request.head;
    let mut wire = Vec::new();
    let target = head.uri.to_string();
    let mut body =
        RequestEncoder::new(&head.method, &target, head.body).write(&head.headers, &mut wire);
    for piece in pieces(&request.body) {
        body.data(piece, &mut wire).expect("the body's own length");
    }
    body.finish_with_trailers(&request.trailers, &mut wire)
        .expect("the body's own length");
    wire
}

fn without(headers: &HeaderMap, names: &[::http::HeaderName]) -> HeaderMap {
    let mut headers = headers.clone();
    for name in names {
        headers.remove(name);
    }
    headers
}

/// A first line naming a method (`HEAD\n`) picks the request's method; otherwise `GET`.
fn split_method(input: &[u8]) -> (Method, &[u8]) {
    if let Some(newline) = input.iter().position(|&b| b == b'\n') {
        let name = &input[..newline];
        if (1..=16).contains(&name.len()) && name.iter().all(u8::is_ascii_uppercase) {
            if let Ok(method) = Method::from_bytes(name) {
                return (method, &input[newline + 1..]);
            }
        }
    }
    (Method::GET, input)
}

fn run_response(input: &[u8]) {
    let (method, response) = split_method(input);
    let limits = limits();
    check_stream(
        response,
        |plan| bound(&limits, plan.max_piece(response)),
        |plan, trace| decode_response(&method, response, plan, trace),
    );
    round_trip_response(&method, response);
}

fn decode_response(method: &Method, input: &[u8], plan: Plan, trace: &mut Trace) {
    let mut decoder = ResponseDecoder::with_limits(method, limits());
    feed_all(input, plan, |bytes, stop| {
        // Bytes after a complete response are fed too: the decoder counts them without
        // keeping them, so the heap bound holds however much follows.
        let mut events = decoder.feed(bytes);
        while let Some(event) = events.next() {
            record_response(event, trace);
            if stop() {
                return true;
            }
        }
        false
    });
    trace.event(format_args!("eof"));
    let mut events = decoder.eof();
    while let Some(event) = events.next() {
        record_response(event, trace);
    }
    drop(events);
    // How much followed a complete response depends on where the feeding stopped; that some
    // did does not.
    let buffered = if decoder.is_complete() {
        usize::from(decoder.buffered_len() > 0)
    } else {
        decoder.buffered_len()
    };
    trace.event(format_args!(
        "complete={} failed={} fresh={} buffered={buffered}",
        decoder.is_complete(),
        decoder.has_failed(),
        decoder.is_fresh(),
    ));
}

fn record_response(event: Result<ResponseEvent<'_>, HttpError>, trace: &mut Trace) {
    match event {
        Ok(ResponseEvent::Head(h)) => trace.event(format_args!(
            "head {} {:?} {:?} keep_alive={} {:?}",
            h.status, h.version, h.framing, h.keep_alive, h.headers
        )),
        Ok(ResponseEvent::Data(data)) => {
            assert!(!data.is_empty(), "an empty Data event");
            trace.data(data);
        }
        Ok(ResponseEvent::End { trailers }) => trace.event(format_args!("end {trailers:?}")),
        Err(error) => record_error(&error, trace),
    }
}

/// A response decoded whole.
struct Response {
    head: ResponseHead,
    body: Vec<u8>,
    trailers: HeaderMap,
}

/// The response in `input` if it is complete once the connection ends, or the error.
fn response(method: &Method, input: &[u8], limits: Limits) -> Result<Option<Response>, HttpError> {
    let mut decoder = ResponseDecoder::with_limits(method, limits);
    let mut current = None;
    let mut done = None;
    for eof in [false, true] {
        let mut events = if eof {
            decoder.eof()
        } else {
            decoder.feed(input)
        };
        while let Some(event) = events.next() {
            match event? {
                ResponseEvent::Head(head) => current = Some((head, Vec::new())),
                ResponseEvent::Data(data) => current
                    .as_mut()
                    .expect("data before a head")
                    .1
                    .extend_from_slice(data),
                ResponseEvent::End { trailers } => {
                    let (head, body) = current.take().expect("an end before a head");
                    done = Some(Response {
                        head,
                        body,
                        trailers,
                    });
                }
            }
        }
    }
    Ok(done)
}

/// A complete response, written by `ResponseEncoder` and its `BodyEncoder`, decodes to
/// itself. The encoder writes HTTP/1.1, its own framing and `Connection` headers, and frames
/// a body that ended with the connection as chunked; those are compared for what they mean.
fn round_trip_response(method: &Method, input: &[u8]) {
    let Ok(Some(original)) = response(method, input, limits()) else {
        return;
    };
    let head = &original.head;
    if let ResponseFraming::Length(length) = head.framing {
        assert_eq!(
            original.body.len() as u64,
            length,
            "a body unlike its Content-Length"
        );
    }
    assert!(
        original.body.len() as u64 <= limits().max_body_len,
        "a body over the limit"
    );
    let wire = encode_response(&original);
    let context = || format!("re-encoded as \"{}\"", wire.escape_ascii());
    // The default limits, as for requests.
    let again = match response(method, &wire, Limits::default()) {
        Ok(Some(again)) => again,
        other => panic!("{:?}, {}", other.err(), context()),
    };
    let framing = match head.framing {
        ResponseFraming::UntilClose => ResponseFraming::Chunked,
        other => other,
    };
    let skipped = [CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION];
    assert_eq!(again.head.status, head.status, "{}", context());
    assert_eq!(again.head.framing, framing, "{}", context());
    assert_eq!(again.head.keep_alive, head.keep_alive, "{}", context());
    assert_eq!(
        without(&again.head.headers, &skipped),
        without(&head.headers, &skipped),
        "{}",
        context()
    );
    assert_eq!(again.body, original.body, "{}", context());
    assert_eq!(again.trailers, original.trailers, "{}", context());
}

fn encode_response(response: &Response) -> Vec<u8> {
    let head = &response.head;
    let body = match head.framing {
        ResponseFraming::Length(_) => BodyKind::Length(response.body.len() as u64),
        ResponseFraming::Chunked | ResponseFraming::UntilClose => BodyKind::Chunked,
    };
    let headers = without(
        &head.headers,
        &[CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION],
    );
    let mut wire = Vec::new();
    let mut framing = ResponseEncoder::new(head.status, body)
        .close(!head.keep_alive)
        .write(&headers, &mut wire);
    for piece in pieces(&response.body) {
        framing
            .data(piece, &mut wire)
            .expect("the body's own length");
    }
    framing
        .finish_with_trailers(&response.trailers, &mut wire)
        .expect("the body's own length");
    wire
}
