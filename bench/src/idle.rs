//! Benchmark B: memory per idle connection.
//!
//! Each server is measured in a fresh process of this same binary (hidden subcommand
//! `idle-server KIND N`), so that one server's freed memory cannot hide another's growth. That
//! process starts the server thread, reads its heap (the counting allocator) and RSS, starts a
//! child (hidden subcommand `hold-connections ADDR N`) that opens N connections and holds them
//! idle, waits until the server has accepted all N and its heap has stopped changing, reads
//! heap and RSS again, and prints the differences on one `result` line. The client sockets
//! live in the child because one process may have only 20,000 descriptors.
//!
//! An external server (`--external NAME=COMMAND`, e.g. the `echo_server` example) is a process
//! already: this process starts it, reads its RSS from `/proc/PID/statm`, holds the
//! connections through the same child, and reads the RSS again. Its heap cannot be counted
//! (the counting allocator exists only in this binary), so only RSS is reported for it; and
//! its accepts are counted from its open descriptors (`/proc/PID/fd`).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::alloc_counter;
use crate::external::{self, ExternalServer, ExternalSpec, Target, Vars};
use crate::mem::rss_bytes;
use crate::servers::{self, Control, ServerKind};

/// torsion's target: at most this many bytes per idle connection.
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
    /// The servers measured: built in, then external processes.
    pub servers: Vec<Target<ServerKind>>,
}

impl Default for IdleConfig {
    fn default() -> Self {
        IdleConfig {
            connections: 10_000,
            servers: ServerKind::ALL.map(Target::Builtin).to_vec(),
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
    /// `None` for an external server, whose heap cannot be counted.
    heap_bytes: Option<i64>,
    /// Likewise.
    heap_blocks: Option<i64>,
    rss_bytes: i64,
}

impl IdleResult {
    fn to_line(self, kind: ServerKind) -> String {
        format!(
            "result {} {} {} {} {}",
            kind.name(),
            self.connections,
            self.heap_bytes.unwrap_or(0),
            self.heap_blocks.unwrap_or(0),
            self.rss_bytes
        )
    }

    fn parse(line: &str) -> Option<IdleResult> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["result", _kind, n, heap, blocks, rss] => Some(IdleResult {
                connections: n.parse().ok()?,
                heap_bytes: Some(heap.parse().ok()?),
                heap_blocks: Some(blocks.parse().ok()?),
                rss_bytes: rss.parse().ok()?,
            }),
            _ => None,
        }
    }

    fn per_connection(value: i64, connections: usize) -> f64 {
        value as f64 / connections.max(1) as f64
    }

    /// `value` per connection with `decimals`, or `-` if not counted.
    fn cell(value: Option<i64>, connections: usize, decimals: usize) -> String {
        value.map_or("-".into(), |v| {
            format!("{:.decimals$}", Self::per_connection(v, connections))
        })
    }
}

/// Runs the idle benchmark for every configured server, each in its own process, and prints
/// the table.
pub fn run(config: &IdleConfig) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for target in &config.servers {
        eprintln!("  idle: {target}, {} connections...", config.connections);
        let kind = match target {
            Target::Builtin(kind) => *kind,
            Target::External(spec) => {
                results.push((target, measure_external(spec, config.connections)?));
                continue;
            }
        };
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
        results.push((target, result));
    }
    println!();
    println!(
        "Idle connections: {} held open by a child process; server process's growth after accepting them",
        config.connections
    );
    let w = external::name_width(&config.servers, 8);
    println!(
        "{:<w$} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "server", "heap B/conn", "blocks/conn", "RSS B/conn", "heap total", "RSS total"
    );
    // `compare-trees` reads these rows: six fields, the name first.
    for (target, r) in &results {
        println!(
            "{:<w$} {:>12} {:>12} {:>12.1} {:>14} {:>14}",
            target.name(),
            IdleResult::cell(r.heap_bytes, r.connections, 1),
            IdleResult::cell(r.heap_blocks, r.connections, 2),
            IdleResult::per_connection(r.rss_bytes, r.connections),
            r.heap_bytes.map_or("-".into(), |h| h.to_string()),
            r.rss_bytes
        );
    }
    if results.iter().any(|(t, _)| t.is_external()) {
        println!("(external servers: RSS only; their heap cannot be counted from outside)");
    }
    let torsion = Target::Builtin(ServerKind::Torsion);
    if let Some((_, r)) = results.iter().find(|(t, _)| **t == torsion) {
        let heap = IdleResult::per_connection(r.heap_bytes.unwrap_or(0), r.connections);
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

    let (mut holder, holder_stdin) = hold(server.addr, connections, |n| {
        wait_for_accepts(&server.control, kind, n)
    })?;
    wait_for_accepts(&server.control, kind, connections)?;
    let after = settled_reading()?;

    // The server closes first, so the client ports go free without TIME_WAIT.
    server.finish()?;
    drop(holder_stdin);
    holder.wait()?;

    let result = IdleResult {
        connections,
        heap_bytes: Some((after.heap_bytes - before.heap_bytes) as i64),
        heap_blocks: Some((after.heap_blocks - before.heap_blocks) as i64),
        rss_bytes: after.rss_bytes as i64 - before.rss_bytes as i64,
    };
    println!("{}", result.to_line(kind));
    Ok(())
}

