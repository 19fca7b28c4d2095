//! Running the example programs from tests: finding their built binaries, running one to
//! its end with some input, and killing the long-running ones when a test ends.
//!
//! `cargo test` builds the examples into `target/<profile>/examples/` next to the test
//! binaries; a test whose example binary is missing (e.g. under `cargo test --test examples`
//! alone, which does not build examples) or older than its sources is skipped with a printed
//! reason, except under CI (`CI=true`), where it fails.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::machine::skip_or_fail;
use super::DEADLINE;

/// The built example `name`, or `None` (with the reason printed) if it is not there. Under
/// CI (`CI=true`; CI runs `.ci/run`, whose plain `cargo test` builds every example first) a
/// missing or stale binary fails the test instead: there it can only mean a broken build.
pub fn example(name: &str) -> Option<PathBuf> {
    find_example(name).map_err(skip_or_fail).ok()
}

fn find_example(name: &str) -> Result<PathBuf, String> {
    // The test binary is target/<profile>/deps/examples-<hash>.
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| format!("no profile directory above {}", exe.display()))?;
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let Ok(built) = path.metadata().and_then(|m| m.modified()) else {
        return Err(format!(
            "{} is not built (plain `cargo test` or `cargo build --examples` builds it)",
            path.display()
        ));
    };
    if let Some(source) = newer_source(name, built) {
        return Err(format!(
            "{} is older than {} (`cargo test --tests` does not rebuild examples)",
            path.display(),
            source.display()
        ));
    }
    Ok(path)
}

/// A source of example `name` (its file, or any file of the two library crates) changed after
/// `built`, if any.
fn newer_source(name: &str, built: SystemTime) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![root.join("examples").join(format!("{name}.rs"))];
    collect_files(&root.join("examples/shared"), &mut sources);
    for dir in ["reactor/src", "protocols/src"] {
        collect_files(&root.join(dir), &mut sources);
    }
    sources.into_iter().find(|source| {
        let modified = source.metadata().and_then(|m| m.modified());
        modified.is_ok_and(|modified| modified > built)
    })
}

/// Every file below `dir`.
fn collect_files(dir: &std::path::Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|entry| Some(entry.ok()?.path())) {
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// A child process that is killed and reaped when dropped, even when the test fails.
pub struct Running(pub Child);

impl Running {
    /// Sends SIGTERM (a graceful stop) and waits for the exit, failing the test past
    /// [`DEADLINE`].
    pub fn terminate(&mut self, name: &str) -> ExitStatus {
        use rustix::process::{kill_process, Pid, Signal};
        kill_process(Pid::from_child(&self.0), Signal::TERM).expect("send SIGTERM");
        wait_for_exit(self, name)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command to completion (killing it past [`DEADLINE`]) with an empty stdin, and
/// returns its exit status, stdout and stderr.
pub fn run_to_end(command: &mut Command) -> (ExitStatus, String, String) {
    run_with_input(command, b"")
}

/// Waits for a child to exit, failing the test past [`DEADLINE`].
pub fn wait_for_exit(running: &mut Running, what: &str) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{what} did not exit");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command with `input` on its stdin (then closed), to completion (killing it past
/// [`DEADLINE`]); returns its exit status, stdout and stderr.
pub fn run_with_input(command: &mut Command, input: &[u8]) -> (ExitStatus, String, String) {
    let (status, stdout, stderr) = run_bytes(command, input);
    let stdout = String::from_utf8(stdout).expect("the example's stdout is UTF-8");
    (status, stdout, stderr)
}

/// Runs a command with `input` on its stdin (then closed), to completion (killing it past
/// [`DEADLINE`]); returns its exit status, its stdout as bytes, and its stderr. Stdout is read
/// on a thread while the command runs, so a large output cannot fill the pipe and stall it.
pub fn run_bytes(command: &mut Command, input: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let child = command
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example");
    let mut running = Running(child);
    let mut stdout = running.0.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    // Dropping stdin closes it: the end of input the program waits for.
    let mut stdin = running.0.stdin.take().unwrap();
    stdin.write_all(input).expect("write the example's stdin");
    drop(stdin);
    let status = wait_for_exit(&mut running, &format!("{command:?}"));
    let stdout = reader.join().unwrap().expect("read the example's stdout");
    let mut stderr = String::new();
    let mut pipe = running.0.stderr.take().unwrap();
    pipe.read_to_string(&mut stderr).unwrap();
    (status, stdout, stderr)
}
