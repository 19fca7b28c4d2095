//! The load generator: one thread driving every client connection through its own mio poll,
//! identical for all servers.
//!
//! Each connection sends 64-byte messages and keeps `depth` of them in flight: it starts by
//! sending `depth`, and sends one more for every complete echo it gets back, until it has sent
//! its share. Depth 1 is request/response ping-pong. Every echoed byte is checked.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Size of one message.
pub const MESSAGE_SIZE: usize = 64;

/// The bytes of every message (all messages are equal: the echoed stream is periodic).
const MESSAGE: [u8; MESSAGE_SIZE] = message();

/// How long one connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the poll waits before the run's deadline is checked again.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Builds [`MESSAGE`]: printable, and different at every offset so a reordering shows.
const fn message() -> [u8; MESSAGE_SIZE] {
    let mut m = [0u8; MESSAGE_SIZE];
    let mut i = 0;
    while i < MESSAGE_SIZE {
        m[i] = b'0' + (i % 75) as u8;
        i += 1;
    }
    m
}

/// What a run did.
#[derive(Clone, Copy, Debug)]
pub struct RunStats {
    /// Messages echoed (sent and received back, checked).
    pub messages: u64,
    /// Wall-clock time from the first send to the last echo.
    pub elapsed: Duration,
}

/// One client connection's state within a run. Byte counts are per run; every run starts on
/// a message boundary because the previous one waited for all its echoes.
struct ClientConn {
    stream: TcpStream,
    /// Messages this connection sends in this run.
    quota: u64,
    /// Messages released for sending so far (sent or waiting for the socket).
    released: u64,
    /// Bytes the socket has taken.
    sent_bytes: u64,
    /// Bytes echoed back.
    received_bytes: u64,
}

impl ClientConn {
    /// Whether every echo of this run is back.
    fn done(&self) -> bool {
        self.received_bytes == self.quota * MESSAGE_SIZE as u64
    }

    /// Writes released bytes until the socket would block.
    fn flush(&mut self, pattern: &[u8]) -> io::Result<()> {
        let target = self.released * MESSAGE_SIZE as u64;
        while self.sent_bytes < target {
            let start = (self.sent_bytes % MESSAGE_SIZE as u64) as usize;
            let len = (target - self.sent_bytes) as usize;
            match self.stream.write(&pattern[start..start + len]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent_bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads until WouldBlock, checking each byte, and releases one new message per
    /// complete echo.
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<()> {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => return Err(io::Error::other("server closed the connection")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let offset = (self.received_bytes % MESSAGE_SIZE as u64) as usize;
            for (i, &byte) in buf[..n].iter().enumerate() {
                if byte != MESSAGE[(offset + i) % MESSAGE_SIZE] {
                    return Err(io::Error::other("echo does not match what was sent"));
                }
            }
            let before = self.received_bytes / MESSAGE_SIZE as u64;
            self.received_bytes += n as u64;
            if self.received_bytes > self.sent_bytes {
                return Err(io::Error::other("server echoed more than was sent"));
            }
            let completed = self.received_bytes / MESSAGE_SIZE as u64 - before;
            self.released = (self.released + completed).min(self.quota);
        }
    }
}

/// A set of client connections to one server.
pub struct LoadClient {
    poll: Poll,
    events: Events,
    conns: Vec<ClientConn>,
    read_buf: Vec<u8>,
}

impl LoadClient {
    /// Opens `count` connections to `addr` (with `TCP_NODELAY`).
    pub fn connect(addr: SocketAddr, count: usize) -> io::Result<LoadClient> {
        let poll = Poll::new()?;
        let mut conns = Vec::with_capacity(count);
        for i in 0..count {
            let std_stream = StdTcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
            std_stream.set_nodelay(true)?;
            std_stream.set_nonblocking(true)?;
            let mut stream = TcpStream::from_std(std_stream);
            poll.registry().register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conns.push(ClientConn {
                stream,
                quota: 0,
                released: 0,
                sent_bytes: 0,
                received_bytes: 0,
            });
        }
        Ok(LoadClient {
            poll,
            events: Events::with_capacity(1024),
            conns,
            read_buf: vec![0; 64 * 1024],
        })
    }

    /// Sends `messages` in all (split evenly over the connections), each connection keeping
    /// `depth` in flight, and waits for every echo. Fails if that takes over `timeout`.
    pub fn run(&mut self, messages: u64, depth: u64, timeout: Duration) -> io::Result<RunStats> {
        let depth = depth.max(1);
        let count = self.conns.len() as u64;
        let pattern: Vec<u8> = MESSAGE
            .iter()
            .copied()
            .cycle()
            .take(MESSAGE_SIZE * (depth as usize + 1))
            .collect();
        let start = Instant::now();
        let deadline = start + timeout;
        let mut remaining = 0usize;
        for (i, conn) in self.conns.iter_mut().enumerate() {
            conn.quota = messages / count + u64::from((i as u64) < messages % count);
            conn.released = depth.min(conn.quota);
            conn.sent_bytes = 0;
            conn.received_bytes = 0;
            conn.flush(&pattern)?;
            if !conn.done() {
                remaining += 1;
            }
        }
        while remaining > 0 {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("load run not finished after {timeout:?}"),
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
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.receive(&mut self.read_buf)?;
                }
                conn.flush(&pattern)?;
                if conn.done() {
                    remaining -= 1;
                }
            }
        }
        Ok(RunStats {
            messages,
            elapsed: start.elapsed(),
        })
    }
}
