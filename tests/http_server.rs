//! The HTTP server (issue 6, points 2 to 4) over real loopback sockets: an `HttpServer`
//! listens in-process with the example's routes (and, for static files, `StaticFiles` over a
//! temporary directory as the fallback), blocking std clients (and `curl`, when installed)
//! talk to it from threads, and the reactor turns on the test thread until they finish.

mod common;

use std::cell::Cell;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use torsion::protocols::http::server::{Handler, HttpServer, Request, Responder, Router};
use torsion::protocols::http::static_files::StaticFiles;
use torsion::protocols::http::{header, HeaderMap, HeaderValue, StatusCode};
use torsion::Reactor;

/// The routes of `examples/http_server.rs`.
fn router() -> Router {
    let text = |_: Request, res: Responder, r: &mut Reactor| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        res.respond(r, StatusCode::OK, &headers, "Hello, World!")
    };
    Router::new().get("/plaintext", text).post(
        "/echo",
        |req: Request, res: Responder, r: &mut Reactor| {
            res.respond(r, StatusCode::OK, &HeaderMap::new(), req.body)
        },
    )
}

/// Runs a server on the test thread until the client threads `start` spawns (given the
/// server's address) have finished; returns what they returned.
fn with_server<T>(start: impl FnOnce(SocketAddr) -> Vec<JoinHandle<T>>) -> Vec<T> {
    with_router(router(), start)
}

/// [`with_server`] with these routes.
fn with_router<T>(router: Router, start: impl FnOnce(SocketAddr) -> Vec<JoinHandle<T>>) -> Vec<T> {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(router))
        .unwrap();
    let clients = start(port.local_addr());
    run_until_joined(&mut reactor, clients)
}

/// Runs `script` on one client thread against a fresh server.
fn client(script: impl FnOnce(SocketAddr) + Send + 'static) {
    with_server(|addr| vec![thread::spawn(move || script(addr))]);
}

/// One response: its head (status line and headers) and its `Content-Length` body.
fn read_response(reader: &mut BufReader<TcpStream>) -> (String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("client reads a head line");
        assert!(!line.is_empty(), "EOF in a response head: {head:?}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("client reads a body");
    (head, body)
}

fn reader(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(connect(addr))
}

const GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn keep_alive_answers_two_requests_on_one_connection() {
    client(|addr| {
        let mut r = reader(addr);
        for _ in 0..2 {
            r.get_mut().write_all(GET).unwrap();
            let (head, body) = read_response(&mut r);
            assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
            assert!(head.contains("content-type: text/plain\r\n"), "{head}");
            assert_eq!(body, b"Hello, World!");
        }
    });
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    client(|addr| {
        let mut r = reader(addr);
        let mut wire = Vec::new();
        for i in 0..10 {
            wire.extend_from_slice(GET);
            let body = format!("request {i}");
            wire.extend_from_slice(
                format!(
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        r.get_mut().write_all(&wire).unwrap();
        for i in 0..10 {
            assert_eq!(read_response(&mut r).1, b"Hello, World!");
            assert_eq!(read_response(&mut r).1, format!("request {i}").as_bytes());
        }
    });
}

#[test]
fn expect_continue_gets_100_then_the_answer() {
    client(|addr| {
        let mut r = reader(addr);
        r.get_mut()
            .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            .unwrap();
        let (head, _) = read_response(&mut r);
        assert_eq!(head, "HTTP/1.1 100 Continue\r\n");
        r.get_mut().write_all(b"hello").unwrap();
        let (head, body) = read_response(&mut r);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, b"hello");
    });
}

#[test]
fn echo_returns_a_chunked_request_body() {
    client(|addr| {
        let mut r = reader(addr);
        r.get_mut()
            .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        r.get_mut().write_all(b"6\r\nhello \r\n").unwrap();
        r.get_mut()
            .write_all(b"7;ext=1\r\nchunked\r\n0\r\n\r\n")
            .unwrap();
        let (_, body) = read_response(&mut r);
        assert_eq!(body, b"hello chunked");
    });
}

#[test]
fn a_malformed_request_gets_400_and_the_connection_closes() {
    client(|addr| {
        let mut r = reader(addr);
        r.get_mut()
            .write_all(
                b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            )
            .unwrap();
        let (head, _) = read_response(&mut r);
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        let mut rest = Vec::new();
        assert_eq!(
            r.read_to_end(&mut rest).unwrap(),
            0,
            "closed after the answer"
        );
    });
}

#[test]
fn curl_gets_plaintext_and_echoes_a_chunked_upload() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("skipped: curl is not installed");
        return;
    }
    client(|addr| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .arg(format!("http://{addr}/plaintext"))
            .arg(format!("http://{addr}/plaintext"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"Hello, World!Hello, World!");
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-H",
                "Transfer-Encoding: chunked",
            ])
            .args(["--data-binary", "sent by curl"])
            .arg(format!("http://{addr}/echo"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"sent by curl");
    });
}

