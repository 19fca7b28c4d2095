//! Many cores: N reactors on N threads (`torsion::Reactors`) against tokio's multi-thread
//! runtime with N worker threads, and hyper on it, for each N asked (`--threads 1,2`).
//!
//! - *echo*: `--connections` client threads, each one blocking connection doing 64-byte
//!   ping-pong for `--duration` seconds; messages per second over all of them.
//! - *http*: `wrk -t 2 -c --connections` on `GET /plaintext`; requests per second.
//!
//! torsion runs in both ways of serving one port: `reuseport` (a socket per reactor,
//! `SO_REUSEPORT`) and `shared` (one socket, registered in every reactor's poll). For each
//! the number of connections each reactor accepted is printed: the accept balance.
//!
//! Everything runs in this process, clients included, so the load generator competes with
//! the servers for the cores: past 2 cores, give the servers N cores and the clients others
//! (`taskset -c 0-3 torsion-bench multicore --threads 1,2,4` under a `taskset` for `wrk`,
//! or run the servers as processes: `echo_server --threads N`, `http_server --threads N`).

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
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

use crate::http::{hyper_plaintext, run_wrk, HttpConfig, BODY, PATH};

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
}

/// Parses `multicore [--threads 1,2] [--duration S] [--connections N] [--loads echo,http]`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<MulticoreConfig, String> {
    let mut config = MulticoreConfig {
        threads: vec![1, 2],
        duration: 3,
        connections: 32,
        echo: true,
        http: true,
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
            "--loads" => {
                let value = args.next().ok_or("--loads needs a list")?;
                config.echo = value.split(',').any(|l| l == "echo");
                config.http = value.split(',').any(|l| l == "http");
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
}

impl Server {
    const ALL: [Server; 3] = [
        Server::TorsionReusePort,
        Server::TorsionShared,
        Server::Tokio,
    ];

    fn name(self, http: bool) -> &'static str {
        match (self, http) {
            (Server::TorsionReusePort, _) => "torsion reuseport",
            (Server::TorsionShared, _) => "torsion shared",
            (Server::Tokio, false) => "tokio multi-thread",
            (Server::Tokio, true) => "hyper (tokio multi-thread)",
        }
    }
}

/// Runs every load for every thread count; prints a table.
pub fn run(config: &MulticoreConfig) -> io::Result<()> {
    println!(
        "many cores: {} s per run, {} connections; echo in msgs/s, http in requests/s",
        config.duration, config.connections
    );
    println!("| load | N | server | per second | vs tokio/hyper | accepted per reactor |");
    println!("|------|---|--------|-----------:|---------------:|----------------------|");
    for &n in &config.threads {
        for (http, on) in [(false, config.echo), (true, config.http)] {
            if !on {
                continue;
            }
            let mut rows = Vec::new();
            for server in Server::ALL {
                eprintln!(
                    "{} N={n} {}...",
                    if http { "http" } else { "echo" },
                    server.name(http)
                );
                rows.push((server, measure(config, server, n, http)?));
            }
            let base = rows
                .iter()
                .find(|(s, _)| *s == Server::Tokio)
                .map(|(_, r)| r.rate);
            for (server, result) in rows {
                let ratio = base.map_or(String::new(), |b| format!("{:.2}", result.rate / b));
                println!(
                    "| {} | {n} | {} | {:.0} | {ratio} | {} |",
                    if http { "http" } else { "echo" },
                    server.name(http),
                    result.rate,
                    result.accepted
                );
            }
        }
    }
    Ok(())
}

/// One run's outcome.
struct Measured {
    rate: f64,
    /// Connections each reactor accepted, as text (torsion only).
    accepted: String,
}

fn measure(config: &MulticoreConfig, server: Server, n: usize, http: bool) -> io::Result<Measured> {
    let started = start(server, n, http)?;
    let rate = if http {
        let wrk = HttpConfig {
            duration: config.duration,
            connections: config.connections,
            threads: 2,
            ..HttpConfig::default()
        };
        run_wrk(&wrk, started.addr, PATH, config.duration, None, None)?.requests_per_second
    } else {
        echo_load(started.addr, config.connections, config.duration)?
    };
    let accepted = started.accepted();
    started.stop()?;
    Ok(Measured { rate, accepted })
}

/// A server running on its threads.
struct Started {
    addr: SocketAddr,
    running: Running,
    /// Connections accepted by each reactor (empty for tokio).
    counts: Arc<Vec<AtomicUsize>>,
}

enum Running {
    Torsion(RunningReactors),
    Tokio(tokio::runtime::Runtime),
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
        }
    }
}

fn start(server: Server, n: usize, http: bool) -> io::Result<Started> {
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    match server {
        Server::Tokio => start_tokio(n, http),
        Server::TorsionReusePort | Server::TorsionShared => {
            let shared = server == Server::TorsionShared;
            let addr = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], 0))));
            let listening = addr.clone();
            let factory_counts = counts.clone();
            let socket = OnceLock::new();
            let reactors = Reactors::new(n).start(move |reactor, index| {
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
            })
        }
    }
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_io()
        .enable_time()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move {
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
                        Ok::<_, Infallible>(
                            hyper_plaintext(req).await.unwrap_or_else(|e| match e {}),
                        )
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            } else {
                tokio::spawn(tokio_echo(stream));
            }
        }
    });
    Ok(Started {
        addr,
        running: Running::Tokio(runtime),
        counts: Arc::new(Vec::new()),
    })
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
/// deadline; messages per second over all.
fn echo_load(addr: SocketAddr, connections: usize, seconds: u64) -> io::Result<f64> {
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
    Ok(total.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}
