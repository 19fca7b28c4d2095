//! Child processes on the reactor: spawning, their pipes as connections, reaping, signals,
//! and their part in a graceful shutdown.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use log::{debug, warn};
use mio::unix::SourceFd;
use mio::Interest;
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::connections::ConnectionId;
use crate::process::{
    ChildPipe, Process, ProcessBuilder, ProcessContext, ProcessExit, ProcessId, ProcessProtocol,
};
use crate::protocol::Protocol;
use crate::stream::Pipe;
use crate::table::{internal_token, Key, Kind};
use crate::{Context, DisconnectReason, Reactor};

/// The token of the `SIGCHLD` pipe, used only where `pidfd_open` is unavailable.
pub(crate) const SIGCHLD_TOKEN: mio::Token = internal_token(2);

impl Reactor {
    /// Spawns a child process as `builder` describes, run by `protocol`: its piped streams
    /// become the protocol's ([`ProcessProtocol`]), and `process_started` runs before this
    /// returns. Errors if the program cannot be started (not found, not executable, ...).
    ///
    /// The child is reaped as soon as it exits (a pidfd in the poll; on kernels before 5.3,
    /// `SIGCHLD`), so it never stays a zombie. A graceful
    /// [`shutdown`](Reactor::shutdown) sends `SIGTERM` to children still running, closes
    /// their stdin, reads their output to its end and waits for them; those still running
    /// at the shutdown timeout get `SIGKILL`. Dropping the reactor kills (`SIGKILL`) and
    /// reaps those left.
    ///
    /// ```no_run
    /// use torsion_reactor::{ProcessBuilder, ProcessContext, ProcessExit, ProcessProtocol, Reactor};
    ///
    /// /// Prints what the child writes, then stops the reactor.
    /// struct Show;
    ///
    /// impl ProcessProtocol for Show {
    ///     fn out_received(&mut self, _cx: &mut ProcessContext<'_>, data: &[u8]) {
    ///         print!("{}", String::from_utf8_lossy(data));
    ///     }
    ///
    ///     fn process_ended(&mut self, cx: &mut ProcessContext<'_>, exit: ProcessExit) {
    ///         println!("{exit}");
    ///         cx.reactor().stop();
    ///     }
    /// }
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut reactor = Reactor::new()?;
    /// reactor.spawn(ProcessBuilder::new("echo").arg("hello"), Show)?;
    /// reactor.run()
    /// # }
    /// ```
    pub fn spawn(
        &mut self,
        builder: ProcessBuilder,
        protocol: impl ProcessProtocol,
    ) -> io::Result<ProcessId> {
        let key = self.processes.next_key()?;
        let mut child = builder.into_command().spawn()?;
        let streams = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let mut process = Process {
            child,
            pidfd: None,
            protocol: Some(Box::new(protocol)),
            pipes: [None; 3],
            exit: None,
        };
        // Dropped on failure from here: the child is killed and reaped.
        self.watch_exit(key, &mut process)?;
        if process.pidfd.is_none() {
            // It may have exited before the SIGCHLD handler was installed: look once.
            self.push_ready(Kind::Process, key);
        }
        self.processes.insert_at(key, process);
        let pipes = [
            streams
                .0
                .map(OwnedFd::from)
                .map(|fd| (fd, ChildPipe::Stdin)),
            streams
                .1
                .map(OwnedFd::from)
                .map(|fd| (fd, ChildPipe::Stdout)),
            streams
                .2
                .map(OwnedFd::from)
                .map(|fd| (fd, ChildPipe::Stderr)),
        ];
        for (fd, pipe) in pipes.into_iter().flatten() {
            if let Err(e) = self.open_child_pipe(key, fd, pipe) {
                self.forget_process(key);
                return Err(e);
            }
        }
        let id = ProcessId(key);
        debug!(
            "process {id:?} started: pid {}",
            self.process_pid(id).unwrap_or(0)
        );
        self.call_process(key, |p, cx| p.process_started(cx));
        Ok(id)
    }

    /// Watches for the child's exit: its pidfd in the poll, or `SIGCHLD` where there is none.
    fn watch_exit(&mut self, key: Key, process: &mut Process) -> io::Result<()> {
        match open_pidfd(&process.child) {
            Ok(pidfd) => {
                self.poll.registry().register(
                    &mut SourceFd(&pidfd.as_raw_fd()),
                    key.token(Kind::Process),
                    Interest::READABLE,
                )?;
                process.pidfd = Some(pidfd);
                Ok(())
            }
            Err(e) => {
                debug!("pidfd_open: {e}; watching SIGCHLD instead");
                self.watch_sigchld()
            }
        }
    }

