//! The TLS benchmark's samples and tables: medians over rounds with min and max, and paired
//! per-round ratios between servers.

use std::time::Duration;

use crate::cpu::CpuTimes;
use crate::external::{self, Target};
use crate::stats::{max, median, min};

use super::bulk::{WINDOW, WRITE_SIZE};
use super::servers::TlsKind;
use super::TlsConfig;

/// Which load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Bulk echo: MiB per second, server CPU per MiB.
    Throughput,
    /// Connections with a full handshake: per second, server CPU per connection.
    Handshake,
}

impl Load {
    /// The load named `name` on the command line.
    pub fn from_name(name: &str) -> Option<Load> {
        match name {
            "throughput" => Some(Load::Throughput),
            "handshake" => Some(Load::Handshake),
            _ => None,
        }
    }

    /// The column headings: the rate, and the server CPU per unit.
    fn headings(self) -> (&'static str, &'static str) {
        match self {
            Load::Throughput => ("MiB/s", "CPU us/MiB"),
            Load::Handshake => ("conn/s", "CPU us/conn"),
        }
    }
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The round it belongs to.
    pub round: usize,
    /// The server measured.
    pub server: Target<TlsKind>,
    /// The load.
    pub load: Load,
    /// Server thread CPU time over the measured phase.
    pub cpu: CpuTimes,
    /// MiB echoed, or connections made.
    pub units: f64,
    /// The clients' wall time for the measured phase.
    pub elapsed: Duration,
}

impl Sample {
    /// MiB or connections per second.
    fn rate(&self) -> f64 {
        self.units / self.elapsed.as_secs_f64()
    }

    /// Server CPU microseconds per MiB or per connection.
    fn cpu_per_unit(&self) -> f64 {
        self.cpu.ns as f64 / 1000.0 / self.units
    }

    /// Heap allocations the server thread made per MiB or per connection; `None` for an
    /// external server (only this binary's threads count their allocations).
    fn allocations_per_unit(&self) -> Option<f64> {
        (!self.server.is_external()).then(|| self.cpu.allocations as f64 / self.units)
    }

    /// Share of one core the server used.
    fn cpu_share(&self) -> f64 {
        self.cpu.ns as f64 / self.elapsed.as_nanos() as f64
    }

    /// The progress line for this sample.
    pub fn progress(&self) -> String {
        let (rate, cpu) = self.load.headings();
        let memory = match self.allocations_per_unit() {
            Some(allocations) => format!(
                ", {allocations:.1} allocations per unit, heap before the run {} KiB",
                self.cpu.heap_at_start / 1024
            ),
            None => " (a process: allocations not counted)".into(),
        };
        // `compare-trees` reads these lines: keep the fields in this order.
        format!(
            "{:<10} {:<12} {:>9.1} {rate} {:>9.1} {cpu}  server CPU {:>3.0}% (user {}){memory}",
            match self.load {
                Load::Throughput => "throughput",
                Load::Handshake => "handshake",
            },
            self.server.name(),
            self.rate(),
            self.cpu_per_unit(),
            100.0 * self.cpu_share(),
            percent(self.cpu.user_share()),
        )
    }
}

/// `share` as a whole percentage, or `-` if no clock tick was seen (`NaN`).
fn percent(share: f64) -> String {
    if share.is_nan() {
        "-".into()
    } else {
        format!("{:.0}%", 100.0 * share)
    }
}

/// Pairs of servers whose per-round ratios are printed, when both ran, and what each says.
const PAIRS: [(TlsKind, TlsKind, &str); 4] = [
    (
        TlsKind::Torsion,
        TlsKind::TokioRustls,
        "torsion against the baseline",
    ),
    (
        TlsKind::TokioRustls,
        TlsKind::TokioTcp,
        "what TLS costs tokio",
    ),
    (
        TlsKind::Torsion,
        TlsKind::TorsionTcp,
        "what TLS costs torsion",
    ),
    (
        TlsKind::TorsionTcp,
        TlsKind::TokioTcp,
        "plain TCP, for reference",
    ),
];

fn title(load: Load, config: &TlsConfig, negotiated: &str) -> String {
    match load {
        Load::Throughput => format!(
            "TLS echo throughput: {} connections, {} KiB writes, at most {} KiB in flight each; \
             {:.0} MiB echoed per run; {negotiated}",
            config.clients,
            WRITE_SIZE / 1024,
            WINDOW / 1024,
            config.bytes as f64 / super::MIB as f64,
        ),
        Load::Handshake => format!(
            "TLS handshakes: {} connections per run, {} at a time, each a full handshake \
             (no resumption), one 24-byte echo and close_notify (plain TCP: connect, echo, close)",
            config.handshakes, config.clients,
        ),
    }
}

