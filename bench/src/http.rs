//! The HTTP benchmark: `GET /plaintext` (`Hello, World!`, `text/plain`)
//! served by torsion's `HttpServer` and by hyper 1.x on a current-thread tokio runtime, side
//! by side in one run under the same load from `wrk`.
//!
//! Both servers start once, each on a thread of its own in this process, and serve for the
//! whole run. For every round, each load (without pipelining, and pipelined 16 deep through a
//! generated wrk Lua script) and each server (the order rotating from round to round), `wrk`
//! runs for `--duration` seconds against one server while this thread reads that server
//! thread's CPU time (`/proc/self/task/TID/schedstat`: on-CPU nanoseconds, user and kernel)
//! before `wrk` starts and after it has exited and the server has had a moment to handle the
//! closes. CPU per request is that difference divided by the requests `wrk` completed.
//!
//! An external server (`--external NAME=COMMAND`, e.g. the `http_server` example serving an
//! empty directory) starts once too, as a process; its CPU time is the sum over its threads
//! (`/proc/PID/task/*/schedstat`, see `src/external.rs`), and it is stopped with SIGTERM at
//! the end.

use std::convert::Infallible;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::{header, HeaderMap, HeaderValue, StatusCode};
use torsion::{Reactor, ReactorHandle};

use crate::external::{self, ExternalServer, ExternalSpec, Target, Vars};
use crate::stats::{max, median, min};

/// The response body.
pub(crate) const BODY: &str = "Hello, World!";

/// The path requested.
pub(crate) const PATH: &str = "/plaintext";

/// How long the server may go on after `wrk` exits (handling the closes) before its CPU time
/// is read again.
const SETTLE: Duration = Duration::from_millis(200);

/// How much longer than `--duration` a `wrk` run may take before it is killed.
const WRK_GRACE: Duration = Duration::from_secs(30);

/// The `wrk` run before the measured rounds, per server and load, unmeasured.
const WARM_UP_SECS: u64 = 1;

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Seconds each `wrk` run lasts.
    pub duration: u64,
    /// `wrk` connections.
    pub connections: usize,
    /// `wrk` threads.
    pub threads: usize,
    /// Requests in flight per connection in the pipelined load.
    pub depth: usize,
    /// Rounds; each runs every server under every load once.
    pub rounds: usize,
    /// The servers compared: built in, then external processes.
    pub servers: Vec<Target<HttpKind>>,
    /// Whether to run the load without pipelining.
    pub plain: bool,
    /// Whether to run the pipelined load.
    pub pipelined: bool,
    /// Whether to pin (with `taskset`) the server threads to the last CPU and `wrk` to the
    /// others, so that the two never share a CPU. Off by default: on the 2-vCPU machine this
    /// was written on, pinning cut every server's throughput and raised its CPU per request
    /// (cross-CPU wake-ups on every loopback round trip).
    pub pin: bool,
    /// Whether the shipped `http_server` example is among the servers, so that it must be
    /// built (by the cargo that built this bench, with the same profile) before the run.
    pub build_example: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            duration: 5,
            connections: 50,
            threads: 1,
            depth: 16,
            rounds: 5,
            servers: HttpKind::ALL.map(Target::Builtin).to_vec(),
            plain: true,
            pipelined: true,
            pin: false,
            build_example: false,
        }
    }
}

/// The servers measured as processes of their own by default (`--processes`): hyper with
/// `pipeline_flush(true)` (this bench's hidden `serve-http` command) and the shipped
/// `http_server` example, each started as a user starts it. hyper's comes first so that the
/// table's ratio reads torsion-process/hyper-flush-process.
const DEFAULT_PROCESSES: &str = "hyper-flush,torsion";

/// The [`ExternalSpec`] of a server run as a process: `hyper`, `hyper-flush` or `torsion`.
fn process_spec(name: &str) -> Result<ExternalSpec, String> {
    let exe = std::env::current_exe().map_err(|e| format!("--processes: {e}"))?;
    let exe_str = |path: &Path| {
        path.to_str()
            .map(str::to_string)
            .ok_or(format!("--processes: {} is not UTF-8", path.display()))
    };
    let argv = match name {
        "hyper" | "hyper-flush" => vec![
            exe_str(&exe)?,
            "serve-http".to_string(),
            name.to_string(),
            "{addr}".to_string(),
        ],
        "torsion" => vec![
            exe_str(&example_path(&exe))?,
            "{addr}".to_string(),
            "{dir}".to_string(),
        ],
        other => return Err(format!("--processes: unknown server {other:?}")),
    };
    Ok(ExternalSpec {
        name: format!("{name}-process"),
        argv,
    })
}

