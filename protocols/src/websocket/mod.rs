//! WebSocket (RFC 6455): a sans-I/O codec ([`WebSocket`]: frames, masking, fragments, UTF-8,
//! pings, the close handshake, a size limit), the opening handshake ([`handshake`]), and,
//! with the `reactor` feature, a server side reached by upgrading an HTTP request
//! ([`accept`]) and a client ([`connect`]), both driving a [`WebSocketHandler`].
//!
//! ```
//! use torsion_protocols::websocket::{Event, WebSocket};
//!
//! let mut server = WebSocket::server();
//! // A masked "Hello" from a client (RFC 6455 §5.7).
//! server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! assert_eq!(server.next_event(), Some(Ok(Event::Text("Hello".into()))));
//! server.send_text("Hi").unwrap();
//! assert_eq!(&server.take_output()[..], b"\x81\x02Hi");
//! ```
//!
//! See the guide's WebSocket page for the handshake, the limits and the close codes.

mod codec;
#[cfg(test)]
mod codec_tests;
mod frame;
pub mod handshake;
mod sha1;

pub use codec::{
    random_mask_key, Event, ProtocolError, Role, SendError, State, WebSocket, DEFAULT_MAX_MESSAGE,
};

/// A close frame's status code (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page left).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no code was in the close frame (reported, never sent).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection ended without a close frame (reported, never sent).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a text message (or close reason) was not UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message broke the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was over the size limit.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client needed an extension the server did not offer.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server failed on an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// Whether the code may appear in a close frame: 1000–1003, 1007–1011 (defined by RFC
    /// 6455), 3000–4999 (registered and private). 1005, 1006 and 1015 are only reported,
    /// never sent; the rest is reserved.
    pub fn may_be_sent(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1011 | 3000..=4999)
    }
}

#[cfg(feature = "reactor")]
mod client;
#[cfg(feature = "reactor")]
mod protocol;
#[cfg(feature = "reactor")]
mod server;
#[cfg(all(test, feature = "reactor"))]
mod server_tests;

#[cfg(feature = "reactor")]
pub use client::{connect, ClientSlot, WebSocketClient};
#[cfg(feature = "reactor")]
pub use protocol::{
    Message, Sender, WebSocketHandle, WebSocketHandler, WebSocketProtocol, CLOSE_TIMEOUT,
    KEEPALIVE_INTERVAL,
};
#[cfg(feature = "reactor")]
pub use server::accept;
