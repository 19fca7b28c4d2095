//! The TLS benchmark: TLS echo throughput, and the rate of full handshakes, of
//! torsion's TLS stage next to a tokio-rustls echo server, side by side in one run, with
//! plain-TCP echo servers as references for what TLS costs.
//!
//! For every round, each load and each server (the order rotating from round to round, as in
//! the echo benchmark), a fresh server thread starts, the clients (one thread, one mio poll,
//! the same code for every server: `stream.rs`) connect and run a warm-up, the server reads
//! its thread's CPU time, the measured load runs, and the server reads its CPU time again.
//!
//! - *throughput* (`bulk.rs`): `--clients` connections, `--bytes` echoed in all per run, in
//!   16 KiB writes, at most 256 KiB in flight per connection, every byte checked.
//! - *handshake* (`handshake.rs`): `--handshakes` connections per run, `--clients` at a time,
//!   each a full handshake (no resumption), one small echo, and a `close_notify`.
//!
//! An external server (`--external NAME=COMMAND`, e.g. the `tls_echo_server` example, given
//! the benchmark's certificate and key as PEM files) takes part in the same rounds: a fresh
//! process per run, its CPU time read from `/proc` (see `src/external.rs`), then SIGTERM.

mod bulk;
mod certs;
mod handshake;
mod report;
mod servers;
mod stream;
mod torsion;

use std::io;
use std::thread;
use std::time::Duration;

use self::bulk::BulkClient;
use self::certs::{CertFiles, Identity};
use self::report::{Load, Sample};
use self::servers::TlsKind;
use self::stream::Dialer;
use crate::cpu::CpuTimes;
use crate::external::{self, ExternalServer, ExternalSpec, ProcessCpu, Target, Vars};
use crate::servers::RunningServer;

/// Longest one load run may take before the benchmark gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest a server may take to notice it should start measuring.
const MEASURE_START_TIMEOUT: Duration = Duration::from_secs(5);

/// One mebibyte.
const MIB: u64 = 1 << 20;

/// What the command line asks for.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// Rounds; each runs every server under every load once.
    pub rounds: usize,
    /// Plaintext bytes echoed per measured throughput run, over all connections. 1 GiB by
    /// default: tokio-rustls echoes 1 to 1.7 GiB/s here (plain TCP about twice that), so
    /// 64 MiB would be a run of 40 to 70 ms, too short to outlast a disturbance from another
    /// process on this shared machine, or for the 100 Hz tick accounting of the user share.
    pub bytes: u64,
    /// Client connections (throughput), or connections at a time (handshake).
    pub clients: usize,
    /// Connections per measured handshake run.
    pub handshakes: u64,
    /// The servers compared: built in, then external processes.
    pub servers: Vec<Target<TlsKind>>,
    /// The loads run.
    pub loads: Vec<Load>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            rounds: 7,
            bytes: 1024 * MIB,
            clients: 10,
            handshakes: 5000,
            servers: TlsKind::defaults()
                .into_iter()
                .map(Target::Builtin)
                .collect(),
            loads: vec![Load::Throughput, Load::Handshake],
        }
    }
}

/// Parses a byte count with an optional binary suffix: `65536`, `64K`, `64M`, `1G`.
fn parse_bytes(value: &str) -> Option<u64> {
    let (digits, unit) = match value.as_bytes().last()?.to_ascii_uppercase() {
        b'K' => (&value[..value.len() - 1], 1 << 10),
        b'M' => (&value[..value.len() - 1], MIB),
        b'G' => (&value[..value.len() - 1], 1 << 30),
        _ => (value, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// Parses `--servers`: known servers, each once, in the order given; `none` for none.
fn parse_servers(value: &str) -> Result<Vec<TlsKind>, String> {
    external::parse_builtins(value, TlsKind::from_name)
}

/// Parses the options after `tls`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<TlsConfig, String> {
    let mut config = TlsConfig::default();
    let mut builtins = TlsKind::defaults();
    let mut externals = Vec::new();
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let number = |min: u64| match value.parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!("{arg}: bad value {value:?} (at least {min})")),
        };
        match arg.as_str() {
            "--rounds" => config.rounds = number(1)? as usize,
            "--clients" => config.clients = number(1)? as usize,
            "--handshakes" => config.handshakes = number(1)?,
            "--bytes" => {
                config.bytes = parse_bytes(&value).filter(|&n| n > 0).ok_or(format!(
                    "--bytes: bad value {value:?} (e.g. 67108864 or 64M)"
                ))?;
            }
            "--servers" => builtins = parse_servers(&value)?,
            "--external" => externals.push(ExternalSpec::parse(&value)?),
            "--loads" => {
                config.loads = value
                    .split(',')
                    .map(|name| Load::from_name(name).ok_or(format!("unknown load {name:?}")))
                    .collect::<Result<Vec<_>, _>>()?;
            }
            other => return Err(format!("tls: unknown argument {other:?}")),
        }
    }
    config.servers = external::targets(&builtins, &externals)?;
    Ok(config)
}

