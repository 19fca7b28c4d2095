//! Servers that run as processes of their own, started from a command line (`--external
//! NAME=COMMAND`), measured from outside through `/proc`.
//!
//! The in-process servers measure one thread from inside. A shipped example (`echo_server`,
//! `http_server`, `tls_echo_server`) runs as a user runs it: its own process, its own `main`,
//! built however its tree was built. For such a server the bench picks a free loopback port,
//! starts the command with that address, waits (bounded) until the port accepts connections,
//! drives the same load as for the in-process servers, and reads the process's CPU time
//! before and after the measured phase. Afterwards it sends SIGTERM (the examples shut down
//! gracefully and exit 0) and waits, bounded, for the exit.
//!
//! **How the CPU time of a process is read.** The sum over its threads of the first field of
//! `/proc/PID/task/TID/schedstat`: the scheduler's on-CPU time of each thread in nanoseconds,
//! user and kernel together (`sum_exec_runtime`), the same quantity the in-process servers
//! read for their own thread, so the two kinds of numbers compare directly. Not
//! `/proc/PID/stat`'s `utime + stime`: the kernel keeps that total exact too, but reports it
//! in clock ticks (1/100 s), which quantises a one-second run to about 1%, as much as the
//! differences being looked for. The one thing the per-thread sum misses is a thread that
//! exits during the measured phase (its time goes to the process's totals, not to any
//! remaining task): the examples run one thread, and a reading notes it if a thread went
//! away. `stat`'s ticks are still read, for the user/kernel split (the `user` columns).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cpu::CpuTimes;

/// Longest a started server may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long to wait between two attempts to connect to a server that is starting.
const START_POLL: Duration = Duration::from_millis(20);

/// Longest a server may take to exit after SIGTERM: torsion's graceful shutdown gives its
/// connections 5 seconds to close, then aborts them; this leaves room for that.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a stopping server is checked for having exited.
const STOP_POLL: Duration = Duration::from_millis(10);

/// How long a server gets after a measured load before its CPU time is read again: long
/// enough to handle the last events and go back to waiting, where the kernel's accounting of
/// its threads is up to date.
pub const SETTLE: Duration = Duration::from_millis(50);

/// The arguments of a shipped example, appended to a command that names neither `{addr}`
/// nor `{port}`.
pub mod defaults {
    /// `echo_server [ADDR]`.
    pub const ECHO: &str = "{addr}";
    /// `http_server [ADDR] [DIR]`.
    pub const HTTP: &str = "{addr} {dir}";
    /// `tls_echo_server [ADDR] --cert PEM --key PEM`.
    pub const TLS: &str = "{addr} --cert {cert} --key {key}";
}

/// A server to start as a process: `--external NAME=COMMAND`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalSpec {
    /// The name its rows and progress lines carry.
    pub name: String,
    /// The program and its arguments, split on whitespace, placeholders not yet replaced.
    pub argv: Vec<String>,
}

impl ExternalSpec {
    /// Parses `NAME=COMMAND`. The name is letters, digits, `.`, `_` and `-`; the command is
    /// split on whitespace (no quoting: a path with spaces cannot be given).
    pub fn parse(value: &str) -> Result<ExternalSpec, String> {
        let (name, command) = value
            .split_once('=')
            .ok_or(format!("--external {value:?}: expected NAME=COMMAND"))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || !name.chars().all(valid) || name == "none" {
            return Err(format!(
                "--external: bad name {name:?} (letters, digits, '.', '_', '-')"
            ));
        }
        let argv: Vec<String> = command.split_whitespace().map(String::from).collect();
        if argv.is_empty() {
            return Err(format!("--external {name}: no command"));
        }
        Ok(ExternalSpec {
            name: name.to_string(),
            argv,
        })
    }

