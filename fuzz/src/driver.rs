//! The fuzzing loop: seeds first, then mutants of the corpus, keeping every input that reaches
//! new coverage; a failing input (a panic, or a run past the time limit) is written to a file
//! with the command that replays it.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::coverage::Coverage;
use crate::mutate::mutate;
use crate::rng::{fnv1a, Rng};
use crate::targets::Target;

/// How long and how to fuzz one target.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this long.
    pub time: Duration,
    /// Stop after this many runs, if sooner (for a run repeatable to the input).
    pub runs: Option<u64>,
    /// The seed of the mutations.
    pub seed: u64,
    /// The longest input tried.
    pub max_len: usize,
    /// A run taking longer than this is a failure (a hang, or a quadratic blow-up).
    pub timeout: Duration,
    /// Where inputs reaching new coverage are saved, one folder per target (none: kept in
    /// memory only).
    pub corpus_out: Option<PathBuf>,
    /// Where failing inputs are written.
    pub artifacts: PathBuf,
}

/// What a finished run did.
#[derive(Debug)]
pub struct Report {
    /// Inputs run.
    pub runs: u64,
    /// The corpus at the start (seeds) and at the end.
    pub corpus: (usize, usize),
    /// Edges reached (0 without coverage).
    pub edges: usize,
    /// Time spent.
    pub elapsed: Duration,
}

/// Fuzzes `target` from `seeds` under `options`. A failure is reported on stderr, and its
/// input's path returned.
pub fn fuzz(target: &Target, seeds: Vec<Vec<u8>>, options: &Options) -> Result<Report, PathBuf> {
    let watchdog = Watchdog::start(target.name, options.timeout, options.artifacts.clone());
    let mut coverage = Coverage::new();
    let mut rng = Rng::new(options.seed);
    let started = Instant::now();
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    let mut runs = 0;
    let seed_count = seeds.len();
    // Seeds run first, and all stay in the corpus whatever their coverage.
    for seed in seeds {
        runs += 1;
        run_one(target, &seed, &mut coverage, &watchdog, options)?;
        corpus.push(seed);
    }
    if corpus.is_empty() {
        corpus.push(b"\n".to_vec());
    }
    let mut input = Vec::new();
    while started.elapsed() < options.time && options.runs.is_none_or(|n| runs < n) {
        runs += 1;
        input.clear();
        input.extend_from_slice(&corpus[rng.below(corpus.len())]);
        let other = corpus[rng.below(corpus.len())].clone();
        mutate(
            &mut input,
            &mut rng,
            target.dictionary,
            &other,
            options.max_len,
        );
        if run_one(target, &input, &mut coverage, &watchdog, options)? > 0 {
            if let Some(dir) = &options.corpus_out {
                save(&dir.join(target.name), "", &input);
            }
            corpus.push(input.clone());
        }
    }
    watchdog.stop();
    Ok(Report {
        runs,
        corpus: (seed_count, corpus.len()),
        edges: coverage.edges(),
        elapsed: started.elapsed(),
    })
}

/// Runs `target` on `input`; returns how much new coverage it reached.
fn run_one(
    target: &Target,
    input: &[u8],
    coverage: &mut Coverage,
    watchdog: &Watchdog,
    options: &Options,
) -> Result<usize, PathBuf> {
    watchdog.arm(input);
    coverage.reset();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let new = coverage.take_new();
    watchdog.disarm();
    match outcome {
        Ok(()) => Ok(new),
        Err(_) => {
            let path = save(&options.artifacts.join(target.name), "crash-", input);
            report_failure(target.name, "panicked (message above)", input, &path);
            Err(path)
        }
    }
}

/// Runs `target` on the input in `path`, once, panicking as the target does.
pub fn replay(target: &Target, path: &Path) -> std::io::Result<()> {
    let input = std::fs::read(path)?;
    (target.run)(&input);
    Ok(())
}

/// Writes `input` to `dir/{prefix}{hash}`; returns the path.
fn save(dir: &Path, prefix: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(format!("{prefix}{:016x}", fnv1a(input)));
    if let Err(error) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input)) {
        eprintln!("could not write {}: {error}", path.display());
    }
    path
}

fn report_failure(target: &str, what: &str, input: &[u8], path: &Path) {
    eprintln!("\nFAILED: {target} {what}");
    if input.len() <= 2048 {
        eprintln!(
            "input ({} bytes): \"{}\"",
            input.len(),
            input.escape_ascii()
        );
    } else {
        eprintln!("input: {} bytes", input.len());
    }
    eprintln!("saved to {}", path.display());
    eprintln!("replay: bash fuzz/run replay {target} {}", path.display());
}

/// A thread that fails the run when one input takes too long: a loop that never ends cannot
/// be caught by the loop itself.
struct Watchdog {
    shared: Arc<Shared>,
}

struct Shared {
    /// Milliseconds since `epoch` at which the current run started, plus one; 0 when idle,
    /// `u64::MAX` once asked to stop.
    armed_at: AtomicU64,
    epoch: Instant,
    input: Mutex<Vec<u8>>,
}

impl Watchdog {
    fn start(target: &'static str, timeout: Duration, artifacts: PathBuf) -> Watchdog {
        let shared = Arc::new(Shared {
            armed_at: AtomicU64::new(0),
            epoch: Instant::now(),
            input: Mutex::new(Vec::new()),
        });
        let watched = Arc::clone(&shared);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let armed_at = watched.armed_at.load(Ordering::Acquire);
            if armed_at == u64::MAX {
                return;
            }
            let now = watched.epoch.elapsed().as_millis() as u64 + 1;
            if armed_at != 0 && now - armed_at > timeout.as_millis() as u64 {
                let input = watched.input.lock().unwrap_or_else(|e| e.into_inner());
                let path = save(&artifacts.join(target), "timeout-", &input);
                let what = format!("took over {} ms on one input", timeout.as_millis());
                report_failure(target, &what, &input, &path);
                std::process::exit(1);
            }
        });
        Watchdog { shared }
    }

    fn arm(&self, input: &[u8]) {
        let mut copy = self.shared.input.lock().unwrap_or_else(|e| e.into_inner());
        copy.clear();
        copy.extend_from_slice(input);
        drop(copy);
        let now = self.shared.epoch.elapsed().as_millis() as u64 + 1;
        self.shared.armed_at.store(now, Ordering::Release);
    }

    fn disarm(&self) {
        self.shared.armed_at.store(0, Ordering::Release);
    }

    fn stop(self) {
        self.shared.armed_at.store(u64::MAX, Ordering::Release);
    }
}
