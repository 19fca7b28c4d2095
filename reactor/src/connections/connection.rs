//! One connection: its stream, its lifecycle as states, its write queue and watermarks, and
//! its protocol. Every transition of its states is a method here, in one place.

use crate::protocol::Protocol;
use crate::stream::{AnyStream, Bits, Stream};
use crate::write_queue::WriteQueue;

/// Default write-queue watermarks (asyncio's defaults).
pub(crate) const DEFAULT_HIGH_WATER: u32 = 64 * 1024;
pub(crate) const DEFAULT_LOW_WATER: u32 = 16 * 1024;

/// Where a connection is in its life.
///
/// ```text
///  Connecting ──▶ Handshaking ──▶ Open ──▶ Closing ──▶ (closed)
///       └──────────────┴───────────▶│└────▶ Aborting ─▶ (closed)
/// ```
/// `Connecting` and `Handshaking` are before `connection_made`: the protocol either does not
/// exist yet (an outgoing connection) or has not been told (a TLS port's handshake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// An outgoing connection whose target is being resolved or whose non-blocking connect
    /// has not completed. No protocol yet.
    Connecting,
    /// A TLS handshake that `connection_made` waits for, and what was asked meanwhile.
    Handshaking(Then),
    /// Made: bytes flow both ways.
    Open,
    /// `lose_connection`: reading has stopped; closes once everything queued is written.
    Closing,
    /// `abort_connection`: closes when the turn settles, dropping what is queued.
    Aborting,
}

/// What happens when a handshake that `connection_made` waits for completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Then {
    /// The connection is made.
    Open,
    /// The connection is made, then closes once what is queued is written (a
    /// `lose_connection` came during the handshake).
    Close,
    /// The handshake is abandoned when the turn settles (an `abort_connection` came).
    Abort,
}

/// The read side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadSide {
    Reading,
    /// The protocol paused reading; the kernel's buffer fills and the peer slows down.
    Paused,
    /// The peer's stream ended (EOF, or TLS `close_notify`): nothing more will be read. A
    /// pause asked after it is still what `is_reading_paused` reports.
    Ended {
        paused: bool,
    },
}

/// The write side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteSide {
    Open,
    /// `shutdown_write`: half-close once what is queued is written; no more writes.
    ShutdownRequested,
    /// Half-closed: the peer has been sent EOF.
    Shut,
}

/// An established connection or one on its way. Kept small: an idle connection costs little
/// more than this struct (no read buffer of its own; an empty write queue owns no heap).
pub(crate) struct Connection {
    pub(crate) stream: AnyStream,
    /// `None` while connecting, and while the protocol is out of its place running a callback.
    pub(crate) protocol: Option<Box<dyn Protocol>>,
    pub(crate) queue: WriteQueue,
    pub(crate) high_water: u32,
    pub(crate) low_water: u32,
    pub(crate) phase: Phase,
    pub(crate) read: ReadSide,
    pub(crate) write: WriteSide,
    pub(crate) bits: Bits,
    /// The protocol was told `pause_writing` and not yet `resume_writing`.
    pub(crate) writing_paused: bool,
    /// The protocol hears `write_progress` after each flush that sends bytes.
    pub(crate) watching_writes: bool,
}

impl Connection {
    /// A connection over `stream` in `phase`, with `bits` of readiness already known.
    pub(crate) fn new(stream: AnyStream, phase: Phase, bits: u8) -> Connection {
        Connection {
            stream,
            protocol: None,
            queue: WriteQueue::default(),
            high_water: DEFAULT_HIGH_WATER,
            low_water: DEFAULT_LOW_WATER,
            phase,
            read: ReadSide::Reading,
            write: WriteSide::Open,
            bits: Bits::new(bits),
            writing_paused: false,
            watching_writes: false,
        }
    }

