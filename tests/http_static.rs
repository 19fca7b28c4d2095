//! Static files off the reactor thread, over loopback: a body whose read blocks (a FIFO the
//! test holds and does not write) waits in the thread pool while another connection is
//! served; and the `http_server` example's defaults (hidden files 404, listings on) and its
//! `--dotfiles` and `--no-listing` options, anywhere on its command line; a large static file
//! over HTTPS (no `sendfile`: read from the page cache and encrypted).

mod common;

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::certs::TestCa;
use common::examples::{example, Running};
use common::tls::{localhost_server, tls_to};
use common::*;
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::static_files::StaticFiles;
use torsion::protocols::http::{HeaderMap, StatusCode};
use torsion::{Context, DisconnectReason, Protocol, Reactor};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "torsion-http-static-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One `GET target` with `Connection: close`: (status, the whole response as text).
fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut stream = connect(addr);
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"));
    (status, response)
}

/// Makes a FIFO at `path` with `mkfifo`; false (after saying why) if the tool is missing
/// outside CI.
fn mkfifo(path: &std::path::Path) -> bool {
    match Command::new("mkfifo").arg(path).status() {
        Ok(status) if status.success() => true,
        outcome => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "mkfifo failed under CI: {outcome:?}"
            );
            eprintln!("skipped: mkfifo failed ({outcome:?})");
            false
        }
    }
}

#[test]
fn a_body_whose_read_blocks_waits_in_the_pool_while_other_connections_are_served() {
    init_logging();
    let dir = TempDir::new("fifo");
    let fifo = dir.0.join("pipe");
    if !mkfifo(&fifo) {
        return;
    }
    // The test holds the FIFO open for writing (read-write: opening does not wait), so the
    // server's open returns at once and its read waits for bytes that come only later.
    let mut writer = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    // If the read ran on the reactor thread, the reactor would block in it: the watchdog
    // ends the test then, rather than letting it hang.
    let watchdog = Watchdog::arm(
        Duration::from_secs(30),
        "the /plaintext answer while a FIFO read blocked",
    );
    let asked = Rc::new(Cell::new(false));
    let seen = asked.clone();
    let router = Router::new()
        .get(
            "/pipe",
            move |_: Request, res: Responder, r: &mut Reactor| {
                seen.set(true);
                let file = File::open(&fifo).unwrap();
                res.send_file(r, StatusCode::OK, &HeaderMap::new(), file, 0, 5);
            },
        )
        .get(
            "/plaintext",
            |_: Request, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
            },
        );
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(router))
        .unwrap();
    let addr = port.local_addr();
    let blocked = thread::spawn(move || get(addr, "/pipe"));
    run_until(
        &mut reactor,
        "the /pipe request to reach its handler",
        || asked.get(),
    );
    let other = thread::spawn(move || get(addr, "/plaintext"));
    run_until(&mut reactor, "the /plaintext answer", || {
        other.is_finished()
    });
    let (status, text) = other.join().unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("\r\n\r\nHello, World!"), "{text}");
    assert!(!blocked.is_finished(), "the FIFO's reader is still waiting");
    drop(watchdog);
    writer.write_all(b"hello").unwrap();
    let (status, text) = run_until_joined(&mut reactor, vec![blocked]).remove(0);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("content-length: 5\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
}

/// `http_server` started with `args` (each `{addr}` and `{dir}` replaced), once it accepts
/// connections.
fn start_http_server(binary: &PathBuf, args: &[&str], dir: &TempDir) -> (Running, SocketAddr) {
    let addr = closed_loopback_port();
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            arg.replace("{addr}", &addr.to_string())
                .replace("{dir}", &dir.0.display().to_string())
        })
        .collect();
    let child = Command::new(binary)
        .args(&args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn http_server");
    let mut server = Running(child);
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(addr).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("http_server {args:?} exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "http_server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    (server, addr)
}

#[test]
fn http_server_hides_dotfiles_lists_directories_and_takes_its_options_anywhere() {
    let Some(binary) = example("http_server") else {
        return;
    };
    let dir = TempDir::new("example");
    fs::create_dir_all(dir.0.join(".git")).unwrap();
    fs::create_dir_all(dir.0.join("docs")).unwrap();
    fs::write(dir.0.join(".git/config"), "[core]").unwrap();
    fs::write(dir.0.join(".env"), "SECRET=1").unwrap();
    fs::write(dir.0.join("hello.txt"), "hello").unwrap();

    let (_server, addr) = start_http_server(&binary, &["{addr}", "{dir}"], &dir);
    assert_eq!(get(addr, "/.git/config").0, 404);
    assert_eq!(get(addr, "/.env").0, 404);
    assert_eq!(get(addr, "/%2eenv").0, 404);
    let (status, listing) = get(addr, "/");
    assert_eq!(status, 200);
    assert!(
        listing.contains("hello.txt") && listing.contains("docs/"),
        "{listing}"
    );
    assert!(
        !listing.contains(".git") && !listing.contains(".env"),
        "{listing}"
    );
    assert!(get(addr, "/hello.txt").1.ends_with("\r\n\r\nhello"));

    for args in [
        &["--dotfiles", "{addr}", "--no-listing", "{dir}"][..],
        &["{addr}", "{dir}", "--no-listing", "--dotfiles"][..],
        &["{addr}", "--no-listing", "--dotfiles", "{dir}"][..],
    ] {
        let (_server, addr) = start_http_server(&binary, args, &dir);
        assert_eq!(get(addr, "/").0, 403, "{args:?}");
        assert_eq!(get(addr, "/docs/").0, 403, "{args:?}");
        let (status, text) = get(addr, "/.git/config");
        assert_eq!(status, 200, "{args:?}");
        assert!(text.ends_with("\r\n\r\n[core]"), "{text}");
        assert!(get(addr, "/hello.txt").1.ends_with("\r\n\r\nhello"));
    }
}

/// Sends one request on connection, then keeps everything that comes until the close.
struct OneRequest {
    request: &'static [u8],
    received: Shared<Vec<u8>>,
    ended: Shared<Option<String>>,
}

impl Protocol for OneRequest {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(self.request);
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.received.borrow_mut().extend_from_slice(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.ended.borrow_mut() = Some(format!("{reason:?}"));
    }
}

#[test]
fn a_large_static_file_goes_out_whole_over_https() {
    const SIZE: usize = (3 << 20) + 777;
    init_logging();
    let dir = TempDir::new("https");
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    fs::write(dir.0.join("big.bin"), &data).unwrap();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let router = Router::new().fallback(StaticFiles::new(&dir.0).unwrap());
    let port = reactor
        .listen_tls(
            any_loopback_port(),
            localhost_server(&ca),
            HttpServer::new(router),
        )
        .unwrap();
    let (received, ended) = (shared(Vec::new()), shared(None));
    let (r, e) = (received.clone(), ended.clone());
    reactor.connect(
        port.local_addr(),
        move || OneRequest {
            request: b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            received: r.clone(),
            ended: e.clone(),
        },
        tls_to("localhost", &ca),
    );
    run_until(&mut reactor, "the response and the close", || {
        ended.borrow().is_some()
    });
    assert_eq!(ended.borrow().as_deref(), Some("Closed"));
    let received = received.borrow();
    let at = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&received[..at]);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("content-length: {SIZE}\r\n")),
        "{head}"
    );
    assert!(received[at + 4..] == data[..], "every byte, in order");
}
