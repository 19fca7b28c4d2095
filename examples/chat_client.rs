//! An interactive chat client: lines typed on stdin go to the server, lines from the server
//! are printed. Stdin and stdout are one transport (`Reactor::stdio`, like Twisted's
//! `StandardIO`); end of input sends `/quit`.
//!
//! Run:   cargo run --example chat_client ADDR          (e.g. 127.0.0.1:8000)
//!        ADDR: HOST:PORT, or a client endpoint string (`tcp:host=HOST:port=PORT`,
//!        `tls:host=HOST:port=PORT`; see `docs/endpoints.md`)
//!
//! Exits 0 when the server closes the connection cleanly (after `/quit`, say); 1 with a
//! one-line error on stderr if it cannot connect or the connection breaks; 2 on bad arguments.

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::protocols::line::{Delimiter, LineContext, LineProtocol, LineReceiver};
use torsion::{
    Address, ClientFactory, ConnectError, ConnectionId, Context, DisconnectReason, Protocol,
    Reactor,
};

/// What the server connection and the terminal share.
#[derive(Default)]
struct Session {
    /// The server connection, once established.
    server: Option<ConnectionId>,
    /// Standard I/O.
    terminal: Option<ConnectionId>,
    /// How it ended: `Ok` for a clean close.
    outcome: Option<Result<(), String>>,
}

type Shared = Rc<RefCell<Session>>;

/// Ends the session with `outcome` (the first one told wins): stdout is flushed, then the
/// terminal's `connection_lost` stops the reactor.
fn finish(session: &Shared, reactor: &mut Reactor, outcome: Result<(), String>) {
    let mut s = session.borrow_mut();
    s.outcome.get_or_insert(outcome);
    match s.terminal {
        Some(terminal) => reactor.lose_connection(terminal),
        None => reactor.stop(),
    }
}

/// Prints every line from the server.
struct Printer(Shared);

impl LineReceiver for Printer {
    /// Connected: what was typed meanwhile waited in stdin, and is read from here on.
    fn connection_made(&mut self, cx: &mut LineContext<'_, '_>) {
        let mut session = self.0.borrow_mut();
        session.server = Some(cx.transport().id());
        if let Some(terminal) = session.terminal {
            cx.transport().reactor().resume_reading(terminal);
        }
    }

    fn line_received(&mut self, cx: &mut LineContext<'_, '_>, line: &[u8]) {
        if let Some(terminal) = self.0.borrow().terminal {
            cx.transport().write_to(terminal, line);
            cx.transport().write_to(terminal, b"\n");
        }
    }

    fn line_length_exceeded(&mut self, cx: &mut LineContext<'_, '_>, buffered: &[u8]) {
        // Print what fits rather than drop the connection: this is a human's client.
        self.line_received(cx, buffered);
    }

    fn connection_lost(&mut self, cx: &mut LineContext<'_, '_>, reason: &DisconnectReason) {
        let outcome = match reason {
            DisconnectReason::Closed => Ok(()),
            other => Err(format!("connection lost: {other}")),
        };
        finish(&self.0, cx.transport().reactor(), outcome);
    }
}

struct Client(Shared);

impl ClientFactory for Client {
    type Protocol = LineProtocol<Printer>;

    fn build_protocol(&mut self, _peer: Address) -> Self::Protocol {
        LineProtocol::new(Printer(self.0.clone())).with_delimiter(Delimiter::Newline)
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        finish(&self.0, reactor, Err(format!("cannot connect: {error}")));
    }
}

/// Standard I/O: sends what is typed, and at the end of input `/quit`.
struct Terminal {
    session: Shared,
    /// The last byte typed was not a newline: a line is unfinished.
    mid_line: bool,
}

impl Terminal {
    fn send(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if let Some(server) = self.session.borrow().server {
            cx.write_to(server, data);
        }
    }
}

impl Protocol for Terminal {
    /// Stdin is read once the server connection is up: lines typed before wait in order.
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if let Some(&last) = data.last() {
            self.mid_line = last != b'\n';
        }
        self.send(cx, data);
    }

    /// End of input: finish an unfinished line, then `/quit`. Stdout stays open for the
    /// server's answers.
    fn eof_received(&mut self, cx: &mut Context<'_>) {
        let quit: &[u8] = if self.mid_line {
            b"\n/quit\n"
        } else {
            b"/quit\n"
        };
        self.send(cx, quit);
    }

    // Stdout is slow: stop reading the server until it catches up (bounded memory).
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(server) = self.session.borrow().server {
            cx.reactor().pause_reading(server);
        }
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        if let Some(server) = self.session.borrow().server {
            cx.reactor().resume_reading(server);
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        let outcome = match reason {
            DisconnectReason::Closed => Ok(()),
            other => Err(format!("standard I/O: {other}")),
        };
        self.session.borrow_mut().outcome.get_or_insert(outcome);
        cx.reactor().stop();
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let Some(target) = std::env::args().nth(1) else {
        eprintln!("usage: chat_client ADDR");
        return ExitCode::from(2);
    };
    let endpoint: torsion::ClientEndpoint = match target.parse() {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!("chat_client: bad address {target:?}: {e} (usage: chat_client ADDR)");
            return ExitCode::from(2);
        }
    };
    match run(endpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&format!("{target}: {message}")),
    }
}

fn run(endpoint: torsion::ClientEndpoint) -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    let session = Shared::default();
    let terminal = Terminal {
        session: session.clone(),
        mid_line: false,
    };
    let terminal = reactor
        .stdio(terminal)
        .map_err(|e| format!("standard I/O: {e}"))?;
    session.borrow_mut().terminal = Some(terminal);
    reactor
        .connect_endpoint(endpoint, Client(session.clone()))
        .map_err(|e| e.to_string())?;
    reactor.run().map_err(|e| e.to_string())?;
    let outcome = session.borrow_mut().outcome.take();
    outcome.unwrap_or_else(|| Err("the reactor stopped unexpectedly".to_string()))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("chat_client: {message}");
    ExitCode::FAILURE
}
