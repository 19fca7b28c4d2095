//! [`accept`]: a WebSocket server on an HTTP route.

use http::header::CONTENT_TYPE;
use http::HeaderValue;
use log::warn;
use torsion_reactor::Reactor;

use super::handshake::{check_request, response_headers};
use super::{WebSocket, WebSocketHandler, WebSocketProtocol};
use crate::http::server::{Request, Responder};

/// Upgrades `request` to a WebSocket connection run by `handler`, with messages limited to
/// `max_message` bytes (1009 past it), or refuses it: `400 Bad Request` with the reason as
/// the body when it is not a valid upgrade, `426 Upgrade Required` with
/// `Sec-WebSocket-Version: 13` for another version. Returns whether the connection
/// switched. Call it from a route's handler:
///
/// ```
/// use torsion_protocols::http::server::{Request, Responder, Router};
/// use torsion_protocols::websocket::{self, Message, Sender, WebSocketHandler};
/// use torsion_reactor::Reactor;
///
/// struct Echo;
/// impl WebSocketHandler for Echo {
///     fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message) {
///         let _ = ws.send(&message);
///     }
/// }
/// let router = Router::new().get("/ws/echo", |req: Request, res: Responder, r: &mut Reactor| {
///     websocket::accept(&req, res, r, Echo, websocket::DEFAULT_MAX_MESSAGE);
/// });
/// # let _ = router;
/// ```
pub fn accept(
    request: &Request,
    responder: Responder,
    reactor: &mut Reactor,
    handler: impl WebSocketHandler,
    max_message: usize,
) -> bool {
    match check_request(&request.head) {
        Ok(accept) => {
            let ws = WebSocket::server().with_max_message(max_message);
            let protocol = Box::new(WebSocketProtocol::new(ws, handler));
            responder.switch_protocols(reactor, &response_headers(&accept), protocol)
        }
        Err(refusal) => {
            warn!("connection {}: {refusal}", responder.connection_id());
            let mut headers = refusal.headers;
            let text = HeaderValue::from_static("text/plain; charset=utf-8");
            headers.insert(CONTENT_TYPE, text);
            responder.respond(
                reactor,
                refusal.status,
                &headers,
                format!("{}\n", refusal.reason),
            );
            false
        }
    }
}