/// Where cargo puts the `http_server` example built with this bench's profile: beside this
/// binary (`target/PROFILE/torsion-bench` → `target/PROFILE/examples/http_server`).
fn example_path(exe: &Path) -> PathBuf {
    example_path_of(exe, "http_server")
}

/// Where cargo puts example `name` built with the profile of `exe` (this bench).
pub(crate) fn example_path_of(exe: &Path, name: &str) -> PathBuf {
    exe.with_file_name("examples").join(name)
}

/// Builds the `http_server` example with the cargo, profile and target directory that built
/// this bench, so that both sides of the comparison are built alike (`cargo run --release`,
/// `--profile release-lto`, or `CARGO_PROFILE_*` variables, which the child cargo inherits).
/// Without `CARGO` in the environment (the bench run directly) an existing build is used.
fn build_example() -> io::Result<()> {
    build_examples(&["http_server"])
}

/// [`build_example`] for the examples `names`.
pub(crate) fn build_examples(names: &[&str]) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let Some(cargo) = std::env::var_os("CARGO") else {
        for name in names {
            let example = example_path_of(&exe, name);
            if !example.exists() {
                return Err(io::Error::other(format!(
                    "{} is not built: `cargo build --release --example {name}`, \
                     or run the bench with `cargo run`",
                    example.display()
                )));
            }
            eprintln!(
                "  not run by cargo: using {} as it is (build it with the same profile)",
                example.display()
            );
        }
        return Ok(());
    };
    let profile_dir = exe
        .parent()
        .ok_or_else(|| io::Error::other("no target dir"))?;
    let target_dir = profile_dir
        .parent()
        .ok_or_else(|| io::Error::other("no target dir"))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => return Err(io::Error::other("no profile directory")),
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    eprintln!("  building the examples {names:?} (profile {profile})");
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "-p", "torsion"]);
    for name in names {
        command.arg("--example").arg(name);
    }
    let status = command
        .arg("--profile")
        .arg(profile)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "building the examples {names:?} failed: {status}"
        )))
    }
}

/// Parses the options after `http`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<HttpConfig, String> {
    let mut config = HttpConfig::default();
    let mut builtins = HttpKind::ALL.to_vec();
    let mut externals = Vec::new();
    let mut processes = DEFAULT_PROCESSES.to_string();
    while let Some(arg) = args.next() {
        if arg == "--pin" {
            config.pin = true;
            continue;
        }
        let value = args.next().unwrap_or_default();
        let number = |min: usize| match value.parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!("{arg}: bad value {value:?} (at least {min})")),
        };
        match arg.as_str() {
            "--duration" => config.duration = number(1)? as u64,
            "--connections" => config.connections = number(1)?,
            "--threads" => config.threads = number(1)?,
            "--depth" => config.depth = number(2)?,
            "--rounds" => config.rounds = number(1)?,
            "--servers" => builtins = external::parse_builtins(&value, HttpKind::from_name)?,
            "--external" => externals.push(ExternalSpec::parse(&value)?),
            "--processes" => processes = value,
            "--loads" => {
                config.plain = false;
                config.pipelined = false;
                for name in value.split(',') {
                    match name {
                        "plain" => config.plain = true,
                        "pipelined" => config.pipelined = true,
                        _ => return Err(format!("unknown load {name:?}")),
                    }
                }
            }
            other => return Err(format!("http: unknown argument {other:?}")),
        }
    }
    if processes != "none" {
        for name in processes.split(',') {
            config.build_example |= name == "torsion";
            externals.push(process_spec(name)?);
        }
    }
    config.servers = external::targets(&builtins, &externals)?;
    if config.threads > config.connections {
        return Err("http: --threads must not exceed --connections".into());
    }
    Ok(config)
}

