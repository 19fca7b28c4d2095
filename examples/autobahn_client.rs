//! A WebSocket client for the Autobahn test suite's fuzzing server: runs every case it
//! offers with torsion's client echoing each message, then asks it to write its reports.
//!
//! Run:   wstest -m fuzzingserver -s spec.json      (Autobahn's server, port 9001)
//!        cargo run --example autobahn_client [ADDR]  (default 127.0.0.1:9001)
//!        `bash tests/autobahn/run client` does both and checks the results.
//!
//! Prints `case N of M` as it goes and exits 0 once the reports are written; exits 1 if it
//! cannot reach the server, 2 on bad arguments.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::protocols::websocket::{self, CloseCode, Message, Sender, WebSocketHandler};
use torsion::{ConnectOptions, Reactor};

/// Messages up to the suite's largest (16 MiB, section 9).
const MAX_MESSAGE: usize = 16 << 20;

/// Where the run is.
struct Run {
    addr: SocketAddr,
    cases: usize,
    failed: bool,
}

/// What one connection is for.
enum Step {
    /// `/getCaseCount`: one text message, the number of cases.
    Count,
    /// `/runCase?case=N`: echo everything.
    Case(usize),
    /// `/updateReports`: the server writes its reports, then closes.
    Report,
}

struct Client {
    step: Step,
    run: Rc<RefCell<Run>>,
}

impl WebSocketHandler for Client {
    fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message) {
        match (&self.step, message) {
            (Step::Count, Message::Text(count)) => {
                self.run.borrow_mut().cases = count.trim().parse().unwrap_or(0);
            }
            (Step::Case(_), message) => {
                let _ = ws.send(&message);
            }
            _ => {}
        }
    }

    fn on_close(&mut self, reactor: &mut Reactor, code: CloseCode, reason: &str) {
        let cases = self.run.borrow().cases;
        match self.step {
            Step::Count if cases == 0 => {
                eprintln!("autobahn_client: no case count ({} {reason})", code.0);
                self.run.borrow_mut().failed = true;
                reactor.stop();
            }
            Step::Count => start(reactor, &self.run, Step::Case(1)),
            Step::Case(n) if n < cases => start(reactor, &self.run, Step::Case(n + 1)),
            Step::Case(_) => start(reactor, &self.run, Step::Report),
            Step::Report => reactor.stop(),
        }
    }
}

fn start(reactor: &mut Reactor, run: &Rc<RefCell<Run>>, step: Step) {
    let path = match step {
        Step::Count => "/getCaseCount".to_string(),
        Step::Case(n) => {
            println!("case {n} of {}", run.borrow().cases);
            format!("/runCase?case={n}&agent=torsion")
        }
        Step::Report => "/updateReports?agent=torsion".to_string(),
    };
    let addr = run.borrow().addr;
    let client = Client {
        step,
        run: run.clone(),
    };
    let options = ConnectOptions::default();
    // RFC 6455 §4.1: the Host header names the port when it is not the default.
    let host = addr.to_string();
    websocket::connect(reactor, addr, options, &host, &path, client, MAX_MESSAGE);
}

fn main() -> ExitCode {
    env_logger::init();
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:9001".into());
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("usage: autobahn_client [IP:PORT]");
        return ExitCode::from(2);
    };
    let mut reactor = match Reactor::new() {
        Ok(reactor) => reactor,
        Err(e) => {
            eprintln!("autobahn_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run = Rc::new(RefCell::new(Run {
        addr,
        cases: 0,
        failed: false,
    }));
    start(&mut reactor, &run, Step::Count);
    if let Err(e) = reactor.run() {
        eprintln!("autobahn_client: {e}");
        return ExitCode::FAILURE;
    }
    if run.borrow().failed {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
