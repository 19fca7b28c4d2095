//! An interactive chat client: lines typed on stdin go to the server, lines from the server
//! are printed. Stdin is read through the reactor (`add_reader`, like Twisted's `stdio`);
//! end of input sends `/quit`.
//!
//! Run:   cargo run --example chat_client ADDR          (e.g. 127.0.0.1:8000)
//!        ADDR: HOST:PORT, or a client endpoint string (`tcp:host=HOST:port=PORT`,
//!        `tls:host=HOST:port=PORT`; see `docs/endpoints.md`)
//!
//! Exits 0 when the server closes the connection cleanly (after `/quit`, say); 1 with a
//! one-line error on stderr if it cannot connect or the connection breaks; 2 on bad arguments.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::protocols::line::{Delimiter, LineContext, LineProtocol, LineReceiver};
use torsion::{Address, ClientFactory, ConnectError, ConnectionId, DisconnectReason, Reactor};

/// What the client shares between the connection and stdin.
#[derive(Default)]
struct Session {
    /// The connection, once established.
    connection: Option<ConnectionId>,
    /// Typed before the connection was up, sent when it is.
    typed_early: Vec<u8>,
    /// The last byte typed was not a newline: a line is unfinished.
    mid_line: bool,
    /// How it ended: `Ok` for a clean close.
    outcome: Option<Result<(), String>>,
}

type Shared = Rc<RefCell<Session>>;

/// Prints every line from the server.
struct Printer(Shared);

impl LineReceiver for Printer {
    fn connection_made(&mut self, cx: &mut LineContext<'_, '_>) {
        let mut session = self.0.borrow_mut();
        session.connection = Some(cx.transport().id());
        let early = std::mem::take(&mut session.typed_early);
        cx.write(&early);
    }

    fn line_received(&mut self, _cx: &mut LineContext<'_, '_>, line: &[u8]) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(line)
            .and_then(|()| stdout.write_all(b"\n"));
        let _ = stdout.flush();
    }

    fn line_length_exceeded(&mut self, _cx: &mut LineContext<'_, '_>, buffered: &[u8]) {
        // Print what fits rather than drop the connection: this is a human's client.
        self.line_received(_cx, buffered);
    }

    fn connection_lost(&mut self, cx: &mut LineContext<'_, '_>, reason: &DisconnectReason) {
        let outcome = match reason {
            DisconnectReason::Closed => Ok(()),
            other => Err(format!("connection lost: {other}")),
        };
        self.0.borrow_mut().outcome.get_or_insert(outcome);
        cx.transport().reactor().stop();
    }
}

struct Client(Shared);

impl ClientFactory for Client {
    type Protocol = LineProtocol<Printer>;

    fn build_protocol(&mut self, _peer: Address) -> Self::Protocol {
        LineProtocol::new(Printer(self.0.clone())).with_delimiter(Delimiter::Newline)
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        self.0.borrow_mut().outcome = Some(Err(format!("cannot connect: {error}")));
        reactor.stop();
    }
}

/// Sends what is typed.
fn typed(session: &Shared, reactor: &mut Reactor, data: &[u8]) {
    let mut s = session.borrow_mut();
    if let Some(&last) = data.last() {
        s.mid_line = last != b'\n';
    }
    match s.connection {
        Some(id) => {
            reactor.write_to(id, data);
        }
        None => s.typed_early.extend_from_slice(data),
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
    let client = Client(session.clone());
    reactor
        .connect_endpoint(endpoint, client)
        .map_err(|e| e.to_string())?;
    watch_stdin(&mut reactor, &session).map_err(|e| format!("stdin: {e}"))?;
    reactor.run().map_err(|e| e.to_string())?;
    let outcome = session.borrow_mut().outcome.take();
    outcome.unwrap_or_else(|| Err("the reactor stopped unexpectedly".to_string()))
}

/// Reads stdin through the reactor when it can be polled (a terminal, a pipe); otherwise (a
/// regular file, which epoll refuses) on a thread that hands each chunk to the reactor.
fn watch_stdin(reactor: &mut Reactor, session: &Shared) -> std::io::Result<()> {
    let stdin = std::io::stdin().as_fd().try_clone_to_owned()?;
    let reader = StdinLines(session.clone());
    if reactor.add_reader(stdin, reader).is_ok() {
        return Ok(());
    }
    let handle = reactor.handle();
    let session = session.clone();
    // The session is not Send: the thread sends bytes, the reactor thread finds the session
    // through a thread-local it set up.
    SESSION.with(|s| *s.borrow_mut() = Some(session));
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = std::io::stdin().read(&mut buf).unwrap_or(0);
            let data = buf[..n].to_vec();
            let sent = handle.call_from_thread(move |reactor| {
                SESSION.with(|s| {
                    if let Some(session) = s.borrow().as_ref() {
                        match n {
                            0 => end_of_input(session, reactor),
                            _ => typed(session, reactor, &data),
                        }
                    }
                })
            });
            if n == 0 || sent.is_err() {
                return;
            }
        }
    });
    Ok(())
}

thread_local! {
    /// The reactor thread's session, for stdin chunks read on a helper thread.
    static SESSION: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

/// Stdin read by the reactor.
struct StdinLines(Shared);

impl torsion::FdReader for StdinLines {
    fn data_received(&mut self, reactor: &mut Reactor, data: &[u8]) {
        typed(&self.0, reactor, data);
    }

    fn eof_received(&mut self, reactor: &mut Reactor) {
        end_of_input(&self.0, reactor);
    }
}

/// End of input: finish an unfinished line, then `/quit`.
fn end_of_input(session: &Shared, reactor: &mut Reactor) {
    let quit: &[u8] = if session.borrow().mid_line {
        b"\n/quit\n"
    } else {
        b"/quit\n"
    };
    typed(session, reactor, quit);
}

fn fail(message: &str) -> ExitCode {
    eprintln!("chat_client: {message}");
    ExitCode::FAILURE
}
