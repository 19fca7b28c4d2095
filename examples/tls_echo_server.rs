//! A TLS echo server: every byte a client sends comes back, over TLS.
//!
//! Run:   cargo run --example tls_echo_server [ADDR] [--cert PEM --key PEM] [--client-ca PEM]
//!            [--threads N]
//!        (default ADDR 127.0.0.1:8443; options before or after ADDR)
//!        --threads N: N reactors on N threads accepting on one shared socket (default 1)
//!        ADDR: an IP:PORT, or a server endpoint string: `tcp:8443:interface=127.0.0.1`
//!        (TLS over it), or `tls:8443:privateKey=key.pem:certKey=cert.pem` (the same as
//!        `--cert cert.pem --key key.pem`); see `docs/endpoints.md`
//! Try:   cargo run --example tls_echo_client 127.0.0.1:8443 \
//!        --max-connections N (anywhere): at most N connections open, the next wait in the backlog
//!            --cafile /tmp/torsion-tls-echo-8443.pem hello world
//!        openssl s_client -connect 127.0.0.1:8443 -servername localhost \
//!            -CAfile /tmp/torsion-tls-echo-8443.pem
//! Logs:  RUST_LOG=debug cargo run --example tls_echo_server
//! Stop:  Ctrl-C or SIGTERM: it stops accepting, closes every connection with close_notify
//!        once its echoes are written, and exits 0.
//!
//! With no `--cert`, it needs no set-up: at start-up it makes a self-signed certificate for
//! `localhost` and `127.0.0.1` (so a client verifies it as either name), valid for 90 days,
//! writes the certificate (never its key, which stays in memory) to
//! `$TMPDIR/torsion-tls-echo-PORT.pem`,
//! and prints, as the first line on stdout,
//!
//!        certificate: /tmp/torsion-tls-echo-8443.pem
//!
//! (a script takes the path with `sed -n 's/^certificate: //p'`); give that file to the
//! client as the CA to trust. The file is removed when the server exits. Then, with or
//! without `--cert`, it prints `tls echo server listening on ADDR` once it accepts
//! connections.
//!
//! `--cert PEM --key PEM` (both or neither) serve a certificate chain of your own
//! instead. `--client-ca PEM` turns on mutual TLS: every client must present a certificate
//! signed by that CA (others are refused during the handshake, and logged), and the server
//! prints the subject of each client's certificate:
//!
//!        client 127.0.0.1:40112: CN=alice
//!
//! Like `echo_server`, it holds bounded memory under a client that never reads: it stops
//! reading from a client whose echoes back up, until they drain.

#[path = "shared/options.rs"]
mod options;

use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use torsion::rustls::ServerConfig;
use torsion::tls::{self, ClientAuth, Identity};
use torsion::{
    ConnectionLimits, Context, Protocol, Reactors, ServerEndpoint, SharedListener, TlsOptions,
};

const USAGE: &str =
    "usage: tls_echo_server [ADDR] [--cert PEM --key PEM] [--client-ca PEM] [--threads N] [--max-connections N]  (default ADDR 127.0.0.1:8443)";

/// The names the self-signed certificate is valid for.
const SELF_SIGNED_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

struct Echo;

impl Protocol for Echo {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        // Only with --client-ca: the handshake verified the chain up to that CA.
        let Some(certificate) = cx.peer_certificates().and_then(|chain| chain.first()) else {
            return;
        };
        let subject = subject(certificate).unwrap_or_else(|| "(unreadable subject)".into());
        match cx.peer_addr() {
            Ok(peer) => println!("client {peer}: {subject}"),
            Err(_) => println!("client (gone): {subject}"),
        }
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        cx.resume_reading();
    }
}