// Static files (issue 6, point 3) ------------------------------------------------------------

const HELLO: &[u8] = b"Hello, static world!\n";
const SECRET: &[u8] = b"TOP-SECRET-b7e1c3-never-served";

/// A temporary tree, removed on drop:
/// ```text
/// base/
///   secret.txt                      (outside the root: must never be served)
///   root/  hello.txt page.html sub/{a.txt, b.txt} site/index.html
///          link_out -> ../secret.txt   link_up -> ..
/// ```
struct Site {
    base: PathBuf,
    root: PathBuf,
}

impl Site {
    fn new() -> Site {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "torsion-http-server-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(root.join("site")).unwrap();
        for (path, bytes) in [
            ("secret.txt", SECRET),
            ("root/hello.txt", HELLO),
            ("root/page.html", b"<p>page</p>".as_slice()),
            ("root/sub/a.txt", b"a"),
            ("root/sub/b.txt", b"b"),
            ("root/site/index.html", b"<h1>the index</h1>"),
        ] {
            fs::write(base.join(path), bytes).unwrap();
        }
        std::os::unix::fs::symlink("../secret.txt", root.join("link_out")).unwrap();
        std::os::unix::fs::symlink("..", root.join("link_up")).unwrap();
        Site { base, root }
    }

    /// The example's routes with this site's root as the fallback.
    fn router(&self) -> Router {
        router().fallback(StaticFiles::new(&self.root).unwrap())
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Runs `script` on one client thread against a server of `site`.
fn site_client(site: &Site, script: impl FnOnce(SocketAddr) + Send + 'static) {
    with_router(site.router(), |addr| {
        vec![thread::spawn(move || script(addr))]
    });
}

/// A whole response, read to the close the request asked for.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    /// Everything after the head: the body, and anything that should not be there.
    body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `method target` with `headers` (lines with their CRLF) and `Connection: close`,
/// and reads the response to the end.
fn exchange(addr: SocketAddr, method: &str, target: &str, headers: &str) -> Response {
    let mut stream = connect(addr);
    let request =
        format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let (wire, end) = read_to_end(&mut stream);
    end.expect("the response ends with a clean close");
    let at = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&wire)));
    let head = String::from_utf8_lossy(&wire[..at + 2]).into_owned();
    let status = head[9..12].parse().unwrap();
    Response {
        status,
        head,
        body: wire[at + 4..].to_vec(),
    }
}

fn get(addr: SocketAddr, target: &str) -> Response {
    exchange(addr, "GET", target, "")
}

#[test]
fn a_file_is_served_with_its_type_and_length_and_head_gets_the_same_head() {
    let site = Site::new();
    site_client(&site, |addr| {
        let r = get(addr, "/hello.txt");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("content-length"), Some("21"));
        assert_eq!(r.body, HELLO);
        let r = get(addr, "/page.html");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.body, b"<p>page</p>");
        let h = exchange(addr, "HEAD", "/hello.txt", "");
        assert_eq!(h.status, 200, "{}", h.head);
        assert_eq!(h.header("content-length"), Some("21"));
        assert_eq!(h.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(h.header("etag").is_some(), "{}", h.head);
        assert!(h.body.is_empty(), "HEAD sends no body");
        // The routes still answer first.
        assert_eq!(get(addr, "/plaintext").body, b"Hello, World!");
    });
}

