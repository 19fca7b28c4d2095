//! Benchmark B: memory per idle connection.
//!
//! Each server is measured in a fresh process of this same binary (hidden subcommand
//! `idle-server KIND N`), so that one server's freed memory cannot hide another's growth. That
//! process starts the server thread, reads its heap (the counting allocator) and RSS, starts a
//! child (hidden subcommand `hold-connections ADDR N`) that opens N connections and holds them
//! idle, waits until the server has accepted all N and its heap has stopped changing, reads
//! heap and RSS again, and prints the differences on one `result` line. The client sockets
//! live in the child because one process may have only 20,000 descriptors.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::alloc_counter;
use crate::mem::rss_bytes;
use crate::servers::{self, Control, ServerKind};

/// The target from DESIGN.md for torsion.
const TARGET_BYTES_PER_CONNECTION: f64 = 256.0;

/// Longest the holder waits for one connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the holder opens before waiting for the server to accept them: well under
/// the listen backlog (128 for mio's and so torsion's listeners), past which the kernel drops
/// SYNs and each dropped one costs a 1-second retransmit.
const HOLD_BATCH: usize = 64;

/// Longest the holder holds its connections if its stdin never closes.
const MAX_HOLD: Duration = Duration::from_secs(300);

/// Longest the server may take to accept every connection.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Clone, Debug)]
pub struct IdleConfig {
    /// Connections held open.
    pub connections: usize,
    /// The servers measured.
    pub servers: Vec<ServerKind>,
}

impl Default for IdleConfig {
    fn default() -> Self {
        IdleConfig {
            connections: 10_000,
            servers: ServerKind::ALL.to_vec(),
        }
    }
}

/// Heap and RSS at one moment.
#[derive(Clone, Copy, Debug)]
struct Reading {
    heap_bytes: isize,
    heap_blocks: isize,
    rss_bytes: u64,
}

impl Reading {
    fn now() -> io::Result<Reading> {
        let rss_bytes = rss_bytes()?;
        Ok(Reading {
            heap_bytes: alloc_counter::live_bytes(),
            heap_blocks: alloc_counter::live_blocks(),
            rss_bytes,
        })
    }
}

/// One server's result, as passed from the `idle-server` process on its `result` line.
#[derive(Clone, Copy, Debug)]
struct IdleResult {
    connections: usize,
    heap_bytes: i64,
    heap_blocks: i64,
    rss_bytes: i64,
}

impl IdleResult {
    fn to_line(self, kind: ServerKind) -> String {
        format!(
            "result {} {} {} {} {}",
            kind.name(),
            self.connections,
            self.heap_bytes,
            self.heap_blocks,
            self.rss_bytes
        )
    }

    fn parse(line: &str) -> Option<IdleResult> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["result", _kind, n, heap, blocks, rss] => Some(IdleResult {
                connections: n.parse().ok()?,
                heap_bytes: heap.parse().ok()?,
                heap_blocks: blocks.parse().ok()?,
                rss_bytes: rss.parse().ok()?,
            }),
            _ => None,
        }
    }

    fn per_connection(value: i64, connections: usize) -> f64 {
        value as f64 / connections.max(1) as f64
    }
}

