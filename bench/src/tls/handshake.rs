//! The handshake-rate load: `concurrency` connections at a time, on one thread (one mio
//! poll), each making a full handshake (the clients do not resume sessions), echoing one
//! small probe (so the server has certainly finished its side of the handshake and served
//! the connection), and closing with `close_notify`; each closed connection is replaced by a
//! new one until the run's count is reached.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::stream::{ClientStream, Dialer};

/// The probe each connection sends and expects back.
const PROBE: &[u8] = b"torsion handshake probe\n";

/// How long the poll waits before the run's deadline is checked again.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// One connection between connect and close.
struct Attempt {
    stream: ClientStream,
    sent: usize,
    received: usize,
}

impl Attempt {
    /// Moves the connection on as far as its socket allows; true once the probe is back.
    fn service(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.stream.flush()?;
        while self.received < PROBE.len() {
            let n = match self.stream.read_plain(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            if self.received + n > self.sent || buf[..n] != PROBE[self.received..][..n] {
                return Err(io::Error::other("probe echo does not match what was sent"));
            }
            self.received += n;
        }
        // The probe goes out once the handshake is done, so it is not 0-RTT-like early data
        // in rustls's buffer and its echo proves the whole handshake.
        while !self.stream.is_handshaking() && self.sent < PROBE.len() {
            match self.stream.write_plain(&PROBE[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.stream.flush()?;
        Ok(self.received == PROBE.len())
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeStats {
    /// Connections that completed (handshake, probe echoed, closed).
    pub connections: u64,
    /// Wall time from the first connect to the last close.
    pub elapsed: Duration,
}

/// The state of one run.
struct Run<'a> {
    addr: SocketAddr,
    dialer: &'a Dialer,
    poll: Poll,
    slots: Vec<Option<Attempt>>,
    total: u64,
    started: u64,
    finished: u64,
    buf: Vec<u8>,
}

impl Run<'_> {
    /// Moves slot `i` on: services its connection, and while that completes, closes it and
    /// starts the next one in its place (which is serviced at once: a connection whose first
    /// steps already went through gets no further event).
    fn drive(&mut self, i: usize) -> io::Result<()> {
        loop {
            let Some(attempt) = self.slots.get_mut(i).and_then(Option::as_mut) else {
                if self.started == self.total || i >= self.slots.len() {
                    return Ok(());
                }
                let stream = self
                    .dialer
                    .connect(self.addr, self.poll.registry(), Token(i))?;
                self.started += 1;
                self.slots[i] = Some(Attempt {
                    stream,
                    sent: 0,
                    received: 0,
                });
                continue;
            };
            if !attempt.service(&mut self.buf)? {
                return Ok(());
            }
            attempt.stream.close(self.poll.registry())?;
            self.slots[i] = None;
            self.finished += 1;
        }
    }
}

/// Runs `total` connections against `addr`, `concurrency` at a time. Fails if that takes
/// over `timeout`.
pub fn run(
    addr: SocketAddr,
    dialer: &Dialer,
    total: u64,
    concurrency: usize,
    timeout: Duration,
) -> io::Result<HandshakeStats> {
    let mut run = Run {
        addr,
        dialer,
        poll: Poll::new()?,
        slots: (0..concurrency).map(|_| None).collect(),
        total,
        started: 0,
        finished: 0,
        buf: vec![0; 4096],
    };
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let deadline = start + timeout;
    for i in 0..concurrency {
        run.drive(i)?;
    }
    while run.finished < total {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "handshake run not finished after {timeout:?} ({} of {total})",
                    run.finished
                ),
            ));
        }
        match run.poll.poll(&mut events, Some(POLL_TIMEOUT)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        }
        // A slot's token is reused for the next connection: an event left in this batch for
        // the closed one only makes the new one try its socket once more (it gets
        // WouldBlock), which is harmless.
        for event in events.iter() {
            run.drive(event.token().0)?;
        }
    }
    Ok(HandshakeStats {
        connections: total,
        elapsed: start.elapsed(),
    })
}
