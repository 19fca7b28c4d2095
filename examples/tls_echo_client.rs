//! A TLS echo client: sends each MESSAGE as a line, prints each echoed line, then closes
//! with close_notify.
//!
//! Run:   cargo run --example tls_echo_client ADDR --cafile PEM [--name NAME]
//!            [--cert PEM --key PEM] MESSAGE...
//!        ADDR: HOST:PORT, or a client endpoint string: `tls:host=HOST:port=PORT`, with
//!        `:timeout=SECONDS` and `:trustRoots=PEM` (instead of `--cafile`) if wanted (see
//!        `docs/endpoints.md`); the connection is TLS either way
//! Try:   cargo run --example tls_echo_server       (prints `certificate: PATH`)
//!        cargo run --example tls_echo_client 127.0.0.1:8443 \
//!            --cafile /tmp/torsion-tls-echo-8443.pem hello world
//!        cargo run --example tls_echo_client 127.0.0.1:8443 \
//!            --cafile /tmp/torsion-tls-echo-8443.pem --name example.com hello
//!            (refused: the certificate is not valid for that name)
//! Logs:  RUST_LOG=debug cargo run --example tls_echo_client ...   (default: errors only)
//!
//! It verifies the server's certificate against the CA certificates in `--cafile` (with the
//! self-signed certificate `tls_echo_server` makes, that file itself) and for the name
//! `--name`, by default the host part of ADDR (a DNS name or an IP address: both can be
//! certified). A host with IPv6 and IPv4 addresses is connected to with Happy Eyeballs. `--cert PEM --key PEM` (both or neither) present a client certificate to a
//! server that asks for one (`tls_echo_server --client-ca`). Options go before or after ADDR;
//! `--` ends them, for a MESSAGE that starts with `-`.
//!
//! Exits 0 once every line came back and the connection closed; exits 1 with one line on
//! stderr naming the reason (unknown CA, name mismatch, expired certificate, certificate
//! required, refused connection...) if it cannot connect, the handshake fails or the server
//! closes early; exits 2 on bad arguments.

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::rustls::ClientConfig;
use torsion::tls::{self, Identity};
use torsion::{
    Address, ClientEndpoint, ClientFactory, ConnectError, ConnectOptions, Context,
    DisconnectReason, Protocol, Reactor,
};

const USAGE: &str =
    "usage: tls_echo_client ADDR --cafile PEM [--name NAME] [--cert PEM --key PEM] MESSAGE...";

/// How the run ended, filled in by the protocol or the factory.
type Outcome = Rc<RefCell<Option<Result<(), String>>>>;

struct LineEcho {
    /// Every message, each with its newline: sent at once when the connection is made.
    lines: Vec<u8>,
    /// Echoed lines still to come.
    remaining: usize,
    /// The longest line sent, newline included: an echo longer than that is not ours, and
    /// what this client buffers stays below it.
    longest: usize,
    /// The echoed line being received.
    partial: Vec<u8>,
    outcome: Outcome,
}

impl LineEcho {
    /// Prints every complete line in `partial`; true once every echo came back.
    fn print_lines(&mut self) -> bool {
        let mut stdout = std::io::stdout().lock();
        let mut start = 0;
        while self.remaining > 0 {
            let Some(len) = self.partial[start..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let end = start + len + 1;
            let _ = stdout.write_all(&self.partial[start..end]);
            start = end;
            self.remaining -= 1;
        }
        let _ = stdout.flush();
        self.partial.drain(..start);
        self.remaining == 0
    }

    fn finish(&self, result: Result<(), String>) {
        self.outcome.borrow_mut().get_or_insert(result);
    }
}

impl Protocol for LineEcho {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        // The handshake is complete: the server proved its name.
        cx.write(&self.lines);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if self.remaining == 0 {
            return; // more than was sent: ignored, the connection is closing
        }
        self.partial.extend_from_slice(data);
        if self.print_lines() {
            self.finish(Ok(()));
            cx.lose_connection(); // close_notify, then the TCP close
        } else if self.partial.len() > self.longest {
            self.finish(Err(
                "the server sent a line that was never sent to it".into()
            ));
            cx.abort_connection();
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        let why = match reason {
            // With TLS 1.3 a server that refuses our certificate says so after our side of
            // the handshake is done, so it comes here, the alert named ("connection lost:
            // peer refused the TLS session: CertificateRequired").
            DisconnectReason::Tls(_) => reason.to_string(),
            _ => format!("server closed the connection before echoing everything ({reason})"),
        };
        self.finish(Err(why));
        cx.reactor().stop();
    }
}

struct Client {
    protocol: Option<LineEcho>,
    outcome: Outcome,
}

impl ClientFactory for Client {
    type Protocol = LineEcho;

    fn build_protocol(&mut self, _peer: Address) -> LineEcho {
        self.protocol.take().expect("one connection")
    }

