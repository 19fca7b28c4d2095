//! The HTTP client over real loopback sockets, part one: every response framing,
//! the refusals of bad responses, each timeout and the other errors, against torsion's own
//! `HttpServer`, a scripted raw-socket peer (tests/common/scripted.rs) and, when installed,
//! Python's `http.server`. Pooling, redirects and streaming are in `http_client_pool.rs`.

mod common;

use std::cell::RefCell;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::scripted::{read_request, Scripted};
use common::*;
use torsion::protocols::http::client::{
    ClientConfig, ClientError, HttpClient, Request, Response, TimeoutKind,
};
use torsion::protocols::http::server::{HttpServer, Request as ServerRequest, Responder, Router};
use torsion::protocols::http::{header, HeaderMap, HeaderValue, HttpError, StatusCode};
use torsion::{ConnectError, Reactor};

/// Sends `request` with `client` and turns the reactor until the answer.
fn fetch(
    reactor: &mut Reactor,
    client: &HttpClient,
    request: Request,
) -> Result<Response, ClientError> {
    let result = Rc::new(RefCell::new(None));
    let slot = result.clone();
    client.send(reactor, request, move |r, _| *slot.borrow_mut() = Some(r));
    run_until(reactor, "the response", || result.borrow().is_some());
    let answer = result.borrow_mut().take();
    answer.expect("an answer")
}

/// [`fetch`] with a fresh reactor and a client with `config`.
fn fetch_with(config: ClientConfig, request: Request) -> Result<Response, ClientError> {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    fetch(&mut reactor, &HttpClient::with_config(config), request)
}

fn get(url: &str) -> Result<Response, ClientError> {
    fetch_with(ClientConfig::default(), Request::get(url))
}

/// The scripted server's response to a GET, and the server thread's own verdict.
fn scripted_get(response: &'static [u8]) -> Result<Response, ClientError> {
    let server = Scripted::once(response);
    let result = get(&server.url("/"));
    server.thread.join().unwrap();
    result
}

fn echo_router() -> Router {
    Router::new()
        .get(
            "/plaintext",
            |_: ServerRequest, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "Hello, World!")
            },
        )
        .post(
            "/echo",
            |req: ServerRequest, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), req.body)
            },
        )
        .get(
            "/chunked",
            |_: ServerRequest, res: Responder, r: &mut Reactor| {
                let mut body = res.stream(r, StatusCode::OK, &HeaderMap::new());
                for piece in ["one ", "two ", "three"] {
                    body.write(r, piece);
                }
                body.finish(r);
            },
        )
        .get(
            "/cut",
            |_: ServerRequest, res: Responder, r: &mut Reactor| {
                let mut body = res.stream_with_length(r, StatusCode::OK, &HeaderMap::new(), 100);
                body.write(r, "only part");
                body.abort(r);
            },
        )
}

/// torsion's server with [`echo_router`] on a loopback port; returns its base URL.
fn serve_echo_router(reactor: &mut Reactor) -> String {
    let port = reactor
        .listen_tcp(any_loopback_port(), HttpServer::new(echo_router()))
        .unwrap();
    format!("http://{}", port.local_addr())
}

#[test]
fn torsion_server_answers_get_and_post_with_content_length() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let base = serve_echo_router(&mut reactor);
    let client = HttpClient::new();
    let response = fetch(
        &mut reactor,
        &client,
        Request::get(format!("{base}/plaintext")),
    )
    .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, "Hello, World!");
    assert_eq!(response.headers["content-length"], "13");
    let body = vec![7u8; 100_000];
    let post = Request::post(format!("{base}/echo"), body.clone()).header(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let response = fetch(&mut reactor, &client, post).unwrap();
    assert_eq!(response.body, body);
}

#[test]
fn torsion_server_streams_chunked_and_a_body_cut_short_is_an_error() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let base = serve_echo_router(&mut reactor);
    let client = HttpClient::new();
    let response = fetch(
        &mut reactor,
        &client,
        Request::get(format!("{base}/chunked")),
    )
    .unwrap();
    assert_eq!(response.headers["transfer-encoding"], "chunked");
    assert_eq!(response.body, "one two three");
    let cut = fetch(&mut reactor, &client, Request::get(format!("{base}/cut")));
    assert!(
        matches!(
            cut,
            Err(ClientError::Protocol(HttpError::Incomplete { .. }))
        ),
        "{cut:?}"
    );
}

