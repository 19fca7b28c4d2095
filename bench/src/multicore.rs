//! Many cores: N reactors on N threads (`torsion::Reactors`) against tokio's multi-thread
//! runtime with N worker threads, and hyper on it, for each N asked (`--threads 1,2`).
//!
//! - *echo*: `--connections` client threads, each one blocking connection doing 64-byte
//!   ping-pong for `--duration` seconds; messages per second over all of them.
//! - *http*: `wrk -t 2 -c --connections` on `GET /plaintext`; requests per second.
//!
//! Two ways of running the servers (`--modes in-process,processes`):
//!
//! - *in-process*: torsion in both ways of serving one port, `reuseport` (a socket per
//!   reactor, `SO_REUSEPORT`) and `shared` (one socket in every reactor's poll), and tokio
//!   (an echo task per connection) or hyper on it, each on threads of this process. The
//!   connections each reactor accepted are printed: the accept balance.
//! - *processes*: the shipped examples as a user runs them (`echo_server --threads N`,
//!   `http_server --threads N`, built by the cargo that built this bench, with its profile)
//!   against this bench's tokio echo and hyper servers as processes of their own
//!   (`torsion-bench serve-multicore echo|http N ADDR`: tokio multi-thread, N workers).
//!
//! Every server starts afresh for each run. Each round runs every server once, the order
//! rotating from round to round; a server's CPU time (the sum over its threads of
//! `/proc/.../task/TID/schedstat`: on-CPU nanoseconds, user and kernel) is read before the
//! load starts and after it has ended, and divided by the messages or requests served. The
//! summary gives medians over the rounds and, against tokio/hyper run the same way, the
//! ratio of the medians and the median of the per-round ratios.
//!
//! The clients (echo threads, `wrk`) run with this process's CPUs; `--server-cpus LIST`
//! moves the servers' threads (or processes) to other CPUs (`taskset -p`), so on a machine
//! with 2N cores or more `taskset -c 4-7 torsion-bench multicore --server-cpus 0-3` keeps
//! servers and clients apart.

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::{header, HeaderMap, HeaderValue, StatusCode};
use torsion::{Context, ListenOptions, Protocol, Reactor, Reactors, RunningReactors};

use crate::external::{self, ExternalServer, ExternalSpec, Vars};
use crate::http::{
    build_examples, example_path_of, hyper_plaintext, own_tid, run_wrk, HttpConfig, BODY, PATH,
};
use crate::stats::{max, median, min};

/// How long a server may go on after the load ends (handling the closes) before its CPU
/// time is read again.
const SETTLE: Duration = Duration::from_millis(200);

/// What `multicore` runs.
#[derive(Debug, Clone)]
pub struct MulticoreConfig {
    /// The reactor (and worker) counts measured.
    pub threads: Vec<usize>,
    /// Seconds per measured run.
    pub duration: u64,
    /// Client connections.
    pub connections: usize,
    /// Whether to run the echo load.
    pub echo: bool,
    /// Whether to run the HTTP load (needs `wrk`).
    pub http: bool,
    /// Rounds; each runs every server once.
    pub rounds: usize,
    /// Whether to run the servers on threads of this process.
    pub in_process: bool,
    /// Whether to run the servers as processes of their own (the shipped examples).
    pub processes: bool,
    /// CPUs (a `taskset -c` list) the servers are moved to; `None`: where this process runs.
    pub server_cpus: Option<String>,
}

