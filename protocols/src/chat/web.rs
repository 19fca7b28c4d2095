//! The chat room's door for browsers: a page (plain HTML and JavaScript, no build step) and
//! a WebSocket that speaks the room's line protocol, one line per text message. Browser
//! members are in the same [`ChatRoom`](super::ChatRoom) as the terminal ones: they hear and
//! are heard exactly as the line protocol says.

use std::fmt;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use log::{info, warn};
use torsion_reactor::{ConnectionId, Reactor};

use super::room::Output;
use super::server::{close_member, say_to, say_to_others, Browsers, SharedRoom, MAX_LINE_LENGTH};
use crate::http::server::{Request, Responder, Router};
use crate::websocket::{self, CloseCode, Message, Sender, WebSocketHandler};

/// The page browsers load: it asks for a name, then opens the WebSocket at `/ws` on the same
/// host and shows every line the room sends.
pub const PAGE: &str = include_str!("page.html");

/// Longest WebSocket message taken before the connection fails with 1009: room for a line
/// of [`MAX_LINE_LENGTH`] bytes, which the room refuses past that like a terminal's.
const MAX_MESSAGE: usize = 4 * MAX_LINE_LENGTH;

/// The room's door for browsers, from [`ChatServer::web`](super::ChatServer::web): serve
/// its [`router`](ChatWeb::router) on an HTTP port.
#[derive(Clone)]
pub struct ChatWeb {
    room: SharedRoom,
    browsers: Browsers,
}

impl fmt::Debug for ChatWeb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatWeb")
            .field("browsers", &self.browsers.borrow().len())
            .finish_non_exhaustive()
    }
}

impl ChatWeb {
    pub(crate) fn new(room: SharedRoom, browsers: Browsers) -> ChatWeb {
        ChatWeb { room, browsers }
    }

    /// `GET /`: the page; `GET /ws`: the WebSocket into the room.
    pub fn router(&self) -> Router {
        let door = self.clone();
        Router::new()
            .get("/", |_: Request, res: Responder, r: &mut Reactor| {
                let mut headers = HeaderMap::new();
                let html = HeaderValue::from_static("text/html; charset=utf-8");
                headers.insert(CONTENT_TYPE, html);
                res.respond(r, StatusCode::OK, &headers, PAGE);
            })
            .get(
                "/ws",
                move |req: Request, res: Responder, r: &mut Reactor| {
                    let member = BrowserMember {
                        room: door.room.clone(),
                        browsers: door.browsers.clone(),
                        id: None,
                    };
                    websocket::accept(&req, res, r, member, MAX_MESSAGE);
                },
            )
    }
}

/// One browser in the room.
struct BrowserMember {
    room: SharedRoom,
    browsers: Browsers,
    /// Set once open.
    id: Option<ConnectionId>,
}

impl BrowserMember {
    /// Carries out what the room said, as the terminal members' protocol does: to this
    /// browser through `ws`, to the others by their kind.
    fn carry_out(&self, ws: &mut Sender<'_, '_>, outputs: Vec<Output<ConnectionId>>) {
        let me = ws.id();
        for output in outputs {
            match output {
                Output::To(id, line) if id == me => {
                    let _ = ws.send_text(&line);
                }
                Output::To(id, line) => say_to(&self.browsers, ws.reactor(), id, &line),
                Output::Others { except, line } => {
                    let room = self.room.borrow();
                    say_to_others(&room, &self.browsers, ws.reactor(), except, &line);
                }
                Output::Close(id) if id == me => {
                    let _ = ws.close(CloseCode::NORMAL, "");
                }
                Output::Close(id) => close_member(&self.browsers, ws.reactor(), id),
            }
        }
    }
}

impl WebSocketHandler for BrowserMember {
    fn on_open(&mut self, ws: &mut Sender<'_, '_>) {
        let id = ws.id();
        self.id = Some(id);
        self.browsers.borrow_mut().insert(id, ws.handle());
        let outputs = self.room.borrow_mut().join(id);
        self.carry_out(ws, outputs);
    }

    /// A message is one line (any line ending in it is part of the line, and the room
    /// writes such control characters in caret notation).
    fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message) {
        let line = match &message {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data.as_ref(),
        };
        if line.len() > MAX_LINE_LENGTH {
            warn!(
                "chat: browser {} sent a line over {MAX_LINE_LENGTH} bytes",
                ws.id()
            );
            let _ = ws.send_text("ERR line too long");
            let _ = ws.close(CloseCode::MESSAGE_TOO_BIG, "line too long");
            return;
        }
        let outputs = self.room.borrow_mut().line(ws.id(), line);
        self.carry_out(ws, outputs);
    }

    fn on_close(&mut self, reactor: &mut Reactor, code: CloseCode, _reason: &str) {
        let Some(id) = self.id.take() else {
            return;
        };
        self.browsers.borrow_mut().remove(&id);
        if let Some(name) = self.room.borrow().name_of(id) {
            info!("chat: {name} left the web page (close {})", code.0);
        }
        let outputs = self.room.borrow_mut().leave(id);
        for output in outputs {
            match output {
                Output::To(other, line) if other != id => {
                    say_to(&self.browsers, reactor, other, &line)
                }
                Output::Others { except, line } => {
                    let room = self.room.borrow();
                    say_to_others(&room, &self.browsers, reactor, except, &line);
                }
                Output::Close(other) if other != id => close_member(&self.browsers, reactor, other),
                _ => {}
            }
        }
    }
}
