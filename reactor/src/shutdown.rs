//! Graceful shutdown: system event triggers (Twisted's `addSystemEventTrigger`), draining
//! every connection before `run` returns, and SIGINT/SIGTERM handling.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use log::{info, warn};
use mio::{Interest, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::SigId;

use crate::delayed_call::{ReactorCall, TimerAction};
use crate::reader::ReaderId;
use crate::slot::{flag, ConnectionId, Key, SlotKind};
use crate::time::TimerKey;
use crate::{ConnectError, Reactor};

/// The token of the signal pipe.
pub(crate) const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);

/// How long a graceful shutdown waits for connections to flush and close, by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// When a shutdown trigger runs, relative to the reactor closing its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// First, while everything still runs: listeners still accept, connections still read.
    Before,
    /// Right after the reactor stopped listening and asked every connection to close.
    During,
    /// Once every connection is closed (or the deadline aborted the rest), just before `run`
    /// returns.
    After,
}

/// Shutdown state: triggers waiting, whether a shutdown is under way, signal registration.
pub(crate) struct Shutdown {
    triggers: Vec<(Phase, ReactorCall)>,
    pub(crate) timeout: Duration,
    pub(crate) draining: bool,
    deadline: Option<TimerKey>,
    signals: Option<Signals>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            triggers: Vec::new(),
            timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            draining: false,
            deadline: None,
            signals: None,
        }
    }
}