    /// Registers `SIGCHLD`, delivered as bytes on a socket pair the reactor polls (once).
    fn watch_sigchld(&mut self) -> io::Result<()> {
        if self.sigchld.is_some() {
            return Ok(());
        }
        let (receiver, sender) = UnixStream::pair()?;
        receiver.set_nonblocking(true)?;
        sender.set_nonblocking(true)?;
        let id = signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, sender)?;
        let mut receiver = mio::net::UnixStream::from_std(receiver);
        let registered =
            self.poll
                .registry()
                .register(&mut receiver, SIGCHLD_TOKEN, Interest::READABLE);
        if let Err(e) = registered {
            signal_hook::low_level::unregister(id);
            return Err(e);
        }
        self.sigchld = Some(crate::shutdown::Signals {
            receiver,
            ids: vec![id],
        });
        Ok(())
    }

    /// A child's pipe as a connection whose protocol hands everything to the process's.
    fn open_child_pipe(&mut self, process: Key, fd: OwnedFd, pipe: ChildPipe) -> io::Result<()> {
        let stream = match pipe {
            ChildPipe::Stdin => Pipe::writer(fd)?,
            ChildPipe::Stdout | ChildPipe::Stderr => Pipe::reader(fd)?,
        };
        let key = self.open_pipe(stream, Box::new(ChildStream { process, pipe }))?;
        if let Some(p) = self.processes.get_mut(process) {
            p.pipes[pipe.index()] = Some(key);
        }
        Ok(())
    }

    /// Takes a process whose spawn failed half-way out of the table (killing and reaping
    /// it), and closes the pipes opened for it.
    fn forget_process(&mut self, key: Key) {
        let Some(mut process) = self.processes.remove(key) else {
            return;
        };
        process.protocol = None;
        self.stop_watching(&mut process);
        for pipe in process.pipes.iter().flatten() {
            self.abort_connection(ConnectionId(*pipe));
        }
    }

    fn stop_watching(&mut self, process: &mut Process) {
        if let Some(pidfd) = process.pidfd.take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&pidfd.as_raw_fd()));
        }
    }

    /// The pidfd of a child is readable: it exited.
    pub(crate) fn process_ready(&mut self, key: Key) {
        let Some(process) = self.processes.get_mut(key) else {
            return;
        };
        match process.child.try_wait() {
            Ok(Some(status)) => self.process_exited(key, status.into()),
            Ok(None) => {}
            Err(e) => warn!("waiting for process {:?}: {e}", ProcessId(key)),
        }
    }

    /// `SIGCHLD` arrived: reap every child not watched through a pidfd that has exited.
    pub(crate) fn sigchld_received(&mut self) {
        if let Some(signals) = self.sigchld.as_mut() {
            let mut buf = [0u8; 64];
            while matches!(signals.receiver.read(&mut buf), Ok(n) if n > 0) {}
        }
        let keys: Vec<Key> = self
            .processes
            .iter()
            .filter(|(_, p)| p.pidfd.is_none() && p.exit.is_none())
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            self.process_ready(key);
        }
    }

    /// The child was reaped: tell the protocol, and end it if its output is all read.
    fn process_exited(&mut self, key: Key, exit: ProcessExit) {
        let Some(mut process) = self.processes.get_mut(key).map(|p| {
            p.exit = Some(exit);
            p.pidfd.take()
        }) else {
            return;
        };
        if let Some(pidfd) = process.take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&pidfd.as_raw_fd()));
        }
        debug!("process {:?}: {exit}", ProcessId(key));
        self.call_process(key, |p, cx| p.process_exited(cx, exit));
        self.end_process_if_done(key);
    }

    /// Once the child exited and its stdout and stderr are closed: its stdin is closed too
    /// (nobody reads it any more), then `process_ended`, and the process leaves the table.
    fn end_process_if_done(&mut self, key: Key) {
        let Some(process) = self.processes.get(key) else {
            return;
        };
        let Some(exit) = process.exit else {
            return;
        };
        if process.pipes[1].is_some() || process.pipes[2].is_some() {
            return;
        }
        if let Some(stdin) = process.pipes[0] {
            // Its `connection_lost` comes back here.
            self.abort_connection(ConnectionId(stdin));
            return;
        }
        let Some(mut process) = self.processes.remove(key) else {
            return;
        };
        if let Some(mut protocol) = process.protocol.take() {
            protocol.process_ended(&mut ProcessContext::new(self, ProcessId(key)), exit);
        }
    }

    /// Data from a child's stdout or stderr.
    fn child_output(&mut self, key: Key, pipe: ChildPipe, data: &[u8]) {
        self.call_process(key, |p, cx| match pipe {
            ChildPipe::Stdout => p.out_received(cx, data),
            _ => p.err_received(cx, data),
        });
    }

    /// One of a child's pipes closed.
    fn child_pipe_closed(&mut self, key: Key, pipe: ChildPipe) {
        let Some(process) = self.processes.get_mut(key) else {
            return;
        };
        process.pipes[pipe.index()] = None;
        self.call_process(key, |p, cx| p.pipe_closed(cx, pipe));
        self.end_process_if_done(key);
    }

    /// Calls a process's protocol with a context, taking it out of its place for the call.
    fn call_process(
        &mut self,
        key: Key,
        f: impl FnOnce(&mut dyn ProcessProtocol, &mut ProcessContext<'_>),
    ) {
        let Some(mut protocol) = self.processes.get_mut(key).and_then(|p| p.protocol.take()) else {
            return;
        };
        f(
            &mut *protocol,
            &mut ProcessContext::new(self, ProcessId(key)),
        );
        if let Some(process) = self.processes.get_mut(key) {
            process.protocol = Some(protocol);
        }
    }

    /// The connection of one of a child's pipes, while open.
    fn child_pipe(&self, id: ProcessId, pipe: ChildPipe) -> Option<ConnectionId> {
        let process = self.processes.get(id.0)?;
        process.pipes[pipe.index()].map(ConnectionId)
    }

    /// The pid of child `id`, until it is reaped.
    pub fn process_pid(&self, id: ProcessId) -> Option<u32> {
        let process = self.processes.get(id.0)?;
        process.exit.is_none().then(|| process.child.id())
    }

    /// Queues `data` for the stdin of child `id`. False, doing nothing, if `id` is stale or
    /// its stdin is not a pipe or is closed.
    pub fn write_to_process(&mut self, id: ProcessId, data: &[u8]) -> bool {
        self.child_pipe(id, ChildPipe::Stdin)
            .is_some_and(|stdin| self.write_to(stdin, data))
    }

    /// Closes the stdin of child `id` once what is queued for it is written.
    pub fn close_process_stdin(&mut self, id: ProcessId) {
        if let Some(stdin) = self.child_pipe(id, ChildPipe::Stdin) {
            self.lose_connection(stdin);
        }
    }

    /// Stops reading the stdout or stderr of child `id`.
    pub fn pause_process_reading(&mut self, id: ProcessId, pipe: ChildPipe) {
        if let Some(conn) = self.child_pipe(id, pipe) {
            Context::new(self, conn).pause_reading();
        }
    }

    /// Resumes reading the stdout or stderr of child `id`.
    pub fn resume_process_reading(&mut self, id: ProcessId, pipe: ChildPipe) {
        if let Some(conn) = self.child_pipe(id, pipe) {
            Context::new(self, conn).resume_reading();
        }
    }

    /// Sends `signal` to child `id` (through its pidfd, so never to another process that
    /// reused its pid). Errors if `id` is stale or the child already exited
    /// (`ESRCH`), or if `signal` is not a signal number (`EINVAL`).
    pub fn signal_process(&mut self, id: ProcessId, signal: i32) -> io::Result<()> {
        let no_such_process =
            || io::Error::from_raw_os_error(rustix::io::Errno::SRCH.raw_os_error());
        let process = self.processes.get(id.0).ok_or_else(no_such_process)?;
        if process.exit.is_some() {
            return Err(no_such_process());
        }
        let signal = Signal::from_named_raw(signal)
            .ok_or_else(|| io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error()))?;
        match &process.pidfd {
            Some(pidfd) => rustix::process::pidfd_send_signal(pidfd, signal)?,
            // Not reaped yet (its exit is unknown), so the pid is still this child's.
            None => rustix::process::kill_process(Pid::from_child(&process.child), signal)?,
        }
        Ok(())
    }

    /// A graceful shutdown began: every child still running gets `SIGTERM` (their stdin
    /// pipes close and their output is read to its end as their connections are asked to
    /// shut down).
    pub(crate) fn terminate_processes(&mut self, signal: i32) {
        let ids: Vec<ProcessId> = self
            .processes
            .iter()
            .filter(|(_, p)| p.exit.is_none())
            .map(|(key, _)| ProcessId(key))
            .collect();
        for id in ids {
            if let Err(e) = self.signal_process(id, signal) {
                debug!("signalling process {id:?}: {e}");
            }
        }
    }

    /// Whether any child is still in the table.
    pub(crate) fn has_processes(&self) -> bool {
        !self.processes.is_empty()
    }
}

