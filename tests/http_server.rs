//! The HTTP server (issue 6, points 2 and 4) over real loopback sockets: an `HttpServer`
//! listens in-process with the example's routes, blocking std clients (and `curl`, when
//! installed) talk to it from threads, and the reactor turns on the test thread until they
//! finish.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread::{self, JoinHandle};

use common::*;
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
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
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(router()))
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