/// What every run shares: the certificate and the client configurations.
struct Setup {
    identity: Identity,
    /// The certificate and key as files, for external servers (made only if there are any).
    files: Option<CertFiles>,
    bulk: Dialer,
    handshake: Dialer,
    plain: Dialer,
}

impl Setup {
    fn new(externals: bool) -> io::Result<Setup> {
        let identity = Identity::generate()?;
        let name = certs::server_name()?;
        Ok(Setup {
            files: if externals {
                Some(identity.write_files()?)
            } else {
                None
            },
            bulk: Dialer {
                tls: Some((identity.client_config(true)?, name.clone())),
            },
            handshake: Dialer {
                tls: Some((identity.client_config(false)?, name)),
            },
            plain: Dialer { tls: None },
            identity,
        })
    }

    /// The clients for `target`.
    fn dialer(&self, target: &Target<TlsKind>, load: Load) -> &Dialer {
        match (speaks_tls(target), load) {
            (false, _) => &self.plain,
            (true, Load::Throughput) => &self.bulk,
            (true, Load::Handshake) => &self.handshake,
        }
    }
}

/// Names an external server in its error, with a hint when its certificate was refused: the
/// clients trust only the bench's own.
fn explain(target: &Target<TlsKind>, e: io::Error) -> io::Error {
    if !target.is_external() {
        return e;
    }
    let hint = if e.to_string().contains("certificate") {
        " (the clients trust only the bench's certificate: give the server {cert} and {key})"
    } else {
        ""
    };
    io::Error::new(e.kind(), format!("{target}: {e}{hint}"))
}

/// Whether `target`'s clients speak TLS: an external server's always do.
fn speaks_tls(target: &Target<TlsKind>) -> bool {
    match target {
        Target::Builtin(kind) => kind.is_tls(),
        Target::External(_) => true,
    }
}

/// A server started for one run: a thread of this process, or a process of its own.
enum Server {
    /// In process; `None` once its measurement is finished (the thread has returned).
    Thread(Option<RunningServer>),
    /// A process, and its CPU time when the measured phase began.
    Process(ExternalServer, Option<ProcessCpu>),
}

impl Server {
    fn start(setup: &Setup, target: &Target<TlsKind>) -> io::Result<Server> {
        match target {
            Target::Builtin(kind) => Ok(Server::Thread(Some(servers::spawn(
                *kind,
                setup.identity.server_config()?,
            )?))),
            Target::External(spec) => {
                let files = setup
                    .files
                    .as_ref()
                    .ok_or_else(|| io::Error::other("no certificate files"))?;
                let server = ExternalServer::start(spec, external::defaults::TLS, |addr| Vars {
                    cert: Some(&files.cert),
                    key: Some(&files.key),
                    ..Vars::addr(addr)
                })?;
                Ok(Server::Process(server, None))
            }
        }
    }

    fn addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Server::Thread(Some(server)) => Ok(server.addr),
            Server::Thread(None) => Err(io::Error::other("server already finished")),
            Server::Process(server, _) => Ok(server.addr),
        }
    }

    /// The measured phase begins: the server reads its CPU time (a process: it is read).
    fn begin_measuring(&mut self) -> io::Result<()> {
        match self {
            Server::Thread(Some(server)) => server.control.begin_measuring(MEASURE_START_TIMEOUT),
            Server::Thread(None) => Err(io::Error::other("server already finished")),
            Server::Process(server, start) => {
                // The warm-up is over: let the server go back to waiting.
                thread::sleep(external::SETTLE);
                *start = Some(server.cpu()?);
                Ok(())
            }
        }
    }

    /// The measured phase is over: its CPU time. A thread returns; a process runs on until
    /// [`Server::stop`] (after the clients have closed).
    fn end_measuring(&mut self) -> io::Result<CpuTimes> {
        match self {
            Server::Thread(server) => server
                .take()
                .ok_or_else(|| io::Error::other("server already finished"))?
                .finish(),
            Server::Process(server, start) => {
                let start = start
                    .take()
                    .ok_or_else(|| io::Error::other("measured phase never began"))?;
                thread::sleep(external::SETTLE);
                Ok(server.cpu()?.since(&start, server.name()))
            }
        }
    }

    /// Stops a process (SIGTERM, expecting exit status 0); nothing for a thread.
    fn stop(self) -> io::Result<()> {
        match self {
            Server::Thread(_) => Ok(()),
            Server::Process(server, _) => server.stop(),
        }
    }
}

