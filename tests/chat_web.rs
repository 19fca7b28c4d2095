//! `chat_server --web`: terminal users (TCP, the line protocol) and browser users (the page at
//! `/`, its WebSocket at `/ws`) in one room. A terminal client and a real headless browser
//! (Debian's `chromium` with `chromium-driver`, driven by `tests/browser/chat_page.py` through
//! Selenium) chat: each sees the other join, speak and leave exactly as the line protocol
//! says. Chromium, ChromeDriver or Selenium missing: skipped outside CI, failed under
//! `CI=true` (`.ci/run` installs them).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use common::examples::{example, Running};
use common::machine::skip_or_fail;
use common::{CLIENT_TIMEOUT, DEADLINE};
use torsion::protocols::chat::room::GREETING;

/// Whether the browser, its driver and Selenium are here (else skipped, or failed under CI).
fn browser_available() -> bool {
    for path in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !Path::new(path).exists() {
            skip_or_fail(format!(
                "{path} is missing (Debian's chromium and chromium-driver)"
            ));
            return false;
        }
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .output();
    if !selenium.is_ok_and(|out| out.status.success()) {
        skip_or_fail("python3 cannot import selenium (pip install selenium)");
        return false;
    }
    true
}

/// Starts `chat_server 127.0.0.1:0 --web 127.0.0.1:0`; returns it with its two addresses.
fn start_chat_server() -> Option<(Running, String, String)> {
    let binary = example("chat_server")?;
    let mut child = Command::new(binary)
        .args(["127.0.0.1:0", "--web", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chat_server");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (send, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    let mut addresses = (None, None);
    while addresses.0.is_none() || addresses.1.is_none() {
        let line = lines
            .recv_timeout(DEADLINE)
            .expect("chat_server says where it listens");
        if let Some(addr) = line.strip_prefix("chat server listening on ") {
            addresses.0 = Some(addr.to_string());
        } else if let Some(addr) = line.strip_prefix("web chat listening on ") {
            addresses.1 = Some(addr.to_string());
        }
    }
    Some((running, addresses.0.unwrap(), addresses.1.unwrap()))
}

/// A terminal user: the line protocol over TCP.
struct Terminal {
    reader: BufReader<TcpStream>,
}

impl Terminal {
    fn join(addr: &str, name: &str) -> Terminal {
        let stream = TcpStream::connect(addr).expect("connect to the chat port");
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        let mut terminal = Terminal {
            reader: BufReader::new(stream),
        };
        assert_eq!(terminal.line(), GREETING);
        terminal.say(name);
        assert_eq!(terminal.line(), format!("Welcome, {name}!"));
        terminal
    }

    fn say(&mut self, line: &str) {
        writeln!(self.reader.get_mut(), "{line}").expect("send a line");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        assert!(line.ends_with("\r\n"), "a whole line: {line:?}");
        line.trim_end_matches("\r\n").to_string()
    }
}

#[test]
fn a_terminal_user_and_a_browser_user_chat_in_one_room() {
    if !browser_available() {
        return;
    }
    let Some((mut server, chat_addr, web_addr)) = start_chat_server() else {
        return;
    };
    let mut tom = Terminal::join(&chat_addr, "tom");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/chat_page.py");
    let mut browser = Running(
        Command::new("python3")
            .arg(script)
            .args([
                &format!("http://{web_addr}/"),
                "bea",
                "<tom> hello from the terminal",
                "hello from the browser",
                "* tom has left",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the browser script"),
    );
    let mut said = BufReader::new(browser.0.stdout.take().unwrap()).lines();
    let mut next = || said.next().expect("the browser script goes on").unwrap();
    assert_eq!(next(), "joined");
    assert_eq!(tom.line(), "* bea has joined");
    tom.say("hello from the terminal");
    assert_eq!(next(), "answered");
    assert_eq!(tom.line(), "<bea> hello from the browser");
    tom.say("/who");
    assert_eq!(tom.line(), "Users: bea, tom");
    tom.say("/quit");
    assert_eq!(tom.line(), "Bye");
    // What the browser's page showed, in order.
    let page: Vec<String> = std::iter::from_fn(|| said.next().map(Result::unwrap)).collect();
    assert_eq!(
        page,
        [
            GREETING,
            "Welcome, bea!",
            "<tom> hello from the terminal",
            "<bea> hello from the browser",
            "* tom has left",
        ]
    );
    let status = common::examples::wait_for_exit(&mut browser, "the browser script");
    assert!(status.success(), "{status}");
    let status = server.terminate("chat_server");
    assert!(status.success(), "chat_server on SIGTERM: {status}");
}