/// Parses `multicore [--threads 1,2] [--duration S] [--connections N] [--loads echo,http]
/// [--rounds N] [--modes in-process,processes] [--server-cpus LIST]`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<MulticoreConfig, String> {
    let mut config = MulticoreConfig {
        threads: vec![1, 2],
        duration: 3,
        connections: 32,
        echo: true,
        http: true,
        rounds: 1,
        in_process: true,
        processes: false,
        server_cpus: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let value = args.next().ok_or("--threads needs a list")?;
                config.threads = value
                    .split(',')
                    .map(|n| n.parse().ok().filter(|&n: &usize| n > 0))
                    .collect::<Option<_>>()
                    .ok_or(format!("--threads: bad list {value:?}"))?;
            }
            "--duration" => config.duration = crate::number("--duration", args.next(), 1)?,
            "--connections" => config.connections = crate::number("--connections", args.next(), 1)?,
            "--rounds" => config.rounds = crate::number("--rounds", args.next(), 1)?,
            "--loads" => {
                let value = args.next().ok_or("--loads needs a list")?;
                config.echo = value.split(',').any(|l| l == "echo");
                config.http = value.split(',').any(|l| l == "http");
            }
            "--modes" => {
                let value = args.next().ok_or("--modes needs a list")?;
                config.in_process = value.split(',').any(|m| m == "in-process");
                config.processes = value.split(',').any(|m| m == "processes");
                if !config.in_process && !config.processes {
                    return Err(format!(
                        "--modes: expected in-process,processes, got {value:?}"
                    ));
                }
            }
            "--server-cpus" => {
                config.server_cpus = Some(args.next().ok_or("--server-cpus needs a CPU list")?)
            }
            _ => return Err(format!("multicore: unknown argument {arg:?}")),
        }
    }
    Ok(config)
}

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    TorsionReusePort,
    TorsionShared,
    Tokio,
    /// The shipped example (`echo_server`, `http_server`) with `--threads N`.
    ExampleProcess,
    /// `torsion-bench serve-multicore`: tokio's echo or hyper, N workers.
    TokioProcess,
}

impl Server {
    const IN_PROCESS: [Server; 3] = [
        Server::TorsionReusePort,
        Server::TorsionShared,
        Server::Tokio,
    ];
    const PROCESSES: [Server; 2] = [Server::ExampleProcess, Server::TokioProcess];

    fn name(self, http: bool) -> &'static str {
        match (self, http) {
            (Server::TorsionReusePort, _) => "torsion reuseport",
            (Server::TorsionShared, _) => "torsion shared",
            (Server::Tokio, false) => "tokio multi-thread",
            (Server::Tokio, true) => "hyper (tokio multi-thread)",
            (Server::ExampleProcess, false) => "echo_server --threads",
            (Server::ExampleProcess, true) => "http_server --threads",
            (Server::TokioProcess, false) => "tokio multi-thread process",
            (Server::TokioProcess, true) => "hyper (tokio multi-thread) process",
        }
    }

    /// What its ratios are taken against: tokio or hyper, run the same way.
    fn baseline(self) -> Server {
        match self {
            Server::ExampleProcess | Server::TokioProcess => Server::TokioProcess,
            _ => Server::Tokio,
        }
    }
}

/// One measured run.
struct Sample {
    n: usize,
    http: bool,
    server: Server,
    round: usize,
    /// Messages or requests per second.
    rate: f64,
    /// Messages or requests served.
    served: u64,
    /// The server's CPU time over the run, nanoseconds.
    cpu_ns: u64,
    /// Connections each reactor accepted, as text (in-process torsion only).
    accepted: String,
}

impl Sample {
    fn cpu_ns_per_op(&self) -> f64 {
        self.cpu_ns as f64 / self.served as f64
    }
}

