//! The static-files benchmark: a 1 MiB and a 4 KiB file served by torsion's `StaticFiles`
//! and by nginx, side by side under the same `wrk` load (`-t1 -c50` by default).
//!
//! torsion runs in this process: a reactor thread serving `Router::new().fallback(StaticFiles)`
//! over a temporary directory (its thread pool opens the files and loads them into the page
//! cache; plain TCP sends them with `sendfile`). nginx (Debian's `nginx` package) runs as a
//! process of its own from a generated configuration: one worker process, `sendfile on`,
//! `access_log off`, listening on 127.0.0.1, the same directory as its root, and
//! `keepalive_requests` raised so that neither server closes connections under the load
//! (torsion has no such limit). Without nginx installed, only torsion runs and a note says
//! why.
//!
//! Every round runs each file against each server (the order rotating from round to round),
//! one `wrk` run each; the table gives the median requests per second over the rounds and
//! the ratio torsion/nginx (of the medians, and the median of the per-round ratios), then the
//! same for the server's CPU time per request: on-CPU nanoseconds (`schedstat`, user and
//! kernel) of torsion's reactor thread and its thread-pool threads, and of nginx's worker
//! process, read before `wrk` starts and after it exits (and the server has settled).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use torsion::protocols::http::server::{HttpServer, Router};
use torsion::protocols::http::static_files::StaticFiles;
use torsion::{Reactor, ReactorHandle};

use crate::http::{run_wrk, HttpConfig};
use crate::stats::median;

/// The files served: (URL path, size in bytes).
const FILES: [(&str, usize); 2] = [("/1m.bin", 1 << 20), ("/4k.bin", 4 << 10)];

/// How long nginx may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server may go on after `wrk` exits (handling the closes) before its CPU time is
/// read again.
const SETTLE: Duration = Duration::from_millis(100);

/// The first field of a `schedstat` file: on-CPU nanoseconds.
fn schedstat_ns(path: &Path) -> io::Result<u64> {
    let text = fs::read_to_string(path)?;
    text.split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected {}: {text:?}", path.display())))
}

/// The on-CPU nanoseconds of the threads of process `pid` (`self` for this one) whose name
/// `wanted` accepts (every thread for `None`).
fn threads_cpu_ns(pid: &str, wanted: Option<&dyn Fn(&str) -> bool>) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = entry?.path();
        if let Some(wanted) = wanted {
            let name = fs::read_to_string(task.join("comm")).unwrap_or_default();
            if !wanted(name.trim_end()) {
                continue;
            }
        }
        // A thread that just exited has no schedstat any more.
        total += schedstat_ns(&task.join("schedstat")).unwrap_or(0);
    }
    Ok(total)
}

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct StaticConfig {
    /// Seconds each `wrk` run lasts.
    pub duration: u64,
    /// `wrk` connections.
    pub connections: usize,
    /// `wrk` threads.
    pub threads: usize,
    /// Rounds; each runs every file against every server once.
    pub rounds: usize,
}

impl Default for StaticConfig {
    fn default() -> Self {
        StaticConfig {
            duration: 5,
            connections: 50,
            threads: 1,
            rounds: 5,
        }
    }
}

/// Parses the options after `static`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<StaticConfig, String> {
    let mut config = StaticConfig::default();
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let number = || match value.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{arg}: bad value {value:?} (at least 1)")),
        };
        match arg.as_str() {
            "--duration" => config.duration = number()? as u64,
            "--connections" => config.connections = number()?,
            "--threads" => config.threads = number()?,
            "--rounds" => config.rounds = number()?,
            other => return Err(format!("static: unknown argument {other:?}")),
        }
    }
    if config.threads > config.connections {
        return Err("static: --threads must not exceed --connections".into());
    }
    Ok(config)
}

/// The directory served, with its files; removed on drop.
struct Site {
    dir: PathBuf,
}

