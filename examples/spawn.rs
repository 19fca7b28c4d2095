//! Runs a command as a child process: this program's standard input goes to the child's, each
//! line the child writes to stdout is printed as `out: LINE` and each line to stderr as
//! `err: LINE`, then `exit: CODE` or `signal: N`; this program exits with CODE (128 + N for a
//! signal).
//!
//! Run:   cargo run --example spawn -- sh -c 'echo hi; echo oops >&2; exit 3'
//!        printf 'a\nb\n' | cargo run --example spawn -- cat
//!
//! Stdin and stdout are one transport (`Reactor::stdio`); the child is `Reactor::spawn`'s.
//! Backpressure both ways: while our stdout is slow, the child's output is not read (the child
//! blocks writing); while the child does not read its stdin, ours is not read. A line longer
//! than 64 KiB is printed in 64 KiB pieces, each prefixed. Exits 2 on bad arguments, 127 if the
//! command cannot be started.

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::{
    ChildPipe, ConnectionId, Context, DisconnectReason, ProcessBuilder, ProcessContext,
    ProcessExit, ProcessId, ProcessProtocol, Protocol, Reactor,
};

/// The longest line printed in one piece.
const MAX_LINE: usize = 64 * 1024;

/// What the terminal and the child share.
#[derive(Default)]
struct Session {
    terminal: Option<ConnectionId>,
    child: Option<ProcessId>,
    /// The exit code to exit with, once the child ended.
    exit: Option<u8>,
    /// Why standard I/O failed, if it did.
    stdio_error: Option<String>,
}

type Shared = Rc<RefCell<Session>>;

/// One output stream of the child, cut into lines with a prefix.
struct Lines {
    prefix: &'static [u8],
    partial: Vec<u8>,
}

impl Lines {
    fn new(prefix: &'static [u8]) -> Lines {
        Lines {
            prefix,
            partial: Vec::new(),
        }
    }

    /// Writes every complete line of `data` (after what was left of the last call), and
    /// the 64 KiB pieces of an overlong one.
    fn feed(&mut self, reactor: &mut Reactor, to: ConnectionId, data: &[u8]) {
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            self.partial.extend_from_slice(body);
            while self.partial.len() > MAX_LINE {
                let rest = self.partial.split_off(MAX_LINE);
                self.flush(reactor, to);
                self.partial = rest;
            }
            if ends {
                self.flush(reactor, to);
            }
        }
    }

    /// Writes what is left as a line (at the end, or a piece of an overlong line).
    fn flush(&mut self, reactor: &mut Reactor, to: ConnectionId) {
        let mut line = Vec::with_capacity(self.prefix.len() + self.partial.len() + 1);
        line.extend_from_slice(self.prefix);
        line.append(&mut self.partial);
        line.push(b'\n');
        reactor.write_to(to, &line);
    }

    fn finish(&mut self, reactor: &mut Reactor, to: ConnectionId) {
        if !self.partial.is_empty() {
            self.flush(reactor, to);
        }
    }
}

/// The child: its output to our stdout, its end to our exit code.
struct Child {
    session: Shared,
    out: Lines,
    err: Lines,
}

impl Child {
    fn terminal(&self) -> Option<ConnectionId> {
        self.session.borrow().terminal
    }
}

impl ProcessProtocol for Child {
    fn out_received(&mut self, cx: &mut ProcessContext<'_>, data: &[u8]) {
        if let Some(to) = self.terminal() {
            self.out.feed(cx.reactor(), to, data);
        }
    }

    fn err_received(&mut self, cx: &mut ProcessContext<'_>, data: &[u8]) {
        if let Some(to) = self.terminal() {
            self.err.feed(cx.reactor(), to, data);
        }
    }

    fn pipe_closed(&mut self, cx: &mut ProcessContext<'_>, pipe: ChildPipe) {
        let Some(to) = self.terminal() else { return };
        match pipe {
            ChildPipe::Stdout => self.out.finish(cx.reactor(), to),
            ChildPipe::Stderr => self.err.finish(cx.reactor(), to),
            ChildPipe::Stdin => {}
        }
    }