/// Starts the `hold-connections` child for `connections` to `addr` and paces it: after each
/// batch, `accepted(n)` waits until the server has accepted `n`. Returns once all are held,
/// with the child and its stdin (closing that lets the child go).
fn hold(
    addr: SocketAddr,
    connections: usize,
    mut accepted: impl FnMut(usize) -> io::Result<()>,
) -> io::Result<(Child, ChildStdin)> {
    let mut holder = Command::new(std::env::current_exe()?)
        .args([
            "hold-connections",
            &addr.to_string(),
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
    // Dropped before the second reading: its buffer is not the server's memory.
    let mut lines = BufReader::new(
        holder
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?,
    );
    let mut line = String::new();
    let paced = loop {
        line.clear();
        if let Err(e) = lines.read_line(&mut line) {
            break Err(e);
        }
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ready"] => break Ok(()),
            ["connected", n] => {
                let step = n
                    .parse::<usize>()
                    .map_err(io::Error::other)
                    .and_then(&mut accepted)
                    .and_then(|()| writeln!(holder_stdin, "go"))
                    .and_then(|()| holder_stdin.flush());
                if let Err(e) = step {
                    break Err(e);
                }
            }
            _ => {
                break Err(io::Error::other(format!(
                    "connection holder failed: {line:?}"
                )))
            }
        }
    };
    if let Err(e) = paced {
        // Let the holder go (it exits when its stdin closes) before reporting.
        drop(holder_stdin);
        let _ = holder.wait();
        return Err(e);
    }
    Ok((holder, holder_stdin))
}

/// Measures the external server `spec` (the `echo_server` example's arguments by default)
/// with `connections` idle connections: its RSS growth; its heap cannot be counted.
fn measure_external(spec: &ExternalSpec, connections: usize) -> io::Result<IdleResult> {
    let server = ExternalServer::start(spec, external::defaults::ECHO, Vars::addr)?;
    // Let it handle the start-up probe's close and reach its wait before the baseline.
    thread::sleep(Duration::from_millis(100));
    let fds_before = server.open_fds()?;
    let rss_before = server.rss_bytes()?;
    let wait = |n: usize| wait_for_fds(&server, fds_before + n);
    let (mut holder, holder_stdin) = hold(server.addr, connections, wait)?;
    wait_for_fds(&server, fds_before + connections)?;
    let rss_after = settled_rss(&server)?;
    // The server closes first (its graceful shutdown closes every connection), so the
    // client ports go free without TIME_WAIT.
    let stopped = server.stop();
    drop(holder_stdin);
    holder.wait()?;
    stopped?;
    Ok(IdleResult {
        connections,
        heap_bytes: None,
        heap_blocks: None,
        rss_bytes: rss_after as i64 - rss_before as i64,
    })
}

/// Waits until the external server has `fds` descriptors open (one per accepted connection
/// on top of its own).
fn wait_for_fds(server: &ExternalServer, fds: usize) -> io::Result<()> {
    let deadline = Instant::now() + ACCEPT_TIMEOUT;
    loop {
        let open = server.open_fds()?;
        if open >= fds {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{} has {open} descriptors open, not {fds}, after {ACCEPT_TIMEOUT:?}",
                server.name()
            )));
        }
        // Listing 10,000 descriptors takes a few ms: reading far more often would take a
        // CPU from the server and the holder while they work.
        thread::sleep(Duration::from_millis(5));
    }
}

/// The external server's RSS once it has stopped changing: the same three times in a row,
/// 20 ms apart, or whatever it is after 2 seconds (as [`settled_reading`] for the heap).
fn settled_rss(server: &ExternalServer) -> io::Result<u64> {
    let mut last = server.rss_bytes()?;
    let mut same = 0;
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(20));
        let now = server.rss_bytes()?;
        if now == last {
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
