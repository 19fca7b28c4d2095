//! Fetches every URL at once, with async code on the reactor, and prints one line per URL in
//! the order given: `STATUS BYTES URL` (BYTES: the body's length), or `ERR REASON URL` when
//! the request failed (REASON is one line: `cannot connect: Connection refused (os error
//! 111)`, `timed out after 30s`...).
//!
//! Run:   cargo run --example fetch -- URL...
//! Try:   cargo run --example http_server &
//!        cargo run --example fetch -- http://127.0.0.1:8080/plaintext http://127.0.0.1:8080/nope
//!
//! Each URL is a task of its own (`LocalHandle::spawn_task`) awaiting `AsyncHttpClient::get`,
//! so the requests are in flight together: three URLs that each take a second take about a
//! second in all. The main task awaits their handles in order and prints each line as soon
//! as it and the ones before it are done. Each request may take 30 s at most
//! (`LocalHandle::timeout`; a request given up is cancelled, its connection closed).
//! `https://` URLs are verified against the system's roots. Redirects are not followed (a 301
//! is printed as such); bodies are read whole, up to the client's 16 MiB limit; at most 6
//! connections per host are open at once, further requests to it wait for one.
//!
//! Exits 0 if every URL got a response (whatever its status), 1 if any failed, 2 with a usage
//! message on stderr when no URL is given. `RUST_LOG=debug` shows the reactor's logs.

use std::cell::Cell;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use torsion::protocols::http::client::AsyncHttpClient;
use torsion::task::LocalHandle;
use torsion::Reactor;

const USAGE: &str = "usage: fetch URL...";

/// The longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    // Lossy, not `args()`: a non-UTF-8 argument is an invalid URL, not a panic.
    let urls: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    if urls.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    match run(urls) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("fetch: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the reactor until every URL has its line; whether all of them got a response.
fn run(urls: Vec<String>) -> std::io::Result<bool> {
    let mut reactor = Reactor::new()?;
    let local = reactor.local_handle();
    let all_answered = Rc::new(Cell::new(false));
    let verdict = all_answered.clone();
    reactor.spawn_task(async move {
        verdict.set(fetch_all(&local, urls).await);
        local.defer(|reactor| reactor.stop());
    });
    reactor.run()?;
    Ok(all_answered.get())
}

/// Starts every request, then prints their lines in order; whether all got a response.
async fn fetch_all(local: &LocalHandle, urls: Vec<String>) -> bool {
    let client = AsyncHttpClient::new(local);
    let requests: Vec<_> = urls
        .iter()
        .map(|url| local.spawn_task(local.timeout(TIMEOUT, client.get(url.as_str()))))
        .collect();
    let mut all_answered = true;
    let mut stdout = std::io::stdout();
    for (url, request) in urls.iter().zip(requests) {
        let line = match request.await {
            Ok(Ok(Ok(response))) => format!("{} {}", response.status.as_u16(), response.body.len()),
            Ok(Ok(Err(error))) => failed(&error.to_string()),
            Ok(Err(_elapsed)) => failed(&format!("timed out after {TIMEOUT:?}")),
            Err(error) => failed(&error.to_string()),
        };
        all_answered &= !line.starts_with("ERR ");
        // A closed stdout is no reason to stop: the exit code still tells.
        let _ = writeln!(stdout, "{line} {url}");
    }
    all_answered
}

/// `ERR REASON`, the reason kept on one line.
fn failed(reason: &str) -> String {
    format!("ERR {}", reason.replace(['\r', '\n'], " "))
}
