//! Fuzzes torsion's sans-I/O parsers on stable Rust: a small coverage-guided mutation fuzzer
//! (coverage from LLVM's SanitizerCoverage counters, which stable rustc can insert) and one
//! target per parser. `docs/fuzzing.md` says what is fuzzed, the invariants, and how to run
//! it; `bash fuzz/run help` lists the commands.

mod alloc;
mod chunking;
mod coverage;
mod driver;
mod mutate;
mod rng;
mod targets;
mod trace;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use driver::Options;
use targets::{Target, TARGETS};

const USAGE: &str = "\
usage: bash fuzz/run COMMAND   (builds with coverage, then runs torsion-fuzz COMMAND)

  run [TARGET...] [--seconds S] [--seed N] [--runs N] [--max-len N] [--timeout S]
      [--corpus-out DIR]
        fuzz each TARGET (default: all) for S seconds (default 60), seeded from
        fuzz/corpus/TARGET/ and DIR/TARGET/ if given; inputs reaching new coverage are
        saved to DIR/TARGET/ with --corpus-out. The seed is printed; the same seed gives
        the same inputs. A failing input is written to target/fuzz/artifacts/TARGET/.
  replay TARGET FILE... [--events]
        run TARGET on each FILE once (panics as the fuzzer saw); --events prints the
        events of the input decoded whole
  list  the targets
  afl TARGET
        run TARGET once on standard input, aborting on a failure: the program AFL++ runs
        (see docs/fuzzing.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("replay") => replay(&args[1..]),
        Some("afl") => afl(&args[1..]),
        Some("list") => {
            for target in TARGETS {
                println!("{:<14} {}", target.name, target.about);
            }
            Ok(true)
        }
        _ => {
            println!("{USAGE}");
            Ok(args.first().is_some_and(|a| a == "help"))
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("torsion-fuzz: {message}");
            ExitCode::from(2)
        }
    }
}

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[String]) -> Result<bool, String> {
    let mut options = Options {
        time: Duration::from_secs(60),
        runs: None,
        seed: 0,
        max_len: 4096,
        timeout: Duration::from_secs(10),
        corpus_out: None,
        artifacts: repo_dir().join("target/fuzz/artifacts"),
    };
    let mut seed = None;
    let mut chosen: Vec<&Target> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => options.time = Duration::from_secs_f64(number(value()?)?),
            "--seed" => seed = Some(number(value()?)?),
            "--runs" => options.runs = Some(number(value()?)?),
            "--max-len" => options.max_len = number(value()?)?,
            "--timeout" => options.timeout = Duration::from_secs_f64(number(value()?)?),
            "--corpus-out" => options.corpus_out = Some(PathBuf::from(value()?)),
            name => {
                chosen.push(targets::find(name).ok_or(format!("no target {name:?} (see list)"))?)
            }
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().collect();
    }
    options.seed = seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64)
    });
    let coverage = if coverage::Coverage::new().is_on() {
        "on"
    } else {
        "OFF (built without the coverage pass: bash fuzz/run builds with it)"
    };
    println!("seed {}, coverage {coverage}", options.seed);
    for target in chosen {
        let mut seeds = read_dir(&repo_dir().join("fuzz/corpus").join(target.name))?;
        if let Some(dir) = &options.corpus_out {
            seeds.extend(read_dir(&dir.join(target.name)).unwrap_or_default());
        }
        match driver::fuzz(target, seeds, &options) {
            Ok(report) => println!(
                "{:<14} {:>6.1} s {:>9} runs {:>7.0}/s  corpus {} -> {}  edges {}",
                target.name,
                report.elapsed.as_secs_f64(),
                report.runs,
                report.runs as f64 / report.elapsed.as_secs_f64(),
                report.corpus.0,
                report.corpus.1,
                report.edges
            ),
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

fn replay(args: &[String]) -> Result<bool, String> {
    let (name, rest) = args
        .split_first()
        .ok_or("replay needs a target and files")?;
    let target = targets::find(name).ok_or(format!("no target {name:?} (see list)"))?;
    let events = rest.iter().any(|a| a == "--events");
    for file in rest.iter().filter(|a| *a != "--events") {
        let path = Path::new(file);
        if events {
            let input = std::fs::read(path).map_err(|e| format!("{file}: {e}"))?;
            print!("{}", (target.events)(&input));
        }
        driver::replay(target, path).map_err(|e| format!("{file}: {e}"))?;
        println!("{file}: ok");
    }
    Ok(true)
}

/// One input from standard input, as AFL++ hands it: a failure must be a crash (a signal),
/// so a panic aborts.
fn afl(args: &[String]) -> Result<bool, String> {
    let name = args.first().ok_or("afl needs a target")?;
    let target = targets::find(name).ok_or(format!("no target {name:?} (see list)"))?;
    let mut input = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut input).map_err(|e| e.to_string())?;
    if std::panic::catch_unwind(|| (target.run)(&input)).is_err() {
        std::process::abort();
    }
    Ok(true)
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

/// The files in `dir`, sorted by name (so a run's seeds come in a fixed order).
fn read_dir(dir: &Path) -> Result<Vec<Vec<u8>>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    paths
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect()
}
