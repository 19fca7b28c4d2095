//! [`WebSocketProtocol`]: the [`WebSocket`] codec on a reactor connection, driving a
//! [`WebSocketHandler`]; the same for a server (after the upgrade) and a client (after its
//! handshake).

use bytes::Bytes;
use log::{debug, warn};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use torsion_reactor::{ConnectionId, Context, DelayedCall, DisconnectReason, Protocol, Reactor};

use super::{CloseCode, Event, Role, SendError, State, WebSocket};

/// A whole message: text or binary, as the peer sent it (fragments joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8: text that is not fails the connection with 1007).
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

/// What an application writes for a WebSocket connection, server or client.
///
/// Callbacks run on the reactor thread, in order, never re-entered: `on_open` once, then
/// `on_message` per message, then `on_close` exactly once, however the connection ends.
pub trait WebSocketHandler: 'static {
    /// The connection is open (the handshake is done): a good time to send a greeting.
    fn on_open(&mut self, ws: &mut Sender<'_, '_>) {
        let _ = ws;
    }

    /// A whole message arrived.
    fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message);

    /// A pong arrived (answering a ping sent with [`Sender::ping`], or a heartbeat).
    fn on_pong(&mut self, ws: &mut Sender<'_, '_>, data: Bytes) {
        let _ = (ws, data);
    }

    /// The connection is closed: `code` and `reason` are the peer's close (1005 if its close
    /// carried no code), or the code this side failed the connection with (1002 protocol
    /// error, 1007 invalid UTF-8, 1009 too big), or 1006 when it ended without a close frame.
    fn on_close(&mut self, reactor: &mut Reactor, code: CloseCode, reason: &str) {
        let _ = (reactor, code, reason);
    }
}

/// Sends on a WebSocket connection from within a [`WebSocketHandler`] callback.
pub struct Sender<'a, 'cx> {
    ws: &'a mut WebSocket,
    cx: &'a mut Context<'cx>,
    outbox: &'a Rc<RefCell<Outbox>>,
}

impl Sender<'_, '_> {
    /// A handle that sends on this connection from outside its callbacks: a timer, another
    /// connection (a chat's broadcast).
    pub fn handle(&self) -> WebSocketHandle {
        WebSocketHandle {
            id: self.cx.id(),
            outbox: self.outbox.clone(),
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.ws.send_text(text)
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.ws.send_binary(data)
    }

    /// Sends `message` as it is (text or binary).
    pub fn send(&mut self, message: &Message) -> Result<(), SendError> {
        match message {
            Message::Text(text) => self.ws.send_text(text),
            Message::Binary(data) => self.ws.send_binary(data),
        }
    }

    /// Sends a ping (at most 125 bytes); its pong comes to [`WebSocketHandler::on_pong`].
    pub fn ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.ws.send_ping(data)
    }

    /// Starts the close handshake; [`WebSocketHandler::on_close`] runs when the peer's
    /// close arrives (or the connection ends).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        self.ws.close(code, reason)
    }

    /// Whether the peer reads more slowly than messages are sent: the connection's write
    /// queue is past its high watermark. A producer should wait (reading is paused until the
    /// queue drains, so the peer's next message comes after).
    pub fn should_pause(&self) -> bool {
        self.cx.is_reading_paused()
    }

    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.cx.id()
    }

    /// The reactor: timers, other connections.
    pub fn reactor(&mut self) -> &mut Reactor {
        self.cx.reactor()
    }
}

/// What a [`WebSocketHandle`] sent, waiting for the connection to wake.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Outgoing>,
    /// The connection is gone: nothing more is queued.
    gone: bool,
}

enum Outgoing {
    Message(Message),
    Close(CloseCode, String),
}

/// Sends on a WebSocket connection from anywhere on its reactor's thread that has the
/// reactor (made by [`Sender::handle`]). What it sends is queued and handed to the connection
/// when it wakes, right after the current callback, in the order sent.
#[derive(Clone)]
pub struct WebSocketHandle {
    id: ConnectionId,
    outbox: Rc<RefCell<Outbox>>,
}

impl WebSocketHandle {
    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// Whether the connection is gone (then sending does nothing).
    pub fn is_gone(&self) -> bool {
        self.outbox.borrow().gone
    }

    /// Whether a producer should wait: the connection's write queue is past its high
    /// watermark (the peer reads slowly), or the connection is gone.
    pub fn should_pause(&self, reactor: &Reactor) -> bool {
        self.is_gone() || reactor.queued_bytes(self.id) > WATERMARKS.0
    }

    /// Sends `message`; false if the connection is gone.
    pub fn send(&self, reactor: &mut Reactor, message: Message) -> bool {
        self.push(reactor, Outgoing::Message(message))
    }

    /// Starts the close handshake; false if the connection is gone.
    pub fn close(&self, reactor: &mut Reactor, code: CloseCode, reason: &str) -> bool {
        self.push(reactor, Outgoing::Close(code, reason.to_owned()))
    }

