//! Shutting the reactor down gracefully: triggers, closing everything, waiting for the
//! connections to drain (or the deadline), and SIGINT/SIGTERM.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use log::{info, warn};
use mio::Interest;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::listeners::{Accepted, ListenSocket};
use crate::reader::ReaderId;
use crate::shutdown::{Phase, Signals, SIGNAL_TOKEN};
use crate::table::Key;
use crate::timers::TimerAction;
use crate::{ConnectError, ConnectionId, Reactor};

impl Reactor {
    /// Whether a graceful shutdown is under way.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.is_draining()
    }

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

    /// Shuts down gracefully: runs the `Before` triggers, stops listening (accepting the
    /// connections already queued on each socket first, since closing it would reset them),
    /// fails pending connection attempts, asks every connection to close once its queue is
    /// flushed (FIN, not RST; each gets `connection_lost`; one accepted in its TLS handshake
    /// finishes it first), runs the `During` triggers, waits until every
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
        for trigger in self.shutdown.take_triggers(phase) {
            trigger(self);
        }
    }

    /// Stops every listener (accepting what its queue holds first), fails every pending
    /// connect, asks every connection to close, stops watching every descriptor, closes
    /// every UDP socket.
    fn close_everything(&mut self) {
        // Taken before the queues are emptied: a connection accepted from now on hears
        // `shutdown_requested` once it is made (see `connection_made`).
        let connections: Vec<(Key, bool)> = self
            .connections
            .iter()
            .map(|(key, c)| (key, c.is_made()))
            .collect();
        for key in self.listeners.keys() {
            self.accept_whole_queue(key);
            self.warn_if_closing_resets(key);
            self.stop_listener(key);
        }
        for (key, made) in connections {
            if made {
                self.request_shutdown(key);
            } else if self.outgoing.get_mut(key).is_some() {
                self.fail_connect(key, ConnectError::Cancelled);
            }
            // Else an accepted connection in its TLS handshake: it finishes (within the
            // handshake timeout), is made, and is asked to close like the others.
        }
        let readers: Vec<Key> = self.readers.iter().map(|(key, _)| key).collect();
        for key in readers {
            self.remove_reader(ReaderId(key));
        }
        self.terminate_processes(SIGTERM);
        let sockets: Vec<Key> = self.datagrams.iter().map(|(key, _)| key).collect();
        for key in sockets {
            self.close_udp(key);
        }
    }

    /// Accepts every connection waiting in port `key`'s queue (as far as its limits allow),
    /// so they are served: closing a socket resets the connections still queued on it.
    fn accept_whole_queue(&mut self, key: Key) {
        let mut accepted = 0;
        while self.may_accept(key) {
            match self.listeners.accept(key) {
                Accepted::Connection(socket, peer) => {
                    self.counters.connections_accepted += 1;
                    accepted += 1;
                    self.adopt(key, socket, peer);
                }
                Accepted::Skipped(_) => {}
                Accepted::Done | Accepted::Starved(_) => break,
            }
        }
        if accepted > 0 {
            info!("accepted {accepted} connections waiting in the queue before closing it");
        }
    }

    /// Tells a connection's protocol the reactor is shutting down. A protocol that is out of
    /// its slot (the shutdown was asked from its own callback) cannot be called: it is asked
    /// to close, as the default `shutdown_requested` would.
    fn request_shutdown(&mut self, key: Key) {
        let in_callback = self
            .connections
            .get(key)
            .is_some_and(|c| c.protocol.is_none());
        if in_callback {
            self.lose_connection(ConnectionId(key));
        } else {
            self.call(key, |p, cx| p.shutdown_requested(cx));
        }
    }

    /// Warns, once per process, that closing port `key` may reset connections: on Linux a
    /// socket of a `SO_REUSEPORT` group that closes resets the connections completing their
    /// handshake on it in that instant, unless `net.ipv4.tcp_migrate_req` is 1 (the kernel
    /// then hands them to another socket of the group: another process's, in a restart).
    fn warn_if_closing_resets(&self, key: Key) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        let Some(ListenSocket::Tcp(socket)) = self.listeners.get(key).map(|l| &l.socket) else {
            return;
        };
        let reuse_port = socket2::SockRef::from(socket).reuse_port().unwrap_or(false);
        if !reuse_port || WARNED.load(Ordering::Relaxed) || migrates_requests() {
            return;
        }
        WARNED.store(true, Ordering::Relaxed);
        warn!(
            "closing a SO_REUSEPORT socket: a connection completing its handshake on it right \
             now is reset; set the sysctl net.ipv4.tcp_migrate_req=1 to have the kernel hand \
             such connections to the port's other sockets"
        );
    }

    /// A connection made during a shutdown (accepted from a queue, or its TLS handshake done)
    /// is asked to close as soon as it is made.
    pub(crate) fn made_while_draining(&mut self, key: Key) {
        if self.shutdown.draining {
            self.request_shutdown(key);
        }
    }

    /// At the end of each turn of a shutdown: once no connection is left, finish.
    pub(crate) fn finish_shutdown_if_drained(&mut self) {
        if !self.shutdown.draining || !self.connections.is_empty() || self.has_processes() {
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
        let keys: Vec<(Key, bool)> = self
            .connections
            .iter()
            .map(|(key, c)| (key, c.is_made()))
            .collect();
        if !keys.is_empty() {
            warn!(
                "shutdown: aborting {} connections that did not close in time",
                keys.len()
            );
        }
        for (key, made) in keys {
            if made {
                // An intent, carried out when the turn settles: this may run inside a
                // protocol callback (a forced shutdown), whose protocol is out of its place.
                self.abort_connection(ConnectionId(key));
            } else {
                self.fail_connect(key, ConnectError::Cancelled);
            }
        }
        // Children that ignored SIGTERM: their exit ends the shutdown, soon after this.
        self.terminate_processes(signal_hook::consts::SIGKILL);
        if let Some(deadline) = self.shutdown.deadline.take() {
            self.timers.cancel(deadline);
        }
    }
}

/// Whether the kernel moves the connections queued on a closing `SO_REUSEPORT` socket to
/// another socket of its group (`net.ipv4.tcp_migrate_req`, Linux 5.14 and later).
fn migrates_requests() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").is_ok_and(|v| v.trim() == "1")
}