/// The command line.
struct Options {
    endpoint: ServerEndpoint,
    identity: Option<(PathBuf, PathBuf)>,
    client_ca: Option<PathBuf>,
    /// Reactors (threads) accepting on the port.
    threads: usize,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let max_connections = match options::take_max_connections(&mut args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("tls_echo_server: {e}\n{USAGE}");
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
            eprintln!("tls_echo_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (config, self_signed) = match tls_config(&options) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tls_echo_server: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(
        options.endpoint,
        config,
        self_signed,
        options.threads,
        max_connections,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the arguments (options before or after ADDR); `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let (mut addr, mut cert, mut key, mut client_ca) = (None, None, None, None);
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
            "--cert" => &mut cert,
            "--key" => &mut key,
            "--client-ca" => &mut client_ca,
            option if option.starts_with('-') => return Err(format!("unknown option {option}")),
            _ if addr.is_none() => {
                addr = Some(arg);
                continue;
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        };
        let value = args.next().ok_or(format!("{arg} needs a file"))?;
        *slot = Some(PathBuf::from(value));
    }
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8443".to_string());
    let endpoint: ServerEndpoint = addr
        .parse()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?;
    let identity = match (cert, key, &endpoint) {
        (Some(_), _, ServerEndpoint::Tls { .. }) | (_, Some(_), ServerEndpoint::Tls { .. }) => {
            return Err("a tls: ADDR names its certificate: no --cert or --key".to_string());
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
        _ => return Err("--cert and --key go together".to_string()),
    };
    Ok(Some(Options {
        endpoint,
        identity,
        client_ca,
        threads,
    }))
}

/// The server configuration, and the self-signed certificate's PEM if it made one.
fn tls_config(options: &Options) -> Result<(ServerConfig, Option<String>), String> {
    let (identity, self_signed) = match &options.identity {
        Some((cert, key)) => (
            Identity::from_pem_files(cert, key).map_err(|e| e.to_string())?,
            None,
        ),
        None => {
            let (identity, pem) = self_signed_identity()?;
            (identity, Some(pem))
        }
    };
    let client_auth = match &options.client_ca {
        Some(path) => {
            let roots = tls::roots_from_pem_file(path).map_err(|e| format!("--client-ca: {e}"))?;
            ClientAuth::Required(roots)
        }
        None => ClientAuth::None,
    };
    let config = tls::server_config(identity, client_auth).map_err(|e| e.to_string())?;
    Ok((config, self_signed))
}

/// A fresh self-signed certificate for [`SELF_SIGNED_NAMES`]: the identity, and the
/// certificate's PEM for clients to trust.
const DAY: u64 = 24 * 60 * 60;

fn self_signed_identity() -> Result<(Identity, String), String> {
    let names = SELF_SIGNED_NAMES.map(String::from).to_vec();
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "torsion tls_echo_server");
    // Valid from a day ago (clocks differ) for 90 days, not rcgen's default of 1975 to 4096:
    // a certificate that never expires is a finding of every TLS scanner.
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - Duration::from_secs(DAY);
    params.not_after = now + Duration::from_secs(90 * DAY);
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let identity = Identity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
        .map_err(|e| e.to_string())?;
    Ok((identity, cert.pem()))
}

fn serve(
    endpoint: ServerEndpoint,
    config: ServerConfig,
    self_signed: Option<String>,
    threads: usize,
    max_connections: Option<usize>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let cert_file: Arc<Mutex<Option<PathBuf>>> = Arc::default();
    let written = cert_file.clone();
    // The first reactor listens and shares its socket with the others.
    let shared: OnceLock<SharedListener> = OnceLock::new();
    let result = Reactors::new(threads)
        .handle_signals()
        .run(move |reactor, _index| {
            if let Some(socket) = shared.get() {
                let port = reactor.listen_shared(socket, || Echo)?;
                if let Some(n) = max_connections {
                    // Per reactor: each of the `threads` reactors holds at most `n`.
                    port.set_limits(reactor, ConnectionLimits::new().max_connections(n));
                }
                return Ok(());
            }
            let options = TlsOptions::default();
            let port =
                reactor.listen_tls_endpoint(endpoint.clone(), config.clone(), || Echo, options)?;
            if let Some(n) = max_connections {
                // Per reactor: each of the `threads` reactors holds at most `n`.
                port.set_limits(reactor, ConnectionLimits::new().max_connections(n));
            }
            let local = port.local_addr();
            // Written once the port is ours, so a file never names a port another server holds.
            if let Some(pem) = &self_signed {
                let path = write_certificate(pem, local.port())?;
                println!("certificate: {}", path.display());
                *written.lock().unwrap() = Some(path);
            }
            let _ = shared.set(port.share(reactor)?);
            println!("tls echo server listening on {local}");
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        });
    if let Some(path) = cert_file.lock().unwrap().take() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Writes `pem` to `$TMPDIR/torsion-tls-echo-PORT.pem` and returns the path.
fn write_certificate(pem: &str, port: u16) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("torsion-tls-echo-{port}.pem"));
    // A file only we created (O_EXCL: no symlink planted in a shared /tmp is followed),
    // renamed into place whole, so a reader never sees half a certificate.
    let partial = dir.join(format!(
        "torsion-tls-echo-{port}.{}.tmp",
        std::process::id()
    ));
    let written = write_new(&partial, pem.as_bytes()).and_then(|()| fs::rename(&partial, &path));
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written.map(|()| path)
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)
}

/// The subject of a DER certificate, as `CN=alice, O=Example`: enough to log who a client
/// is. (A real service would use an X.509 crate; this reads just the fields it needs.)
fn subject(certificate: &[u8]) -> Option<String> {
    let (_, certificate, _) = der(certificate)?;
    let (_, mut fields, _) = der(certificate)?; // tbsCertificate
    if fields.first() == Some(&0xa0) {
        fields = der(fields)?.2; // the explicit version
    }
    for _ in ["serialNumber", "signature", "issuer", "validity"] {
        fields = der(fields)?.2;
    }
    let (_, mut name, _) = der(fields)?;
    let mut parts = Vec::new();
    while !name.is_empty() {
        let (_, set, rest) = der(name)?; // one RelativeDistinguishedName
        let (_, attribute, _) = der(set)?;
        let (_, oid, value) = der(attribute)?;
        let (_, value, _) = der(value)?;
        parts.push(format!(
            "{}={}",
            attribute_name(oid),
            String::from_utf8_lossy(value)
        ));
        name = rest;
    }
    Some(parts.join(", "))
}

/// One DER element of `input`: its tag, its contents, and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (len, rest) = rest.split_at(octets);
        (len.iter().fold(0, |n, &b| n << 8 | usize::from(b)), rest)
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The usual short name of an attribute type (its OID's contents).
fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        other => format!("OID({other:02x?})"),
    }
}
