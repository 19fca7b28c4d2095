//! The throughput load: N client connections on one thread (one mio poll), each sending its
//! share of the bytes in 16 KiB writes, keeping at most [`WINDOW`] bytes in flight, and
//! reading the echo back, every byte checked. The same code drives every server; for the
//! plain-TCP reference servers it skips the TLS layer.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::stream::{ClientStream, Dialer};

/// Plaintext bytes per write: one full TLS record.
pub const WRITE_SIZE: usize = 16 * 1024;

/// Plaintext bytes a connection may have sent and not yet seen echoed. Bounded so that no
/// server ever has to buffer much: an echo server reads only as fast as it can write.
pub const WINDOW: u64 = 16 * WRITE_SIZE as u64;

/// The sent stream repeats with this period; prime, so a chunk misplaced by any multiple of
/// the write or record size shows.
const PERIOD: usize = 251;

/// Size of the read buffer.
const READ_SIZE: usize = 64 * 1024;

/// How long the poll waits before the run's deadline is checked again.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// One client connection's progress in a run (counts start at 0 every run: the previous run
/// ended with every byte echoed).
struct Conn {
    stream: ClientStream,
    quota: u64,
    sent: u64,
    received: u64,
}

impl Conn {
    fn done(&self) -> bool {
        self.received == self.quota
    }

    /// Reads whatever has arrived, then writes while the window and the socket allow.
    fn service(&mut self, pattern: &[u8], buf: &mut [u8]) -> io::Result<()> {
        self.receive(pattern, buf)?;
        self.send(pattern)?;
        self.stream.flush().map(drop)
    }

    fn receive(&mut self, pattern: &[u8], buf: &mut [u8]) -> io::Result<()> {
        loop {
            let n = match self.stream.read_plain(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            let offset = (self.received % PERIOD as u64) as usize;
            if buf[..n] != pattern[offset..offset + n] {
                return Err(io::Error::other("echo does not match what was sent"));
            }
            self.received += n as u64;
            if self.received > self.sent {
                return Err(io::Error::other("server echoed more than was sent"));
            }
        }
    }

    /// Sends full writes (only the last of a run may be shorter) while they fit the window.
    fn send(&mut self, pattern: &[u8]) -> io::Result<()> {
        loop {
            let len = (self.quota - self.sent).min(WRITE_SIZE as u64);
            if len == 0 || self.sent - self.received + len > WINDOW {
                return Ok(());
            }
            let offset = (self.sent % PERIOD as u64) as usize;
            match self
                .stream
                .write_plain(&pattern[offset..offset + len as usize])
            {
                Ok(n) => self.sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug)]
pub struct BulkStats {
    /// Bytes echoed (sent, received back and checked).
    pub bytes: u64,
    /// Wall time from the first write to the last byte back.
    pub elapsed: Duration,
}

/// A set of client connections to one server.
pub struct BulkClient {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    pattern: Vec<u8>,
    buf: Vec<u8>,
}

impl BulkClient {
    /// Opens `count` connections to `addr`; their handshakes run with the first run.
    pub fn connect(addr: SocketAddr, count: usize, dialer: &Dialer) -> io::Result<BulkClient> {
        let poll = Poll::new()?;
        let conns = (0..count)
            .map(|i| {
                let stream = dialer.connect(addr, poll.registry(), Token(i))?;
                Ok(Conn {
                    stream,
                    quota: 0,
                    sent: 0,
                    received: 0,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let len = READ_SIZE.max(WRITE_SIZE) + PERIOD;
        Ok(BulkClient {
            poll,
            events: Events::with_capacity(1024),
            conns,
            pattern: (0..len).map(|i| (i % PERIOD) as u8).collect(),
            buf: vec![0; READ_SIZE],
        })
    }

    /// The first connection's protocol version and cipher suite.
    pub fn describe(&self) -> String {
        self.conns
            .first()
            .map_or_else(String::new, |c| c.stream.describe())
    }

    /// Sends `bytes` in all (split evenly over the connections) and waits until every byte
    /// is back. Fails if that takes over `timeout`.
    pub fn run(&mut self, bytes: u64, timeout: Duration) -> io::Result<BulkStats> {
        let count = self.conns.len() as u64;
        let start = Instant::now();
        let deadline = start + timeout;
        let mut remaining = 0usize;
        for (i, conn) in self.conns.iter_mut().enumerate() {
            conn.quota = bytes / count + u64::from((i as u64) < bytes % count);
            conn.sent = 0;
            conn.received = 0;
            conn.service(&self.pattern, &mut self.buf)?;
            remaining += usize::from(!conn.done());
        }
        while remaining > 0 {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("throughput run not finished after {timeout:?}"),
                ));
            }
            match self.poll.poll(&mut self.events, Some(POLL_TIMEOUT)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            }
            for event in self.events.iter() {
                let Some(conn) = self.conns.get_mut(event.token().0) else {
                    continue;
                };
                if conn.done() {
                    continue;
                }
                conn.service(&self.pattern, &mut self.buf)?;
                remaining -= usize::from(conn.done());
            }
        }
        Ok(BulkStats {
            bytes,
            elapsed: start.elapsed(),
        })
    }
}