#[test]
fn directories_get_their_index_a_listing_or_a_redirect_to_the_slash() {
    let site = Site::new();
    site_client(&site, |addr| {
        let r = get(addr, "/site/");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.body, b"<h1>the index</h1>");
        let r = get(addr, "/sub/");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let html = String::from_utf8(r.body).unwrap();
        assert!(html.contains(r#"<a href="a.txt">a.txt</a>"#), "{html}");
        assert!(html.contains(r#"<a href="b.txt">b.txt</a>"#), "{html}");
        let r = get(addr, "/sub");
        assert_eq!(r.status, 301, "{}", r.head);
        assert_eq!(r.header("location"), Some("/sub/"));
    });
}

#[test]
fn conditional_gets_answer_304_without_a_body_or_a_length() {
    let site = Site::new();
    site_client(&site, |addr| {
        let r = get(addr, "/hello.txt");
        let etag = r.header("etag").unwrap().to_string();
        let modified = r.header("last-modified").unwrap().to_string();
        for condition in [
            format!("If-None-Match: {etag}\r\n"),
            format!("If-Modified-Since: {modified}\r\n"),
        ] {
            let r = exchange(addr, "GET", "/hello.txt", &condition);
            assert_eq!(r.status, 304, "{condition}: {}", r.head);
            assert_eq!(r.header("content-length"), None, "{}", r.head);
            assert_eq!(r.header("transfer-encoding"), None, "{}", r.head);
            assert_eq!(r.header("etag"), Some(etag.as_str()));
            assert!(r.body.is_empty(), "no body");
        }
        let r = exchange(addr, "GET", "/hello.txt", "If-None-Match: \"other\"\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, HELLO);
    });
}

#[test]
fn a_range_gets_206_with_exactly_its_bytes_and_an_unsatisfiable_one_416() {
    let site = Site::new();
    site_client(&site, |addr| {
        let r = exchange(addr, "GET", "/hello.txt", "Range: bytes=2-5\r\n");
        assert_eq!(r.status, 206, "{}", r.head);
        assert_eq!(r.header("content-range"), Some("bytes 2-5/21"));
        assert_eq!(r.header("content-length"), Some("4"));
        assert_eq!(r.body, &HELLO[2..6]);
        let r = exchange(addr, "GET", "/hello.txt", "Range: bytes=100-200\r\n");
        assert_eq!(r.status, 416, "{}", r.head);
        assert_eq!(r.header("content-range"), Some("bytes */21"));
        assert!(r.body.is_empty());
    });
}

#[test]
fn traversal_attempts_never_serve_a_file_outside_the_root() {
    let site = Site::new();
    let secret = site.base.join("secret.txt");
    let absolute = secret.to_str().unwrap().to_string();
    site_client(&site, move |addr| {
        let mut targets: Vec<String> = [
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2e/secret.txt",
            "/.%2e/secret.txt",
            "/%2f../secret.txt",
            "/%2f..%2fsecret.txt",
            "/..%2fsecret.txt",
            "/sub%2f..%2f..%2fsecret.txt",
            "/..%5csecret.txt",
            "/..\\secret.txt",
            "/link_out",
            "/link_up/secret.txt",
            "/link_up/",
            "http://t/../secret.txt",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        targets.push(format!("/{absolute}"));
        targets.push(format!("/%2f{}", absolute.trim_start_matches('/')));
        targets.push(absolute.replace('/', "%2f"));
        for target in &targets {
            let mut stream = connect(addr);
            let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let (wire, _) = read_to_end(&mut stream);
            let text = String::from_utf8_lossy(&wire);
            let status = text.get(9..12).unwrap_or("");
            assert!(["400", "403", "404"].contains(&status), "{target}: {text}");
            assert!(
                !wire.windows(SECRET.len()).any(|w| w == SECRET),
                "{target} leaked the secret: {text}"
            );
            assert!(
                !text.contains("secret.txt\">"),
                "{target} listed outside: {text}"
            );
        }
    });
}

/// The server's queued bytes for the connection of a client that reads 32 KiB, then waits
/// until the test thread has turned the reactor a few times (so the server refills what it
/// may), over an 8 MiB file: bounded by the high watermark plus a chunk, and every byte
/// arrives intact.
#[test]
fn a_large_file_to_a_slow_client_holds_bounded_server_memory() {
    const SIZE: usize = 8 << 20;
    const STEP: usize = 32 * 1024;
    let site = Site::new();
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    fs::write(site.root.join("big.bin"), &data).unwrap();
    // The connection's id, learnt by the handler.
    let id = Rc::new(Cell::new(None));
    let files = StaticFiles::new(&site.root).unwrap();
    let seen = id.clone();
    let router = Router::new().fallback(move |req: Request, res: Responder, r: &mut Reactor| {
        seen.set(Some(res.connection_id()));
        files.handle(req, res, r)
    });
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(router))
        .unwrap();
    let addr = port.local_addr();
    let (read_tx, read_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut r = reader(addr);
        r.get_mut()
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        assert!(
            head.contains(&format!("content-length: {SIZE}\r\n")),
            "{head}"
        );
        let mut body = Vec::with_capacity(SIZE);
        let mut buf = vec![0; STEP];
        while body.len() < SIZE {
            let n = r.read(&mut buf).unwrap();
            assert!(n > 0, "EOF after {} bytes", body.len());
            body.extend_from_slice(&buf[..n]);
            read_tx.send(()).unwrap();
            go_rx
                .recv_timeout(CLIENT_TIMEOUT)
                .expect("the test thread lets the client read on");
        }
        body
    });
    let mut max_queued = 0;
    let mut steps = 0;
    let sample = |reactor: &mut Reactor, max: &mut usize| {
        reactor.iterate(Duration::from_millis(1)).unwrap();
        if let Some(id) = id.get() {
            *max = (*max).max(reactor.queued_bytes(id));
        }
    };
    let deadline = Instant::now() + DEADLINE;
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "timed out");
        sample(&mut reactor, &mut max_queued);
        while read_rx.try_recv().is_ok() {
            steps += 1;
            for _ in 0..4 {
                sample(&mut reactor, &mut max_queued);
            }
            let _ = go_tx.send(());
        }
    }
    let body = match client.join() {
        Ok(body) => body,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    assert!(body == data, "every byte arrives intact, in order");
    // The high watermark (64 KiB), one 64 KiB chunk, a head.
    assert!(max_queued <= 128 * 1024 + 1024, "queued up to {max_queued}");
    assert!(
        max_queued >= 16 * 1024,
        "the client was slow enough to back the server up (max queued {max_queued})"
    );
    assert!(steps > 1, "the client read in steps");
}

#[test]
fn curl_fetches_a_range_and_makes_a_conditional_get() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("skipped: curl is not installed");
        return;
    }
    let site = Site::new();
    site_client(&site, |addr| {
        let url = format!("http://{addr}/hello.txt");
        let curl = |args: &[&str]| {
            let out = Command::new("curl")
                .args(["-sS", "--max-time", "10"])
                .args(args)
                .arg(&url)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(curl(&["-r", "2-5"]), "llo,");
        let out = curl(&["-r", "2-5", "-o", "/dev/null", "-w", "%{http_code}"]);
        assert_eq!(out, "206");
        let etag = get(addr, "/hello.txt").header("etag").unwrap().to_string();
        let condition = format!("If-None-Match: {etag}");
        let out = curl(&["-H", &condition, "-D", "-", "-o", "/dev/null"]);
        assert!(out.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{out}");
        assert!(
            !out.to_ascii_lowercase().contains("content-length"),
            "{out}"
        );
        assert_eq!(curl(&[]).as_bytes(), HELLO);
    });
}