    /// The command line with the placeholders replaced; `default_args` (see [`defaults`])
    /// appended if the command names neither `{addr}` nor `{port}`.
    pub fn command_line(&self, default_args: &str, vars: &Vars<'_>) -> io::Result<Vec<String>> {
        let mut argv = self.argv.clone();
        if !argv
            .iter()
            .any(|a| a.contains("{addr}") || a.contains("{port}"))
        {
            argv.extend(default_args.split_whitespace().map(String::from));
        }
        argv.iter()
            .map(|arg| vars.substitute(arg))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io::Error::other(format!("--external {}: {e}", self.name)))
    }
}

/// What the placeholders of a command stand for.
#[derive(Clone, Copy, Debug)]
pub struct Vars<'a> {
    /// `{addr}` (`127.0.0.1:PORT`) and `{port}`.
    pub addr: SocketAddr,
    /// `{dir}`: a directory for `http_server` to serve (the HTTP benchmark's empty one).
    pub dir: Option<&'a Path>,
    /// `{cert}`: the TLS benchmark's certificate, PEM.
    pub cert: Option<&'a Path>,
    /// `{key}`: its private key, PEM.
    pub key: Option<&'a Path>,
}

impl Vars<'_> {
    /// Only `{addr}` and `{port}`.
    pub fn addr(addr: SocketAddr) -> Vars<'static> {
        Vars {
            addr,
            dir: None,
            cert: None,
            key: None,
        }
    }

    fn substitute(&self, arg: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = arg;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .ok_or(format!("unclosed placeholder in {arg:?}"))?;
            let key = &rest[open + 1..open + close];
            let path = |p: Option<&Path>| {
                p.map(|p| p.display().to_string())
                    .ok_or(format!("{{{key}}} has no value in this benchmark"))
            };
            let value = match key {
                "addr" => self.addr.to_string(),
                "port" => self.addr.port().to_string(),
                "dir" => path(self.dir)?,
                "cert" => path(self.cert)?,
                "key" => path(self.key)?,
                _ => {
                    return Err(format!(
                        "unknown placeholder {{{key}}} (known: addr, port, dir, cert, key)"
                    ))
                }
            };
            out.push_str(&value);
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The short name of a server built into this binary.
pub trait Builtin: Copy + PartialEq {
    /// As printed and as given to `--servers`.
    fn label(self) -> &'static str;
}

/// A server under test: one of this binary's, on a thread in this process, or an external
/// process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target<K> {
    /// Built in, in process.
    Builtin(K),
    /// Started from a command line, measured from outside.
    External(Arc<ExternalSpec>),
}

impl<K: Builtin> Target<K> {
    /// The name printed in its rows and progress lines.
    pub fn name(&self) -> &str {
        match self {
            Target::Builtin(kind) => kind.label(),
            Target::External(spec) => &spec.name,
        }
    }

    /// Whether it is an external process.
    pub fn is_external(&self) -> bool {
        matches!(self, Target::External(_))
    }
}

