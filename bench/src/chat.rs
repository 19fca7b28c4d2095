//! The chat fan-out benchmark (the target: "the chat server holds 1,000 connected users with a
//! message fanned out to all of them in well under a second").
//!
//! The real `ChatServer` runs in a torsion reactor on a thread of its own. This thread is the
//! load: N users, each a non-blocking std socket read through one mio poll. They connect and
//! name themselves (`u0` .. `uN-1`) in batches, every join announcement is drained, and then,
//! one message at a time, one user sends a line and the clock runs until each of the N-1
//! others has read it. Around each message the server thread reads its own CPU time
//! (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, inside a `call_from_thread` closure), so the
//! fan-out's server-side cost is measured exactly, user and kernel.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use torsion::protocols::chat::room::GREETING;
use torsion::protocols::chat::ChatServer;
use torsion::{Reactor, ReactorHandle};

use crate::cpu::thread_cpu_ns_exact;
use crate::stats::{max, median, min};

/// Users connected between two waits for their welcomes: well inside the listen backlog, so
/// no SYN is dropped (a dropped SYN costs a one-second retransmit).
const BATCH: usize = 64;

/// Messages sent, unmeasured, before the measured ones.
const WARM_UP: usize = 2;

/// How long any phase may take before the benchmark gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The text of every message (after a number that makes each one unique).
const TEXT: &str = "the quick brown fox jumps over the lazy dog";

/// What the command line asks for.
pub struct ChatConfig {
    /// Users connected and named.
    pub users: usize,
    /// Messages measured.
    pub messages: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            users: 1000,
            messages: 20,
        }
    }
}

/// Parses the options after `chat`: `--users N`, `--messages N`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<ChatConfig, String> {
    let mut config = ChatConfig::default();
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let number = |min: usize| match value.parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!("{arg}: bad value {value:?} (at least {min})")),
        };
        match arg.as_str() {
            "--users" => config.users = number(2)?,
            "--messages" => config.messages = number(1)?,
            other => return Err(format!("chat: unknown argument {other:?}")),
        }
    }
    Ok(config)
}

/// One measured message.
struct Sample {
    /// From the send until the last recipient had read it.
    last: Duration,
    /// The server thread's CPU time for the fan-out, in nanoseconds.
    server_cpu_ns: u64,
}