/// Per-round ratios of `a` over `b` under `load`: (rate ratios, CPU-per-unit ratios).
fn paired(samples: &[&Sample], a: &Target<TlsKind>, b: &Target<TlsKind>) -> (Vec<f64>, Vec<f64>) {
    samples
        .iter()
        .filter(|s| &s.server == a)
        .filter_map(|x| {
            let y = samples
                .iter()
                .find(|y| &y.server == b && y.round == x.round)?;
            Some((x.rate() / y.rate(), x.cpu_per_unit() / y.cpu_per_unit()))
        })
        .unzip()
}

fn print_ratios(servers: &[Target<TlsKind>], samples: &[&Sample]) {
    let mut heading = Some("ratios, medians of per-round ratios (min-max):");
    let builtin: Vec<(Target<TlsKind>, Target<TlsKind>, &str)> = PAIRS
        .iter()
        .map(|&(a, b, meaning)| (Target::Builtin(a), Target::Builtin(b), meaning))
        .collect();
    let externals = external::external_pairs(servers)
        .into_iter()
        .map(|(a, b)| (a.clone(), b.clone(), "an external server"));
    for (a, b, meaning) in builtin.into_iter().chain(externals) {
        let (rates, cpus) = paired(samples, &a, &b);
        if rates.is_empty() {
            continue;
        }
        if let Some(heading) = heading.take() {
            println!("{heading}");
        }
        println!(
            "{:<26} rate {:.3} ({:.3}-{:.3}), CPU per unit {:.3} ({:.3}-{:.3}): {meaning}",
            format!("{a}/{b}"),
            median(&rates),
            min(&rates),
            max(&rates),
            median(&cpus),
            min(&cpus),
            max(&cpus),
        );
    }
}

fn print_row(target: &Target<TlsKind>, width: usize, mine: &[&Sample]) {
    let rate: Vec<f64> = mine.iter().map(|s| s.rate()).collect();
    let cpu: Vec<f64> = mine.iter().map(|s| s.cpu_per_unit()).collect();
    let share: Vec<f64> = mine.iter().map(|s| s.cpu_share()).collect();
    let allocations: Vec<f64> = mine
        .iter()
        .filter_map(|s| s.allocations_per_unit())
        .collect();
    let allocations = if target.is_external() {
        "-".to_string()
    } else {
        format!("{:.1}", median(&allocations))
    };
    let ticks = mine.iter().fold(CpuTimes::default(), |sum, s| CpuTimes {
        ns: sum.ns + s.cpu.ns,
        user_ticks: sum.user_ticks + s.cpu.user_ticks,
        sys_ticks: sum.sys_ticks + s.cpu.sys_ticks,
        allocations: sum.allocations + s.cpu.allocations,
        heap_at_start: 0,
    });
    println!(
        "{:<width$} {:>9.1} {:>9.1} {:>9.1} {:>11.1} {:>9.1} {:>9.1} {:>7} {:>9.0}% {:>9}",
        target.name(),
        median(&rate),
        min(&rate),
        max(&rate),
        median(&cpu),
        min(&cpu),
        max(&cpu),
        percent(ticks.user_share()),
        100.0 * median(&share),
        allocations,
    );
}

/// Prints one load's table: per server, the median, min and max over rounds of the rate and
/// of the server CPU per unit, then the per-round ratios between servers.
pub fn print_table(load: Load, config: &TlsConfig, negotiated: &str, samples: &[Sample]) {
    let samples: Vec<&Sample> = samples.iter().filter(|s| s.load == load).collect();
    let (rate, cpu) = load.headings();
    println!();
    println!(
        "{}; {} rounds",
        title(load, config, negotiated),
        config.rounds
    );
    let w = external::name_width(&config.servers, 13);
    println!(
        "{:<w$} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>7} {:>10} {:>9}",
        "server", rate, "min", "max", cpu, "min", "max", "user", "server CPU", "allocs"
    );
    println!(
        "{:<w$} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>7} {:>10} {:>9}",
        "", "(median)", "", "", "(median)", "", "", "(ticks)", "(median)", "per unit"
    );
    for target in &config.servers {
        let mine: Vec<&Sample> = samples
            .iter()
            .copied()
            .filter(|s| &s.server == target)
            .collect();
        print_row(target, w, &mine);
    }
    print_ratios(&config.servers, &samples);
}
