//! A small curl: sends one HTTP/1.1 request with torsion's `HttpClient` and prints the
//! response body to stdout, byte for byte, as it arrives.
//!
//! Run:   cargo run --example http_client -- URL [-X METHOD] [-d DATA] [-H 'Name: value']...
//!                                              [-L] [--timeout SECS] [-v] [--cacert PEM]
//! Try:   cargo run --example http_server &
//!        cargo run --example http_client -- http://127.0.0.1:8080/plaintext -v
//!        cargo run --example http_client -- http://127.0.0.1:8080/echo -d hello -H 'Content-Type: text/plain'
//!
//! - `-X METHOD`: the method (default `GET`, or `POST` with `-d`, as curl);
//! - `-d DATA`: the request body;
//! - `-H 'Name: value'`: a request header (repeatable);
//! - `-L`: follow redirects (at most 10);
//! - `--timeout SECS`: the limit on the whole request, connecting included (default 30; decimals
//!   allowed);
//! - `-v`: the status line and the response headers on stderr;
//! - `--cacert PEM`: for `https://` URLs, trust the CA certificates in that PEM file instead of
//!   the system's roots (e.g. the file `tls_echo_server` or a test CA wrote).
//!
//! `https://` URLs verify the server's certificate and name; a refused certificate is a
//! one-line `TLS error: ...` on stderr and exit 1.
//!
//! Exits 0 once a complete response arrived, whatever its status; otherwise 1 with one line on
//! stderr saying why (bad URL, refused connection, timeout, protocol error...), or 2 for a bad
//! command line.

use std::cell::RefCell;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use torsion::protocols::http::client::{
    ClientConfig, ClientError, HttpClient, Request, ResponseFlow, ResponseHandler,
};
use torsion::protocols::http::{HeaderMap, HeaderName, HeaderValue, Method, ResponseHead};
use torsion::{tls, Reactor};

const USAGE: &str =
    "usage: http_client URL [-X METHOD] [-d DATA] [-H 'Name: value']... [-L] [--timeout SECS] [-v] [--cacert PEM]";

/// The command line.
struct Args {
    request: Request,
    follow: bool,
    timeout: Duration,
    verbose: bool,
    cacert: Option<String>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("http_client: {message} ({USAGE})");
            return ExitCode::from(2);
        }
    };
    match fetch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("http_client: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut url, mut method, mut data) = (None, None, None);
    let mut headers = Vec::new();
    let (mut follow, mut verbose, mut timeout) = (false, false, Duration::from_secs(30));
    let mut cacert = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-X" => method = Some(value("-X")?),
            "-d" => data = Some(value("-d")?),
            "-H" => headers.push(header(&value("-H")?)?),
            "-L" => follow = true,
            "-v" => verbose = true,
            "--timeout" => timeout = seconds(&value("--timeout")?)?,
            "--cacert" => cacert = Some(value("--cacert")?),
            option if option.starts_with('-') => return Err(format!("unknown option {option}")),
            _ if url.is_some() => return Err(format!("unexpected argument {arg:?}")),
            _ => url = Some(arg),
        }
    }
    let url = url.ok_or("no URL")?;
    let method = match (method, &data) {
        (Some(m), _) => {
            Method::from_bytes(m.as_bytes()).map_err(|_| format!("bad method {m:?}"))?
        }
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let mut request = Request::new(method, url).body(data.unwrap_or_default());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    Ok(Args {
        request,
        follow,
        timeout,
        verbose,
        cacert,
    })
}

/// `Name: value`.
fn header(line: &str) -> Result<(HeaderName, HeaderValue), String> {
    let bad = || format!("bad header {line:?} (expected 'Name: value')");
    let (name, value) = line.split_once(':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or(format!("bad --timeout {text:?} (seconds, above 0)"))
}

/// Sends the request and runs the reactor until the response ends or fails.
fn fetch(args: Args) -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| format!("cannot start the reactor: {e}"))?;
    let mut config = ClientConfig::default()
        .with_connect_timeout(args.timeout)
        .with_request_timeout(Some(args.timeout))
        .with_head_timeout(None);
    if args.follow {
        config = config.with_redirects(10);
    }
    if let Some(path) = &args.cacert {
        // A file that cannot be read names itself; other errors need its name.
        let in_file = |e: tls::TlsConfigError| match e {
            tls::TlsConfigError::Io { .. } => format!("--cacert {e}"),
            e => format!("--cacert {path}: {e}"),
        };
        let roots = tls::roots_from_pem_file(path).map_err(in_file)?;
        let tls = tls::client_config(roots).map_err(in_file)?;
        config = config.with_tls(tls);
    }
    let outcome = Rc::new(RefCell::new(None));
    let printer = Printer {
        verbose: args.verbose,
        outcome: outcome.clone(),
    };
    HttpClient::with_config(config).send_streaming(&mut reactor, args.request, printer);
    reactor.run().map_err(|e| format!("reactor failed: {e}"))?;
    let result = outcome.borrow_mut().take();
    result.unwrap_or_else(|| Err("stopped before the response ended".to_string()))
}

/// Prints the response as it arrives; stops the reactor at its end.
struct Printer {
    verbose: bool,
    outcome: Rc<RefCell<Option<Result<(), String>>>>,
}

impl Printer {
    fn finish(&mut self, reactor: &mut Reactor, outcome: Result<(), String>) {
        *self.outcome.borrow_mut() = Some(outcome);
        reactor.stop();
    }
}

impl ResponseHandler for Printer {
    fn head(&mut self, _: &mut Reactor, head: ResponseHead, _: &mut ResponseFlow<'_>) {
        if self.verbose {
            let reason = head.status.canonical_reason().unwrap_or("");
            eprintln!("{:?} {} {reason}", head.version, head.status.as_str());
            for (name, value) in &head.headers {
                eprintln!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
            }
        }
    }

    fn data(&mut self, reactor: &mut Reactor, data: &[u8], flow: &mut ResponseFlow<'_>) {
        if let Err(e) = std::io::stdout().lock().write_all(data) {
            flow.abort();
            self.finish(
                reactor,
                Err(format!("cannot write the body to stdout: {e}")),
            );
        }
    }

    fn end(&mut self, reactor: &mut Reactor, _: HeaderMap) {
        let flushed = std::io::stdout()
            .flush()
            .map_err(|e| format!("stdout: {e}"));
        self.finish(reactor, flushed);
    }

    fn error(&mut self, reactor: &mut Reactor, error: ClientError) {
        self.finish(reactor, Err(error.to_string()));
    }
}
