//! What the reactor keeps per socket in its slab, and the generation-tagged ids that name it.

use std::fmt;

use mio::net::TcpListener;
use mio::Token;

use crate::protocol::{AnyFactory, Protocol};
use crate::stream::Stream;
use crate::write_queue::WriteQueue;

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "torsion packs a slot index and a generation into a mio Token: it needs 64-bit usize"
);

/// A slab index plus the generation of the socket that held it when the key was made.
///
/// Slab reuses freed indexes at once, so an index alone could name a newer socket; the
/// generation makes a stale event, timer or id miss instead (mio #172, #219).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl Key {
    pub(crate) fn token(self) -> Token {
        Token(((self.generation as usize) << 32) | self.index as usize)
    }

    pub(crate) fn from_token(token: Token) -> Key {
        Key {
            index: token.0 as u32,
            generation: (token.0 >> 32) as u32,
        }
    }
}

/// Names one connection for as long as it lives. Copy it freely (into shared state, timers,
/// other protocols); once the connection is gone, the id is stale and every operation on it is
/// a no-op, even after its slot has been reused by a new connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub(crate) Key);

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({}.{})", self.0.index, self.0.generation)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.0.index, self.0.generation)
    }
}

/// One slab entry: the socket and what it is for.
pub(crate) struct Slot {
    pub(crate) generation: u32,
    pub(crate) kind: SlotKind,
}

pub(crate) enum SlotKind {
    Listener(Listener),
    /// An established connection, or an outgoing one still connecting (flag `CONNECTING`).
    Connection(Connection),
    /// A descriptor watched with `add_reader`.
    Reader(crate::reader::Reader),
    /// A UDP socket (boxed: few and larger than a connection).
    Udp(Box<crate::udp::UdpEndpoint>),
}

pub(crate) struct Listener {
    pub(crate) socket: TcpListener,
    pub(crate) factory: Box<dyn AnyFactory>,
    /// True while accepting is suspended after EMFILE/ENFILE and a retry timer is pending.
    pub(crate) backing_off: bool,
    /// True from a resource error until the next successful accept: the error is logged once.
    pub(crate) starved: bool,
    /// For `listen_tls`: the server configuration each accepted connection handshakes with.
    pub(crate) tls: Option<Box<crate::tls::ServerTls>>,
}

/// Connection state flags: one bit each, so an idle connection stays small.
pub(crate) mod flag {
    /// The socket may have bytes to read (no WouldBlock since the last readable event).
    pub(crate) const READABLE: u16 = 1 << 0;
    /// The socket may take bytes (no WouldBlock since the last writable event).
    pub(crate) const WRITABLE: u16 = 1 << 1;
    /// The peer's FIN was seen in an event: keep reading past a short read to reach EOF.
    pub(crate) const READ_CLOSED: u16 = 1 << 2;
    /// The protocol asked to stop reading.
    pub(crate) const READING_PAUSED: u16 = 1 << 3;
    /// The protocol was told `pause_writing` and not yet `resume_writing`.
    pub(crate) const WRITING_PAUSED: u16 = 1 << 4;
    /// EOF was read; nothing more will be read.
    pub(crate) const EOF: u16 = 1 << 5;
    /// `lose_connection`: close once the queue is flushed; read no more.
    pub(crate) const CLOSING: u16 = 1 << 6;
    /// `abort_connection`: close now.
    pub(crate) const ABORTING: u16 = 1 << 7;
    /// `shutdown_write`: half-close once the queue is flushed.
    pub(crate) const SHUTDOWN_REQUESTED: u16 = 1 << 8;
    /// The write half is shut.
    pub(crate) const WRITE_SHUT: u16 = 1 << 9;
    /// On the reactor's dirty list.
    pub(crate) const DIRTY: u16 = 1 << 10;
    /// On the reactor's ready list (more to read than one turn's budget, or reading resumed).
    pub(crate) const QUEUED_READ: u16 = 1 << 11;
    /// An outgoing connection whose non-blocking connect has not completed: no protocol yet.
    pub(crate) const CONNECTING: u16 = 1 << 12;
    /// A `listen_tls` or TLS `connect` connection whose TLS handshake has not completed:
    /// `connection_made` waits for it.
    pub(crate) const HANDSHAKING: u16 = 1 << 13;
}

/// An established connection. Kept small: the benchmark holds 10,000 idle ones and this is
/// most of what each costs (no read buffer of its own; an empty write queue owns no heap).
pub(crate) struct Connection {
    pub(crate) socket: Stream,
    pub(crate) flags: u16,
    pub(crate) high_water: u32,
    pub(crate) low_water: u32,
    /// `None` while connecting, and while the protocol is out of the slot running a callback.
    pub(crate) protocol: Option<Box<dyn Protocol>>,
    pub(crate) queue: WriteQueue,
}

impl Connection {
    pub(crate) fn has(&self, bits: u16) -> bool {
        self.flags & bits != 0
    }

    pub(crate) fn set(&mut self, bits: u16) {
        self.flags |= bits;
    }

    pub(crate) fn clear(&mut self, bits: u16) {
        self.flags &= !bits;
    }

    /// Whether a read should be attempted now.
    pub(crate) fn wants_read(&self) -> bool {
        self.has(flag::READABLE) && self.may_read()
    }

    /// Whether the protocol may be handed bytes (reading not paused, not ended, not closing).
    pub(crate) fn may_read(&self) -> bool {
        !self.has(
            flag::READING_PAUSED | flag::EOF | flag::CLOSING | flag::ABORTING | flag::CONNECTING,
        )
    }

    /// Whether bytes wait to be written: queued by the protocol, or made by the TLS stage
    /// (handshake records, alerts, encrypted data).
    pub(crate) fn has_output(&self) -> bool {
        !self.queue.is_empty()
            || self.socket.tls().is_some_and(|tls| tls.has_output()) && !self.has(flag::WRITE_SHUT)
        // nothing more can leave: never wait for it
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_tokens() {
        let key = Key {
            index: 12345,
            generation: u32::MAX - 3,
        };
        assert!(Key::from_token(key.token()) == key);
    }

    #[test]
    fn an_idle_connection_slot_stays_small() {
        // The per-idle-connection memory target is 256 bytes including slab slack.
        assert!(std::mem::size_of::<slab::Slab<Slot>>() < 64);
        assert!(
            std::mem::size_of::<Slot>() <= 128,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }
}
