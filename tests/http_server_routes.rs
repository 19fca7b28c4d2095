//! `http_server`'s routes with parameters and query strings, over a real socket: `GET
//! /hello/{name}` with and without `?greeting=`, percent-decoded UTF-8 (400 when not), a
//! method the path does not allow (405 with `Allow`), and a path nothing serves (404). The
//! binary is found, or the test skipped outside CI, as in `common/examples.rs`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;

use common::servers;
use common::CLIENT_TIMEOUT;

/// An empty directory of this test's own, removed when dropped.
struct EmptyDir(PathBuf);

impl EmptyDir {
    fn new() -> EmptyDir {
        let dir = std::env::temp_dir().join(format!("torsion-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        EmptyDir(dir)
    }
}

impl Drop for EmptyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends `request` (which ends with `Connection: close`) and returns the whole response.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8(response).expect("a UTF-8 response")
}

fn request(method: &str, target: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

/// The status line, the lowercase head, and the body of `response`.
fn split(response: &str) -> (&str, String, &str) {
    let (head, body) = response.split_once("\r\n\r\n").expect("a whole head");
    let status = head.lines().next().unwrap();
    (status, head.to_lowercase(), body)
}

#[test]
fn http_server_greets_by_path_parameter_and_query_and_refuses_the_rest() {
    let dir = EmptyDir::new();
    let dir_arg = dir.0.display().to_string();
    let Some((mut server, addr)) =
        servers::start_server("http_server", &["127.0.0.1:0", &dir_arg], None)
    else {
        return;
    };
    let addr: SocketAddr = addr.parse().expect("an address");

    let response = exchange(addr, &request("GET", "/hello/world"));
    let (status, head, body) = split(&response);
    assert_eq!(status, "HTTP/1.1 200 OK", "{response}");
    assert!(
        head.contains("\r\ncontent-type: text/plain; charset=utf-8\r\n"),
        "{head}"
    );
    assert_eq!(body, "Hello, world!");

    let target = "/hello/J%C3%BCrgen?greeting=Gr%C3%BC%C3%9F%20Gott";
    let response = exchange(addr, &request("GET", target));
    let (status, _, body) = split(&response);
    assert_eq!(status, "HTTP/1.1 200 OK", "{response}");
    assert_eq!(body, "Grüß Gott, Jürgen!");

    // `+` is a space in a query, not in a path.
    let response = exchange(addr, &request("GET", "/hello/a+b?greeting=Hi+there"));
    assert_eq!(split(&response).2, "Hi there, a+b!");

    for bad in [
        "/hello/%FF",
        "/hello/%C3",
        "/hello/x?greeting=%E0%A4",
        "/hello/x?greeting=%zz",
    ] {
        let response = exchange(addr, &request("GET", bad));
        assert!(response.starts_with("HTTP/1.1 400 "), "{bad}: {response}");
    }

    // The path is served with GET and HEAD only (the router's fallback, the static files,
    // answers other methods the same way on every path).
    let response = exchange(addr, &request("DELETE", "/hello/world"));
    let (status, head, _) = split(&response);
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed", "{response}");
    assert!(head.contains("\r\nallow: get, head\r\n"), "{head}");

    for missing in ["/hello", "/hello/", "/hello/a/b", "/nothing-here"] {
        let response = exchange(addr, &request("GET", missing));
        assert!(
            response.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}: {response}"
        );
    }

    assert!(server.terminate("http_server").success());
}
