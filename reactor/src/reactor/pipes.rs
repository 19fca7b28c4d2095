//! Connections over pipes: standard I/O as a transport ([`Reactor::stdio`]), and the pipes
//! to a child process (`processes.rs`).

use std::io;

use crate::connections::{Connection, ConnectionId, Phase};
use crate::protocol::Protocol;
use crate::stream::{AnyStream, Bits, Pipe};
use crate::table::Key;
use crate::Reactor;

impl Reactor {
    /// Runs `protocol` over standard input and output, as over a socket (Twisted's
    /// `StandardIO`): `connection_made` runs before this returns, bytes read from stdin
    /// reach `data_received`, and [`Context::write`](crate::Context::write) goes to stdout
    /// through the same write queue, watermarks (`pause_writing`, `resume_writing`),
    /// `write_progress` and `lose_connection` as a socket's. The end of stdin is the peer's
    /// EOF: [`Protocol::eof_received`], whose default closes once what is queued is written.
    /// `pause_reading` stops reading stdin.
    ///
    /// Stdin may be a pipe, a terminal, a regular file (`< file`) or `/dev/null`; stdout a
    /// pipe, a terminal or a file. The process's own descriptors 0 and 1 are left as they
    /// were: a terminal or pipe is reopened with its own non-blocking flag (so the shell's
    /// terminal is never left non-blocking), a regular file duplicated (and read to its end
    /// without waiting for readiness, which epoll cannot report for files). Closing the
    /// transport closes those copies, not descriptors 0 and 1: a reader of stdout sees its
    /// end when the process exits.
    ///
    /// Don't also write to stdout with `print!`: the two would interleave unpredictably.
    ///
    /// ```no_run
    /// use torsion_reactor::{Context, Protocol, Reactor};
    ///
    /// /// Echoes standard input to standard output, then stops the reactor.
    /// struct Echo;
    ///
    /// impl Protocol for Echo {
    ///     fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
    ///         cx.write(data);
    ///     }
    ///
    ///     fn connection_lost(&mut self, cx: &mut Context<'_>, _: &torsion_reactor::DisconnectReason) {
    ///         cx.reactor().stop();
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new()?;
    /// reactor.stdio(Echo)?;
    /// reactor.run()
    /// # }
    /// ```
    pub fn stdio(&mut self, protocol: impl Protocol) -> io::Result<ConnectionId> {
        let key = self.open_pipe(Pipe::standard_io()?, Box::new(protocol))?;
        Ok(ConnectionId(key))
    }

    /// Makes a connection of `pipe` running `protocol`; `connection_made` has run when this
    /// returns.
    pub(crate) fn open_pipe(&mut self, pipe: Pipe, protocol: Box<dyn Protocol>) -> io::Result<Key> {
        // Writable from the start: a full pipe says so with WouldBlock, and its edge follows.
        let mut connection = Connection::new(AnyStream::boxed(pipe), Phase::Open, Bits::WRITABLE);
        connection.protocol = Some(protocol);
        let key = self.connections.insert(self.poll.registry(), connection)?;
        self.connection_made(key);
        // A read end epoll refused (a regular file) has input no edge will announce.
        if self
            .connections
            .get(key)
            .is_some_and(|c| c.may_read() && c.has_input())
        {
            self.queue_read(key);
        }
        Ok(key)
    }
}
