//! The `fetch URL...` example against a torsion `HttpServer` on a thread of the test whose
//! `/slow` answers after one second (a timer in the server): three such URLs take about one
//! second in all, not three; lines come in argument order, `STATUS BYTES URL` or
//! `ERR REASON URL`; the exit code is 1 if any URL failed, 0 if none did, 2 with no URL.
//! Missing example binaries skip as in `examples.rs`.

mod common;

use std::io;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::examples::{example, run_to_end};
use common::{any_loopback_port, closed_loopback_port};
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::{HeaderMap, StatusCode};
use torsion::{Reactor, ReactorHandle};

/// How long `/slow` takes to answer.
const DELAY: Duration = Duration::from_secs(1);

/// `/slow`'s body.
const SLOW_BODY: &str = "one second later";

/// A server on its own thread and reactor: `/slow` answers [`SLOW_BODY`] after [`DELAY`],
/// `/missing` a 404 with a body of 13 bytes. Stopped when dropped.
struct SlowServer {
    addr: SocketAddr,
    handle: ReactorHandle,
    thread: Option<thread::JoinHandle<()>>,
}

impl SlowServer {
    fn start() -> SlowServer {
        let (started, addr) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut reactor = Reactor::new().unwrap();
            let router = Router::new()
                .get("/slow", |_: Request, res: Responder, r: &mut Reactor| {
                    r.call_later(DELAY, move |r| {
                        res.respond(r, StatusCode::OK, &HeaderMap::new(), SLOW_BODY)
                    });
                })
                .get("/missing", |_: Request, res: Responder, r: &mut Reactor| {
                    res.respond(r, StatusCode::NOT_FOUND, &HeaderMap::new(), "no such thing")
                });
            let port = reactor
                .listen_tcp(any_loopback_port(), HttpServer::new(router))
                .unwrap();
            started.send((port.local_addr(), reactor.handle())).unwrap();
            reactor.run().unwrap();
        });
        let (addr, handle) = addr.recv().expect("the server started");
        SlowServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn three_slow_urls_take_about_one_second_together_and_exit_0() {
    let Some(fetch) = example("fetch") else {
        return;
    };
    let server = SlowServer::start();
    let urls: Vec<String> = (0..3).map(|n| server.url(&format!("/slow?{n}"))).collect();

    let started = Instant::now();
    let (status, stdout, stderr) = run_to_end(Command::new(fetch).args(&urls));
    let took = started.elapsed();

    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let expected: String = urls
        .iter()
        .map(|url| format!("200 {} {url}\n", SLOW_BODY.len()))
        .collect();
    assert_eq!(stdout, expected);
    // One at a time would take three seconds; together they take one, plus the start-up.
    assert!(
        took >= DELAY,
        "took {took:?}: the server answers after {DELAY:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}: the requests ran one after another"
    );
}

#[test]
fn a_refused_url_is_an_err_line_in_its_place_and_exit_1() {
    let Some(fetch) = example("fetch") else {
        return;
    };
    let server = SlowServer::start();
    let (slow, missing) = (server.url("/slow"), server.url("/missing"));
    let refused = format!("http://{}/", closed_loopback_port());

    let (status, stdout, stderr) =
        run_to_end(Command::new(fetch).args([&slow, &refused, &missing]));

    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    let refusal = io::Error::from_raw_os_error(rustix::io::Errno::CONNREFUSED.raw_os_error());
    // The refusal comes first, yet waits for the slow URL before it: argument order.
    assert_eq!(
        stdout,
        format!(
            "200 {} {slow}\nERR cannot connect: {refusal} {refused}\n404 13 {missing}\n",
            SLOW_BODY.len()
        )
    );
}

#[test]
fn an_invalid_url_fails_alone_and_a_404_is_not_a_failure() {
    let Some(fetch) = example("fetch") else {
        return;
    };
    let server = SlowServer::start();
    let missing = server.url("/missing");

    let (status, stdout, _) = run_to_end(Command::new(&fetch).arg(&missing));
    assert_eq!(status.code(), Some(0), "a 404 is a response");
    assert_eq!(stdout, format!("404 13 {missing}\n"));

    let (status, stdout, _) = run_to_end(Command::new(&fetch).args(["ftp://x/", &missing]));
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        stdout,
        format!("ERR unsupported URL scheme \"ftp\" ftp://x/\n404 13 {missing}\n")
    );
}

#[test]
fn no_url_is_a_usage_error_with_exit_2() {
    let Some(fetch) = example("fetch") else {
        return;
    };
    let (status, stdout, stderr) = run_to_end(&mut Command::new(fetch));
    assert_eq!(status.code(), Some(2));
    assert_eq!(stdout, "");
    assert_eq!(stderr, "usage: fetch URL...\n");
}