#[test]
fn a_chunked_body_with_extensions_and_trailers() {
    let response = scripted_get(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n",
    )
    .unwrap();
    assert_eq!(response.body, "hello world");
    assert_eq!(response.trailers["x-checksum"], "42");
}

#[test]
fn a_body_without_length_ends_when_the_server_closes() {
    let response = scripted_get(b"HTTP/1.1 200 OK\r\n\r\nall of this until the close").unwrap();
    assert_eq!(response.body, "all of this until the close");
}

#[test]
fn interim_responses_are_skipped() {
    let response = scripted_get(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n\
          HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    )
    .unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.body, "ok");
    assert!(!response.headers.contains_key("link"));
}

#[test]
fn head_204_and_304_have_no_body_on_one_kept_alive_connection() {
    init_logging();
    // A body after any of these heads would be read as the next response and fail it.
    let server = Scripted::start(|accept| {
        let mut stream = accept();
        let answers: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n",
        ];
        for answer in answers {
            assert!(read_request(&mut stream).is_some());
            stream.write_all(answer).unwrap();
        }
    });
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::new();
    let head = fetch(&mut reactor, &client, Request::head(server.url("/"))).unwrap();
    assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0));
    assert_eq!(head.headers["content-length"], "1000");
    for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
        let response = fetch(&mut reactor, &client, Request::get(server.url("/"))).unwrap();
        assert_eq!((response.status, response.body.len()), (status, 0));
    }
    let accepted = server.accepted();
    server.thread.join().unwrap();
    assert_eq!(accepted, 1);
}

fn protocol_error(response: &'static [u8]) -> HttpError {
    match scripted_get(response) {
        Err(ClientError::Protocol(error)) => error,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(response)),
    }
}