    // The child reads its stdin slowly: stop reading ours until it catches up.
    fn pause_writing(&mut self, cx: &mut ProcessContext<'_>) {
        if let Some(terminal) = self.terminal() {
            cx.reactor().pause_reading(terminal);
        }
    }

    fn resume_writing(&mut self, cx: &mut ProcessContext<'_>) {
        if let Some(terminal) = self.terminal() {
            cx.reactor().resume_reading(terminal);
        }
    }

    fn process_ended(&mut self, cx: &mut ProcessContext<'_>, exit: ProcessExit) {
        let (line, code) = match exit {
            ProcessExit::Code(code) => (format!("exit: {code}\n"), code as u8),
            ProcessExit::Signal(n) => (format!("signal: {n}\n"), (128 + n) as u8),
        };
        let mut session = self.session.borrow_mut();
        session.exit = Some(code);
        match session.terminal {
            Some(terminal) => {
                cx.reactor().write_to(terminal, line.as_bytes());
                // Exits once stdout took everything (the terminal's `connection_lost`).
                cx.reactor().lose_connection(terminal);
            }
            None => cx.reactor().stop(),
        }
    }
}

/// Our standard I/O: stdin to the child's, stdout for its lines.
struct Terminal(Shared);

impl Terminal {
    fn child(&self) -> Option<ProcessId> {
        self.0.borrow().child
    }
}

impl Protocol for Terminal {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if let Some(child) = self.child() {
            cx.reactor().write_to_process(child, data);
        }
    }

    /// Our input ended: so does the child's. Stdout stays open for its output.
    fn eof_received(&mut self, cx: &mut Context<'_>) {
        if let Some(child) = self.child() {
            cx.reactor().close_process_stdin(child);
        }
    }

    // Our stdout is slow: stop reading the child's output, so that it waits.
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(child) = self.child() {
            cx.reactor().pause_process_reading(child, ChildPipe::Stdout);
            cx.reactor().pause_process_reading(child, ChildPipe::Stderr);
        }
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(child) = self.child() {
            cx.reactor()
                .resume_process_reading(child, ChildPipe::Stdout);
            cx.reactor()
                .resume_process_reading(child, ChildPipe::Stderr);
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        if !matches!(reason, DisconnectReason::Closed) {
            self.0.borrow_mut().stdio_error = Some(format!("standard I/O: {reason}"));
        }
        // A child still running is killed and reaped when the reactor is dropped.
        cx.reactor().stop();
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--") {
        args.next();
    }
    let Some(program) = args.next() else {
        eprintln!("usage: spawn -- COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let command = ProcessBuilder::new(&program).args(args);
    match run(command) {
        Ok(code) => ExitCode::from(code),
        Err((code, message)) => {
            eprintln!("spawn: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(command: ProcessBuilder) -> Result<u8, (u8, String)> {
    let failed = |e: std::io::Error| (1, e.to_string());
    let mut reactor = Reactor::new().map_err(failed)?;
    let session = Shared::default();
    let terminal = reactor
        .stdio(Terminal(session.clone()))
        .map_err(|e| (1, format!("standard I/O: {e}")))?;
    session.borrow_mut().terminal = Some(terminal);
    let child = Child {
        session: session.clone(),
        out: Lines::new(b"out: "),
        err: Lines::new(b"err: "),
    };
    let child = reactor
        .spawn(command, child)
        .map_err(|e| (127, format!("cannot run the command: {e}")))?;
    session.borrow_mut().child = Some(child);
    reactor.run().map_err(failed)?;
    let mut session = session.borrow_mut();
    match (session.exit, session.stdio_error.take()) {
        (Some(code), None) => Ok(code),
        (_, Some(error)) => Err((1, error)),
        (None, None) => Err((
            1,
            "the reactor stopped before the command ended".to_string(),
        )),
    }
}