/// Runs every load for every thread count and way, `rounds` times; prints the runs, then
/// a table of medians and ratios.
pub fn run(config: &MulticoreConfig) -> io::Result<()> {
    if config.processes {
        build_examples(&["echo_server", "http_server"])?;
    }
    let dir = std::env::temp_dir().join(format!("torsion-bench-mc-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(config, &dir);
    let _ = std::fs::remove_dir(&dir);
    let samples = result?;
    print_table(config, &samples);
    Ok(())
}

fn run_in(config: &MulticoreConfig, dir: &Path) -> io::Result<Vec<Sample>> {
    let mut servers = Vec::new();
    if config.in_process {
        servers.extend(Server::IN_PROCESS);
    }
    if config.processes {
        servers.extend(Server::PROCESSES);
    }
    let mut samples = Vec::new();
    for &n in &config.threads {
        for (http, on) in [(false, config.echo), (true, config.http)] {
            if !on {
                continue;
            }
            for round in 0..config.rounds {
                for i in 0..servers.len() {
                    let server = servers[(i + round) % servers.len()];
                    let sample = measure(config, server, n, http, round, dir)?;
                    eprintln!(
                        "  {} N={n} round {} {:<36} {:>9.0}/s {:>7.0} ns CPU/op  accepted {}",
                        if http { "http" } else { "echo" },
                        round + 1,
                        server.name(http),
                        sample.rate,
                        sample.cpu_ns_per_op(),
                        sample.accepted
                    );
                    samples.push(sample);
                }
            }
        }
    }
    Ok(samples)
}

fn print_table(config: &MulticoreConfig, samples: &[Sample]) {
    println!(
        "many cores: {} s per run, {} connections, {} rounds, servers {}; echo in msgs/s, http in requests/s; medians (min..max); ratios against tokio/hyper run the same way: of the medians, and [median of the per-round ratios]",
        config.duration,
        config.connections,
        config.rounds,
        config.server_cpus.as_deref().map_or("not pinned".to_string(), |c| format!("on CPUs {c}"))
    );
    println!("| load | N | server | per second | CPU ns per op | rate ratio | CPU ratio | accepted per reactor (last round) |");
    println!("|------|---|--------|-----------:|--------------:|-----------:|----------:|----------------------|");
    let mut keys: Vec<(usize, bool, Server)> = Vec::new();
    for s in samples {
        if !keys.contains(&(s.n, s.http, s.server)) {
            keys.push((s.n, s.http, s.server));
        }
    }
    for (n, http, server) in keys {
        let of = |server: Server| -> Vec<&Sample> {
            samples
                .iter()
                .filter(|s| s.n == n && s.http == http && s.server == server)
                .collect()
        };
        let (mine, theirs) = (of(server), of(server.baseline()));
        let rates: Vec<f64> = mine.iter().map(|s| s.rate).collect();
        let cpu: Vec<f64> = mine.iter().map(|s| s.cpu_ns_per_op()).collect();
        let ratio = |value: fn(&Sample) -> f64| -> String {
            if theirs.is_empty() {
                return String::new();
            }
            let of_medians = median(&mine.iter().map(|s| value(s)).collect::<Vec<_>>())
                / median(&theirs.iter().map(|s| value(s)).collect::<Vec<_>>());
            let per_round: Vec<f64> = mine
                .iter()
                .filter_map(|m| {
                    let t = theirs.iter().find(|t| t.round == m.round)?;
                    Some(value(m) / value(t))
                })
                .collect();
            format!("{of_medians:.2} [{:.2}]", median(&per_round))
        };
        println!(
            "| {} | {n} | {} | {:.0} ({:.0}..{:.0}) | {:.0} ({:.0}..{:.0}) | {} | {} | {} |",
            if http { "http" } else { "echo" },
            server.name(http),
            median(&rates),
            min(&rates),
            max(&rates),
            median(&cpu),
            min(&cpu),
            max(&cpu),
            ratio(|s| s.rate),
            ratio(Sample::cpu_ns_per_op),
            mine.last().map_or("", |s| s.accepted.as_str())
        );
    }
}

fn measure(
    config: &MulticoreConfig,
    server: Server,
    n: usize,
    http: bool,
    round: usize,
    dir: &Path,
) -> io::Result<Sample> {
    let started = start(server, n, http, dir)?;
    if let Some(cpus) = &config.server_cpus {
        started.pin(cpus)?;
    }
    let before = started.cpu_ns()?;
    let (rate, served) = if http {
        let wrk = HttpConfig {
            duration: config.duration,
            connections: config.connections,
            threads: 2,
            ..HttpConfig::default()
        };
        let result = run_wrk(&wrk, started.addr, PATH, config.duration, None, None)?;
        (result.requests_per_second, result.requests)
    } else {
        echo_load(started.addr, config.connections, config.duration)?
    };
    thread::sleep(SETTLE);
    let cpu_ns = started.cpu_ns()?.saturating_sub(before);
    let accepted = started.accepted();
    started.stop()?;
    Ok(Sample {
        n,
        http,
        server,
        round,
        rate,
        served,
        cpu_ns,
        accepted,
    })
}

/// A server running on its threads, or as a process.
struct Started {
    addr: SocketAddr,
    running: Running,
    /// Connections accepted by each reactor (empty for tokio and processes).
    counts: Arc<Vec<AtomicUsize>>,
    /// The server's threads in this process (empty for a process).
    tids: Arc<Mutex<Vec<u32>>>,
}

enum Running {
    Torsion(RunningReactors),
    Tokio(tokio::runtime::Runtime),
    Process(ExternalServer),
}

impl Started {
    fn accepted(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed).to_string())
            .collect();
        counts.join(" / ")
    }

    /// On-CPU nanoseconds so far, summed over the server's threads.
    fn cpu_ns(&self) -> io::Result<u64> {
        if let Running::Process(process) = &self.running {
            return Ok(process.cpu()?.times.ns);
        }
        let mut total = 0;
        for tid in self.tids.lock().unwrap().iter() {
            let path = format!("/proc/self/task/{tid}/schedstat");
            let text = std::fs::read_to_string(&path)?;
            total += text
                .split_whitespace()
                .next()
                .and_then(|field| field.parse::<u64>().ok())
                .ok_or_else(|| io::Error::other(format!("unexpected {path}: {text:?}")))?;
        }
        Ok(total)
    }

    /// Moves the server's threads (or every thread of its process) to `cpus`.
    fn pin(&self, cpus: &str) -> io::Result<()> {
        let ids: Vec<(&str, u32)> = match &self.running {
            Running::Process(process) => vec![("-ap", process.pid())],
            _ => self
                .tids
                .lock()
                .unwrap()
                .iter()
                .map(|&t| ("-p", t))
                .collect(),
        };
        for (flag, id) in ids {
            let status = Command::new("taskset")
                .args([flag, "-c", cpus, &id.to_string()])
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "taskset {flag} -c {cpus} {id}: {status}"
                )));
            }
        }
        Ok(())
    }

    fn stop(self) -> io::Result<()> {
        match self.running {
            Running::Torsion(reactors) => {
                reactors.stop();
                reactors.join()
            }
            Running::Tokio(runtime) => {
                runtime.shutdown_background();
                Ok(())
            }
            Running::Process(process) => process.stop(),
        }
    }
}