impl Site {
    fn new() -> io::Result<Site> {
        let dir = std::env::temp_dir().join(format!("torsion-bench-static-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("www"))?;
        for (path, size) in FILES {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            fs::write(dir.join("www").join(&path[1..]), data)?;
        }
        Ok(Site { dir })
    }

    fn root(&self) -> PathBuf {
        self.dir.join("www")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// torsion's server on a thread of this process.
struct Torsion {
    addr: SocketAddr,
    handle: ReactorHandle,
    thread: thread::JoinHandle<io::Result<()>>,
}

impl Torsion {
    fn start(root: PathBuf) -> io::Result<Torsion> {
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new().name("static-torsion".into()).spawn(
            move || -> io::Result<()> {
                let mut reactor = Reactor::new()?;
                let router = Router::new().fallback(StaticFiles::new(root)?);
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                let port = reactor.listen_tcp(loopback, HttpServer::new(router))?;
                let _ = tx.send((port.local_addr(), reactor.handle()));
                reactor.run()
            },
        )?;
        match rx.recv() {
            Ok((addr, handle)) => Ok(Torsion {
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

    /// The reactor thread's and the thread pool's CPU time so far.
    fn cpu_ns(&self) -> io::Result<u64> {
        let ours = |name: &str| name == "static-torsion" || name.starts_with("torsion-pool");
        threads_cpu_ns("self", Some(&ours))
    }

    fn stop(self) -> io::Result<()> {
        let _ = self.handle.stop();
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the server thread panicked")))
    }
}

/// nginx as a process of its own (its master; one worker).
struct Nginx {
    addr: SocketAddr,
    child: Child,
}

impl Nginx {
    /// Starts nginx on a free loopback port, or `Ok(None)` if it is not installed.
    fn start(site: &Site) -> io::Result<Option<Nginx>> {
        let Some(binary) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(Path::new)
            .find(|path| path.exists())
        else {
            return Ok(None);
        };
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let prefix = site.dir.join("nginx");
        fs::create_dir_all(prefix.join("logs"))?;
        let conf = prefix.join("nginx.conf");
        fs::write(&conf, nginx_conf(addr, &prefix, &site.root()))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut nginx = Nginx { addr, child };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = nginx.child.try_wait()? {
                return Err(io::Error::other(format!("nginx exited at start: {status}")));
            }
            if Instant::now() > deadline {
                let _ = nginx.child.kill();
                return Err(io::Error::other("nginx did not start listening"));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(nginx))
    }

    /// The worker processes' CPU time so far (the master only waits).
    fn cpu_ns(&self) -> io::Result<u64> {
        let pid = self.child.id();
        let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
        let mut total = 0;
        for worker in children.split_whitespace() {
            total += threads_cpu_ns(worker, None)?;
        }
        Ok(total)
    }

    /// Stops nginx (SIGQUIT: its graceful shutdown), bounded, then kills it.
    fn stop(mut self) -> io::Result<()> {
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        Ok(())
    }
}

/// One worker, `sendfile on`, no access log, everything under `prefix`.
fn nginx_conf(addr: SocketAddr, prefix: &Path, root: &Path) -> String {
    let p = prefix.display();
    format!(
        "# generated by torsion-bench static\n\
         daemon off;\n\
         worker_processes 1;\n\
         pid {p}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   sendfile on;\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   client_body_temp_path {p}/client_body;\n\
         \x20   proxy_temp_path {p}/proxy;\n\
         \x20   fastcgi_temp_path {p}/fastcgi;\n\
         \x20   uwsgi_temp_path {p}/uwsgi;\n\
         \x20   scgi_temp_path {p}/scgi;\n\
         \x20   default_type application/octet-stream;\n\
         \x20   server {{\n\
         \x20       listen {addr};\n\
         \x20       root {};\n\
         \x20   }}\n\
         }}\n",
        root.display()
    )
}

/// One `GET path` with `Connection: close`: the status line and the body's length.
fn fetch_once(addr: SocketAddr, path: &str, size: usize) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let at = response.windows(4).position(|w| w == b"\r\n\r\n");
    let ok = response.starts_with(b"HTTP/1.1 200")
        && at.is_some_and(|at| response.len() - at - 4 == size);
    if !ok {
        return Err(io::Error::other(format!(
            "unexpected response to GET {path} from {addr}: {:?}",
            String::from_utf8_lossy(&response[..response.len().min(300)])
        )));
    }
    Ok(())
}

/// Runs the benchmark and prints its table.
pub fn run(config: &StaticConfig) -> io::Result<()> {
    let site = Site::new()?;
    let torsion = Torsion::start(site.root())?;
    let nginx = Nginx::start(&site)?;
    if nginx.is_none() {
        println!("note: nginx is not installed (apt-get install -y nginx): torsion alone");
    }
    let mut servers = vec![("torsion", torsion.addr)];
    if let Some(nginx) = &nginx {
        servers.push(("nginx", nginx.addr));
    }
    let cpu = |s: usize| match (s, &nginx) {
        (0, _) => torsion.cpu_ns(),
        (_, Some(nginx)) => nginx.cpu_ns(),
        _ => Ok(0),
    };
    for (_, addr) in &servers {
        for (path, size) in FILES {
            fetch_once(*addr, path, size)?;
        }
    }
    let wrk_config = HttpConfig {
        duration: config.duration,
        connections: config.connections,
        threads: config.threads,
        ..HttpConfig::default()
    };
    // rates[file][server] = requests/s per round; cpu_per_request likewise, in ns.
    let mut rates = vec![vec![Vec::new(); servers.len()]; FILES.len()];
    let mut cpu_per_request = rates.clone();
    for (path, _) in FILES {
        for (_, addr) in &servers {
            run_wrk(&wrk_config, *addr, path, 1, None, None)?; // warm-up, unmeasured
        }
    }
    for round in 0..config.rounds {
        for (f, (path, _)) in FILES.iter().enumerate() {
            for k in 0..servers.len() {
                let s = (k + round) % servers.len();
                let (name, addr) = servers[s];
                let before = cpu(s)?;
                let wrk = run_wrk(&wrk_config, addr, path, config.duration, None, None)?;
                thread::sleep(SETTLE);
                let per_request = (cpu(s)? - before) as f64 / wrk.requests.max(1) as f64;
                eprintln!(
                    "round {round} {path} {name}: {:.0} requests/s ({} requests), {:.1} µs CPU \
                     per request",
                    wrk.requests_per_second,
                    wrk.requests,
                    per_request / 1000.0
                );
                rates[f][s].push(wrk.requests_per_second);
                cpu_per_request[f][s].push(per_request);
            }
        }
    }
    torsion.stop()?;
    if let Some(nginx) = nginx {
        nginx.stop()?;
    }
    let title = format!(
        "static files, wrk -t{} -c{} -d{}s, {} rounds",
        config.threads, config.connections, config.duration, config.rounds
    );
    print!(
        "{}",
        table(
            &format!("{title}: median requests/s"),
            &servers,
            &rates,
            1.0
        )
    );
    let cpu_title = format!("{title}: median server CPU µs per request");
    print!("{}", table(&cpu_title, &servers, &cpu_per_request, 1e-3));
    Ok(())
}

/// A table of `values[file][server][round]`: the median per server and file (scaled by
/// `scale`), and the ratios torsion/nginx.
fn table(
    title: &str,
    servers: &[(&str, SocketAddr)],
    values: &[Vec<Vec<f64>>],
    scale: f64,
) -> String {
    let rates = values;
    let mut out = String::new();
    let _ = writeln!(out, "\n{title}");
    let _ = write!(out, "{:<10}", "file");
    for (name, _) in servers {
        let _ = write!(out, "{name:>12}");
    }
    if servers.len() == 2 {
        let _ = write!(out, "{:>16}{:>22}", "torsion/nginx", "median round ratio");
    }
    let _ = writeln!(out);
    for (f, (path, _)) in FILES.iter().enumerate() {
        let _ = write!(out, "{:<10}", &path[1..]);
        let medians: Vec<f64> = rates[f].iter().map(|r| median(r)).collect();
        for m in &medians {
            let _ = write!(out, "{:>12.1}", m * scale);
        }
        if servers.len() == 2 {
            let per_round: Vec<f64> = rates[f][0]
                .iter()
                .zip(&rates[f][1])
                .map(|(t, n)| t / n)
                .collect();
            let _ = write!(
                out,
                "{:>16.2}{:>22.2}",
                medians[0] / medians[1],
                median(&per_round)
            );
        }
        let _ = writeln!(out);
    }
    out
}