impl<K: Builtin> fmt::Display for Target<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Parses a `--servers` list: `none` (or an empty list) for no built-in server.
pub fn parse_builtins<K: Builtin>(
    list: &str,
    from_name: impl Fn(&str) -> Option<K>,
) -> Result<Vec<K>, String> {
    let mut kinds = Vec::new();
    if list.is_empty() || list == "none" {
        return Ok(kinds);
    }
    for name in list.split(',') {
        let kind = from_name(name).ok_or(format!("unknown server {name:?}"))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// The servers of one benchmark: the built-in ones, then the external ones in the order
/// given. Fails on a name given twice, or on no server at all.
pub fn targets<K: Builtin>(
    builtins: &[K],
    externals: &[ExternalSpec],
) -> Result<Vec<Target<K>>, String> {
    let mut targets: Vec<Target<K>> = builtins.iter().map(|&k| Target::Builtin(k)).collect();
    for spec in externals {
        if targets.iter().any(|t| t.name() == spec.name) {
            return Err(format!("--external: the name {:?} is taken", spec.name));
        }
        targets.push(Target::External(Arc::new(spec.clone())));
    }
    if targets.is_empty() {
        return Err("no server to measure (--servers none and no --external)".into());
    }
    Ok(targets)
}

/// The pairs `(a, b)` whose ratio a/b a table prints for external servers: each external
/// against every built-in server that ran, and against each external listed before it (so
/// with `--external before=... --external after=...`, `after/before`).
pub fn external_pairs<K: Builtin>(targets: &[Target<K>]) -> Vec<(&Target<K>, &Target<K>)> {
    let mut pairs = Vec::new();
    for (i, a) in targets.iter().enumerate() {
        if !a.is_external() {
            continue;
        }
        for b in targets.iter().filter(|b| !b.is_external()) {
            pairs.push((a, b));
        }
        for b in targets[..i].iter().filter(|b| b.is_external()) {
            pairs.push((a, b));
        }
    }
    pairs
}

/// The widest name, at least `min`: for the first column of a table.
pub fn name_width<K: Builtin>(targets: &[Target<K>], min: usize) -> usize {
    targets.iter().map(|t| t.name().len()).fold(min, usize::max)
}

/// A free port on `127.0.0.1`: bound and released again. Another process could take it in
/// between; on this machine nothing else hands out loopback ports that fast, and if it
/// happens the server fails to bind and the start reports it.
pub fn free_loopback_port() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    listener.local_addr()
}

/// A process's CPU time at one moment.
#[derive(Clone, Debug)]
pub struct ProcessCpu {
    /// The sum over its threads of `schedstat`'s on-CPU nanoseconds, and the process's
    /// user and kernel ticks from `stat`.
    pub times: CpuTimes,
    /// The threads seen.
    tids: Vec<u32>,
}

impl ProcessCpu {
    /// The CPU time from `start` to `self`. Warns (on stderr) if a thread seen at the start
    /// is gone: its time in the interval is missing from the sum.
    pub fn since(&self, start: &ProcessCpu, name: &str) -> CpuTimes {
        let gone = start.tids.iter().filter(|t| !self.tids.contains(t)).count();
        if gone > 0 {
            eprintln!(
                "  {name}: {gone} thread(s) exited during the measured phase; their CPU time is missing"
            );
        }
        self.times.since(start.times)
    }
}

/// A server process, stopped (SIGTERM) when dropped if [`ExternalServer::stop`] was not
/// called.
pub struct ExternalServer {
    name: String,
    child: Option<Child>,
    pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout and stderr (removed after a clean exit, kept otherwise).
    log: PathBuf,
}

impl ExternalServer {
    /// Starts `spec` on a free loopback port (arguments from `default_args` unless the
    /// command places `{addr}` itself) and waits until the port accepts a connection.
    pub fn start<'a>(
        spec: &ExternalSpec,
        default_args: &str,
        vars: impl FnOnce(SocketAddr) -> Vars<'a>,
    ) -> io::Result<ExternalServer> {
        let addr = free_loopback_port()?;
        Self::start_at(spec, default_args, &vars(addr))
    }

    /// Starts `spec` with `vars` (whose address must be free) and waits until it accepts.
    fn start_at(
        spec: &ExternalSpec,
        default_args: &str,
        vars: &Vars<'_>,
    ) -> io::Result<ExternalServer> {
        assert!(vars.addr.ip().is_loopback());
        let argv = spec.command_line(default_args, vars)?;
        let log = std::env::temp_dir().join(format!(
            "torsion-bench-{}-{}-{}.log",
            std::process::id(),
            spec.name,
            vars.addr.port()
        ));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                let _ = fs::remove_file(&log);
                io::Error::new(
                    e.kind(),
                    format!("--external {}: cannot start {:?}: {e}", spec.name, argv[0]),
                )
            })?;
        let mut server = ExternalServer {
            name: spec.name.clone(),
            pid: child.id(),
            child: Some(child),
            addr: vars.addr,
            log,
        };
        if let Err(e) = server.wait_until_accepting() {
            let message = format!(
                "{} ({}): {e}{}",
                server.name,
                argv.join(" "),
                server.log_tail()
            );
            // Stopped (if it still runs) by the drop; its output is in the message.
            let log = server.log.clone();
            drop(server);
            let _ = fs::remove_file(log);
            return Err(io::Error::new(e.kind(), message));
        }
        Ok(server)
    }

    /// Connects (and at once disconnects) until a connection is accepted, the process exits,
    /// or [`START_TIMEOUT`] passes.
    fn wait_until_accepting(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait()? {
                return Err(io::Error::other(format!(
                    "exited before accepting: {status}"
                )));
            }
            match TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
                Ok(_probe) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "not accepting on {} after {START_TIMEOUT:?}: {e}",
                            self.addr
                        ),
                    ))
                }
                Err(_) => thread::sleep(START_POLL),
            }
        }
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => child.try_wait(),
            None => Ok(None),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its name (`--external NAME=...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its CPU time so far: see the module documentation.
    pub fn cpu(&self) -> io::Result<ProcessCpu> {
        process_cpu(self.pid, &self.name)
    }

    /// Its resident memory, bytes (`/proc/PID/statm`, second field, in 4 KiB pages).
    pub fn rss_bytes(&self) -> io::Result<u64> {
        crate::mem::rss_bytes_of(&format!("/proc/{}/statm", self.pid))
    }

    /// How many file descriptors it has open (`/proc/PID/fd`): counts its accepted
    /// connections, which cannot be seen from outside otherwise.
    pub fn open_fds(&self) -> io::Result<usize> {
        Ok(fs::read_dir(format!("/proc/{}/fd", self.pid))?.count())
    }

    /// Sends SIGTERM and waits for the exit, at most [`STOP_TIMEOUT`]; fails unless it
    /// exited with status 0 (then its log is kept and its tail shown).
    pub fn stop(mut self) -> io::Result<()> {
        self.shut_down()
    }

    /// [`terminate`](Self::terminate), then removes the log after a clean exit, or names it.
    fn shut_down(&mut self) -> io::Result<()> {
        let result = self.terminate();
        match &result {
            Ok(()) => {
                let _ = fs::remove_file(&self.log);
            }
            Err(_) => eprintln!(
                "  {}: its output is kept in {}",
                self.name,
                self.log.display()
            ),
        }
        result.map_err(|e| io::Error::other(format!("{}: {e}{}", self.name, self.log_tail())))
    }

    fn terminate(&mut self) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            // `kill(1)` rather than a libc binding: the bench needs no `unsafe` for this. The
            // child is not yet reaped, so its pid cannot have been reused.
            let sent = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !sent.is_ok_and(|s| s.success()) && child.try_wait()?.is_none() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(
                    "could not send SIGTERM (is kill(1) there?)",
                ));
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other(format!(
                    "did not exit within {STOP_TIMEOUT:?} of SIGTERM: killed"
                )));
            }
            thread::sleep(STOP_POLL);
        };
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "exited with {status} after SIGTERM"
            )))
        }
    }

    /// The last lines of its output, for an error message.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let len = file.metadata().map_or(0, |m| m.len());
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(2000)));
            let _ = file.read_to_string(&mut text);
        }
        if text.trim().is_empty() {
            String::new()
        } else {
            format!("; its output ends:\n{}", text.trim_end())
        }
    }
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        // On an error path: stop it rather than leave it running.
        if self.child.is_some() {
            if let Err(e) = self.shut_down() {
                eprintln!("  {e}");
            }
        }
    }
}

/// The CPU time so far of process `pid` (called `name` in errors): see the module
/// documentation.
fn process_cpu(pid: u32, name: &str) -> io::Result<ProcessCpu> {
    let mut ns = 0u64;
    let mut tids = Vec::new();
    for entry in fs::read_dir(format!("/proc/{}/task", pid))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read: then it is not counted.
        let Ok(text) = fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        ns += text
            .split_whitespace()
            .next()
            .and_then(|field| field.parse::<u64>().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected schedstat: {text:?}")))?;
        tids.push(tid);
    }
    if tids.is_empty() {
        return Err(io::Error::other(format!(
            "{}: no threads in /proc/{}/task (exited?)",
            name, pid
        )));
    }
    let (user_ticks, sys_ticks) = process_ticks(pid)?;
    Ok(ProcessCpu {
        times: CpuTimes {
            ns,
            user_ticks,
            sys_ticks,
            allocations: 0,
            heap_at_start: 0,
        },
        tids,
    })
}

/// A process's user and kernel time, clock ticks (`/proc/PID/stat` fields 14 and 15: all
/// its threads, live and exited).
fn process_ticks(pid: u32) -> io::Result<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    crate::cpu::parse_user_sys_ticks(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        A,
        B,
    }

    impl Builtin for Kind {
        fn label(self) -> &'static str {
            match self {
                Kind::A => "a",
                Kind::B => "b",
            }
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        [Kind::A, Kind::B].into_iter().find(|k| k.label() == name)
    }

    #[test]
    fn parses_specs_and_fills_placeholders() {
        let spec = ExternalSpec::parse("before=/x/echo_server").unwrap();
        assert_eq!(spec.name, "before");
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            spec.command_line(defaults::ECHO, &Vars::addr(addr))
                .unwrap(),
            ["/x/echo_server", "127.0.0.1:4000"]
        );
        let spec = ExternalSpec::parse("t=/x/tls --flag :{port} {cert}").unwrap();
        let cert = PathBuf::from("/tmp/c.pem");
        let vars = Vars {
            cert: Some(&cert),
            ..Vars::addr(addr)
        };
        assert_eq!(
            spec.command_line(defaults::TLS, &vars).unwrap(),
            ["/x/tls", "--flag", ":4000", "/tmp/c.pem"]
        );
        // {key} has no value here; {addr} is missing, so the defaults ask for it.
        let spec = ExternalSpec::parse("t=/x/tls").unwrap();
        assert!(spec.command_line(defaults::TLS, &vars).is_err());
        assert!(ExternalSpec::parse("=/x").is_err());
        assert!(ExternalSpec::parse("a b=/x").is_err());
        assert!(ExternalSpec::parse("none=/x").is_err());
        assert!(ExternalSpec::parse("x=  ").is_err());
        assert!(ExternalSpec::parse("x=/y {nope}")
            .unwrap()
            .command_line("", &Vars::addr(addr))
            .is_err());
    }

    #[test]
    fn targets_and_pairs() {
        assert_eq!(parse_builtins("none", from_name).unwrap(), vec![]);
        assert_eq!(
            parse_builtins("b,a,b", from_name).unwrap(),
            vec![Kind::B, Kind::A]
        );
        assert!(parse_builtins("c", from_name).is_err());
        let before = ExternalSpec::parse("before=/x").unwrap();
        let after = ExternalSpec::parse("after=/y").unwrap();
        assert!(targets::<Kind>(&[], &[]).is_err());
        assert!(targets(&[Kind::A], &[ExternalSpec::parse("a=/x").unwrap()]).is_err());
        let t = targets(&[Kind::A], &[before, after]).unwrap();
        let names: Vec<String> = external_pairs(&t)
            .iter()
            .map(|(a, b)| format!("{a}/{b}"))
            .collect();
        assert_eq!(names, ["before/a", "after/a", "after/before"]);
        assert_eq!(name_width(&t, 3), 6);
    }

    /// A command that exits without listening: the start fails with its status and output.
    #[test]
    fn a_server_that_never_listens_is_reported() {
        let spec = ExternalSpec {
            name: "quitter".into(),
            argv: ["sh", "-c", "echo no-listen; exit 3", "{port}"]
                .map(String::from)
                .to_vec(),
        };
        let e = ExternalServer::start(&spec, "", Vars::addr).err().unwrap();
        assert!(e.to_string().contains("exited before accepting"), "{e}");
        assert!(e.to_string().contains("no-listen"), "{e}");
    }

    /// This process's CPU time, read the way a server's is, grows with work.
    #[test]
    fn process_cpu_grows_with_work() {
        let pid = std::process::id();
        let before = process_cpu(pid, "self").unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        let after = process_cpu(pid, "self").unwrap();
        assert!(after.since(&before, "self").ns > 0);
    }
}