/// Runs the idle benchmark for every configured server, each in its own process, and prints
/// the table.
pub fn run(config: &IdleConfig) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for &kind in &config.servers {
        eprintln!("  idle: {kind}, {} connections...", config.connections);
        let output = Command::new(&exe)
            .args(["idle-server", kind.name(), &config.connections.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result = stdout.lines().find_map(IdleResult::parse).ok_or_else(|| {
            io::Error::other(format!(
                "idle-server {kind} failed ({}): {stdout}",
                output.status
            ))
        })?;
        results.push((kind, result));
    }
    println!();
    println!(
        "Idle connections: {} held open by a child process; server process's growth after accepting them",
        config.connections
    );
    println!(
        "{:<8} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "server", "heap B/conn", "blocks/conn", "RSS B/conn", "heap total", "RSS total"
    );
    for (kind, r) in &results {
        println!(
            "{:<8} {:>12.1} {:>12.2} {:>12.1} {:>14} {:>14}",
            kind.name(),
            IdleResult::per_connection(r.heap_bytes, r.connections),
            IdleResult::per_connection(r.heap_blocks, r.connections),
            IdleResult::per_connection(r.rss_bytes, r.connections),
            r.heap_bytes,
            r.rss_bytes
        );
    }
    if let Some((_, r)) = results.iter().find(|(k, _)| *k == ServerKind::Torsion) {
        let heap = IdleResult::per_connection(r.heap_bytes, r.connections);
        let rss = IdleResult::per_connection(r.rss_bytes, r.connections);
        let verdict = |v: f64| {
            if v <= TARGET_BYTES_PER_CONNECTION {
                "met"
            } else {
                "MISSED"
            }
        };
        println!(
            "torsion target <= {TARGET_BYTES_PER_CONNECTION:.0} B/conn: heap {heap:.1} ({}), RSS {rss:.1} ({})",
            verdict(heap),
            verdict(rss)
        );
    }
    Ok(())
}

/// The hidden `idle-server KIND N` subcommand: measures one server with `connections` idle
/// connections and prints a `result` line.
pub fn serve_and_measure(kind: ServerKind, connections: usize) -> io::Result<()> {
    alloc_counter::enable();
    let server = servers::spawn(kind)?;
    // Let the server thread reach its first wait before the baseline.
    thread::sleep(Duration::from_millis(100));
    let before = Reading::now()?;

    let mut holder = Command::new(std::env::current_exe()?)
        .args([
            "hold-connections",
            &server.addr.to_string(),
            &connections.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut holder_stdin = holder
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin"))?;
    {
        // Dropped before the second reading: its buffer is not the server's memory.
        let mut lines = BufReader::new(
            holder
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("no stdout"))?,
        );
        let mut line = String::new();
        loop {
            line.clear();
            lines.read_line(&mut line)?;
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["ready"] => break,
                ["connected", n] => {
                    let n: usize = n.parse().map_err(io::Error::other)?;
                    wait_for_accepts(&server.control, kind, n)?;
                    writeln!(holder_stdin, "go")?;
                    holder_stdin.flush()?;
                }
                _ => {
                    return Err(io::Error::other(format!(
                        "connection holder failed: {line:?}"
                    )))
                }
            }
        }
    }
    wait_for_accepts(&server.control, kind, connections)?;
    let after = settled_reading()?;

    // The server closes first, so the client ports go free without TIME_WAIT.
    server.finish()?;
    drop(holder_stdin);
    holder.wait()?;

    let result = IdleResult {
        connections,
        heap_bytes: (after.heap_bytes - before.heap_bytes) as i64,
        heap_blocks: (after.heap_blocks - before.heap_blocks) as i64,
        rss_bytes: after.rss_bytes as i64 - before.rss_bytes as i64,
    };
    println!("{}", result.to_line(kind));
    Ok(())
}

/// Waits until the server has accepted `n` connections.
fn wait_for_accepts(control: &Control, kind: ServerKind, n: usize) -> io::Result<()> {
    let deadline = Instant::now() + ACCEPT_TIMEOUT;
    while control.accepted() < n {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{kind} accepted only {} of {n} connections",
                control.accepted()
            )));
        }
        thread::sleep(Duration::from_micros(500));
    }
    Ok(())
}

/// A reading taken once the heap has stopped changing (the server has finished handling
/// every accept, e.g. tokio polled every new task once): the same heap three times in a
/// row, 20 ms apart, or whatever it is after 2 seconds.
fn settled_reading() -> io::Result<Reading> {
    let mut last = Reading::now()?;
    let mut same = 0;
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(20));
        let now = Reading::now()?;
        if now.heap_bytes == last.heap_bytes && now.heap_blocks == last.heap_blocks {
            same += 1;
            if same == 3 {
                return Ok(now);
            }
        } else {
            same = 0;
        }
        last = now;
    }
    Ok(last)
}

/// The hidden `hold-connections ADDR N` subcommand: opens `count` connections to `addr`,
/// in batches of [`HOLD_BATCH`], each followed by a `connected N` line and a wait for `go` on
/// stdin (the server has accepted them), then prints `ready` and holds them until stdin closes (or [`MAX_HOLD`] passes).
pub fn hold_connections(addr: SocketAddr, count: usize) -> io::Result<()> {
    let mut held = Vec::with_capacity(count);
    let mut stdout = io::stdout();
    let mut line = String::new();
    while held.len() < count {
        let batch = HOLD_BATCH.min(count - held.len());
        for _ in 0..batch {
            held.push(TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?);
        }
        writeln!(stdout, "connected {}", held.len())?;
        stdout.flush()?;
        line.clear();
        io::stdin().read_line(&mut line)?;
        if line.trim() != "go" {
            return Err(io::Error::other("hold-connections: no go-ahead on stdin"));
        }
    }
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut rest = String::new();
        while io::stdin().read_line(&mut rest).is_ok_and(|n| n > 0) {
            rest.clear();
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(MAX_HOLD);
    drop(held);
    Ok(())
}