    fn client_connection_failed(&mut self, reactor: &mut Reactor, error: ConnectError) {
        // ConnectError::Tls says which check failed: "TLS handshake failed: peer
        // certificate refused: not valid for the requested name".
        *self.outcome.borrow_mut() = Some(Err(error.to_string()));
        reactor.stop();
    }
}

/// The command line.
struct Options {
    /// ADDR: a `tcp:` or `tls:` endpoint (TLS either way), or a plain HOST:PORT.
    endpoint: ClientEndpoint,
    cafile: PathBuf,
    name: Option<String>,
    identity: Option<(PathBuf, PathBuf)>,
    messages: Vec<String>,
    /// ADDR as given, for messages.
    target: String,
}

fn main() -> ExitCode {
    // `error` by default: the reactor's own warning about a refused session would repeat the
    // one line this program prints. RUST_LOG=debug shows the handshake.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tls_echo_client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match client_config(&options) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tls_echo_client: {e}");
            return ExitCode::from(2);
        }
    };
    let target = options.target.clone();
    match run(options, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tls_echo_client: {target}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the arguments; `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut positional = Vec::new();
    let (mut cafile, mut name, mut cert, mut key) = (None, None, None, None);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--cafile" => &mut cafile,
            "--name" => &mut name,
            "--cert" => &mut cert,
            "--key" => &mut key,
            "--" => {
                positional.extend(args.by_ref());
                break;
            }
            option if option.starts_with("--") => {
                return Err(format!("unknown option {option}"));
            }
            _ => {
                positional.push(arg);
                continue;
            }
        };
        *slot = Some(args.next().ok_or(format!("{arg} needs a value"))?);
    }
    let mut positional = positional.into_iter();
    let target = positional.next().ok_or("ADDR is missing")?;
    let endpoint: ClientEndpoint = target
        .parse()
        .map_err(|e| format!("bad address {target:?}: {e}"))?;
    let cafile = match (cafile, &endpoint) {
        (
            Some(_),
            ClientEndpoint::Tls {
                trust_roots: Some(_),
                ..
            },
        ) => {
            return Err("--cafile and trustRoots= say the same: give one".into());
        }
        (Some(cafile), _) => PathBuf::from(cafile),
        (
            None,
            ClientEndpoint::Tls {
                trust_roots: Some(roots),
                ..
            },
        ) => roots.clone(),
        (None, _) => return Err("--cafile PEM is required".into()),
    };
    if let ClientEndpoint::Unix { .. } = endpoint {
        return Err(format!("bad address {target:?}: TLS goes over TCP here"));
    }
    let messages: Vec<String> = positional.collect();
    if messages.is_empty() {
        return Err("no MESSAGE to send".into());
    }
    if messages.iter().any(|m| m.contains('\n')) {
        return Err("a MESSAGE is one line: it cannot hold a newline".into());
    }
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert.into(), key.into())),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    Ok(Some(Options {
        endpoint,
        target,
        cafile,
        name,
        identity,
        messages,
    }))
}

/// Trusts the CAs in `--cafile`; presents `--cert` if given.
fn client_config(options: &Options) -> Result<ClientConfig, String> {
    // A file that cannot be read names itself; other errors need its name.
    let roots = tls::roots_from_pem_file(&options.cafile).map_err(|e| match e {
        tls::TlsConfigError::Io { .. } => e.to_string(),
        e => format!("{}: {e}", options.cafile.display()),
    })?;
    let config = match &options.identity {
        Some((cert, key)) => {
            let identity = Identity::from_pem_files(cert, key).map_err(|e| e.to_string())?;
            tls::client_config_with_identity(roots, identity)
        }
        None => tls::client_config(roots),
    };
    config.map_err(|e| e.to_string())
}

fn run(options: Options, config: ClientConfig) -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    let outcome = Outcome::default();
    let factory = Client {
        protocol: Some(protocol(&options.messages, &outcome)),
        outcome: outcome.clone(),
    };
    // ADDR's host is resolved and its addresses tried (raced if of both families); the
    // certificate must be valid for that host, unless `--name` says which name instead.
    let mut connect = ConnectOptions::new().tls(config);
    if let Some(name) = options.name {
        connect = connect.server_name(name);
    }
    reactor
        .connect_endpoint_with(options.endpoint, factory, connect)
        .map_err(|e| e.to_string())?;
    reactor.run().map_err(|e| e.to_string())?;
    let result = outcome.borrow_mut().take();
    result.unwrap_or_else(|| Err("the reactor stopped unexpectedly".to_string()))
}

fn protocol(messages: &[String], outcome: &Outcome) -> LineEcho {
    let lines: Vec<u8> = messages
        .iter()
        .flat_map(|m| [m.as_bytes(), b"\n"])
        .flatten()
        .copied()
        .collect();
    LineEcho {
        lines,
        remaining: messages.len(),
        longest: messages.iter().map(|m| m.len() + 1).max().unwrap_or(1),
        partial: Vec::new(),
        outcome: outcome.clone(),
    }
}
