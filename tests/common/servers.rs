//! Long-running example servers started by a test: spawned with their arguments, waited for
//! until they print `... listening on ADDR`, killed when the test ends.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use super::examples::{example, Running};
use super::DEADLINE;

/// Starts server example `name` with `args` (through `wrap`, which may put a launcher in
/// front: `None` runs it directly) and waits for its `listening on ADDR` line; returns it
/// running and the address as printed. `None` if the binary is not built (skipped, or failed
/// under CI, by [`example`]).
pub fn start_server(name: &str, args: &[&str], wrap: Option<&[&str]>) -> Option<(Running, String)> {
    let binary = example(name)?;
    let mut command = match wrap {
        Some([launcher, launcher_args @ ..]) => {
            let mut command = Command::new(launcher);
            command.args(launcher_args).arg(binary);
            command
        }
        _ => Command::new(binary),
    };
    let mut child = command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server example");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (send, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    loop {
        let line = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("{name} {args:?} never said it listens: {e}"));
        if let Some((_, rest)) = line.split_once(" listening on ") {
            let printed = rest.split(',').next().unwrap().to_string();
            return Some((running, printed));
        }
    }
}