fn start(server: Server, n: usize, http: bool, dir: &Path) -> io::Result<Started> {
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let tids = Arc::new(Mutex::new(Vec::new()));
    match server {
        Server::Tokio => start_tokio(n, http),
        Server::ExampleProcess | Server::TokioProcess => start_process(server, n, http, dir),
        Server::TorsionReusePort | Server::TorsionShared => {
            let shared = server == Server::TorsionShared;
            let addr = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], 0))));
            let listening = addr.clone();
            let factory_counts = counts.clone();
            let setup_tids = tids.clone();
            let socket = OnceLock::new();
            let reactors = Reactors::new(n).start(move |reactor, index| {
                setup_tids.lock().unwrap().push(own_tid()?);
                let mut addr = listening.lock().unwrap();
                let counts = factory_counts.clone();
                let count = move || counts[index].fetch_add(1, Ordering::Relaxed);
                let port = match (shared, socket.get()) {
                    (true, Some(socket)) => listen_shared(reactor, socket, http, count)?,
                    _ => listen_reuse_port(reactor, *addr, http, count)?,
                };
                if shared && index == 0 {
                    let _ = socket.set(port.share(reactor)?);
                }
                *addr = port.local_addr();
                Ok::<(), io::Error>(())
            })?;
            let addr = *addr.lock().unwrap();
            Ok(Started {
                addr,
                running: Running::Torsion(reactors),
                counts,
                tids,
            })
        }
    }
}

/// A server as a process of its own: the shipped example, or this bench's tokio server.
fn start_process(server: Server, n: usize, http: bool, dir: &Path) -> io::Result<Started> {
    let exe = std::env::current_exe()?;
    let text = |path: &Path| path.display().to_string();
    let argv: Vec<String> = match server {
        Server::ExampleProcess if http => vec![
            text(&example_path_of(&exe, "http_server")),
            "{addr}".into(),
            "{dir}".into(),
        ],
        Server::ExampleProcess => {
            vec![text(&example_path_of(&exe, "echo_server")), "{addr}".into()]
        }
        _ => vec![
            text(&exe),
            "serve-multicore".into(),
            if http { "http" } else { "echo" }.into(),
            n.to_string(),
            "{addr}".into(),
        ],
    };
    let mut argv = argv;
    if server == Server::ExampleProcess {
        argv.extend(["--threads".to_string(), n.to_string()]);
    }
    let spec = ExternalSpec {
        name: server.name(http).replace([' ', '(', ')'], "-"),
        argv,
    };
    let process = ExternalServer::start(&spec, external::defaults::ECHO, |addr| Vars {
        dir: Some(dir),
        ..Vars::addr(addr)
    })?;
    Ok(Started {
        addr: process.addr,
        running: Running::Process(process),
        counts: Arc::new(Vec::new()),
        tids: Arc::new(Mutex::new(Vec::new())),
    })
}

struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }
}

/// The `/plaintext` route, as `examples/http_server.rs` serves it.
fn plaintext() -> HttpServer<Router> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    HttpServer::new(
        Router::new().get(PATH, move |_: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &headers, BODY)
        }),
    )
}