/// Runs the benchmark and prints its table.
pub fn run(config: &ChatConfig) -> io::Result<()> {
    let n = config.users;
    let server = Server::start()?;
    let mut users = Users::new()?;
    let joined = users.join_all(server.addr, n)?;
    let drained = users.drain_announcements(n)?;
    let mut samples = Vec::new();
    for m in 0..WARM_UP + config.messages {
        let sample = fan_out(&mut users, &server, (m * 37) % n, m)?;
        eprintln!(
            "  message {:>3}{}: last recipient {:>7.2} ms, server CPU {:>7.2} ms",
            m,
            if m < WARM_UP { " (warm-up)" } else { "" },
            ms(sample.last),
            sample.server_cpu_ns as f64 / 1e6
        );
        if m >= WARM_UP {
            samples.push(sample);
        }
    }
    server.stop()?;
    print_table(config, joined, drained, &samples);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_table(config: &ChatConfig, joined: Duration, drained: Duration, samples: &[Sample]) {
    let n = config.users;
    println!(
        "chat: {n} users on one ChatServer; {} messages, each from one user to the {} others",
        samples.len(),
        n - 1
    );
    println!(
        "connect and name all {n} users: {:.1} ms; every one of the {} join announcements read {:.1} ms later",
        ms(joined),
        n * (n - 1) / 2,
        ms(drained)
    );
    let column = |f: &dyn Fn(&Sample) -> f64| -> Vec<f64> { samples.iter().map(f).collect() };
    let rows: [(&str, Vec<f64>); 3] = [
        (
            "until the last recipient read it (ms)",
            column(&|s| ms(s.last)),
        ),
        (
            "server CPU per fan-out (ms)",
            column(&|s| s.server_cpu_ns as f64 / 1e6),
        ),
        (
            "server CPU per recipient (us)",
            column(&|s| s.server_cpu_ns as f64 / 1e3 / (n - 1) as f64),
        ),
    ];
    println!("{:<40} {:>9} {:>9} {:>9}", "", "median", "min", "max");
    for (name, values) in rows {
        println!(
            "{name:<40} {:>9.3} {:>9.3} {:>9.3}",
            median(&values),
            min(&values),
            max(&values)
        );
    }
}

/// User `sender` sends message `m`; waits until every other user has read it.
fn fan_out(users: &mut Users, server: &Server, sender: usize, m: usize) -> io::Result<Sample> {
    let n = users.len();
    let line = format!("message {m}: {TEXT}");
    let expected = format!("<u{sender}> {line}");
    // Two readings back to back measure what a reading itself costs the server (a wake-up
    // and a turn), which is taken off the fan-out's reading below.
    let idle_start = server.cpu_ns()?;
    let before = server.cpu_ns()?;
    let start = Instant::now();
    users.send(sender, format!("{line}\n").as_bytes())?;
    let mut received = 0;
    users.pump_until("the fan-out", |user, got| {
        if user == sender || got != expected.as_bytes() {
            return Err(unexpected(user, got));
        }
        received += 1;
        Ok(received == n - 1)
    })?;
    let last = start.elapsed();
    let after = server.cpu_ns()?;
    let reading = before - idle_start;
    Ok(Sample {
        last,
        server_cpu_ns: (after - before).saturating_sub(reading),
    })
}

fn is_announcement(line: &[u8]) -> bool {
    line.starts_with(b"* u") && line.ends_with(b" has joined")
}

fn unexpected(user: usize, line: &[u8]) -> io::Error {
    io::Error::other(format!(
        "u{user} got an unexpected line: {:?}",
        String::from_utf8_lossy(line)
    ))
}

/// The chat server on its own thread.
struct Server {
    addr: SocketAddr,
    handle: ReactorHandle,
    thread: thread::JoinHandle<io::Result<()>>,
}

impl Server {
    /// Starts a reactor serving `ChatServer` on 127.0.0.1, port chosen by the kernel.
    fn start() -> io::Result<Server> {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut reactor = Reactor::new()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], 0));
            let port = reactor.listen_tcp(addr, ChatServer::new())?;
            let _ = tx.send((port.local_addr(), reactor.handle()));
            reactor.run()
        });
        match rx.recv() {
            Ok((addr, handle)) => Ok(Server {
                addr,
                handle,
                thread,
            }),
            Err(_) => Err(thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked")))
                .err()
                .unwrap_or_else(|| io::Error::other("the server thread ended"))),
        }
    }

    /// The server thread's CPU time so far, read on that thread between two of its turns.
    fn cpu_ns(&self) -> io::Result<u64> {
        let (tx, rx) = mpsc::channel();
        self.handle
            .call_from_thread(move |_| {
                let _ = tx.send(thread_cpu_ns_exact());
            })
            .map_err(|_| io::Error::other("the server is gone"))?;
        rx.recv_timeout(PHASE_TIMEOUT)
            .map_err(|_| io::Error::other("the server did not answer"))
    }

    fn stop(self) -> io::Result<()> {
        let _ = self.handle.stop();
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked")))
    }
}

/// One user's connection and the part of a line it has read so far.
struct User {
    stream: TcpStream,
    partial: Vec<u8>,
}

/// Every user, read through one poll.
struct Users {
    poll: Poll,
    events: Events,
    users: Vec<User>,
    buf: Vec<u8>,
    /// `* uJ has joined` lines read while users were still joining.
    announcements_seen: usize,
}

impl Users {
    fn new() -> io::Result<Users> {
        Ok(Users {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            users: Vec::new(),
            buf: vec![0; 64 * 1024],
            announcements_seen: 0,
        })
    }

    fn len(&self) -> usize {
        self.users.len()
    }

