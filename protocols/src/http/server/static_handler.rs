//! [`StaticFiles`] as a [`Handler`]: [`StaticFiles::respond_cached`] on the reactor thread,
//! or [`StaticFiles::respond`] in the thread pool, then put on the wire, a file's body as
//! [`file_body`](super::file_body) sends it.

use http::{HeaderMap, StatusCode};
use torsion_reactor::Reactor;

use super::file_body::{send_body, Source, Window};
use super::handler::{BodyMode, Handler, Request};
use super::responder::Responder;
use crate::http::codec::RequestHead;
use crate::http::static_files::{io_status, plain, Body, StaticFiles, StaticResponse};

/// Serves a directory: `GET` and `HEAD` (anything else: 405). Usually a [`Router`](super::Router)'s
/// [`fallback`](super::Router::fallback), so that routes answer first and every other path
/// is looked up under the root.
///
/// Nothing that can wait for a disk runs on the reactor thread. A plain path to a regular
/// file is tried there with calls that fail rather than wait
/// ([`StaticFiles::respond_cached`], then the body's first window read or probed in the page
/// cache without waiting); anything else, and anything they refuse, is made in the reactor's
/// thread pool ([`StaticFiles::respond`]: resolving the path, opening and checking the file,
/// a listing), with the body's first window (a small file read whole; a large one loaded
/// into the page cache, then sent with `sendfile(2)` on plain TCP); see
/// [`Responder::send_file`] for how the rest follows.
///
/// A request body is not read (the connection closes after the answer when one was
/// announced with `Expect: 100-continue`).
impl Handler for StaticFiles {
    fn body_mode(&self, _head: &RequestHead) -> BodyMode {
        BodyMode::Ignore
    }

    fn handle(&self, request: Request, responder: Responder, reactor: &mut Reactor) {
        let head = request.head;
        if let Some(response) = self.respond_cached(&head.method, &head.uri, &head.headers) {
            return send_cached(response, responder, reactor);
        }
        let files = self.clone();
        let answer = move || prepare(files.respond(&head.method, &head.uri, &head.headers));
        reactor.call_in_thread(answer, move |reactor, prepared| match prepared {
            Ok(prepared) => send(prepared, responder, reactor),
            Err(panic) => {
                log::warn!("static files: {panic}");
                responder.respond_status(reactor, StatusCode::INTERNAL_SERVER_ERROR);
            }
        });
    }
}

/// A response with its file's first window fetched.
struct Prepared {
    response: StaticResponse,
    file: Option<(Source, u64, Window)>,
}

impl Prepared {
    /// A response with no file body.
    fn without_file(response: StaticResponse) -> Prepared {
        Prepared {
            response,
            file: None,
        }
    }

    /// The first read of a file failed: answered as a failed open would have been.
    fn read_failed(error: &std::io::Error) -> Prepared {
        log::warn!("static file: the first read failed ({error})");
        Prepared::without_file(plain(io_status(error)))
    }
}

/// Takes `response`'s file body out, as the source of its windows and where it starts.
fn take_file(response: &mut StaticResponse) -> Option<(Source, u64)> {
    match std::mem::replace(&mut response.body, Body::Empty) {
        Body::File(chunks) => {
            let (file, start, len) = chunks.into_range();
            // `StaticFiles` answers with a file body only for a regular file (checked on the
            // open file).
            Some((Source::of(file, true, start, len), start))
        }
        body => {
            response.body = body;
            None
        }
    }
}

/// Fetches the first window of `response`'s file, in the thread pool.
fn prepare(mut response: StaticResponse) -> Prepared {
    let Some((mut source, start)) = take_file(&mut response) else {
        return Prepared::without_file(response);
    };
    match source.fetch() {
        Ok(window) => Prepared {
            response,
            file: Some((source, start, window)),
        },
        Err(error) => Prepared::read_failed(&error),
    }
}

/// Sends a response made without waiting for a disk; its body's first window is fetched at
/// once if it is in the page cache, else in the thread pool.
fn send_cached(mut response: StaticResponse, responder: Responder, reactor: &mut Reactor) {
    let Some((mut source, start)) = take_file(&mut response) else {
        return send(Prepared::without_file(response), responder, reactor);
    };
    if let Some(window) = source.fetch_now() {
        let file = Some((source, start, window));
        return send(Prepared { response, file }, responder, reactor);
    }
    let fetch = move || {
        let window = source.fetch();
        (source, window)
    };
    reactor.call_in_thread(fetch, move |reactor, fetched| {
        let prepared = match fetched {
            Ok((source, Ok(window))) => Prepared {
                response,
                file: Some((source, start, window)),
            },
            Ok((_, Err(error))) => Prepared::read_failed(&error),
            Err(panic) => {
                log::warn!("static files: {panic}");
                Prepared::without_file(plain(StatusCode::INTERNAL_SERVER_ERROR))
            }
        };
        send(prepared, responder, reactor);
    });
}

/// Puts a prepared response on the wire through `responder`.
fn send(prepared: Prepared, responder: Responder, reactor: &mut Reactor) {
    let StaticResponse {
        status,
        headers,
        content_length,
        body,
        ..
    } = prepared.response;
    if let Some((source, start, window)) = prepared.file {
        return send_body(responder, reactor, status, &headers, source, start, window);
    }
    match (body, content_length) {
        (Body::Bytes(bytes), _) => responder.respond(reactor, status, &headers, bytes),
        // `HEAD`, 412, 416: the length announced (for `HEAD`, the length `GET` would send),
        // nothing sent.
        (_, Some(length)) => empty(responder, reactor, status, &headers, Some(length)),
        // 304: no `Content-Length` at all (RFC 9110 §8.6).
        (_, None) => empty(responder, reactor, status, &headers, None),
    }
}

/// A response with no body bytes: `Content-Length: length`, or no framing header for a 304.
fn empty(
    responder: Responder,
    reactor: &mut Reactor,
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<u64>,
) {
    let writer = match length {
        Some(length) => responder.stream_with_length(reactor, status, headers, length),
        // The codec writes no framing header for a bodiless status streamed: a 304 says
        // nothing of the length. (Nothing else reaches here: `StaticFiles` gives every other
        // status a length.)
        None => responder.stream(reactor, status, headers),
    };
    writer.finish(reactor);
}
