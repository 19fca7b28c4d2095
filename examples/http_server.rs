//! An HTTP/1.1 server on torsion: keep-alive, pipelining, `Expect: 100-continue`, HEAD, and
//! a directory served as static files.
//!
//! Run:   cargo run --release --example http_server [ADDR] [DIR] [--tls-cert PEM --tls-key PEM]
//!            [--no-listing] [--dotfiles] [--threads N] [--max-connections N]
//!        (defaults 127.0.0.1:8080 and the current directory; options anywhere)
//!        ADDR: an IP:PORT, or a server endpoint string: `tcp:8080:interface=127.0.0.1`,
//!        `tcp6:8080`, `tcp:8080:backlog=4096`, `haproxy:tcp:8080` (behind HAProxy), or `tls:8443:privateKey=key.pem:certKey=cert.pem`
//!        (HTTPS, the same as `--tls-cert cert.pem --tls-key key.pem`); see `docs/endpoints.md`
//!        --no-listing: a directory without index.html is 403 instead of listed;
//!        --dotfiles: serve and list hidden files (`.git/`, `.env`...), 404 by default;
//!        --threads N: N reactors on N threads accepting on one shared socket (default 1);
//!        --max-connections N (anywhere): at most N connections open per reactor, the next
//!        wait in the backlog;
//! Try:   curl -i http://127.0.0.1:8080/plaintext
//!        curl -i 'http://127.0.0.1:8080/hello/J%C3%BCrgen?greeting=Gr%C3%BC%C3%9F+Gott'
//!        curl http://127.0.0.1:8080/metrics          (the counters, for Prometheus; with --threads,
//!                                                     every reactor's, the others' up to a second old)
//!        curl -i http://127.0.0.1:8080/json
//!        curl -i -b visits=41 http://127.0.0.1:8080/counter   (visits: 42, and its cookie)
//!        curl -i --data-binary @Cargo.toml http://127.0.0.1:8080/echo
//!        curl -i http://127.0.0.1:8080/              (DIR's index.html, or its listing)
//!        curl -i -r 0-99 http://127.0.0.1:8080/Cargo.toml   (206, the first 100 bytes)
//! HTTPS: cargo run --release --example http_server -- --tls-cert cert.pem --tls-key key.pem
//!        curl --cacert ca.pem https://localhost:8080/plaintext
//!        (cert.pem: the server's certificate, then any intermediates; key.pem: its key;
//!        ca.pem: the CA that issued it, or cert.pem itself if it is self-signed. A
//!        self-signed pair for trying it out, valid for localhost and 127.0.0.1:
//!        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
//!            -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
//!            -keyout key.pem -out cert.pem
//!        then curl --cacert cert.pem https://localhost:8080/plaintext)
//! Stop:  Ctrl-C or SIGTERM (a graceful shutdown; exits 0).
//!
//! It prints `http server listening on ADDR, serving DIR` (`https server ...` with TLS) once
//! it accepts connections; exits 2 on bad arguments (an unreadable certificate or key too).
//!
//! Routes:
//! - `GET /plaintext` → `Hello, World!` as `text/plain`;
//! - `GET /json` → `{"message":"Hello, World!"}` as `application/json`;
//! - `GET /ip` → the client's address as the server sees it, `IP:PORT` as `text/plain` (the
//!   original client's behind a proxy on a `haproxy:tcp:PORT` endpoint);
//! - `GET /counter` → `visits: N` as `text/plain`, and the cookie `visits=N` (one more than
//!   the request's `visits` cookie; 1 without one, or with one that is not a number);
//! - `POST /echo` → the request body back (`Content-Length` or chunked; up to 1 MiB, else 413);
//! - `GET /hello/{name}` → `Hello, NAME!` as `text/plain`, or `GREETING, NAME!` with
//!   `?greeting=GREETING`; both percent-decoded UTF-8 (`+` is a space in the greeting), else 400;
//! - `GET /ws/echo` → a WebSocket echoing each message as it came, text or binary (up to
//!   16 MiB; try `python3 -m websockets ws://127.0.0.1:8080/ws/echo`);
//! - anything else is served from DIR (the router's fallback, `StaticFiles`): `GET` and
//!   `HEAD`, content types by extension, `index.html` or an HTML listing for a directory
//!   (301 to add its trailing slash; 403 with `--no-listing`), `ETag`/`Last-Modified` with
//!   304, a single `Range` (206; 416 when unsatisfiable), files read off the reactor thread
//!   and sent with `sendfile` as the client reads; nothing outside DIR is ever served (`..`,
//!   encoded dots and slashes, backslashes, absolute paths, symlinks leading out:
//!   403/404/400), nor hidden paths (`/.git/config`, `/.env`: 404) without `--dotfiles`.