/// Runs one server under the throughput load: connect, warm up (which makes the
/// handshakes), measure. Returns the sample and the negotiated TLS parameters.
fn run_throughput(
    setup: &Setup,
    target: &Target<TlsKind>,
    round: usize,
    config: &TlsConfig,
) -> io::Result<(Sample, String)> {
    let mut server = Server::start(setup, target)?;
    let dialer = setup.dialer(target, Load::Throughput);
    let mut client = BulkClient::connect(server.addr()?, config.clients, dialer)?;
    let warm_up = (config.bytes / 10).max((config.clients * bulk::WRITE_SIZE) as u64);
    client.run(warm_up, RUN_TIMEOUT)?;
    server.begin_measuring()?;
    let stats = client.run(config.bytes, RUN_TIMEOUT)?;
    let cpu = server.end_measuring()?;
    let described = client.describe();
    // The clients close first: a process's graceful shutdown then has nothing to wait for.
    drop(client);
    server.stop()?;
    let sample = Sample {
        round,
        server: target.clone(),
        load: Load::Throughput,
        cpu,
        units: stats.bytes as f64 / MIB as f64,
        elapsed: stats.elapsed,
    };
    Ok((sample, described))
}

/// Runs one server under the handshake load: a warm-up of a tenth, then the measured
/// connections.
fn run_handshakes(
    setup: &Setup,
    target: &Target<TlsKind>,
    round: usize,
    config: &TlsConfig,
) -> io::Result<Sample> {
    let mut server = Server::start(setup, target)?;
    let addr = server.addr()?;
    let dialer = setup.dialer(target, Load::Handshake);
    let warm_up = (config.handshakes / 10).max(1);
    handshake::run(addr, dialer, warm_up, config.clients, RUN_TIMEOUT)?;
    server.begin_measuring()?;
    let stats = handshake::run(addr, dialer, config.handshakes, config.clients, RUN_TIMEOUT)?;
    let cpu = server.end_measuring()?;
    server.stop()?;
    Ok(Sample {
        round,
        server: target.clone(),
        load: Load::Handshake,
        cpu,
        units: stats.connections as f64,
        elapsed: stats.elapsed,
    })
}

/// Runs the TLS benchmark and prints its tables.
pub fn run(config: &TlsConfig) -> io::Result<()> {
    let setup = Setup::new(config.servers.iter().any(Target::is_external))?;
    println!(
        "tls: {} rounds x {} servers x {} loads; each run: fresh server, warm-up of a tenth, \
         then the measured load",
        config.rounds,
        config.servers.len(),
        config.loads.len()
    );
    let mut samples = Vec::new();
    let mut negotiated = String::from("no TLS server run");
    for round in 0..config.rounds {
        for &load in &config.loads {
            let n = config.servers.len();
            for i in 0..n {
                let target = &config.servers[(i + round) % n];
                let sample = match load {
                    Load::Throughput => {
                        let (sample, described) = run_throughput(&setup, target, round, config)
                            .map_err(|e| explain(target, e))?;
                        if speaks_tls(target) {
                            negotiated = described;
                        }
                        sample
                    }
                    Load::Handshake => run_handshakes(&setup, target, round, config)
                        .map_err(|e| explain(target, e))?,
                };
                // `compare-trees` reads these lines: keep the fields in this order.
                eprintln!(
                    "  round {}/{} {}",
                    round + 1,
                    config.rounds,
                    sample.progress()
                );
                samples.push(sample);
            }
        }
    }
    for &load in &config.loads {
        report::print_table(load, config, &negotiated, &samples);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("65536"), Some(65536));
        assert_eq!(parse_bytes("64K"), Some(64 << 10));
        assert_eq!(parse_bytes("64m"), Some(64 << 20));
        assert_eq!(parse_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_bytes("M"), None);
        assert_eq!(parse_bytes(""), None);
        assert_eq!(parse_bytes("x"), None);
    }

    /// Both loads against every server, small: every byte checked, every
    /// handshake completed, and the server measured something.
    #[test]
    fn both_loads_run_against_every_server() {
        let setup = Setup::new(false).unwrap();
        let config = TlsConfig {
            bytes: 3 * MIB + 5,
            clients: 3,
            handshakes: 20,
            ..TlsConfig::default()
        };
        for kind in TlsKind::defaults() {
            let target = Target::Builtin(kind);
            let (sample, described) = run_throughput(&setup, &target, 0, &config).unwrap();
            assert_eq!(sample.units, config.bytes as f64 / MIB as f64, "{kind}");
            assert!(sample.cpu.ns > 0, "{kind}");
            assert_eq!(
                described.starts_with("TLSv1_3"),
                kind.is_tls(),
                "{kind}: {described}"
            );
            let sample = run_handshakes(&setup, &target, 0, &config).unwrap();
            assert_eq!(sample.units, 20.0, "{kind}");
        }
    }

    #[test]
    fn servers_are_listed_once_in_the_order_given() {
        let servers = parse_servers("tokio-tcp,tokio-rustls,tokio-tcp").unwrap();
        assert_eq!(servers, vec![TlsKind::TokioTcp, TlsKind::TokioRustls]);
        assert!(parse_servers("nginx").is_err());
        assert!(parse_servers("none").unwrap().is_empty());
    }
}
