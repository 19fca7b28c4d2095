//! An echo client: sends each message, waits for its echo, prints it on its own line.
//!
//! Run:   cargo run --example echo_client ADDR [MESSAGE...]
//!        cargo run --example echo_client 127.0.0.1:8000 hello world
//!        ADDR: HOST:PORT (`127.0.0.1:8000`, `[::1]:8000`, `localhost:8000`: a host with IPv6
//!        and IPv4 addresses is connected to with Happy Eyeballs), or a client endpoint string:
//!        `tcp:host=HOST:port=PORT[:timeout=SECONDS]`, `tls:host=HOST:port=PORT` (see
//!        `docs/endpoints.md`)
//!
//! With no MESSAGE it sends `hello, world` (as Twisted's echo client does). Exits 0 once
//! every echo came back; exits 1 with a one-line error on stderr if it cannot connect or the
//! server closes before echoing everything; exits 2 on bad arguments.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::{
    Address, ClientEndpoint, ClientFactory, ConnectError, Context, DisconnectReason, Protocol,
    Reactor,
};

/// How the run ended, filled in by the protocol or the factory.
type Outcome = Rc<RefCell<Option<Result<(), String>>>>;

struct EchoClient {
    /// Messages not yet sent; the front one is in flight once sent.
    pending: VecDeque<Vec<u8>>,
    echoed: Vec<u8>,
    outcome: Outcome,
}

impl EchoClient {
    /// Sends the next message, skipping (and printing) empty ones, which have no echo to
    /// wait for. Closes the connection when none is left.
    fn send_next(&mut self, cx: &mut Context<'_>) {
        while let Some(message) = self.pending.front() {
            if !message.is_empty() {
                cx.write(message);
                return;
            }
            println!();
            self.pending.pop_front();
        }
        *self.outcome.borrow_mut() = Some(Ok(()));
        cx.lose_connection();
    }
}

impl Protocol for EchoClient {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.send_next(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.echoed.extend_from_slice(data);
        let Some(message) = self.pending.front() else {
            return;
        };
        if self.echoed.len() < message.len() {
            return;
        }
        let echo: Vec<u8> = self.echoed.drain(..message.len()).collect();
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(&echo)
            .and_then(|()| stdout.write_all(b"\n"));
        let _ = stdout.flush();
        self.pending.pop_front();
        self.send_next(cx);
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        let mut outcome = self.outcome.borrow_mut();
        if outcome.is_none() {
            *outcome = Some(Err(format!(
                "server closed the connection before echoing everything ({reason})"
            )));
        }
        cx.reactor().stop();
    }
}

struct Client {
    messages: Option<VecDeque<Vec<u8>>>,
    outcome: Outcome,
}

impl ClientFactory for Client {
    type Protocol = EchoClient;

    fn build_protocol(&mut self, _peer: Address) -> EchoClient {
        EchoClient {
            pending: self.messages.take().unwrap_or_default(),
            echoed: Vec::new(),
            outcome: self.outcome.clone(),
        }
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        *self.outcome.borrow_mut() = Some(Err(format!("cannot connect: {error}")));
        reactor.stop();
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut args = std::env::args().skip(1);
    let Some(target) = args.next() else {
        eprintln!("usage: echo_client ADDR [MESSAGE...]");
        return ExitCode::from(2);
    };
    let mut messages: VecDeque<Vec<u8>> = args.map(String::into_bytes).collect();
    if messages.is_empty() {
        messages.push_back(b"hello, world".to_vec());
    }
    let endpoint: ClientEndpoint = match target.parse() {
        Ok(endpoint) => endpoint,
        Err(e) => {
            eprintln!(
                "echo_client: bad address {target:?}: {e} (usage: echo_client ADDR [MESSAGE...])"
            );
            return ExitCode::from(2);
        }
    };
    match run(endpoint, messages) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&format!("{target}: {message}")),
    }
}

fn run(endpoint: ClientEndpoint, messages: VecDeque<Vec<u8>>) -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    let outcome = Outcome::default();
    let client = Client {
        messages: Some(messages),
        outcome: outcome.clone(),
    };
    reactor
        .connect_endpoint(endpoint, client)
        .map_err(|e| e.to_string())?;
    reactor.run().map_err(|e| e.to_string())?;
    let result = outcome.borrow_mut().take();
    result.unwrap_or_else(|| Err("the reactor stopped unexpectedly".to_string()))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("echo_client: {message}");
    ExitCode::FAILURE
}