#[path = "shared/options.rs"]
mod options;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use torsion::protocols::http::cookie::{SameSite, SetCookie};
use torsion::protocols::http::server::{HttpServer, Request, Responder, Router};
use torsion::protocols::http::static_files::StaticFiles;
use torsion::protocols::http::{header, HeaderMap, HeaderValue, StatusCode};
use torsion::protocols::websocket::{self, Message, Sender, WebSocketHandler};
use torsion::rustls::ServerConfig;
use torsion::tls::{self, ClientAuth, Identity};
use torsion::{
    ConnectionLimits, Metrics, Reactor, Reactors, ServerEndpoint, SharedListener, TlsOptions,
};

const USAGE: &str =
    "usage: http_server [ADDR] [DIR] [--tls-cert PEM --tls-key PEM] [--no-listing] [--dotfiles] [--max-connections N]";

/// The command line.
struct Options {
    endpoint: ServerEndpoint,
    dir: PathBuf,
    /// `--tls-cert` and `--tls-key`: serve HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
    /// Not `--no-listing`: list directories that have no `index.html`.
    listing: bool,
    /// `--dotfiles`: serve hidden files.
    dotfiles: bool,
    /// `--threads N`: reactors (threads) accepting on the port.
    threads: usize,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let max_connections = match options::take_max_connections(&mut args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("http_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = match parse_args(args.into_iter()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("http_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (files, tls) = match load(&options) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("http_server: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(
        options.endpoint,
        files,
        tls,
        options.threads,
        max_connections,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `[ADDR] [DIR] [--tls-cert PEM --tls-key PEM] [--no-listing] [--dotfiles]`,
/// options before, between or after the positionals; `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut positional = Vec::new();
    let (mut cert, mut key) = (None, None);
    let (mut listing, mut dotfiles) = (true, false);
    let mut threads = 1;
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--threads" => {
                threads = match args.next().map(|n| n.parse::<usize>()) {
                    Some(Ok(n)) if n > 0 => n,
                    _ => return Err("--threads needs a number of threads, 1 or more".into()),
                };
                continue;
            }
            "--no-listing" => {
                listing = false;
                continue;
            }
            "--dotfiles" => {
                dotfiles = true;
                continue;
            }
            "--tls-cert" => &mut cert,
            "--tls-key" => &mut key,
            option if option.starts_with("--") => {
                return Err(format!("unknown option {option}"));
            }
            _ => {
                positional.push(arg);
                continue;
            }
        };
        let value = args.next().ok_or(format!("{arg} needs a file"))?;
        *slot = Some(PathBuf::from(value));
    }
    if positional.len() > 2 {
        return Err(format!("unexpected argument {:?}", positional[2]));
    }
    let mut positional = positional.into_iter();
    let addr = positional
        .next()
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let endpoint: ServerEndpoint = addr
        .parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?;
    let dir = PathBuf::from(positional.next().unwrap_or_else(|| ".".to_string()));
    let tls = match (cert, key, &endpoint) {
        (Some(_), _, ServerEndpoint::Tls { .. }) | (_, Some(_), ServerEndpoint::Tls { .. }) => {
            return Err("a tls: ADDR names its certificate: no --tls-cert or --tls-key".into());
        }
        (
            None,
            None,
            ServerEndpoint::Tls {
                cert_chain,
                private_key,
                ..
            },
        ) => Some((cert_chain.clone(), private_key.clone())),
        (Some(cert), Some(key), _) => Some((cert, key)),
        (None, None, _) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_string()),
    };
    Ok(Some(Options {
        endpoint,
        dir,
        tls,
        listing,
        dotfiles,
        threads,
    }))
}