/// SIGINT and SIGTERM, delivered as bytes on a socket pair the reactor polls.
struct Signals {
    receiver: mio::net::UnixStream,
    ids: Vec<SigId>,
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl Reactor {
    /// Registers `f` to run once when the reactor shuts down gracefully, in `phase`.
    /// Triggers of one phase run in the order they were added.
    pub fn add_shutdown_trigger(&mut self, phase: Phase, f: impl FnOnce(&mut Reactor) + 'static) {
        self.shutdown.triggers.push((phase, Box::new(f)));
    }

    /// How long a graceful shutdown waits for connections to flush before aborting them.
    /// Default: 5 seconds.
    pub fn set_shutdown_timeout(&mut self, timeout: Duration) {
        self.shutdown.timeout = timeout;
    }

    /// Shuts down gracefully: runs the `Before` triggers, stops listening, fails pending
    /// connection attempts, asks every connection to close once its queue is flushed (FIN,
    /// not RST; each gets `connection_lost`), runs the `During` triggers, waits until every
    /// connection has closed or the shutdown timeout passed (then aborts the rest), runs the
    /// `After` triggers, and makes [`run`](Reactor::run) return. Calling it again while a
    /// shutdown is under way forces it: what is left is aborted when the current turn
    /// settles (or during the next turn, when called between turns).
    pub fn shutdown(&mut self) {
        if self.shutdown.draining {
            warn!("shutdown forced: aborting the remaining connections");
            self.shutdown_deadline_passed();
            return;
        }
        info!("shutting down");
        self.shutdown.draining = true;
        self.run_triggers(Phase::Before);
        self.close_everything();
        self.run_triggers(Phase::During);
        let deadline = self.now() + self.shutdown.timeout;
        self.shutdown.deadline = Some(
            self.timers
                .schedule(deadline, TimerAction::ShutdownDeadline),
        );
        self.finish_shutdown_if_drained();
    }

    /// Makes SIGINT and SIGTERM shut the reactor down gracefully (see
    /// [`shutdown`](Reactor::shutdown)); a second signal forces the shutdown. Not done by
    /// default, so a reactor embedded in another program leaves its signals alone.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        if self.shutdown.signals.is_some() {
            return Ok(());
        }
        let (receiver, sender) = UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        sender.set_nonblocking(true)?;
        let mut ids = Vec::new();
        for signal in [SIGINT, SIGTERM] {
            ids.push(signal_hook::low_level::pipe::register(
                signal,
                sender.try_clone()?,
            )?);
        }
        let mut receiver = mio::net::UnixStream::from_std(receiver);
        self.poll
            .registry()
            .register(&mut receiver, SIGNAL_TOKEN, Interest::READABLE)?;
        self.shutdown.signals = Some(Signals { receiver, ids });
        Ok(())
    }

    /// The signal pipe is readable: one byte per signal received.
    pub(crate) fn signals_received(&mut self) {
        let Some(signals) = self.shutdown.signals.as_mut() else {
            return;
        };
        let mut buf = [0u8; 64];
        let mut count = 0;
        loop {
            match signals.receiver.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => count += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock: drained
            }
        }
        for _ in 0..count {
            info!("signal received");
            self.shutdown();
        }
    }

    fn run_triggers(&mut self, phase: Phase) {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.shutdown.triggers)
            .into_iter()
            .partition(|(p, _)| *p == phase);
        self.shutdown.triggers = later;
        for (_, trigger) in now {
            trigger(self);
        }
    }

    /// Stops every listener, fails every pending connect, asks every connection to close.
    fn close_everything(&mut self) {
        enum Closing {
            Listener,
            Connecting,
            Connection,
            Reader,
            Udp,
        }
        let keys: Vec<(Key, Closing)> = self
            .slots
            .iter()
            .map(|(index, slot)| {
                let key = Key {
                    index: index as u32,
                    generation: slot.generation,
                };
                let closing = match &slot.kind {
                    SlotKind::Listener(_) => Closing::Listener,
                    SlotKind::Connection(c) if c.has(flag::CONNECTING | flag::HANDSHAKING) => {
                        Closing::Connecting
                    }
                    SlotKind::Connection(_) => Closing::Connection,
                    SlotKind::Reader(_) => Closing::Reader,
                    SlotKind::Udp(_) => Closing::Udp,
                };
                (key, closing)
            })
            .collect();
        for (key, closing) in keys {
            match closing {
                Closing::Listener => {
                    self.stop_listener(key);
                }
                Closing::Connecting => self.fail_connect(key, ConnectError::Cancelled),
                Closing::Connection => self.request_shutdown(key),
                Closing::Reader => {
                    self.remove_reader(ReaderId(key));
                }
                Closing::Udp => {
                    self.close_udp(key);
                }
            }
        }
    }

    /// Tells a connection's protocol the reactor is shutting down. A protocol that is out of
    /// its slot (the shutdown was asked from its own callback) cannot be called: it is asked
    /// to close, as the default `shutdown_requested` would.
    fn request_shutdown(&mut self, key: Key) {
        let in_callback = self.connection(key).is_some_and(|c| c.protocol.is_none());
        if in_callback {
            self.lose_connection(ConnectionId(key));
        } else {
            self.callback(key, |p, cx| p.shutdown_requested(cx));
        }
    }

    /// At the end of each turn of a shutdown: once no connection is left, finish.
    pub(crate) fn finish_shutdown_if_drained(&mut self) {
        if !self.shutdown.draining
            || self
                .slots
                .iter()
                .any(|(_, s)| matches!(s.kind, SlotKind::Connection(_)))
        {
            return;
        }
        if let Some(deadline) = self.shutdown.deadline.take() {
            self.timers.cancel(deadline);
        }
        self.run_triggers(Phase::After);
        self.shutdown.draining = false;
        info!("shutdown complete");
        self.stop();
    }

    /// The shutdown timeout passed (or a second signal came): abort what is left.
    pub(crate) fn shutdown_deadline_passed(&mut self) {
        let keys: Vec<Key> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.kind, SlotKind::Connection(_)))
            .map(|(index, slot)| Key {
                index: index as u32,
                generation: slot.generation,
            })
            .collect();
        if !keys.is_empty() {
            warn!(
                "shutdown: aborting {} connections that did not close in time",
                keys.len()
            );
        }
        for key in keys {
            if self
                .connection(key)
                .is_some_and(|c| c.has(flag::CONNECTING | flag::HANDSHAKING))
            {
                self.fail_connect(key, ConnectError::Cancelled);
            } else {
                // An intent, carried out when the turn settles: this may run inside a
                // protocol callback (a forced shutdown), whose protocol is out of its slot.
                self.abort_connection(ConnectionId(key));
            }
        }
        if let Some(deadline) = self.shutdown.deadline.take() {
            self.timers.cancel(deadline);
        }
    }
}
