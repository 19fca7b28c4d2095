//! Child processes (Twisted's `spawnProcess` and `ProcessProtocol`, asyncio's
//! `subprocess_exec`): what user code implements ([`ProcessProtocol`]), how a child is
//! described ([`ProcessBuilder`]), what its callbacks can do ([`ProcessContext`]) and how it
//! ended ([`ProcessExit`]). The reactor's side is `reactor/processes.rs`.
//!
//! Each of the child's pipes is a connection over a pipe stream, so writes to its stdin go
//! through a write queue with watermarks, and its stdout and stderr are read with the same
//! read loop, budget and pause/resume as a socket. The child's exit is seen on a pidfd
//! registered with the poll (Linux 5.3+); where `pidfd_open` fails, on `SIGCHLD`.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::table::Key;
use crate::Reactor;

/// What the reactor calls as a child process runs. Order: `process_started` once (inside
/// [`Reactor::spawn`]), then any number of `out_received` and `err_received` (in the order
/// each pipe delivered them), `pipe_closed` once for each piped stream, `process_exited`
/// once when the child's exit is seen, and last `process_ended`, once the child has exited
/// *and* its stdout and stderr reached their end, so no output is lost (Twisted's
/// `processEnded`).
pub trait ProcessProtocol: 'static {
    /// The child is running; its stdin can be written from here.
    fn process_started(&mut self, cx: &mut ProcessContext<'_>) {
        let _ = cx;
    }

    /// The child wrote `data` to its stdout (in arbitrary chunks).
    fn out_received(&mut self, cx: &mut ProcessContext<'_>, data: &[u8]);

    /// The child wrote `data` to its stderr. The default drops it.
    fn err_received(&mut self, cx: &mut ProcessContext<'_>, data: &[u8]) {
        let _ = (cx, data);
    }

    /// One of the child's piped streams is closed: its stdout or stderr reached EOF (or
    /// failed), or its stdin was closed (by [`ProcessContext::close_stdin`], or at the end).
    fn pipe_closed(&mut self, cx: &mut ProcessContext<'_>, pipe: ChildPipe) {
        let _ = (cx, pipe);
    }

    /// The child's stdin queue rose above its high watermark (the child reads slowly): stop
    /// writing until [`resume_writing`](ProcessProtocol::resume_writing).
    fn pause_writing(&mut self, cx: &mut ProcessContext<'_>) {
        let _ = cx;
    }

    /// The child's stdin queue drained to its low watermark after a `pause_writing`.
    fn resume_writing(&mut self, cx: &mut ProcessContext<'_>) {
        let _ = cx;
    }

    /// The child exited (it is reaped: no zombie is left). Its stdout or stderr may still
    /// hold output, delivered before `process_ended`.
    fn process_exited(&mut self, cx: &mut ProcessContext<'_>, exit: ProcessExit) {
        let _ = (cx, exit);
    }

    /// The child exited and every pipe to it is closed: the last call. The id is stale once
    /// this returns.
    fn process_ended(&mut self, cx: &mut ProcessContext<'_>, exit: ProcessExit);
}

/// One of a child's standard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildPipe {
    /// Its standard input, which the parent writes.
    Stdin,
    /// Its standard output, which the parent reads.
    Stdout,
    /// Its standard error, which the parent reads.
    Stderr,
}

/// What a child's standard stream is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ChildIo {
    /// A pipe to the parent, through the [`ProcessProtocol`] (the default).
    #[default]
    Pipe,
    /// The parent's own descriptor (its terminal, say).
    Inherit,
    /// `/dev/null`.
    Null,
}

impl ChildIo {
    fn stdio(self) -> Stdio {
        match self {
            ChildIo::Pipe => Stdio::piped(),
            ChildIo::Inherit => Stdio::inherit(),
            ChildIo::Null => Stdio::null(),
        }
    }
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcessExit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ProcessExit {
    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == ProcessExit::Code(0)
    }

    /// Its exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ProcessExit::Code(code) => Some(code),
            ProcessExit::Signal(_) => None,
        }
    }

    /// The signal that killed it, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            ProcessExit::Signal(signal) => Some(signal),
            ProcessExit::Code(_) => None,
        }
    }
}