    fn push(&self, reactor: &mut Reactor, outgoing: Outgoing) -> bool {
        let mut outbox = self.outbox.borrow_mut();
        if outbox.gone {
            return false;
        }
        outbox.queue.push_back(outgoing);
        reactor.wake(self.id);
        true
    }
}

/// The write queue's watermarks of a WebSocket connection: reading pauses above the high
/// one and resumes at the low one.
const WATERMARKS: (usize, usize) = (64 * 1024, 16 * 1024);

/// How a connection ends, as `on_close` hears it.
struct Ending {
    code: CloseCode,
    reason: String,
    /// The close handshake completed.
    clean: bool,
}

/// How long a close sent waits for the peer's answer before the connection is aborted.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an open connection may be silent before this side pings it; silent for as long
/// again after the ping (no pong, no frame), it is aborted. So a peer that went away
/// without a close (a laptop shut, a cable pulled) holds its connection for at most twice
/// this, and a live but quiet one costs a ping and a pong per interval.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// A [`Protocol`] running a [`WebSocket`] for a [`WebSocketHandler`].
///
/// Backpressure: when the write queue passes its high watermark (64 KiB; the peer reads
/// slowly), reading pauses until it drains to the low one (16 KiB), so an echo or a
/// producer answering each message cannot queue without bound.
///
/// A close this side sends waits [`CLOSE_TIMEOUT`] for the peer's answer, then the
/// connection is aborted (a peer that never answers cannot hold it open). A peer silent for
/// [`KEEPALIVE_INTERVAL`] is pinged, and aborted if silent as long again. A graceful
/// shutdown of the reactor sends a close with 1001 (going away).
pub struct WebSocketProtocol<H: WebSocketHandler> {
    ws: WebSocket,
    handler: H,
    /// How the connection ends, once known: reported to `on_close` when it is closed.
    ending: Option<Ending>,
    /// Reading is paused for backpressure.
    paused: bool,
    /// Aborts the connection if the peer does not answer this side's close in time.
    close_timer: Option<DelayedCall>,
    /// What [`WebSocketHandle`]s sent.
    outbox: Rc<RefCell<Outbox>>,
    /// Bytes came from the peer since the keepalive timer last looked.
    heard: bool,
    /// The keepalive timer pinged the silent peer and waits for any answer.
    pinged: bool,
    /// The keepalive timer: a reactor timer that marks itself due and wakes the connection
    /// (the protocol may run inside another, an HTTP connection it was upgraded from, so a
    /// timer typed to this protocol could not reach it).
    keepalive: Option<(DelayedCall, Rc<Cell<bool>>)>,
}

impl<H: WebSocketHandler> WebSocketProtocol<H> {
    /// A protocol running `ws` (after its handshake) for `handler`.
    pub fn new(ws: WebSocket, handler: H) -> Self {
        WebSocketProtocol {
            ws,
            handler,
            ending: None,
            paused: false,
            close_timer: None,
            outbox: Rc::default(),
            heard: false,
            pinged: false,
            keepalive: None,
        }
    }

    /// Looks again in [`KEEPALIVE_INTERVAL`] (the timer is cancelled when the connection
    /// ends).
    fn arm_keepalive(&mut self, cx: &mut Context<'_>) {
        let (id, due) = (cx.id(), Rc::new(Cell::new(false)));
        let mark = due.clone();
        let timer = cx.reactor().call_later(KEEPALIVE_INTERVAL, move |reactor| {
            mark.set(true);
            reactor.wake(id);
        });
        self.keepalive = Some((timer, due));
    }

