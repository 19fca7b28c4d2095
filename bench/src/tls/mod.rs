//! The TLS benchmark (issue 8): TLS echo throughput, and the rate of full handshakes, of
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

mod bulk;
mod certs;
mod handshake;
mod report;
mod servers;
mod stream;
mod torsion;

use std::io;
use std::time::Duration;

use self::bulk::BulkClient;
use self::certs::Identity;
use self::report::{Load, Sample};
use self::servers::TlsKind;
use self::stream::Dialer;

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
    /// The servers compared.
    pub servers: Vec<TlsKind>,
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
            servers: TlsKind::defaults(),
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

/// Parses `--servers`: known servers, each once, in the order given.
fn parse_servers(value: &str) -> Result<Vec<TlsKind>, String> {
    let mut servers = Vec::new();
    for name in value.split(',') {
        match TlsKind::from_name(name) {
            Some(kind) if !servers.contains(&kind) => servers.push(kind),
            Some(_) => {}
            None => return Err(format!("unknown server {name:?}")),
        }
    }
    Ok(servers)
}

/// Parses the options after `tls`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<TlsConfig, String> {
    let mut config = TlsConfig::default();
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
            "--servers" => config.servers = parse_servers(&value)?,
            "--loads" => {
                config.loads = value
                    .split(',')
                    .map(|name| Load::from_name(name).ok_or(format!("unknown load {name:?}")))
                    .collect::<Result<Vec<_>, _>>()?;
            }
            other => return Err(format!("tls: unknown argument {other:?}")),
        }
    }
    Ok(config)
}

/// What every run shares: the certificate and the client configurations.
struct Setup {
    identity: Identity,
    bulk: Dialer,
    handshake: Dialer,
    plain: Dialer,
}

impl Setup {
    fn new() -> io::Result<Setup> {
        let identity = Identity::generate()?;
        let name = certs::server_name()?;
        Ok(Setup {
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

    fn dialer(&self, kind: TlsKind, load: Load) -> &Dialer {
        match (kind.is_tls(), load) {
            (false, _) => &self.plain,
            (true, Load::Throughput) => &self.bulk,
            (true, Load::Handshake) => &self.handshake,
        }
    }
}

/// Runs one server under the throughput load: connect, warm up (which makes the
/// handshakes), measure. Returns the sample and the negotiated TLS parameters.
fn run_throughput(
    setup: &Setup,
    kind: TlsKind,
    round: usize,
    config: &TlsConfig,
) -> io::Result<(Sample, String)> {
    let server = servers::spawn(kind, setup.identity.server_config()?)?;
    let dialer = setup.dialer(kind, Load::Throughput);
    let mut client = BulkClient::connect(server.addr, config.clients, dialer)?;
    let warm_up = (config.bytes / 10).max((config.clients * bulk::WRITE_SIZE) as u64);
    client.run(warm_up, RUN_TIMEOUT)?;
    server.control.begin_measuring(MEASURE_START_TIMEOUT)?;
    let stats = client.run(config.bytes, RUN_TIMEOUT)?;
    let cpu = server.finish()?;
    let sample = Sample {
        round,
        server: kind,
        load: Load::Throughput,
        cpu,
        units: stats.bytes as f64 / MIB as f64,
        elapsed: stats.elapsed,
    };
    Ok((sample, client.describe()))
}

/// Runs one server under the handshake load: a warm-up of a tenth, then the measured
/// connections.
fn run_handshakes(
    setup: &Setup,
    kind: TlsKind,
    round: usize,
    config: &TlsConfig,
) -> io::Result<Sample> {
    let server = servers::spawn(kind, setup.identity.server_config()?)?;
    let dialer = setup.dialer(kind, Load::Handshake);
    let warm_up = (config.handshakes / 10).max(1);
    handshake::run(server.addr, dialer, warm_up, config.clients, RUN_TIMEOUT)?;
    server.control.begin_measuring(MEASURE_START_TIMEOUT)?;
    let stats = handshake::run(
        server.addr,
        dialer,
        config.handshakes,
        config.clients,
        RUN_TIMEOUT,
    )?;
    let cpu = server.finish()?;
    Ok(Sample {
        round,
        server: kind,
        load: Load::Handshake,
        cpu,
        units: stats.connections as f64,
        elapsed: stats.elapsed,
    })
}

/// Runs the TLS benchmark and prints its tables.
pub fn run(config: &TlsConfig) -> io::Result<()> {
    let setup = Setup::new()?;
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
                let kind = config.servers[(i + round) % n];
                let sample = match load {
                    Load::Throughput => {
                        let (sample, described) = run_throughput(&setup, kind, round, config)?;
                        if kind.is_tls() {
                            negotiated = described;
                        }
                        sample
                    }
                    Load::Handshake => run_handshakes(&setup, kind, round, config)?,
                };
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
        let setup = Setup::new().unwrap();
        let config = TlsConfig {
            bytes: 3 * MIB + 5,
            clients: 3,
            handshakes: 20,
            ..TlsConfig::default()
        };
        for kind in TlsKind::defaults() {
            let (sample, described) = run_throughput(&setup, kind, 0, &config).unwrap();
            assert_eq!(sample.units, config.bytes as f64 / MIB as f64, "{kind}");
            assert!(sample.cpu.ns > 0, "{kind}");
            assert_eq!(
                described.starts_with("TLSv1_3"),
                kind.is_tls(),
                "{kind}: {described}"
            );
            let sample = run_handshakes(&setup, kind, 0, &config).unwrap();
            assert_eq!(sample.units, 20.0, "{kind}");
        }
    }

    #[test]
    fn servers_are_listed_once_in_the_order_given() {
        let servers = parse_servers("tokio-tcp,tokio-rustls,tokio-tcp").unwrap();
        assert_eq!(servers, vec![TlsKind::TokioTcp, TlsKind::TokioRustls]);
        assert!(parse_servers("nginx").is_err());
    }
}