impl From<std::process::ExitStatus> for ProcessExit {
    fn from(status: std::process::ExitStatus) -> ProcessExit {
        match (status.code(), status.signal()) {
            (Some(code), _) => ProcessExit::Code(code),
            (None, Some(signal)) => ProcessExit::Signal(signal),
            // Stopped or continued: `wait` reports neither for a reaped child.
            (None, None) => ProcessExit::Code(-1),
        }
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessExit::Code(code) => write!(f, "exit code {code}"),
            ProcessExit::Signal(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

/// A child process to spawn with [`Reactor::spawn`]: program, arguments, environment,
/// working directory, and what each standard stream is connected to (all three piped by
/// default).
///
/// ```
/// use torsion_reactor::{ChildIo, ProcessBuilder};
///
/// let ls = ProcessBuilder::new("ls")
///     .args(["-l", "--"])
///     .env("LC_ALL", "C")
///     .current_dir("/")
///     .stdin(ChildIo::Null);
/// # let _ = ls;
/// ```
pub struct ProcessBuilder {
    command: Command,
    stdin: ChildIo,
    stdout: ChildIo,
    stderr: ChildIo,
}

impl fmt::Debug for ProcessBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessBuilder")
            .field("command", &self.command)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

impl ProcessBuilder {
    /// Runs `program`, found on `PATH` unless it contains a `/`.
    pub fn new(program: impl AsRef<OsStr>) -> ProcessBuilder {
        ProcessBuilder {
            command: Command::new(program),
            stdin: ChildIo::Pipe,
            stdout: ChildIo::Pipe,
            stderr: ChildIo::Pipe,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> ProcessBuilder {
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> ProcessBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Sets an environment variable (over the inherited environment, unless cleared).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> ProcessBuilder {
        self.command.env(key, value);
        self
    }

    /// Removes an inherited environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> ProcessBuilder {
        self.command.env_remove(key);
        self
    }

    /// Starts from an empty environment instead of the parent's.
    pub fn env_clear(mut self) -> ProcessBuilder {
        self.command.env_clear();
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> ProcessBuilder {
        self.command.current_dir(dir);
        self
    }

    /// What the child's stdin is connected to.
    pub fn stdin(mut self, io: ChildIo) -> ProcessBuilder {
        self.stdin = io;
        self
    }

    /// What the child's stdout is connected to.
    pub fn stdout(mut self, io: ChildIo) -> ProcessBuilder {
        self.stdout = io;
        self
    }

    /// What the child's stderr is connected to.
    pub fn stderr(mut self, io: ChildIo) -> ProcessBuilder {
        self.stderr = io;
        self
    }

    /// The command, its streams set.
    pub(crate) fn into_command(mut self) -> Command {
        self.command
            .stdin(self.stdin.stdio())
            .stdout(self.stdout.stdio())
            .stderr(self.stderr.stdio());
        self.command
    }
}

/// Names a child process spawned with [`Reactor::spawn`] until its
/// [`process_ended`](ProcessProtocol::process_ended); then it is stale and every operation
/// on it is a no-op.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId(pub(crate) Key);

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProcessId({}.{})", self.0.index, self.0.generation)
    }
}

/// What a [`ProcessProtocol`] callback can do: write to the child's stdin and close it,
/// pause and resume reading its output, signal it, and reach the whole reactor.
pub struct ProcessContext<'a> {
    reactor: &'a mut Reactor,
    id: ProcessId,
}

impl<'a> ProcessContext<'a> {
    pub(crate) fn new(reactor: &'a mut Reactor, id: ProcessId) -> Self {
        ProcessContext { reactor, id }
    }

    /// This child's id.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// The reactor, to reach connections, timers, other processes.
    pub fn reactor(&mut self) -> &mut Reactor {
        self.reactor
    }

    /// The child's process id, until it is reaped.
    pub fn pid(&self) -> Option<u32> {
        self.reactor.process_pid(self.id)
    }

    /// Queues `data` for the child's stdin, written as the child reads (watermarks:
    /// [`ProcessProtocol::pause_writing`]). False if its stdin is not a pipe or is closed.
    pub fn write(&mut self, data: &[u8]) -> bool {
        self.reactor.write_to_process(self.id, data)
    }

    /// Closes the child's stdin once what is queued is written: it reads EOF.
    pub fn close_stdin(&mut self) {
        self.reactor.close_process_stdin(self.id);
    }

    /// Stops reading the child's stdout or stderr: once the pipe is full, the child blocks
    /// writing to it.
    pub fn pause_reading(&mut self, pipe: ChildPipe) {
        self.reactor.pause_process_reading(self.id, pipe);
    }

    /// Resumes reading after [`pause_reading`](ProcessContext::pause_reading).
    pub fn resume_reading(&mut self, pipe: ChildPipe) {
        self.reactor.resume_process_reading(self.id, pipe);
    }

    /// Sends `signal` (e.g. `libc`'s `SIGTERM`, 15) to the child.
    pub fn signal(&mut self, signal: i32) -> io::Result<()> {
        self.reactor.signal_process(self.id, signal)
    }
}

/// A running child, in the reactor's process table.
pub(crate) struct Process {
    pub(crate) child: std::process::Child,
    /// The pidfd the poll watches for the exit (`None` once reaped, or when `pidfd_open`
    /// failed and `SIGCHLD` tells instead).
    pub(crate) pidfd: Option<std::os::fd::OwnedFd>,
    /// `None` while one of its callbacks runs.
    pub(crate) protocol: Option<Box<dyn ProcessProtocol>>,
    /// The connections of its stdin, stdout and stderr pipes, while open.
    pub(crate) pipes: [Option<Key>; 3],
    /// How it exited, once reaped.
    pub(crate) exit: Option<ProcessExit>,
}

impl ChildPipe {
    pub(crate) fn index(self) -> usize {
        match self {
            ChildPipe::Stdin => 0,
            ChildPipe::Stdout => 1,
            ChildPipe::Stderr => 2,
        }
    }
}

impl Drop for Process {
    /// A child still running when the reactor is dropped is killed and reaped, so that no
    /// zombie is left behind (a graceful shutdown signals and reaps children first).
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
