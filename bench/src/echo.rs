//! Benchmark A: the echo servers' CPU time per message, side by side in one run.
//!
//! For every round, each load, and each server (the order rotating from round to round so
//! that slow drifts of a noisy machine spread over all servers), a fresh server thread is
//! started, the load generator connects, runs a warm-up, asks the server to read its thread's
//! CPU time, runs the measured load, and asks the server to read it again and return.
//!
//! An external server (`--external NAME=COMMAND`, e.g. the `echo_server` example) takes
//! part in the same rounds: a fresh process per run, its CPU time read from `/proc` before
//! and after the measured load (see `src/external.rs`), then SIGTERM.

use std::io;
use std::thread;
use std::time::Duration;

use crate::cpu::CpuTimes;
use crate::external::{self, ExternalServer, ExternalSpec, Target, Vars};
use crate::load::{LoadClient, MESSAGE_SIZE};
use crate::servers::{self, ServerKind};
use crate::stats::{max, median, min};

/// Longest one load run may take before the benchmark gives up.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest a server may take to notice it should start measuring.
const MEASURE_START_TIMEOUT: Duration = Duration::from_secs(5);

/// The target: torsion's CPU per message at most this many times mio's.
const TARGET_VS_MIO: f64 = 1.03;

/// How many times more messages a pipelined run sends than a ping-pong run.
pub const PIPELINED_FACTOR: u64 = 10;

/// What to run.
#[derive(Clone, Debug)]
pub struct EchoConfig {
    /// Rounds; each runs every server under every load once.
    pub rounds: usize,
    /// Messages per measured ping-pong run; pipelined runs send [`PIPELINED_FACTOR`] times
    /// as many (they go that much faster). A warm-up of a tenth of that comes first.
    pub messages: u64,
    /// Client connections.
    pub clients: usize,
    /// Messages each connection keeps in flight in the pipelined load.
    pub depth: u64,
    /// The servers compared: built in, then external processes.
    pub servers: Vec<Target<ServerKind>>,
    /// Whether to run the ping-pong load.
    pub ping_pong: bool,
    /// Whether to run the pipelined load.
    pub pipelined: bool,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            rounds: 7,
            messages: 300_000,
            clients: 50,
            depth: 16,
            servers: ServerKind::ALL.map(Target::Builtin).to_vec(),
            ping_pong: true,
            pipelined: true,
        }
    }
}

/// One measured run.
#[derive(Clone, Debug)]
struct Sample {
    round: usize,
    server: Target<ServerKind>,
    /// Server thread CPU time over the measured phase.
    cpu: CpuTimes,
    /// Messages echoed in the measured phase.
    messages: u64,
    /// Load generator's wall time for the measured phase.
    elapsed: Duration,
}

impl Sample {
    fn cpu_ns_per_message(&self) -> f64 {
        self.cpu.ns as f64 / self.messages as f64
    }

    fn messages_per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// Share of one core the server used during the measured phase.
    fn cpu_share(&self) -> f64 {
        self.cpu.ns as f64 / self.elapsed.as_nanos() as f64
    }
}

/// Runs one server under one load: warm-up, then the measured phase.
fn run_one(
    target: &Target<ServerKind>,
    round: usize,
    load: &Load,
    clients: usize,
) -> io::Result<Sample> {
    let (cpu, stats) = match target {
        Target::Builtin(kind) => {
            let server = servers::spawn(*kind)?;
            let mut client = LoadClient::connect(server.addr, clients)?;
            client.run(load.warm_up(clients), load.depth, RUN_TIMEOUT)?;
            server.control.begin_measuring(MEASURE_START_TIMEOUT)?;
            let stats = client.run(load.messages, load.depth, RUN_TIMEOUT)?;
            let cpu = server.finish()?;
            drop(client);
            (cpu, stats)
        }
        Target::External(spec) => run_external(spec, load, clients)?,
    };
    Ok(Sample {
        round,
        server: target.clone(),
        cpu,
        messages: stats.messages,
        elapsed: stats.elapsed,
    })
}

/// [`run_one`] for a server process: started for this run, measured from `/proc`, stopped.
fn run_external(
    spec: &ExternalSpec,
    load: &Load,
    clients: usize,
) -> io::Result<(CpuTimes, crate::load::RunStats)> {
    let server = ExternalServer::start(spec, external::defaults::ECHO, Vars::addr)?;
    let mut client = LoadClient::connect(server.addr, clients)?;
    client.run(load.warm_up(clients), load.depth, RUN_TIMEOUT)?;
    // The warm-up's last echoes are back, so the server is (or is about to be) waiting.
    thread::sleep(external::SETTLE);
    let start = server.cpu()?;
    let stats = client.run(load.messages, load.depth, RUN_TIMEOUT)?;
    thread::sleep(external::SETTLE);
    let cpu = server.cpu()?.since(&start, server.name());
    // The clients close first: the server's graceful shutdown then has nothing to wait for.
    drop(client);
    server.stop()?;
    Ok((cpu, stats))
}

/// A load: its title, messages in flight per connection, and messages per measured run.
struct Load {
    title: String,
    depth: u64,
    messages: u64,
}

impl Load {
    /// Messages in the warm-up before each measured run.
    fn warm_up(&self, clients: usize) -> u64 {
        (self.messages / 10).max(clients as u64)
    }
}