/// What the files name: the directory to serve, and the TLS configuration if asked for.
fn load(options: &Options) -> Result<(StaticFiles, Option<ServerConfig>), String> {
    let files = StaticFiles::new(&options.dir)
        .map_err(|e| format!("{}: {e}", options.dir.display()))?
        .with_listing(options.listing)
        .with_dotfiles(options.dotfiles);
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    Ok((files, tls))
}

/// The HTTPS configuration: this certificate chain and key, ALPN `http/1.1` (so a client
/// offering `h2` and `http/1.1`, as curl does, knows which one it is speaking).
fn tls_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let identity = Identity::from_pem_files(cert, key).map_err(|e| e.to_string())?;
    let mut config = tls::server_config(identity, ClientAuth::None).map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn serve(
    endpoint: ServerEndpoint,
    files: StaticFiles,
    tls: Option<ServerConfig>,
    threads: usize,
    max_connections: Option<usize>,
) -> std::io::Result<()> {
    let tls = tls.map(Arc::new);
    // The first reactor listens and shares its socket with the others.
    let shared: OnceLock<SharedListener> = OnceLock::new();
    let published = Published::new(threads);
    Reactors::new(threads)
        .handle_signals()
        .run(move |reactor, index| {
            if threads > 1 {
                published.clone().publish_every_second(reactor, index);
            }
            let routes = router(published.clone(), index);
            let server = HttpServer::new(routes.fallback(files.clone()));
            if let Some(socket) = shared.get() {
                let port = reactor.listen_shared(socket, server)?;
                if let Some(n) = max_connections {
                    // Per reactor: each of the `threads` reactors holds at most `n`.
                    port.set_limits(reactor, ConnectionLimits::new().max_connections(n));
                }
                return Ok(());
            }
            // The same server either way: TLS is a stage under the HTTP protocol. The
            // certificate was loaded already (with ALPN), so a `tls:` endpoint only gives
            // its address here.
            let (port, scheme) = match &tls {
                Some(config) => {
                    let options = TlsOptions::default();
                    let port = reactor.listen_tls_endpoint(
                        endpoint.clone(),
                        config.clone(),
                        server,
                        options,
                    )?;
                    (port, "https")
                }
                None => (reactor.listen(endpoint.clone(), server)?, "http"),
            };
            if let Some(n) = max_connections {
                // Per reactor: each of the `threads` reactors holds at most `n`.
                port.set_limits(reactor, ConnectionLimits::new().max_connections(n));
            }
            let _ = shared.set(port.share(reactor)?);
            println!(
                "{scheme} server listening on {}, serving {}",
                port.address(reactor).expect("listening"),
                files.root().display()
            );
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
}

/// Each reactor's counters as it last published them, for `/metrics` to sum: the reactor
/// answering adds its own live ones to the others' (at most a second old). Reactors share
/// nothing else; this lock is taken once a second per reactor and once per `/metrics`.
#[derive(Clone)]
struct Published(Arc<Mutex<Vec<Metrics>>>);

impl Published {
    fn new(reactors: usize) -> Published {
        Published(Arc::new(Mutex::new(vec![Metrics::default(); reactors])))
    }

    /// Publishes reactor `index`'s counters now and then every second.
    fn publish_every_second(self, reactor: &mut Reactor, index: usize) {
        if let Ok(mut slots) = self.0.lock() {
            slots[index] = reactor.metrics();
        }
        reactor.call_later(Duration::from_secs(1), move |reactor| {
            self.publish_every_second(reactor, index)
        });
    }

    /// Reactor `index`'s live counters plus every other reactor's last published ones.
    fn sum(&self, reactor: &Reactor, index: usize) -> Metrics {
        let others: Metrics = match self.0.lock() {
            Ok(slots) => slots
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(_, m)| *m)
                .sum(),
            Err(_) => Metrics::default(),
        };
        reactor.metrics() + others
    }
}

/// The fixed routes; everything else goes to the fallback.
fn router(published: Published, index: usize) -> Router {
    // A response borrows its headers: the fixed ones are built once, not per request.
    let plaintext = typed("text/plain");
    let json = typed("application/json");
    let text = plaintext.clone();
    let prometheus = typed("text/plain; version=0.0.4");
    Router::new()
        .get(
            "/plaintext",
            move |_: Request, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &plaintext, "Hello, World!")
            },
        )
        .get(
            "/json",
            move |_: Request, res: Responder, r: &mut Reactor| {
                let body = r#"{"message":"Hello, World!"}"#;
                res.respond(r, StatusCode::OK, &json, body)
            },
        )
        .get("/ip", move |_: Request, res: Responder, r: &mut Reactor| {
            let peer = r.peer_address(res.connection_id());
            let body = peer.map_or_else(|e| format!("unknown: {e}"), |a| a.to_string());
            res.respond(r, StatusCode::OK, &text, body)
        })
        .get(
            "/metrics",
            move |_: Request, res: Responder, r: &mut Reactor| {
                let body = published.sum(r, index).to_prometheus();
                res.respond(r, StatusCode::OK, &prometheus, body)
            },
        )
        .get("/counter", counter)
        .get("/hello/{name}", hello)
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
        .get("/ws/echo", ws_echo)
}