    /// Connects `n` users and names them, `BATCH` at a time; returns how long it took.
    fn join_all(&mut self, addr: SocketAddr, n: usize) -> io::Result<Duration> {
        let start = Instant::now();
        for batch in (0..n).step_by(BATCH) {
            let batch = batch..(batch + BATCH).min(n);
            for i in batch.clone() {
                self.connect(addr, i)?;
            }
            let (mut welcomed, mut announcements) = (0, 0);
            self.pump_until("the welcomes", |user, line| {
                if is_announcement(line) {
                    announcements += 1;
                } else if batch.contains(&user) && line == format!("Welcome, u{user}!").as_bytes() {
                    welcomed += 1;
                } else if line != GREETING.as_bytes() {
                    return Err(unexpected(user, line));
                }
                Ok(welcomed == batch.len())
            })?;
            self.announcements_seen += announcements;
        }
        Ok(start.elapsed())
    }

    /// Connects user `i` and sends its name (the server reads it after its greeting).
    fn connect(&mut self, addr: SocketAddr, i: usize) -> io::Result<()> {
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("user {i}: {e} (each user takes two descriptors in this process)"),
            )
        };
        let stream = StdTcpStream::connect(addr).map_err(context)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(stream);
        self.poll
            .registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        self.users.push(User {
            stream,
            partial: Vec::new(),
        });
        self.send(i, format!("u{i}\n").as_bytes())
    }

    /// Reads until every user has every `* uJ has joined` line meant for it: user `i` hears
    /// of the `n - 1 - i` users who joined after it. Returns how long that took.
    fn drain_announcements(&mut self, n: usize) -> io::Result<Duration> {
        let start = Instant::now();
        let (total, mut seen) = (n * (n - 1) / 2 - self.announcements_seen, 0);
        if total > 0 {
            self.pump_until("the join announcements", |user, line| {
                if !is_announcement(line) {
                    return Err(unexpected(user, line));
                }
                seen += 1;
                Ok(seen == total)
            })?;
        }
        Ok(start.elapsed())
    }

    /// Writes `data` to user `i`'s socket (small: it goes in one write).
    fn send(&mut self, i: usize, data: &[u8]) -> io::Result<()> {
        let written = self.users[i].stream.write(data)?;
        if written < data.len() {
            return Err(io::Error::other("a short write of a short line"));
        }
        Ok(())
    }

    /// Reads every readable socket and hands each complete line (without `\r\n`) to
    /// `on_line`, until it returns `Ok(true)`.
    fn pump_until(
        &mut self,
        what: &str,
        mut on_line: impl FnMut(usize, &[u8]) -> io::Result<bool>,
    ) -> io::Result<()> {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        loop {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("waiting for {what}"),
                ));
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(100)))?;
            let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            let mut done = false;
            for i in ready {
                done |= self.read_lines(i, &mut on_line)?;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Reads user `i`'s socket until it would block (edge-triggered), passing on its lines.
    fn read_lines(
        &mut self,
        i: usize,
        on_line: &mut impl FnMut(usize, &[u8]) -> io::Result<bool>,
    ) -> io::Result<bool> {
        let mut done = false;
        loop {
            let n = match self.users[i].stream.read(&mut self.buf) {
                Ok(0) => return Err(io::Error::other(format!("the server closed u{i}"))),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(done),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let user = &mut self.users[i];
            user.partial.extend_from_slice(&self.buf[..n]);
            let mut start = 0;
            while let Some(end) = user.partial[start..].iter().position(|&b| b == b'\n') {
                let line = &user.partial[start..start + end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                done |= on_line(i, line)?;
                start += end + 1;
            }
            user.partial.drain(..start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn options() {
        let config = parse(args(&[])).unwrap();
        assert_eq!((config.users, config.messages), (1000, 20));
        let config = parse(args(&["--users", "50", "--messages", "3"])).unwrap();
        assert_eq!((config.users, config.messages), (50, 3));
        assert!(parse(args(&["--users", "1"])).is_err());
        assert!(parse(args(&["--users"])).is_err());
        assert!(parse(args(&["--rounds", "2"])).is_err());
    }

    #[test]
    fn a_message_reaches_every_other_user() {
        let server = Server::start().unwrap();
        let mut users = Users::new().unwrap();
        users.join_all(server.addr, 70).unwrap();
        users.drain_announcements(70).unwrap();
        for m in 0..3 {
            let sample = fan_out(&mut users, &server, m * 30, m).unwrap();
            assert!(sample.last > Duration::ZERO);
        }
        server.stop().unwrap();
    }
}