/// Runs the echo benchmark and prints its tables.
pub fn run(config: &EchoConfig) -> io::Result<()> {
    let mut loads = Vec::new();
    if config.ping_pong {
        loads.push(Load {
            title: format!(
                "ping-pong: {} connections, 1 x {MESSAGE_SIZE}-byte message in flight each",
                config.clients
            ),
            depth: 1,
            messages: config.messages,
        });
    }
    if config.pipelined {
        loads.push(Load {
            title: format!(
                "pipelined: {} connections, {} x {MESSAGE_SIZE}-byte messages in flight each",
                config.clients, config.depth
            ),
            depth: config.depth,
            messages: config.messages * PIPELINED_FACTOR,
        });
    }
    println!(
        "echo: {} rounds x {} servers x {} loads; each run: fresh server, warm-up of a tenth, then the measured messages",
        config.rounds,
        config.servers.len(),
        loads.len(),
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); loads.len()];
    for round in 0..config.rounds {
        for (l, load) in loads.iter().enumerate() {
            let n = config.servers.len();
            for i in 0..n {
                let target = &config.servers[(i + round) % n];
                let s = run_one(target, round, load, config.clients)?;
                // `compare-trees` reads these lines: keep the fields in this order.
                eprintln!(
                    "  round {}/{} {:<9} {:<8} {:>8.0} ns/msg {:>10.0} msg/s  server CPU {:>3.0}% (user {:>2.0}%)",
                    round + 1,
                    config.rounds,
                    if load.depth == 1 {
                        "ping-pong"
                    } else {
                        "pipelined"
                    },
                    target.name(),
                    s.cpu_ns_per_message(),
                    s.messages_per_second(),
                    100.0 * s.cpu_share(),
                    100.0 * s.cpu.user_share()
                );
                samples[l].push(s);
            }
        }
    }
    for (load, samples) in loads.iter().zip(&samples) {
        print_table(&load.title, config, samples);
    }
    Ok(())
}

/// Per-server summary of one load's samples.
struct Summary {
    cpu: Vec<f64>,
    rate: Vec<f64>,
    share: Vec<f64>,
    /// Share of user-mode ticks, pooled over all rounds.
    user_share: f64,
}

fn summarize(samples: &[Sample], target: &Target<ServerKind>) -> Summary {
    let mine: Vec<&Sample> = samples.iter().filter(|s| &s.server == target).collect();
    Summary {
        cpu: mine.iter().map(|s| s.cpu_ns_per_message()).collect(),
        rate: mine.iter().map(|s| s.messages_per_second()).collect(),
        share: mine.iter().map(|s| s.cpu_share()).collect(),
        user_share: mine
            .iter()
            .fold(CpuTimes::default(), |sum, s| CpuTimes {
                ns: sum.ns + s.cpu.ns,
                user_ticks: sum.user_ticks + s.cpu.user_ticks,
                sys_ticks: sum.sys_ticks + s.cpu.sys_ticks,
                allocations: sum.allocations + s.cpu.allocations,
                heap_at_start: 0,
            })
            .user_share(),
    }
}

/// Per round, `a`'s CPU per message divided by `b`'s in the same round.
fn paired_ratios(samples: &[Sample], a: &Target<ServerKind>, b: &Target<ServerKind>) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| &s.server == a)
        .filter_map(|t| {
            samples
                .iter()
                .find(|o| &o.server == b && o.round == t.round)
                .map(|o| t.cpu_ns_per_message() / o.cpu_ns_per_message())
        })
        .collect()
}

fn print_table(title: &str, config: &EchoConfig, samples: &[Sample]) {
    println!();
    println!(
        "Echo, {title}; {} messages per run, {} rounds",
        samples.first().map_or(0, |s| s.messages),
        config.rounds
    );
    let w = external::name_width(&config.servers, 8);
    println!(
        "{:<w$} {:>14} {:>9} {:>9} {:>9} {:>14} {:>11}",
        "server", "CPU ns/msg", "min", "max", "user", "msg/s", "server CPU"
    );
    println!(
        "{:<w$} {:>14} {:>9} {:>9} {:>9} {:>14} {:>11}",
        "", "(median)", "", "", "(ticks)", "(median)", "(median)"
    );
    let mut medians = Vec::new();
    for target in &config.servers {
        let s = summarize(samples, target);
        let m = median(&s.cpu);
        medians.push((target, m));
        println!(
            "{:<w$} {:>14.0} {:>9.0} {:>9.0} {:>8.0}% {:>14.0} {:>10.0}%",
            target.name(),
            m,
            min(&s.cpu),
            max(&s.cpu),
            100.0 * s.user_share,
            median(&s.rate),
            100.0 * median(&s.share)
        );
    }
    let of = |t: &Target<ServerKind>| medians.iter().find(|(m, _)| *m == t).map(|(_, v)| *v);
    let torsion = Target::Builtin(ServerKind::Torsion);
    if let Some(torsion_median) = of(&torsion) {
        for (other, target, rule) in [
            (ServerKind::Mio, TARGET_VS_MIO, "<= 1.03"),
            (ServerKind::Tokio, 1.0, "<= 1.00"),
        ] {
            let other = Target::Builtin(other);
            if let Some(o) = of(&other) {
                let ratio = torsion_median / o;
                println!(
                    "torsion/{:<5} = {:.3} (ratio of medians; median of per-round ratios {:.3}); target {rule}: {}",
                    other.name(),
                    ratio,
                    median(&paired_ratios(samples, &torsion, &other)),
                    if ratio <= target { "met" } else { "MISSED" }
                );
            }
        }
    }
    for (a, b) in external::external_pairs(&config.servers) {
        if let (Some(ma), Some(mb)) = (of(a), of(b)) {
            let ratios = paired_ratios(samples, a, b);
            println!(
                "{a}/{b} = {:.3} (ratio of medians; median of per-round ratios {:.3}, min {:.3}, max {:.3})",
                ma / mb,
                median(&ratios),
                min(&ratios),
                max(&ratios)
            );
        }
    }
}