/// `GET /ws/echo`: a WebSocket that sends every message back as it came (text as text,
/// binary as binary), messages up to 16 MiB.
fn ws_echo(req: Request, res: Responder, r: &mut Reactor) {
    struct Echo;
    impl WebSocketHandler for Echo {
        fn on_message(&mut self, ws: &mut Sender<'_, '_>, message: Message) {
            // Fails only once this side has closed: nothing is left to echo to.
            let _ = ws.send(&message);
        }
    }
    websocket::accept(&req, res, r, Echo, 16 << 20);
}

/// `GET /counter`: counts the visits of a client in a cookie it sends back.
fn counter(req: Request, res: Responder, r: &mut Reactor) {
    let seen = req.cookie("visits").and_then(|v| v.parse::<u64>().ok());
    let visits = seen.and_then(|n| n.checked_add(1)).unwrap_or(1);
    let cookie = SetCookie::new("visits", visits.to_string())
        .path("/")
        .http_only()
        .same_site(SameSite::Lax);
    let mut headers = typed("text/plain");
    match cookie.to_header_value() {
        Ok(value) => {
            headers.insert(header::SET_COOKIE, value);
        }
        // A number is always a valid cookie value; this is the builder's contract, not input.
        Err(e) => log::error!("the visits cookie: {e}"),
    }
    res.respond(r, StatusCode::OK, &headers, format!("visits: {visits}"))
}

/// `GET /hello/{name}[?greeting=G]`: `Hello, NAME!` or `G, NAME!`. The router answers 400
/// for a name that does not decode to UTF-8; a malformed query is 400 here.
fn hello(req: Request, res: Responder, r: &mut Reactor) {
    let name = req.param("name").unwrap_or_default();
    let (status, body) = match req.query_param("greeting") {
        Ok(greeting) => {
            let greeting = greeting.as_deref().unwrap_or("Hello");
            (StatusCode::OK, format!("{greeting}, {name}!"))
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("bad query: {e}\n")),
    };
    res.respond(r, status, &typed("text/plain; charset=utf-8"), body)
}

/// Headers with just this `Content-Type`.
fn typed(content_type: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers
}