/// Which HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpKind {
    /// torsion's `HttpServer` with a `Router`.
    Torsion,
    /// hyper 1.x's HTTP/1 server connection, default builder (plus the tokio timer).
    Hyper,
    /// The same with `pipeline_flush(true)`: pipelined responses gathered into fewer writes.
    HyperFlush,
}

impl HttpKind {
    /// Every server.
    pub const ALL: [HttpKind; 3] = [HttpKind::Torsion, HttpKind::Hyper, HttpKind::HyperFlush];

    /// The short name, as printed and accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            HttpKind::Torsion => "torsion",
            HttpKind::Hyper => "hyper",
            HttpKind::HyperFlush => "hyper-flush",
        }
    }

    /// The server named `name`, if any.
    pub fn from_name(name: &str) -> Option<HttpKind> {
        HttpKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl crate::external::Builtin for HttpKind {
    fn label(self) -> &'static str {
        self.name()
    }
}

impl fmt::Display for HttpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    /// One request in flight per connection.
    Plain,
    /// `depth` requests in flight per connection.
    Pipelined,
}

impl Load {
    fn name(self, depth: usize) -> String {
        match self {
            Load::Plain => "no pipelining".into(),
            Load::Pipelined => format!("pipelined {depth} deep"),
        }
    }
}

/// How to stop a server thread.
enum Stopper {
    /// torsion's reactor.
    Reactor(ReactorHandle),
    /// hyper's runtime waits on this.
    Notify(Arc<tokio::sync::Notify>),
}

/// A server running on a thread of its own, or as a process.
struct Running {
    target: Target<HttpKind>,
    addr: SocketAddr,
    how: How,
}

/// Where a [`Running`] server runs.
enum How {
    /// On a thread of this process.
    Thread {
        /// The server thread's id, for `/proc/self/task/TID/schedstat`.
        tid: u32,
        stopper: Stopper,
        thread: thread::JoinHandle<io::Result<()>>,
    },
    /// As a process of its own.
    Process(ExternalServer),
}

impl Running {
    fn start(target: &Target<HttpKind>, dir: &Path) -> io::Result<Running> {
        match target {
            Target::Builtin(kind) => Self::start_thread(*kind),
            Target::External(spec) => {
                let server = ExternalServer::start(spec, external::defaults::HTTP, |addr| Vars {
                    dir: Some(dir),
                    ..Vars::addr(addr)
                })?;
                Ok(Running {
                    target: target.clone(),
                    addr: server.addr,
                    how: How::Process(server),
                })
            }
        }
    }

    fn start_thread(kind: HttpKind) -> io::Result<Running> {
        let (tx, rx) = mpsc::channel();
        let thread =
            thread::Builder::new()
                .name(format!("http-{kind}"))
                .spawn(move || match kind {
                    HttpKind::Torsion => serve_torsion(tx),
                    HttpKind::Hyper => serve_hyper(tx, false),
                    HttpKind::HyperFlush => serve_hyper(tx, true),
                })?;
        match rx.recv() {
            Ok((addr, tid, stopper)) => Ok(Running {
                target: Target::Builtin(kind),
                addr,
                how: How::Thread {
                    tid,
                    stopper,
                    thread,
                },
            }),
            Err(_) => Err(thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a server thread panicked")))
                .err()
                .unwrap_or_else(|| io::Error::other("a server thread ended"))),
        }
    }

    /// The server's on-CPU time so far, in nanoseconds (user and kernel): its thread's, or
    /// the sum over the threads of its process.
    fn cpu_ns(&self) -> io::Result<u64> {
        let tid = match &self.how {
            How::Thread { tid, .. } => *tid,
            How::Process(server) => return Ok(server.cpu()?.times.ns),
        };
        let path = format!("/proc/self/task/{tid}/schedstat");
        let text = std::fs::read_to_string(&path)?;
        text.split_whitespace()
            .next()
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected {path} contents: {text:?}")))
    }

    fn stop(self) -> io::Result<()> {
        let (stopper, thread) = match self.how {
            How::Thread {
                stopper, thread, ..
            } => (stopper, thread),
            How::Process(server) => return server.stop(),
        };
        match stopper {
            Stopper::Reactor(handle) => {
                let _ = handle.stop();
            }
            Stopper::Notify(notify) => notify.notify_one(),
        }
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("a server thread panicked")))
    }

    /// The server's name.
    fn name(&self) -> &str {
        self.target.name()
    }
}

