//! [`connect`]: a WebSocket client: the opening handshake over a reactor connection (TCP or
//! TLS), then the same [`WebSocketProtocol`] as a server's, masking what it sends.

use log::{debug, warn};
use torsion_reactor::{
    Address, ClientFactory, ConnectError, ConnectOptions, Connector, Context, DisconnectReason,
    Protocol, Reactor, Target,
};

use super::handshake::{check_response, client_request, new_key};
use super::{CloseCode, WebSocket, WebSocketHandler, WebSocketProtocol};

/// Where a client connection is.
enum Phase<H: WebSocketHandler> {
    /// The request is sent; the response head gathers here.
    Handshaking {
        key: String,
        head: Vec<u8>,
        handler: H,
    },
    /// Upgraded.
    Open(WebSocketProtocol<H>),
    /// The handshake failed (the handler heard it).
    Failed,
}

/// The [`Protocol`] of a WebSocket client connection (built by [`connect`]): sends the
/// upgrade request, checks the `101` and its `Sec-WebSocket-Accept`, then runs the
/// handler. A failed handshake reaches [`WebSocketHandler::on_close`] with 1006 and the
/// reason, and closes the connection.
pub struct WebSocketClient<H: WebSocketHandler> {
    phase: Phase<H>,
    host: String,
    target: String,
    max_message: usize,
}

impl<H: WebSocketHandler> WebSocketClient<H> {
    /// A client asking `host` (the `Host` header) for `target` (`/path?query`), running
    /// `handler` once upgraded, accepting messages up to `max_message` bytes.
    pub fn new(host: &str, target: &str, handler: H, max_message: usize) -> Self {
        WebSocketClient {
            phase: Phase::Handshaking {
                key: new_key(),
                head: Vec::new(),
                handler,
            },
            host: host.to_owned(),
            target: target.to_owned(),
            max_message,
        }
    }

    /// The handshake failed: the handler hears why, and the connection closes.
    fn fail(&mut self, cx: &mut Context<'_>, reason: &str) {
        warn!("connection {}: WebSocket handshake: {reason}", cx.id());
        if let Phase::Handshaking { mut handler, .. } =
            std::mem::replace(&mut self.phase, Phase::Failed)
        {
            let reason = format!("handshake failed: {reason}");
            handler.on_close(cx.reactor(), CloseCode::ABNORMAL, &reason);
        }
        cx.lose_connection();
    }
}

impl<H: WebSocketHandler> Protocol for WebSocketClient<H> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        if let Phase::Handshaking { key, .. } = &self.phase {
            cx.write(&client_request(&self.host, &self.target, key));
        }
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let Phase::Handshaking { key, head, .. } = &mut self.phase else {
            if let Phase::Open(protocol) = &mut self.phase {
                protocol.data_received(cx, data);
            }
            return;
        };
        head.extend_from_slice(data);
        let len = match check_response(head, key) {
            Ok(None) => return,
            Ok(Some(len)) => len,
            Err(error) => return self.fail(cx, &error.to_string()),
        };
        let Phase::Handshaking { head, handler, .. } =
            std::mem::replace(&mut self.phase, Phase::Failed)
        else {
            return;
        };
        debug!("connection {}: WebSocket client upgraded", cx.id());
        let ws = WebSocket::client().with_max_message(self.max_message);
        let mut protocol = WebSocketProtocol::new(ws, handler);
        protocol.connection_made(cx);
        if head.len() > len {
            protocol.data_received(cx, &head[len..]);
        }
        self.phase = Phase::Open(protocol);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        match &mut self.phase {
            Phase::Open(protocol) => protocol.eof_received(cx),
            Phase::Handshaking { .. } => self.fail(cx, "the connection closed before the 101"),
            Phase::Failed => cx.lose_connection(),
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        match &mut self.phase {
            Phase::Open(protocol) => protocol.connection_lost(cx, reason),
            Phase::Handshaking { .. } => self.fail(cx, &reason.to_string()),
            Phase::Failed => {}
        }
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        if let Phase::Open(protocol) = &mut self.phase {
            protocol.pause_writing(cx);
        }
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        if let Phase::Open(protocol) = &mut self.phase {
            protocol.resume_writing(cx);
        }
    }

    fn woken(&mut self, cx: &mut Context<'_>) {
        if let Phase::Open(protocol) = &mut self.phase {
            protocol.woken(cx);
        }
    }

    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        match &mut self.phase {
            Phase::Open(protocol) => protocol.shutdown_requested(cx),
            _ => cx.lose_connection(),
        }
    }
}

/// The factory of one client connection: hands the protocol over once connected, or tells
/// the handler the connection failed.
struct OneClient<H: WebSocketHandler> {
    client: Option<WebSocketClient<H>>,
}

impl<H: WebSocketHandler> ClientFactory for OneClient<H> {
    type Protocol = ClientSlot<H>;

    fn build_protocol(&mut self, _peer: Address) -> ClientSlot<H> {
        ClientSlot(self.client.take())
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        warn!("WebSocket connect failed: {error}");
        if let Some(client) = self.client.take() {
            if let Phase::Handshaking { mut handler, .. } = client.phase {
                let reason = format!("connect failed: {error}");
                handler.on_close(reactor, CloseCode::ABNORMAL, &reason);
            }
        }
    }
}

/// The client protocol, taken out of its factory (built exactly once).
pub struct ClientSlot<H: WebSocketHandler>(Option<WebSocketClient<H>>);

impl<H: WebSocketHandler> Protocol for ClientSlot<H> {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        match &mut self.0 {
            Some(client) => client.connection_made(cx),
            None => cx.lose_connection(),
        }
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if let Some(client) = &mut self.0 {
            client.data_received(cx, data);
        }
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        match &mut self.0 {
            Some(client) => client.eof_received(cx),
            None => cx.lose_connection(),
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        if let Some(client) = &mut self.0 {
            client.connection_lost(cx, reason);
        }
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(client) = &mut self.0 {
            client.pause_writing(cx);
        }
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(client) = &mut self.0 {
            client.resume_writing(cx);
        }
    }

    fn woken(&mut self, cx: &mut Context<'_>) {
        if let Some(client) = &mut self.0 {
            client.woken(cx);
        }
    }

    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        match &mut self.0 {
            Some(client) => client.shutdown_requested(cx),
            None => cx.lose_connection(),
        }
    }
}

/// Connects to `target` (with TLS if `options.tls` is set: `wss://`), asks `host` (the
/// `Host` header: with `:port` unless the port is 80, or 443 with TLS, RFC 6455 §4.1) for the
/// WebSocket at `path`, and runs `handler` once upgraded: `on_open`, the messages, then
/// `on_close` exactly once, also when the connect or the handshake fails (1006 with the
/// reason). Messages over `max_message` bytes fail the connection with 1009.
pub fn connect<H: WebSocketHandler>(
    reactor: &mut Reactor,
    target: impl Into<Target>,
    options: ConnectOptions,
    host: &str,
    path: &str,
    handler: H,
    max_message: usize,
) -> Connector {
    let client = WebSocketClient::new(host, path, handler, max_message);
    let factory = OneClient {
        client: Some(client),
    };
    reactor.connect(target, factory, options)
}
