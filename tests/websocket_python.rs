//! WebSocket against a real peer: Python's `websockets` package, as a client of the
//! `http_server` example's `/ws/echo` and as a server torsion's client talks to. Without
//! python3 or the package the tests skip, saying so (under `CI=true` they fail).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use common::examples::{run_to_end, Running};
use common::machine::{require_tool, skip_or_fail};
use common::servers::start_server;
use common::*;
use torsion::protocols::websocket::{self, CloseCode, Message, Sender, WebSocketHandler};
use torsion::{ConnectOptions, Reactor};

/// Whether python3 and its `websockets` package are here; else skips (or fails under CI).
fn python_websockets() -> bool {
    if require_tool("python3", "--version").is_none() {
        return false;
    }
    let probe = Command::new("python3")
        .args([
            "-c",
            "import websockets.sync.client, websockets.sync.server",
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => true,
        _ => {
            skip_or_fail("python3's websockets package is not installed (pip install websockets)");
            false
        }
    }
}

/// A Python client: text, binary, a message in three fragments, a ping answered, then a
/// close with 4000 that the server must echo. Prints `ok` when every check passed.
const PYTHON_CLIENT: &str = r#"
import sys
from websockets.sync.client import connect
with connect(sys.argv[1], max_size=None) as ws:
    ws.send("h\u00e9llo")
    assert ws.recv(timeout=10) == "h\u00e9llo"
    ws.send(b"\x00\x01\xfe\xff")
    assert ws.recv(timeout=10) == b"\x00\x01\xfe\xff"
    ws.send(["frag", "men", "ted"])
    assert ws.recv(timeout=10) == "fragmented"
    ws.send(bytes(range(256)) * 1000)
    assert ws.recv(timeout=10) == bytes(range(256)) * 1000
    assert ws.ping(b"are you there").wait(timeout=10)
    ws.close(4000, "done here")
    assert ws.protocol.close_rcvd.code == 4000, ws.protocol.close_rcvd
print("ok")
"#;

#[test]
fn python_websockets_client_gets_its_messages_echoed_by_the_example_ws_echo() {
    if !python_websockets() {
        return;
    }
    let dir = std::env::temp_dir().display().to_string();
    let Some((mut server, addr)) = start_server("http_server", &["127.0.0.1:0", &dir], None) else {
        return;
    };
    let url = format!("ws://{addr}/ws/echo");
    let (status, stdout, stderr) =
        run_to_end(Command::new("python3").args(["-c", PYTHON_CLIENT, &url]));
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stdout, "ok\n", "{stderr}");
    assert!(server.terminate("http_server").success());
}

/// A Python server echoing messages, answering `bye please` with a close 4001 `bye`.
const PYTHON_SERVER: &str = r#"
from websockets.sync.server import serve
def handler(ws):
    for message in ws:
        if message == "bye please":
            ws.close(4001, "bye")
            return
        ws.send(message)
with serve(handler, "127.0.0.1", 0) as server:
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()
"#;

/// Starts [`PYTHON_SERVER`]; returns it running and its address.
fn python_server() -> (Running, SocketAddr) {
    let mut child = Command::new("python3")
        .args(["-c", PYTHON_SERVER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .parse()
        .expect("the Python server prints its port");
    (running, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Sends its script once open and records what comes back and how it closed.
struct Client {
    script: Vec<Message>,
    log: Shared<Vec<String>>,
}

impl WebSocketHandler for Client {
    fn on_open(&mut self, ws: &mut Sender<'_, '_>) {
        for message in &self.script {
            ws.send(message).unwrap();
        }
    }

    fn on_message(&mut self, _: &mut Sender<'_, '_>, message: Message) {
        self.log.borrow_mut().push(format!("{message:?}"));
    }

    fn on_close(&mut self, _: &mut Reactor, code: CloseCode, reason: &str) {
        self.log
            .borrow_mut()
            .push(format!("close {} {reason}", code.0));
    }
}

#[test]
fn torsion_client_talks_to_a_python_websockets_server_until_it_closes_with_4001() {
    if !python_websockets() {
        return;
    }
    let (_server, addr) = python_server();
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let log = shared(Vec::new());
    let big: Vec<u8> = (0..200_000).map(|i| i as u8).collect();
    let client = Client {
        script: vec![
            Message::Text("h\u{e9}llo".into()),
            Message::Binary(big.clone().into()),
            Message::Text("bye please".into()),
        ],
        log: log.clone(),
    };
    let options = ConnectOptions::default();
    websocket::connect(
        &mut reactor,
        addr,
        options,
        "localhost",
        "/",
        client,
        1 << 20,
    );
    run_until(&mut reactor, "the server's close", || {
        log.borrow().last().is_some_and(|l| l.starts_with("close"))
    });
    let log = log.borrow();
    assert_eq!(log[0], format!("{:?}", Message::Text("h\u{e9}llo".into())));
    assert_eq!(log[1], format!("{:?}", Message::Binary(big.into())));
    assert_eq!(log[2], "close 4001 bye");
}