/// The child's pidfd, or why there is none.
fn open_pidfd(child: &std::process::Child) -> io::Result<OwnedFd> {
    #[cfg(test)]
    if tests::NO_PIDFD.get() {
        return Err(io::Error::from_raw_os_error(
            rustix::io::Errno::NOSYS.raw_os_error(),
        ));
    }
    Ok(rustix::process::pidfd_open(
        Pid::from_child(child),
        PidfdFlags::empty(),
    )?)
}

/// The protocol of a child's pipe: hands everything to the process's protocol.
struct ChildStream {
    process: Key,
    pipe: ChildPipe,
}

impl Protocol for ChildStream {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.reactor().child_output(self.process, self.pipe, data);
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        debug!(
            "process {:?}: {:?} closed: {reason}",
            ProcessId(self.process),
            self.pipe
        );
        cx.reactor().child_pipe_closed(self.process, self.pipe);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        cx.reactor()
            .call_process(self.process, |p, cx| p.pause_writing(cx));
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        cx.reactor()
            .call_process(self.process, |p, cx| p.resume_writing(cx));
    }

    /// A shutdown closes the child's stdin, but reads its output to the end: it comes with
    /// the child's exit, which the shutdown asks for with `SIGTERM`.
    fn shutdown_requested(&mut self, cx: &mut Context<'_>) {
        if self.pipe == ChildPipe::Stdin {
            cx.lose_connection();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use super::*;

    thread_local! {
        /// Makes `pidfd_open` fail on this thread, as on a kernel before 5.3.
        pub(super) static NO_PIDFD: Cell<bool> = const { Cell::new(false) };
    }

    struct Ends(Rc<RefCell<Vec<ProcessExit>>>);

    impl ProcessProtocol for Ends {
        fn out_received(&mut self, _cx: &mut ProcessContext<'_>, _data: &[u8]) {}

        fn process_ended(&mut self, _cx: &mut ProcessContext<'_>, exit: ProcessExit) {
            self.0.borrow_mut().push(exit);
        }
    }

    #[test]
    fn without_pidfds_children_are_reaped_on_sigchld_and_signalled_by_pid() {
        NO_PIDFD.set(true);
        let mut reactor = Reactor::new().unwrap();
        let ends = Rc::new(RefCell::new(Vec::new()));
        let quick = ProcessBuilder::new("sh").args(["-c", "exit 4"]);
        reactor.spawn(quick, Ends(ends.clone())).unwrap();
        let sleeper = ProcessBuilder::new("sleep").arg("30");
        let sleeper = reactor.spawn(sleeper, Ends(ends.clone())).unwrap();
        let pid = reactor.process_pid(sleeper).unwrap();
        assert!(reactor.processes.iter().all(|(_, p)| p.pidfd.is_none()));
        reactor.signal_process(sleeper, 9).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while ends.borrow().len() < 2 {
            assert!(
                Instant::now() < deadline,
                "children not reaped: {:?}",
                ends.borrow()
            );
            reactor.iterate(Duration::from_millis(10)).unwrap();
        }
        NO_PIDFD.set(false);
        let mut ends = ends.borrow().clone();
        ends.sort_by_key(|e| e.code());
        assert_eq!(ends, [ProcessExit::Signal(9), ProcessExit::Code(4)]);
        let reaped = rustix::process::waitpid(
            Pid::from_raw(pid as i32),
            rustix::process::WaitOptions::NOHANG,
        );
        assert_eq!(
            reaped.unwrap_err(),
            rustix::io::Errno::CHILD,
            "a zombie is left"
        );
    }
}