/// What a server thread sends back once it listens.
type Started = (SocketAddr, u32, Stopper);

/// The calling thread's id, from the `/proc/thread-self` link (`PID/task/TID`).
pub(crate) fn own_tid() -> io::Result<u32> {
    let link = std::fs::read_link("/proc/thread-self")?;
    link.file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected /proc/thread-self: {link:?}")))
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// torsion: the `/plaintext` route of `examples/http_server.rs`.
fn serve_torsion(tx: mpsc::Sender<Started>) -> io::Result<()> {
    let mut reactor = Reactor::new()?;
    // As the example does: the fixed headers built once, borrowed by every response.
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let router = Router::new().get(PATH, move |_: Request, res: Responder, r: &mut Reactor| {
        res.respond(r, StatusCode::OK, &headers, BODY)
    });
    let port = reactor.listen_tcp(loopback(), HttpServer::new(router))?;
    let stopper = Stopper::Reactor(reactor.handle());
    let _ = tx.send((port.local_addr(), own_tid()?, stopper));
    reactor.run()
}

/// hyper: a current-thread runtime, a task per connection serving `http1` with `service_fn`.
fn serve_hyper(tx: mpsc::Sender<Started>, pipeline_flush: bool) -> io::Result<()> {
    let notify = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::clone(&notify);
    run_hyper(
        loopback(),
        pipeline_flush,
        move |addr| {
            let _ = tx.send((addr, own_tid()?, Stopper::Notify(notify)));
            Ok(())
        },
        async move { stop.notified().await },
    )
}

/// The hidden `serve-http hyper|hyper-flush ADDR` command: hyper as a process of its own, as
/// its users run it, until SIGTERM (then exits 0, as the examples do). torsion's counterpart
/// is the shipped `http_server` example itself.
pub fn serve_process(kind: HttpKind, addr: SocketAddr) -> io::Result<()> {
    let pipeline_flush = match kind {
        HttpKind::Hyper => false,
        HttpKind::HyperFlush => true,
        HttpKind::Torsion => {
            return Err(io::Error::other(
                "serve-http: torsion's server process is the http_server example",
            ))
        }
    };
    run_hyper(
        addr,
        pipeline_flush,
        |addr| {
            println!("hyper listening on {addr}");
            Ok(())
        },
        async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(e) => eprintln!("serve-http: no SIGTERM handler ({e}): runs until killed"),
            }
        },
    )
}

/// Runs hyper on `addr` until `stop` completes; `listening` hears the bound address first.
fn run_hyper(
    addr: SocketAddr,
    pipeline_flush: bool,
    listening: impl FnOnce(SocketAddr) -> io::Result<()>,
    stop: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        listening(listener.local_addr()?)?;
        let acceptor = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _peer)) => stream,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                    Err(_) => return,
                };
                // As torsion does by default.
                if stream.set_nodelay(true).is_err() {
                    continue;
                }
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .pipeline_flush(pipeline_flush)
                        .serve_connection(TokioIo::new(stream), service_fn(hyper_plaintext))
                        .await;
                });
            }
        });
        stop.await;
        acceptor.abort();
        Ok(())
    })
}

/// hyper's handler: `GET /plaintext`, else 404.
pub(crate) async fn hyper_plaintext(
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    if req.method() == hyper::Method::GET && req.uri().path() == PATH {
        *response.body_mut() = Full::new(Bytes::from_static(BODY.as_bytes()));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain"),
        );
    } else {
        *response.status_mut() = hyper::StatusCode::NOT_FOUND;
    }
    Ok(response)
}

/// One `GET /plaintext` with `Connection: close`: the whole response, checked.
fn fetch_once(addr: SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let lower = response.to_ascii_lowercase();
    if !response.starts_with("HTTP/1.1 200")
        || !response.ends_with(&format!("\r\n\r\n{BODY}"))
        || !lower.contains("content-type: text/plain\r\n")
    {
        return Err(io::Error::other(format!(
            "unexpected response: {response:?}"
        )));
    }
    Ok(response)
}

