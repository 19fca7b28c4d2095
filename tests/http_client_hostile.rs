//! The HTTP client against hostile or careless servers over real loopback sockets: a raw
//! `TcpListener` on a thread (tests/common/scripted.rs) writes every byte of each answer and
//! closes when the script says. A redirect after which the server closed its connection, a
//! flood of interim responses, an HTTP/1.0 response with a transfer coding.

mod common;

use std::cell::RefCell;
use std::io::Write;
use std::net::TcpStream;
use std::rc::Rc;

use common::scripted::{read_request, Scripted};
use common::*;
use socket2::SockRef;
use torsion::protocols::http::client::{ClientConfig, ClientError, HttpClient, Request, Response};
use torsion::protocols::http::{HttpError, Limits, StatusCode};
use torsion::Reactor;

fn fetch(client: &HttpClient, request: Request) -> Result<Response, ClientError> {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let result = Rc::new(RefCell::new(None));
    let slot = result.clone();
    client.send(&mut reactor, request, move |r, _| {
        *slot.borrow_mut() = Some(r)
    });
    run_until(&mut reactor, "the response", || result.borrow().is_some());
    let answer = result.borrow_mut().take();
    answer.expect("an answer")
}

/// Writes `response` and closes, the bytes and the FIN in one segment (`TCP_CORK` holds the
/// bytes until the close), so the client reads the response and the EOF together: the
/// server closed without saying `Connection: close`, and the client knows it by the time it
/// could reuse the connection.
fn answer_and_close(mut stream: TcpStream, response: &[u8]) {
    SockRef::from(&stream).set_tcp_cork(true).unwrap();
    stream.write_all(response).unwrap();
    drop(stream);
}

/// A server whose first connection answers a `POST /a` with `status` to `/b`, then closes;
/// the second gets the re-sent `POST /b` with its body and answers it. Returns the second
/// request as read.
fn redirect_then_close(status: u16) -> (Scripted, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = Scripted::start(move |accept| {
        let mut first = accept();
        let request = read_request(&mut first).expect("the first POST");
        assert!(request.starts_with("POST /a HTTP/1.1\r\n"), "{request}");
        let redirect =
            format!("HTTP/1.1 {status} Redirect\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n");
        answer_and_close(first, redirect.as_bytes());
        let mut second = accept();
        let request = read_request(&mut second).expect("the re-sent POST");
        second
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
            .unwrap();
        tx.send(request).unwrap();
    });
    (server, rx)
}

#[test]
fn a_307_or_308_after_which_the_server_closed_goes_on_a_fresh_connection() {
    for status in [307, 308] {
        let (server, requests) = redirect_then_close(status);
        let client = HttpClient::with_config(ClientConfig::default().with_redirects(5));
        let response = fetch(&client, Request::post(server.url("/a"), "payload"));
        let response = response.unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!(
            (response.status, &response.body[..]),
            (StatusCode::OK, &b"done"[..])
        );
        assert!(response.url.ends_with("/b"), "{}", response.url);
        let resent = requests.recv().unwrap();
        assert!(resent.starts_with("POST /b HTTP/1.1\r\n"), "{resent}");
        assert!(resent.contains("\r\ncontent-length: 7\r\n"), "{resent}");
        assert!(resent.ends_with("\r\n\r\npayload"), "{resent}");
        assert_eq!(server.accepted(), 2);
        server.thread.join().unwrap();
    }
}

#[test]
fn a_connection_closed_after_its_response_is_not_handed_a_new_request() {
    // The server answers with keep-alive, then closes: the next request goes on a new
    // connection, never on the closed one (which would fail it: a POST is not retried once
    // sent).
    let server = Scripted::start(|accept| {
        for body in ["one", "two"] {
            let mut stream = accept();
            read_request(&mut stream).expect("a request");
            let response = format!("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{body}");
            answer_and_close(stream, response.as_bytes());
        }
    });
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::new();
    let answers = Rc::new(RefCell::new(Vec::new()));
    let first = answers.clone();
    let next_client = client.clone();
    let url = server.url("/");
    client.send(
        &mut reactor,
        Request::post(server.url("/"), "1"),
        move |r, reactor| {
            first.borrow_mut().push(r.map(|r| r.body));
            // Sent from the first response's callback: the connection it came on is idle
            // in the pool, and its EOF arrived with it.
            let second = first.clone();
            next_client.send(reactor, Request::post(url, "2"), move |r, _| {
                second.borrow_mut().push(r.map(|r| r.body));
            });
        },
    );
    run_until(&mut reactor, "both answers", || answers.borrow().len() == 2);
    let bodies: Vec<_> = answers.borrow_mut().drain(..).map(Result::unwrap).collect();
    assert_eq!(bodies, ["one", "two"]);
    assert_eq!(server.accepted(), 2);
    server.thread.join().unwrap();
}

#[test]
fn endless_interim_responses_are_refused_at_the_head_limit() {
    let server = Scripted::start(|accept| {
        let mut stream = accept();
        read_request(&mut stream).expect("a request");
        let flood = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(200_000);
        // The client gives up long before the end: the rest meets a closed connection.
        let _ = stream.write_all(&flood);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    });
    let error = fetch(&HttpClient::new(), Request::get(server.url("/"))).unwrap_err();
    let max = Limits::DEFAULT_MAX_HEAD_LEN;
    assert!(
        matches!(
            &error,
            ClientError::Protocol(HttpError::InterimResponsesTooLarge { max: m }) if *m == max
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "protocol error: interim (1xx) responses longer than 32768 bytes in all"
    );
    server.thread.join().unwrap();
}

#[test]
fn a_few_interim_responses_are_skipped() {
    let server = Scripted::once(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
          HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let response = fetch(&HttpClient::new(), Request::get(server.url("/"))).unwrap();
    assert_eq!(response.body, "ok");
    server.thread.join().unwrap();
}

#[test]
fn transfer_encoding_in_an_http10_response_is_refused_as_a_response() {
    let server = Scripted::once(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    );
    let error = fetch(&HttpClient::new(), Request::get(server.url("/"))).unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(HttpError::TransferEncodingInHttp10 { what: "response" })
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "protocol error: Transfer-Encoding in an HTTP/1.0 response"
    );
    server.thread.join().unwrap();
}