fn listen_reuse_port(
    reactor: &mut Reactor,
    addr: SocketAddr,
    http: bool,
    count: impl Fn() -> usize + 'static,
) -> io::Result<torsion::ListeningPort> {
    let options = ListenOptions::new().reuse_port(true);
    if http {
        let server = plaintext();
        // Counting wraps the factory: the server's own factory builds the protocol.
        reactor.listen_tcp_with(addr, options, Counted(server, count))
    } else {
        reactor.listen_tcp_with(addr, options, move || {
            count();
            Echo
        })
    }
}

fn listen_shared(
    reactor: &mut Reactor,
    socket: &torsion::SharedListener,
    http: bool,
    count: impl Fn() -> usize + 'static,
) -> io::Result<torsion::ListeningPort> {
    if http {
        reactor.listen_shared(socket, Counted(plaintext(), count))
    } else {
        reactor.listen_shared(socket, move || {
            count();
            Echo
        })
    }
}

/// A factory that counts the connections it builds for.
struct Counted<F, C>(F, C);

impl<F: torsion::Factory, C: Fn() -> usize + 'static> torsion::Factory for Counted<F, C> {
    type Protocol = F::Protocol;

    fn build_protocol(&mut self, peer: torsion::Address) -> Option<F::Protocol> {
        (self.1)();
        self.0.build_protocol(peer)
    }
}

/// tokio's multi-thread runtime with `n` workers: an echo task, or hyper, per connection.
fn start_tokio(n: usize, http: bool) -> io::Result<Started> {
    let tids = Arc::new(Mutex::new(Vec::new()));
    let worker_tids = tids.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .on_thread_start(move || {
            if let Ok(tid) = own_tid() {
                worker_tids.lock().unwrap().push(tid);
            }
        })
        .enable_io()
        .enable_time()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(serve_tokio(listener, http));
    // The workers have started (they ran the task above's spawn) by the first connection;
    // wait for their ids so that CPU time is read from all of them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tids.lock().unwrap().len() < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    Ok(Started {
        addr,
        running: Running::Tokio(runtime),
        counts: Arc::new(Vec::new()),
        tids,
    })
}

/// Accepts forever: an echo task, or hyper serving `/plaintext`, per connection.
async fn serve_tokio(listener: tokio::net::TcpListener, http: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if stream.set_nodelay(true).is_err() {
            continue;
        }
        if http {
            tokio::spawn(async move {
                let service = service_fn(|req| async move {
                    Ok::<_, Infallible>(hyper_plaintext(req).await.unwrap_or_else(|e| match e {}))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        } else {
            tokio::spawn(tokio_echo(stream));
        }
    }
}

/// The hidden `serve-multicore echo|http N ADDR` command: tokio's echo or hyper on a
/// multi-thread runtime with `n` workers, as a process of its own, until SIGTERM (then
/// exits 0, as the examples do). torsion's counterparts are the shipped examples.
pub fn serve_process(http: bool, n: usize, addr: SocketAddr) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_io()
        .enable_time()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!(
            "{} listening on {}",
            if http { "hyper" } else { "tokio echo" },
            listener.local_addr()?
        );
        tokio::spawn(serve_tokio(listener, http));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        term.recv().await;
        Ok::<(), io::Error>(())
    })?;
    runtime.shutdown_background();
    Ok(())
}

async fn tokio_echo(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `connections` threads, each a blocking connection doing 64-byte ping-pong until the
/// deadline; messages per second over all, and messages.
fn echo_load(addr: SocketAddr, connections: usize, seconds: u64) -> io::Result<(f64, u64)> {
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            let (total, stop) = (total.clone(), stop.clone());
            thread::spawn(move || -> io::Result<()> {
                let mut stream = TcpStream::connect(addr)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                let message = [7u8; 64];
                let mut echoed = [0u8; 64];
                let mut count = 0;
                while !stop.load(Ordering::Relaxed) {
                    stream.write_all(&message)?;
                    stream.read_exact(&mut echoed)?;
                    count += 1;
                }
                total.fetch_add(count, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for client in clients {
        client
            .join()
            .map_err(|_| io::Error::other("an echo client panicked"))??;
    }
    let messages = total.load(Ordering::Relaxed);
    Ok((messages as f64 / elapsed.as_secs_f64(), messages))
}