/// The pipelining script: `depth` requests sent at once, the next batch when all are answered.
fn write_pipeline_script(depth: usize) -> io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "torsion-bench-pipeline-{}-{depth}.lua",
        std::process::id()
    ));
    let script = format!(
        "-- generated by torsion-bench http: {depth} pipelined requests per batch\n\
         init = function(args)\n\
         \x20  local r = {{}}\n\
         \x20  for i = 1, {depth} do\n\
         \x20     r[i] = wrk.format(nil, \"{PATH}\")\n\
         \x20  end\n\
         \x20  req = table.concat(r)\n\
         end\n\
         request = function()\n\
         \x20  return req\n\
         end\n"
    );
    std::fs::write(&path, script)?;
    Ok(path)
}

/// Which CPUs the servers and `wrk` run on, as `taskset -c` lists.
#[derive(Clone, Debug)]
pub(crate) struct Pinning {
    server: String,
    wrk: String,
}

impl Pinning {
    /// The last CPU for the servers, the others for `wrk`; `None` with a single CPU.
    fn new() -> Option<Pinning> {
        let cpus = thread::available_parallelism().ok()?.get();
        (cpus >= 2).then(|| Pinning {
            server: (cpus - 1).to_string(),
            wrk: format!("0-{}", cpus - 2),
        })
    }

    /// Pins the server (its thread, or every thread of its process) to the server CPU.
    fn pin_server(&self, server: &Running) -> io::Result<()> {
        let (all, id) = match &server.how {
            How::Thread { tid, .. } => ("-p", *tid),
            How::Process(process) => ("-ap", process.pid()),
        };
        let status = Command::new("taskset")
            .args([all, "-c", &self.server, &id.to_string()])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!("taskset -p failed: {status}")));
        }
        Ok(())
    }
}

/// What one `wrk` run reported.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WrkResult {
    pub(crate) requests: u64,
    pub(crate) requests_per_second: f64,
}

/// Runs `wrk` against `path` on `addr`, bounded by `duration` plus [`WRK_GRACE`].
pub(crate) fn run_wrk(
    config: &HttpConfig,
    addr: SocketAddr,
    path: &str,
    duration: u64,
    script: Option<&Path>,
    pin: Option<&Pinning>,
) -> io::Result<WrkResult> {
    assert!(addr.ip().is_loopback());
    let mut command = match pin {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(&cpus.wrk).arg("wrk");
            command
        }
        None => Command::new("wrk"),
    };
    command
        .arg("-t")
        .arg(config.threads.to_string())
        .arg("-c")
        .arg(config.connections.to_string())
        .arg("-d")
        .arg(format!("{duration}s"))
        .arg("--timeout")
        .arg("10s");
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    command
        .arg(format!("http://{addr}{path}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run wrk ({e}): install it (apt-get install -y wrk)"),
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs(duration) + WRK_GRACE;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("wrk did not finish in time"));
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut err)?;
    }
    if !status.success() {
        return Err(io::Error::other(format!(
            "wrk failed ({status}): {out}{err}"
        )));
    }
    parse_wrk(&out).ok_or_else(|| io::Error::other(format!("unexpected wrk output: {out}{err}")))
}

