//! [`StaticFiles`] as a [`Handler`]: the sans-I/O answer of
//! [`StaticFiles::respond`](crate::http::static_files::StaticFiles::respond) put on the wire,
//! a file pulled a chunk at a time while the connection has room.

use http::{HeaderMap, StatusCode};
use torsion_reactor::Reactor;

use super::handler::{BodyMode, Handler, Request};
use super::responder::{BodyWriter, Responder};
use crate::http::codec::RequestHead;
use crate::http::static_files::{Body, FileChunks, StaticFiles, StaticResponse};

/// Serves a directory: `GET` and `HEAD` (anything else: 405). Usually a [`Router`](super::Router)'s
/// [`fallback`](super::Router::fallback), so that routes answer first and every other path
/// is looked up under the root.
///
/// A request body is not read (the connection closes after the answer when one was
/// announced with `Expect: 100-continue`).
impl Handler for StaticFiles {
    fn body_mode(&self, _head: &RequestHead) -> BodyMode {
        BodyMode::Ignore
    }

    fn handle(&self, request: Request, responder: Responder, reactor: &mut Reactor) {
        let head = &request.head;
        let response = self.respond(&head.method, &head.uri, &head.headers);
        send(response, responder, reactor);
    }
}

/// Puts `response` on the wire through `responder`.
pub(super) fn send(response: StaticResponse, responder: Responder, reactor: &mut Reactor) {
    let StaticResponse {
        status,
        headers,
        content_length,
        body,
        ..
    } = response;
    match (body, content_length) {
        (Body::Bytes(bytes), _) => responder.respond(reactor, status, &headers, bytes),
        (Body::File(chunks), Some(length)) => {
            let writer = responder.stream_with_length(reactor, status, &headers, length);
            pull(writer, chunks, reactor);
        }
        (Body::File(chunks), None) => {
            let writer = responder.stream(reactor, status, &headers);
            pull(writer, chunks, reactor);
        }
        // `HEAD`, 412, 416: the length announced (for `HEAD`, the length `GET` would send),
        // nothing sent.
        (Body::Empty, Some(length)) => empty(responder, reactor, status, &headers, Some(length)),
        // 304: no `Content-Length` at all (RFC 9110 §8.6).
        (Body::Empty, None) => empty(responder, reactor, status, &headers, None),
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

/// Writes the file's chunks while the connection takes them; when it is full, continues from
/// the writer's resume call. A read error in the middle aborts the body: the length was
/// promised, so the connection closes after what was sent.
fn pull(mut writer: BodyWriter, mut chunks: FileChunks, reactor: &mut Reactor) {
    loop {
        match chunks.next_chunk() {
            Ok(Some(chunk)) => {
                if writer.write(reactor, chunk) {
                    continue;
                }
                if !writer.is_connected() {
                    return; // the client left: dropping the writer is all there is to do
                }
                resume_later(writer, chunks);
                return;
            }
            Ok(None) => {
                writer.finish(reactor);
                return;
            }
            Err(error) => {
                log::warn!("static file: read failed mid-body ({error}): closing");
                writer.abort(reactor);
                return;
            }
        }
    }
}

/// Parks the transfer in the writer's resume call.
fn resume_later(mut writer: BodyWriter, chunks: FileChunks) {
    // The call owns the writer it is registered on: the pipeline holds it (and the file)
    // until the connection may take more, and drops it if the connection closes first.
    let parked = std::rc::Rc::new(std::cell::Cell::new(None));
    let taken = parked.clone();
    writer.on_resume(move |reactor| {
        if let Some((writer, chunks)) = taken.take() {
            pull(writer, chunks, reactor);
        }
    });
    parked.set(Some((writer, chunks)));
}