#[test]
fn bad_responses_are_protocol_errors() {
    assert!(matches!(
        protocol_error(b"HTTP/1.1 2x0 OK\r\n\r\n"),
        HttpError::MalformedHead(_)
    ));
    assert!(matches!(
        protocol_error(b"SMTP ready\r\n\r\n"),
        HttpError::MalformedHead(_)
    ));
    assert_eq!(
        protocol_error(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        HttpError::ContentLengthWithTransferEncoding
    );
    assert_eq!(
        protocol_error(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        HttpError::InvalidContentLength
    );
    assert_eq!(
        protocol_error(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
        HttpError::Incomplete {
            what: "response body"
        }
    );
    let error = ClientError::Protocol(HttpError::InvalidContentLength).to_string();
    assert_eq!(
        error,
        "protocol error: invalid or conflicting Content-Length"
    );
}

#[test]
fn an_over_long_head_is_refused() {
    let server = Scripted::start(|accept| {
        let mut stream = accept();
        read_request(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
        let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
        for _ in 0..100 {
            if stream.write_all(line.as_bytes()).is_err() {
                return; // the client closed on us, as it should
            }
        }
    });
    let result = get(&server.url("/"));
    server.thread.join().unwrap();
    assert!(
        matches!(
            result,
            Err(ClientError::Protocol(HttpError::HeadTooLarge {
                max: 32768
            }))
        ),
        "{result:?}"
    );
}

#[test]
fn a_body_over_the_limit_is_refused() {
    let server = Scripted::once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    let config = ClientConfig::default().with_max_body_len(10);
    let result = fetch_with(config, Request::get(server.url("/")));
    server.thread.join().unwrap();
    assert!(
        matches!(result, Err(ClientError::BodyTooLarge { max: 10 })),
        "{result:?}"
    );
    let server = Scripted::once(b"HTTP/1.1 200 OK\r\n\r\n0123456789abcdef");
    let config = ClientConfig::default().with_max_body_len(10);
    let result = fetch_with(config, Request::get(server.url("/")));
    server.thread.join().unwrap();
    assert!(
        matches!(result, Err(ClientError::BodyTooLarge { max: 10 })),
        "{result:?}"
    );
}

#[test]
fn connect_timeout_against_a_listener_that_never_answers() {
    let silent = SilentListener::new();
    let config = ClientConfig::default().with_connect_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let result = fetch_with(config, Request::get(format!("http://{}/", silent.addr())));
    assert!(
        matches!(
            result,
            Err(ClientError::Timeout {
                which: TimeoutKind::Connect,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn head_timeout_when_the_server_reads_and_never_answers() {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let server = Scripted::start(move |accept| {
        let mut stream = accept();
        read_request(&mut stream);
        let _ = wait.recv_timeout(DEADLINE);
    });
    let config = ClientConfig::default().with_head_timeout(Some(Duration::from_millis(200)));
    let result = fetch_with(config, Request::get(server.url("/")));
    done.send(()).unwrap();
    server.thread.join().unwrap();
    let Err(
        error @ ClientError::Timeout {
            which: TimeoutKind::Head,
            ..
        },
    ) = result
    else {
        panic!("{result:?}");
    };
    assert!(error.to_string().contains("response head"), "{error}");
}

#[test]
fn request_timeout_when_the_body_stalls() {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let server = Scripted::start(move |accept| {
        let mut stream = accept();
        read_request(&mut stream);
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
            .unwrap();
        let _ = wait.recv_timeout(DEADLINE);
    });
    let config = ClientConfig::default()
        .with_head_timeout(None)
        .with_request_timeout(Some(Duration::from_millis(300)));
    let result = fetch_with(config, Request::get(server.url("/")));
    done.send(()).unwrap();
    server.thread.join().unwrap();
    assert!(
        matches!(
            result,
            Err(ClientError::Timeout {
                which: TimeoutKind::Request,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn a_refused_connection_is_a_connect_error() {
    let result = get(&format!("http://{}/", closed_loopback_port()));
    let Err(error @ ClientError::Connect(ConnectError::Refused(_))) = result else {
        panic!("{result:?}");
    };
    assert!(error.to_string().contains("refused"), "{error}");
}

#[test]
fn bad_urls_and_other_schemes_fail_with_their_own_errors() {
    assert!(matches!(
        get("not a url"),
        Err(ClientError::InvalidUrl { .. })
    ));
    assert!(matches!(
        get("/relative"),
        Err(ClientError::InvalidUrl { .. })
    ));
    assert!(matches!(
        get("ftp://127.0.0.1/"),
        Err(ClientError::UnsupportedScheme(_))
    ));
}

#[test]
fn a_name_that_does_not_resolve_is_a_resolve_error() {
    // A 64-byte label is over DNS's 63 (RFC 1035 §2.3.4): the system resolver refuses the
    // name without asking any DNS server, so the test stays on this machine.
    let host = format!("{}.invalid", "a".repeat(64));
    match get(&format!("http://{host}/")) {
        Err(ClientError::Resolve { host: name, .. }) => assert_eq!(name, host),
        other => panic!("{other:?}"),
    }
}

/// Python's `http.server` on a free port serving `dir`, killed when dropped.
struct PythonServer(std::process::Child);

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn python_http_server_is_a_real_peer() {
    if machine::require_tool("python3", "--version").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("torsion-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("data.bin"), &content).unwrap();
    let addr = closed_loopback_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(addr.port().to_string())
        .arg("--directory")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = PythonServer(child);
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "python3 http.server never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let client = HttpClient::new();
    let url = format!("http://{addr}/data.bin");
    let response = fetch(&mut reactor, &client, Request::get(url.as_str())).unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, content);
    let head = fetch(&mut reactor, &client, Request::head(url.as_str())).unwrap();
    assert_eq!(head.headers["content-length"], content.len().to_string());
    assert!(head.body.is_empty());
    let missing = fetch(
        &mut reactor,
        &client,
        Request::get(format!("http://{addr}/nope")),
    )
    .unwrap();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let _ = std::fs::remove_dir_all(&dir);
}