    /// Whether `connection_made` has run (the connection is open, or closing after it was).
    pub(crate) fn is_made(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Closing | Phase::Aborting)
    }

    /// Whether `lose_connection` or `abort_connection` was asked.
    pub(crate) fn is_closing(&self) -> bool {
        matches!(
            self.phase,
            Phase::Closing | Phase::Aborting | Phase::Handshaking(Then::Close | Then::Abort)
        )
    }

    /// Whether the connection is to be closed now, dropping its queue.
    pub(crate) fn is_aborting(&self) -> bool {
        matches!(
            self.phase,
            Phase::Aborting | Phase::Handshaking(Then::Abort)
        )
    }

    /// Whether the stream may be read and the protocol handed bytes (a handshake reads too:
    /// its records come that way).
    #[inline]
    pub(crate) fn may_read(&self) -> bool {
        self.read == ReadSide::Reading
            && matches!(
                self.phase,
                Phase::Open | Phase::Handshaking(Then::Open | Then::Close)
            )
    }

    /// Whether a read could bring something now: the socket is readable, or the stream holds
    /// input no edge will announce.
    pub(crate) fn has_input(&self) -> bool {
        self.bits.has(Bits::READABLE) || self.stream.input_waiting()
    }

    /// Whether writes are taken (the write side open, not connecting).
    #[inline]
    pub(crate) fn accepts_writes(&self) -> bool {
        self.write == WriteSide::Open && self.phase != Phase::Connecting
    }

    /// Whether bytes wait to be written: queued by the protocol, or held by the stream (a TLS
    /// layer's records), unless nothing can leave any more.
    #[inline]
    pub(crate) fn has_output(&self) -> bool {
        !self.queue.is_empty() || self.write != WriteSide::Shut && self.stream.has_output()
    }

    /// `lose_connection`; false if it does not apply (still connecting).
    pub(crate) fn lose(&mut self) -> bool {
        self.phase = match self.phase {
            Phase::Connecting => return false,
            Phase::Handshaking(Then::Open) => Phase::Handshaking(Then::Close),
            Phase::Open => Phase::Closing,
            other => other,
        };
        true
    }

    /// `abort_connection`; false if it does not apply (still connecting).
    pub(crate) fn abort(&mut self) -> bool {
        self.phase = match self.phase {
            Phase::Connecting => return false,
            Phase::Handshaking(_) => Phase::Handshaking(Then::Abort),
            _ => Phase::Aborting,
        };
        true
    }

    /// `shutdown_write`; false if it does not apply (still connecting).
    pub(crate) fn shutdown_write(&mut self) -> bool {
        if self.phase == Phase::Connecting {
            return false;
        }
        if self.write == WriteSide::Open {
            self.write = WriteSide::ShutdownRequested;
        }
        true
    }

    /// TCP is connected and a TLS handshake begins, which `connection_made` waits for.
    pub(crate) fn handshake_started(&mut self) {
        if self.phase == Phase::Connecting {
            self.phase = Phase::Handshaking(Then::Open);
        }
    }

    /// The write side was shut (FIN sent) after a `shutdown_write`.
    pub(crate) fn write_shut(&mut self) {
        self.write = WriteSide::Shut;
    }

    /// The handshake that `connection_made` waited for is complete (or there was none).
    pub(crate) fn made(&mut self) {
        self.phase = match self.phase {
            Phase::Connecting | Phase::Handshaking(Then::Open) => Phase::Open,
            Phase::Handshaking(Then::Close) => Phase::Closing,
            Phase::Handshaking(Then::Abort) => Phase::Aborting,
            made => made,
        };
    }

    /// `pause_reading`.
    pub(crate) fn pause_reading(&mut self) {
        self.read = match self.read {
            ReadSide::Reading | ReadSide::Paused => ReadSide::Paused,
            ReadSide::Ended { .. } => ReadSide::Ended { paused: true },
        };
    }

    /// `resume_reading`; true if reading was paused and now goes on (after the peer's end
    /// there is nothing to read on).
    pub(crate) fn resume_reading(&mut self) -> bool {
        match self.read {
            ReadSide::Paused => {
                self.read = ReadSide::Reading;
                true
            }
            ReadSide::Ended { .. } => {
                self.read = ReadSide::Ended { paused: false };
                false
            }
            ReadSide::Reading => false,
        }
    }

    /// Whether the protocol paused reading (and has not resumed it).
    pub(crate) fn is_reading_paused(&self) -> bool {
        matches!(
            self.read,
            ReadSide::Paused | ReadSide::Ended { paused: true }
        )
    }

    /// The peer's stream ended.
    pub(crate) fn read_ended(&mut self) {
        self.read = ReadSide::Ended { paused: false };
    }

    /// Whether the peer's stream ended.
    pub(crate) fn has_read_ended(&self) -> bool {
        matches!(self.read, ReadSide::Ended { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_asked_during_a_handshake_waits_for_it_then_closes() {
        let mut conn = Connection::new(AnyStream::detached(), Phase::Handshaking(Then::Open), 0);
        assert!(conn.lose());
        assert!(conn.may_read(), "the handshake goes on");
        assert!(conn.is_closing() && !conn.is_made());
        conn.made();
        assert_eq!(conn.phase, Phase::Closing);
        assert!(!conn.may_read());
    }

    #[test]
    fn an_abort_wins_over_a_close_and_nothing_applies_while_connecting() {
        let mut conn = Connection::new(AnyStream::detached(), Phase::Open, 0);
        conn.lose();
        conn.abort();
        assert!(conn.is_aborting());
        conn.lose();
        assert_eq!(
            conn.phase,
            Phase::Aborting,
            "a close does not undo an abort"
        );
        let mut connecting = Connection::new(AnyStream::detached(), Phase::Connecting, 0);
        assert!(!connecting.lose() && !connecting.abort() && !connecting.shutdown_write());
        assert!(!connecting.accepts_writes());
    }

    #[test]
    fn reading_ends_for_good_and_pausing_does_not_resurrect_it() {
        let mut conn = Connection::new(AnyStream::detached(), Phase::Open, 0);
        conn.pause_reading();
        assert!(!conn.may_read());
        assert!(conn.resume_reading());
        conn.read_ended();
        conn.pause_reading();
        assert!(
            conn.is_reading_paused(),
            "the pause is what the protocol asked"
        );
        assert!(!conn.resume_reading(), "nothing to read on");
        assert!(!conn.is_reading_paused());
        assert!(conn.has_read_ended() && !conn.may_read());
    }
}