    /// The keepalive timer: a peer heard from is fine; a silent one is pinged; one silent
    /// since the ping is gone.
    fn keepalive(&mut self, cx: &mut Context<'_>) {
        if self.ws.state() != State::Open {
            return; // closing: the close timer is in charge
        }
        if std::mem::take(&mut self.heard) {
            self.pinged = false;
        } else if !self.pinged {
            self.pinged = true;
            let _ = self.ws.send_ping(b"");
            self.flush(cx);
        } else {
            warn!(
                "connection {}: WebSocket peer silent for {:?}, even to a ping: aborted",
                cx.id(),
                2 * KEEPALIVE_INTERVAL
            );
            self.ending(CloseCode::ABNORMAL, "the peer stopped answering", false);
            cx.abort_connection();
            return;
        }
        self.arm_keepalive(cx);
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    fn sender<'a, 'cx>(
        ws: &'a mut WebSocket,
        cx: &'a mut Context<'cx>,
        outbox: &'a Rc<RefCell<Outbox>>,
    ) -> Sender<'a, 'cx> {
        Sender { ws, cx, outbox }
    }

    /// Writes what the codec produced; closes the connection once the handshake is over.
    fn flush(&mut self, cx: &mut Context<'_>) {
        let out = self.ws.take_output();
        if !out.is_empty() {
            cx.write_bytes(out);
        }
        let clean = self.ending.as_ref().is_some_and(|ending| ending.clean);
        match self.ws.state() {
            // RFC 6455 §7.1.1: after the close handshake the server closes the TCP
            // connection first; a client waits for that (so the server's side does not hold
            // TIME_WAIT), within the close timeout.
            State::Closed if self.ws.role() == Role::Client && clean => self.arm_close_timer(cx),
            State::Closed if !cx.is_closing() => cx.lose_connection(),
            State::CloseSent => self.arm_close_timer(cx),
            _ => {}
        }
    }

    /// Aborts the connection if it is still open after [`CLOSE_TIMEOUT`].
    fn arm_close_timer(&mut self, cx: &mut Context<'_>) {
        if self.close_timer.is_some() {
            return;
        }
        let id = cx.id();
        let abort = move |reactor: &mut Reactor| {
            warn!("connection {id}: WebSocket close not completed in time: aborted");
            reactor.abort_connection(id);
        };
        self.close_timer = Some(cx.reactor().call_later(CLOSE_TIMEOUT, abort));
    }

    /// Notes how the connection ends (the first reason wins); the handler hears it once the
    /// connection is closed. Nothing more is sent from handles.
    fn ending(&mut self, code: CloseCode, reason: &str, clean: bool) {
        let mut outbox = self.outbox.borrow_mut();
        outbox.gone = true;
        outbox.queue.clear();
        drop(outbox);
        self.ending.get_or_insert_with(|| Ending {
            code,
            reason: reason.to_owned(),
            clean,
        });
    }

    fn event(&mut self, cx: &mut Context<'_>, event: Event) {
        let mut ws = Self::sender(&mut self.ws, cx, &self.outbox);
        match event {
            Event::Text(text) => self.handler.on_message(&mut ws, Message::Text(text)),
            Event::Binary(data) => self.handler.on_message(&mut ws, Message::Binary(data)),
            Event::Pong(data) => self.handler.on_pong(&mut ws, data),
            Event::Ping(_) => {}
            Event::Close { code, reason } => {
                self.ending(code.unwrap_or(CloseCode::NO_STATUS), &reason, true);
            }
        }
    }
}

impl<H: WebSocketHandler> Protocol for WebSocketProtocol<H> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.set_write_buffer_limits(WATERMARKS.0, WATERMARKS.1);
        debug!("connection {}: WebSocket open", cx.id());
        self.handler
            .on_open(&mut Self::sender(&mut self.ws, cx, &self.outbox));
        self.flush(cx);
        self.arm_keepalive(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.heard |= !data.is_empty();
        self.ws.receive(data);
        while let Some(event) = self.ws.next_event() {
            match event {
                Ok(event) => self.event(cx, event),
                Err(error) => {
                    warn!("connection {}: {error}", cx.id());
                    self.ending(error.code, error.reason, false);
                }
            }
            self.flush(cx);
        }
        self.flush(cx);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.ending(CloseCode::ABNORMAL, "EOF without a close frame", false);
        cx.lose_connection();
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        if let Some(timer) = self.close_timer.take() {
            timer.cancel(cx.reactor());
        }
        if let Some((timer, _)) = self.keepalive.take() {
            timer.cancel(cx.reactor());
        }
        self.ending(CloseCode::ABNORMAL, &reason.to_string(), false);
        if let Some(ending) = self.ending.take() {
            self.handler
                .on_close(cx.reactor(), ending.code, &ending.reason);
        }
    }

    /// Woken by a [`WebSocketHandle`]: what it sent goes out.
    fn woken(&mut self, cx: &mut Context<'_>) {
        if self.keepalive.as_ref().is_some_and(|(_, due)| due.get()) {
            self.keepalive = None;
            self.keepalive(cx);
        }
        let queue = std::mem::take(&mut self.outbox.borrow_mut().queue);
        for outgoing in queue {
            let sent = match &outgoing {
                Outgoing::Message(message) => {
                    Self::sender(&mut self.ws, cx, &self.outbox).send(message)
                }
                Outgoing::Close(code, reason) => self.ws.close(*code, reason),
            };
            if let Err(error) = sent {
                debug!("connection {}: not sent: {error}", cx.id());
            }
        }
        self.flush(cx);
    }

    /// The peer reads slowly: stop reading its messages (each may make an answer) until the
    /// queue drains.
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.paused = true;
        cx.pause_reading();
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        if std::mem::take(&mut self.paused) {
            cx.resume_reading();
        }
    }

    /// A graceful shutdown: close with 1001; the reactor's shutdown timeout bounds the wait
    /// for the peer's answer.
    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        if self
            .ws
            .close(CloseCode::GOING_AWAY, "shutting down")
            .is_err()
        {
            cx.lose_connection();
        }
        self.flush(cx);
    }
}