/// Reads `N requests in ...` and `Requests/sec: X` from `wrk`'s output; `None` if either is
/// missing or the run had errors or non-2xx responses.
fn parse_wrk(out: &str) -> Option<WrkResult> {
    if out.contains("Non-2xx") || out.contains("Socket errors") {
        eprintln!("  wrk reported errors:\n{out}");
        return None;
    }
    let requests = out
        .lines()
        .find(|line| line.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let requests_per_second = out
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    Some(WrkResult {
        requests,
        requests_per_second,
    })
}

/// One measured run.
#[derive(Clone, Debug)]
struct Sample {
    round: usize,
    load: Load,
    target: Target<HttpKind>,
    wrk: WrkResult,
    /// The server thread's CPU time over the run, nanoseconds.
    cpu_ns: u64,
    /// Wall time from the first CPU reading to the second.
    wall: Duration,
}

impl Sample {
    fn cpu_ns_per_request(&self) -> f64 {
        self.cpu_ns as f64 / self.wrk.requests as f64
    }

    /// The server thread's CPU time as a share of the wall time.
    fn cpu_share(&self) -> f64 {
        self.cpu_ns as f64 / self.wall.as_nanos() as f64
    }
}

/// Runs the benchmark and prints its tables.
pub fn run(config: &HttpConfig) -> io::Result<()> {
    // What an external `http_server` serves besides its routes: nothing (an empty directory).
    let dir = std::env::temp_dir().join(format!("torsion-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    if config.build_example {
        build_example()?;
    }
    let result = start_and_measure(config, &dir);
    let _ = std::fs::remove_dir(&dir);
    result
}

fn start_and_measure(config: &HttpConfig, dir: &Path) -> io::Result<()> {
    let mut servers = Vec::new();
    for target in &config.servers {
        match Running::start(target, dir) {
            Ok(server) => servers.push(server),
            Err(e) => {
                for server in servers {
                    let _ = server.stop();
                }
                return Err(e);
            }
        }
    }
    let result = measure(config, &servers);
    let mut stopped = Ok(());
    for server in servers {
        let name = server.name().to_string();
        if let Err(e) = server.stop() {
            eprintln!("  {name}: {e}");
            stopped = Err(e);
        }
    }
    result.and(stopped)
}

fn measure(config: &HttpConfig, servers: &[Running]) -> io::Result<()> {
    for server in servers {
        let response = fetch_once(server.addr)?;
        eprintln!(
            "{} at {}: {} bytes of response: {:?}",
            server.name(),
            server.addr,
            response.len(),
            response
        );
    }
    let pin = if config.pin {
        let pin = Pinning::new();
        match &pin {
            Some(pin) => {
                for server in servers {
                    pin.pin_server(server)?;
                }
                eprintln!(
                    "servers pinned to CPU {}, wrk to CPUs {}",
                    pin.server, pin.wrk
                );
            }
            None => eprintln!("a single CPU: nothing pinned"),
        }
        pin
    } else {
        None
    };
    let script = write_pipeline_script(config.depth)?;
    let result = measure_with(config, servers, &script, pin.as_ref());
    let _ = std::fs::remove_file(&script);
    let samples = result?;
    print_tables(config, servers, &samples);
    Ok(())
}

fn measure_with(
    config: &HttpConfig,
    servers: &[Running],
    script: &Path,
    pin: Option<&Pinning>,
) -> io::Result<Vec<Sample>> {
    let mut loads = Vec::new();
    if config.plain {
        loads.push(Load::Plain);
    }
    if config.pipelined {
        loads.push(Load::Pipelined);
    }
    let script_for = |load: Load| (load == Load::Pipelined).then_some(script);
    for &load in &loads {
        for server in servers {
            let wrk = run_wrk(
                config,
                server.addr,
                PATH,
                WARM_UP_SECS,
                script_for(load),
                pin,
            )?;
            eprintln!(
                "  warm-up {:<20} {:<12} {:>10.0} req/s {:>10} requests",
                load.name(config.depth),
                server.name(),
                wrk.requests_per_second,
                wrk.requests
            );
        }
    }
    let mut samples = Vec::new();
    for round in 0..config.rounds {
        for &load in &loads {
            for i in 0..servers.len() {
                let server = &servers[(i + round) % servers.len()];
                let start = Instant::now();
                let before = server.cpu_ns()?;
                let wrk = run_wrk(
                    config,
                    server.addr,
                    PATH,
                    config.duration,
                    script_for(load),
                    pin,
                )?;
                thread::sleep(SETTLE);
                let cpu_ns = server.cpu_ns()?.saturating_sub(before);
                let sample = Sample {
                    round,
                    load,
                    target: server.target.clone(),
                    wrk,
                    cpu_ns,
                    wall: start.elapsed(),
                };
                // `compare-trees` reads these lines: keep the fields in this order.
                eprintln!(
                    "  round {} {:<20} {:<12} {:>10.0} req/s {:>10} requests {:>8.0} ns CPU/request, server CPU {:>5.1}%",
                    round + 1,
                    load.name(config.depth),
                    server.name(),
                    wrk.requests_per_second,
                    wrk.requests,
                    sample.cpu_ns_per_request(),
                    100.0 * sample.cpu_share()
                );
                samples.push(sample);
            }
        }
    }
    Ok(samples)
}

fn print_tables(config: &HttpConfig, servers: &[Running], samples: &[Sample]) {
    println!(
        "HTTP GET {PATH} ({BODY:?}, text/plain): wrk -t {} -c {}, {} s per run, {} rounds, {}; medians (min..max)",
        config.threads,
        config.connections,
        config.duration,
        config.rounds,
        if config.pin { "server and wrk pinned to separate CPUs" } else { "not pinned" }
    );
    let w = external::name_width(&config.servers, 12);
    for load in [Load::Plain, Load::Pipelined] {
        let of_load: Vec<&Sample> = samples.iter().filter(|s| s.load == load).collect();
        if of_load.is_empty() {
            continue;
        }
        println!();
        println!("{}", load.name(config.depth));
        println!(
            "{:<w$} {:>10} {:>21} {:>11} {:>21} {:>11}",
            "server", "req/s", "(min..max)", "CPU ns/req", "(min..max)", "server CPU"
        );
        for server in servers {
            let mine: Vec<&&Sample> = of_load
                .iter()
                .filter(|s| s.target == server.target)
                .collect();
            let rps: Vec<f64> = mine.iter().map(|s| s.wrk.requests_per_second).collect();
            let cpu: Vec<f64> = mine.iter().map(|s| s.cpu_ns_per_request()).collect();
            let share: Vec<f64> = mine.iter().map(|s| s.cpu_share()).collect();
            println!(
                "{:<w$} {:>10.0} {:>21} {:>11.0} {:>21} {:>10.1}%",
                server.name(),
                median(&rps),
                format!("({:.0}..{:.0})", min(&rps), max(&rps)),
                median(&cpu),
                format!("({:.0}..{:.0})", min(&cpu), max(&cpu)),
                100.0 * median(&share)
            );
        }
        // torsion against every other server, then each external against the built-in
        // servers and the externals listed before it.
        let torsion = Target::Builtin(HttpKind::Torsion);
        let mut pairs: Vec<(&Target<HttpKind>, &Target<HttpKind>)> = Vec::new();
        if config.servers.contains(&torsion) {
            for other in config.servers.iter().filter(|t| **t != torsion) {
                if !other.is_external() {
                    pairs.push((&torsion, other));
                }
            }
        }
        pairs.extend(external::external_pairs(&config.servers));
        for (a, b) in pairs {
            let per_round = |value: fn(&Sample) -> f64| -> (f64, f64) {
                let of = |target: &Target<HttpKind>| -> Vec<(usize, f64)> {
                    of_load
                        .iter()
                        .filter(|s| &s.target == target)
                        .map(|s| (s.round, value(s)))
                        .collect()
                };
                let (mine, theirs) = (of(a), of(b));
                let ratio_of_medians = median(&mine.iter().map(|p| p.1).collect::<Vec<_>>())
                    / median(&theirs.iter().map(|p| p.1).collect::<Vec<_>>());
                let ratios: Vec<f64> = mine
                    .iter()
                    .filter_map(|&(round, v)| theirs.iter().find(|p| p.0 == round).map(|p| v / p.1))
                    .collect();
                (ratio_of_medians, median(&ratios))
            };
            let (rps, rps_rounds) = per_round(|s| s.wrk.requests_per_second);
            let (cpu, cpu_rounds) = per_round(Sample::cpu_ns_per_request);
            println!(
                "{:<20} req/s {:.3} (per round: median {:.3}), CPU/request {:.3} (per round: median {:.3})",
                format!("{a}/{b}"),
                rps,
                rps_rounds,
                cpu,
                cpu_rounds
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let out =
            "Running 5s test @ http://127.0.0.1:1/plaintext\n  1 threads and 50 connections\n\
                   \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
                   \x20 634718 requests in 5.00s, 78.69MB read\n\
                   Requests/sec: 126915.33\nTransfer/sec:     15.73MB\n";
        let r = parse_wrk(out).unwrap();
        assert_eq!(r.requests, 634_718);
        assert_eq!(r.requests_per_second, 126_915.33);
        assert!(parse_wrk(&format!("{out}  Non-2xx or 3xx responses: 3\n")).is_none());
    }
}
