//! An HTTP/1.1 server on torsion: keep-alive, pipelining, `Expect: 100-continue`, HEAD, and
//! a directory served as static files.
//!
//! Run:   cargo run --release --example http_server [ADDR] [DIR]
//!        (defaults 127.0.0.1:8080 and the current directory)
//! Try:   curl -i http://127.0.0.1:8080/plaintext
//!        curl -i http://127.0.0.1:8080/json
//!        curl -i --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//!        curl -i http://127.0.0.1:8080/              (DIR's index.html, or its listing)
//!        curl -i -r 0-99 http://127.0.0.1:8080/Cargo.toml   (206, the first 100 bytes)
//! Stop:  Ctrl-C or SIGTERM (a graceful shutdown; exits 0).
//!
//! Routes:
//! - `GET /plaintext` → `Hello, World!` as `text/plain`;
//! - `GET /json` → `{"message":"Hello, World!"}` as `application/json`;
//! - `POST /echo` → the request body back (`Content-Length` or chunked; up to 1 MiB, else 413);
//! - anything else is served from DIR (the router's fallback, `StaticFiles`): `GET` and
//!   `HEAD`, content types by extension, `index.html` or an HTML listing for a directory
//!   (301 to add its trailing slash), `ETag`/`Last-Modified` with 304, a single `Range`
//!   (206; 416 when unsatisfiable), large files sent a chunk at a time as the client reads;
//!   nothing outside DIR is ever served (`..`, encoded dots and slashes, backslashes,
//!   absolute paths, symlinks leading out: 403/404/400).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::static_files::StaticFiles;
use torsion::protocols::http::{header, HeaderMap, HeaderValue, StatusCode};
use torsion::Reactor;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let arg = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let addr: SocketAddr = match arg.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("http_server: bad address {arg:?}: {e} (usage: http_server [ADDR] [DIR])");
            return ExitCode::from(2);
        }
    };
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".to_string()));
    let files = match StaticFiles::new(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("http_server: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    match serve(addr, files) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_server: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: SocketAddr, files: StaticFiles) -> std::io::Result<()> {
    let mut reactor = Reactor::new()?;
    reactor.handle_signals()?;
    let root = files.root().display().to_string();
    let port = reactor.listen_tcp(addr, HttpServer::new(router().fallback(files)))?;
    println!(
        "http server listening on {}, serving {root}",
        port.local_addr()
    );
    reactor.run()
}

/// The fixed routes; everything else goes to the fallback.
fn router() -> Router {
    Router::new()
        .get(
            "/plaintext",
            |_: Request, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &typed("text/plain"), "Hello, World!")
            },
        )
        .get("/json", |_: Request, res: Responder, r: &mut Reactor| {
            let body = r#"{"message":"Hello, World!"}"#;
            res.respond(r, StatusCode::OK, &typed("application/json"), body)
        })
        .post("/echo", |req: Request, res: Responder, r: &mut Reactor| {
            let kind = req
                .head
                .headers
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, kind);
            res.respond(r, StatusCode::OK, &headers, req.body)
        })
}

/// Headers with just this `Content-Type`.
fn typed(content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers
}
