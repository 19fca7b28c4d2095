//! Child processes over real programs (`sh`, `cat`, `sleep`): arguments, environment and
//! working directory; stdin written and closed; stdout and stderr apart and complete, with
//! reading paused and resumed; exit codes and signals, from the child or sent by the parent;
//! `process_ended` last, after all output; no zombie left, after an exit, a shutdown (which
//! signals the children still running) or the reactor being dropped.

mod common;

use std::time::Duration;

use common::{init_logging, run_until, shared, Shared};
use rustix::process::{waitpid, Pid, WaitOptions};
use torsion::{
    ChildIo, ChildPipe, ProcessBuilder, ProcessContext, ProcessExit, ProcessProtocol, Reactor,
};

/// What a child did, as its protocol heard it.
#[derive(Default)]
struct Log {
    out: Vec<u8>,
    err: Vec<u8>,
    /// Callbacks in order (data callbacks once per chunk: `out`, `err`).
    events: Vec<String>,
    pid: Option<u32>,
    exited: Option<ProcessExit>,
    ended: Option<ProcessExit>,
}

/// Records everything; writes `input` to stdin at start, then closes it.
struct Recorder {
    log: Shared<Log>,
    input: Option<Vec<u8>>,
    /// Pause reading stdout at the first chunk, resume after this long.
    pause_stdout_for: Option<Duration>,
    /// Send this signal at start.
    signal_at_start: Option<i32>,
}

impl Recorder {
    fn new(log: &Shared<Log>) -> Recorder {
        Recorder {
            log: log.clone(),
            input: None,
            pause_stdout_for: None,
            signal_at_start: None,
        }
    }
}

impl ProcessProtocol for Recorder {
    fn process_started(&mut self, cx: &mut ProcessContext<'_>) {
        self.log.borrow_mut().pid = cx.pid();
        if let Some(input) = self.input.take() {
            assert!(cx.write(&input), "stdin takes writes");
            cx.close_stdin();
        }
        if let Some(signal) = self.signal_at_start {
            cx.signal(signal).expect("signal the child");
        }
    }

    fn out_received(&mut self, cx: &mut ProcessContext<'_>, data: &[u8]) {
        let mut log = self.log.borrow_mut();
        log.out.extend_from_slice(data);
        log.events.push("out".into());
        if let Some(pause) = self.pause_stdout_for.take() {
            cx.pause_reading(ChildPipe::Stdout);
            log.events.push("paused".into());
            let id = cx.id();
            let log = self.log.clone();
            cx.reactor().call_later(pause, move |reactor| {
                log.borrow_mut().events.push("resumed".into());
                reactor.resume_process_reading(id, ChildPipe::Stdout);
            });
        }
    }

    fn err_received(&mut self, _cx: &mut ProcessContext<'_>, data: &[u8]) {
        let mut log = self.log.borrow_mut();
        log.err.extend_from_slice(data);
        log.events.push("err".into());
    }

    fn pipe_closed(&mut self, _cx: &mut ProcessContext<'_>, pipe: ChildPipe) {
        let event = format!("closed {pipe:?}");
        self.log.borrow_mut().events.push(event);
    }

    fn pause_writing(&mut self, _cx: &mut ProcessContext<'_>) {
        self.log.borrow_mut().events.push("pause_writing".into());
    }

    fn resume_writing(&mut self, _cx: &mut ProcessContext<'_>) {
        self.log.borrow_mut().events.push("resume_writing".into());
    }

    fn process_exited(&mut self, _cx: &mut ProcessContext<'_>, exit: ProcessExit) {
        let mut log = self.log.borrow_mut();
        log.exited = Some(exit);
        log.events.push("exited".into());
    }

    fn process_ended(&mut self, _cx: &mut ProcessContext<'_>, exit: ProcessExit) {
        let mut log = self.log.borrow_mut();
        log.ended = Some(exit);
        log.events.push("ended".into());
    }
}

/// Spawns `builder` with `recorder`, and turns the reactor until the child has ended.
fn run_to_end(builder: ProcessBuilder, recorder: Recorder) -> Shared<Log> {
    init_logging();
    let log = recorder.log.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor.spawn(builder, recorder).expect("spawn");
    run_until(&mut reactor, "the child's end", || {
        log.borrow().ended.is_some()
    });
    log
}

fn run(builder: ProcessBuilder) -> Shared<Log> {
    let log = shared(Log::default());
    run_to_end(builder, Recorder::new(&log))
}

fn sh(script: &str) -> ProcessBuilder {
    ProcessBuilder::new("sh").args(["-c", script])
}

/// Whether `pid` is no child of ours any more (reaped: `waitpid` says `ECHILD`).
fn reaped(pid: u32) -> bool {
    let pid = Pid::from_raw(pid as i32).unwrap();
    matches!(
        waitpid(Some(pid), WaitOptions::NOHANG),
        Err(e) if e == rustix::io::Errno::CHILD
    )
}

#[test]
fn a_child_gets_its_arguments_environment_and_working_directory() {
    let builder = sh(r#"printf '%s|%s|%s|%s' "$1" "$2" "$GREETING" "$(pwd)""#)
        .args(["sh", "one arg", "two"])
        .env("GREETING", "hello")
        .current_dir("/");
    let log = run(builder);
    let log = log.borrow();
    assert_eq!(String::from_utf8_lossy(&log.out), "one arg|two|hello|/");
    assert_eq!(log.ended, Some(ProcessExit::Code(0)));
}

#[test]
fn a_cleared_environment_keeps_only_what_is_set() {
    let builder = ProcessBuilder::new("/bin/sh")
        .args(["-c", r#"printf '%s|%s' "${HOME:-unset}" "$ONLY""#])
        .env_clear()
        .env("ONLY", "this");
    let log = run(builder);
    assert_eq!(String::from_utf8_lossy(&log.borrow().out), "unset|this");
}

#[test]
fn stdin_written_and_closed_comes_back_through_cat_whole() {
    let input: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let log = shared(Log::default());
    let mut recorder = Recorder::new(&log);
    recorder.input = Some(input.clone());
    let log = run_to_end(ProcessBuilder::new("cat"), recorder);
    let log = log.borrow();
    assert!(log.out == input, "cat's output differs from its input");
    // More than the high watermark was queued at once, and cat drained it.
    let pause = log.events.iter().position(|e| e == "pause_writing");
    let resume = log.events.iter().position(|e| e == "resume_writing");
    assert!(
        pause.is_some() && pause < resume,
        "{:?}",
        log.events.iter().take(4).collect::<Vec<_>>()
    );
    assert!(log.events.contains(&"closed Stdin".to_string()));
    assert_eq!(log.ended, Some(ProcessExit::Code(0)));
}

#[test]
fn stdout_and_stderr_arrive_apart_and_the_exit_code_is_reported() {
    let log = run(sh("echo to-out; echo to-err >&2; exit 7"));
    let log = log.borrow();
    assert_eq!(log.out, b"to-out\n");
    assert_eq!(log.err, b"to-err\n");
    assert_eq!(log.exited, Some(ProcessExit::Code(7)));
    assert_eq!(log.ended, Some(ProcessExit::Code(7)));
}

#[test]
fn a_child_killed_by_a_signal_reports_the_signal() {
    let log = run(sh("kill -TERM $$"));
    assert_eq!(log.borrow().ended, Some(ProcessExit::Signal(15)));
}

#[test]
fn the_parent_can_signal_a_child_and_it_is_reaped() {
    let log = shared(Log::default());
    let mut recorder = Recorder::new(&log);
    recorder.signal_at_start = Some(9);
    let log = run_to_end(ProcessBuilder::new("sleep").arg("30"), recorder);
    let log = log.borrow();
    assert_eq!(log.ended, Some(ProcessExit::Signal(9)));
    assert!(reaped(log.pid.unwrap()), "the child is left as a zombie");
}

#[test]
fn the_end_comes_last_after_all_output_and_every_pipe_closed() {
    let log = run(sh("seq 1 100000; seq 1 50000 >&2"));
    let log = log.borrow();
    let expected_out: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    let expected_err: String = (1..=50_000).map(|i| format!("{i}\n")).collect();
    assert!(log.out == expected_out.as_bytes(), "stdout incomplete");
    assert!(log.err == expected_err.as_bytes(), "stderr incomplete");
    assert_eq!(log.events.last().map(String::as_str), Some("ended"));
    for event in ["exited", "closed Stdin", "closed Stdout", "closed Stderr"] {
        assert_eq!(
            log.events.iter().filter(|e| *e == event).count(),
            1,
            "{event} once in {:?}",
            &log.events[log.events.len().saturating_sub(8)..]
        );
    }
    assert!(reaped(log.pid.unwrap()));
}

#[test]
fn paused_stdout_delivers_nothing_until_resumed_and_loses_nothing() {
    let log = shared(Log::default());
    let mut recorder = Recorder::new(&log);
    recorder.pause_stdout_for = Some(Duration::from_millis(100));
    // Far more than a pipe holds: the child blocks while reading is paused.
    let log = run_to_end(sh("head -c 1000000 /dev/zero"), recorder);
    let log = log.borrow();
    assert_eq!(log.out.len(), 1_000_000);
    let paused = log.events.iter().position(|e| e == "paused").unwrap();
    assert_eq!(log.events[paused + 1], "resumed", "data while paused");
    assert_eq!(log.ended, Some(ProcessExit::Code(0)));
}

#[test]
fn streams_not_piped_are_not_reported() {
    let builder = sh("echo out; echo err >&2")
        .stdin(ChildIo::Null)
        .stderr(ChildIo::Null);
    let log = run(builder);
    let log = log.borrow();
    assert_eq!(log.out, b"out\n");
    assert!(log.err.is_empty());
    assert!(!log
        .events
        .iter()
        .any(|e| e.contains("Stdin") || e.contains("Stderr")));
}

#[test]
fn a_program_that_does_not_exist_fails_to_spawn() {
    let mut reactor = Reactor::new().unwrap();
    let log = shared(Log::default());
    let result = reactor.spawn(
        ProcessBuilder::new("/nonexistent/program"),
        Recorder::new(&log),
    );
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::NotFound);
    assert!(log.borrow().events.is_empty());
}

#[test]
fn a_shutdown_terminates_children_then_kills_those_ignoring_it_and_reaps_both() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    reactor.set_shutdown_timeout(Duration::from_millis(200));
    let polite = shared(Log::default());
    let stubborn = shared(Log::default());
    reactor
        .spawn(
            ProcessBuilder::new("sleep").arg("30"),
            Recorder::new(&polite),
        )
        .unwrap();
    // The ignored SIGTERM carries over `exec`: sleep itself ignores it.
    reactor
        .spawn(
            sh("trap '' TERM; echo ready; exec sleep 30"),
            Recorder::new(&stubborn),
        )
        .unwrap();
    run_until(&mut reactor, "the stubborn child's trap", || {
        stubborn.borrow().out == b"ready\n"
    });
    reactor.shutdown();
    run_until(&mut reactor, "both children's end", || {
        polite.borrow().ended.is_some() && stubborn.borrow().ended.is_some()
    });
    assert_eq!(polite.borrow().ended, Some(ProcessExit::Signal(15)));
    assert_eq!(stubborn.borrow().ended, Some(ProcessExit::Signal(9)));
    assert!(reaped(polite.borrow().pid.unwrap()));
    assert!(reaped(stubborn.borrow().pid.unwrap()));
    // The shutdown finishes (run returns) once the children are gone.
    reactor.run().unwrap();
}

#[test]
fn dropping_the_reactor_kills_and_reaps_a_running_child() {
    let mut reactor = Reactor::new().unwrap();
    let log = shared(Log::default());
    reactor
        .spawn(ProcessBuilder::new("sleep").arg("30"), Recorder::new(&log))
        .unwrap();
    let pid = log.borrow().pid.unwrap();
    drop(reactor);
    assert!(reaped(pid), "the child is left running or a zombie");
}

/// The `spawn` example: `spawn -- COMMAND [ARGS...]`.
mod spawn_example {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::Duration;

    use crate::common::examples::{example, run_with_input, wait_for_exit, Running};

    #[test]
    fn prefixes_each_line_by_stream_and_exits_with_the_childs_code() {
        let Some(bin) = example("spawn") else {
            return;
        };
        let script = "echo hi; echo oops >&2; printf 'no newline'; exit 3";
        let (status, stdout, stderr) =
            run_with_input(Command::new(bin).args(["--", "sh", "-c", script]), b"");
        assert_eq!(status.code(), Some(3), "{status}; stderr: {stderr}");
        let mut lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.pop(), Some("exit: 3"), "{stdout:?}");
        lines.sort_unstable();
        assert_eq!(lines, ["err: oops", "out: hi", "out: no newline"]);
    }

    #[test]
    fn forwards_its_stdin_to_the_child() {
        let Some(bin) = example("spawn") else {
            return;
        };
        let (status, stdout, stderr) =
            run_with_input(Command::new(bin).args(["--", "cat"]), b"first\nsecond\n");
        assert!(status.success(), "{status}; stderr: {stderr}");
        assert_eq!(stdout, "out: first\nout: second\nexit: 0\n");
    }

    #[test]
    fn a_child_killed_by_a_signal_makes_it_exit_128_plus_the_signal() {
        let Some(bin) = example("spawn") else {
            return;
        };
        let (status, stdout, _) = run_with_input(
            Command::new(bin).args(["--", "sh", "-c", "kill -9 $$"]),
            b"",
        );
        assert_eq!(status.code(), Some(128 + 9), "{status}");
        assert_eq!(stdout, "signal: 9\n");
    }

    #[test]
    fn a_command_that_cannot_start_exits_127_with_one_error_line() {
        let Some(bin) = example("spawn") else {
            return;
        };
        let (status, stdout, stderr) =
            run_with_input(Command::new(bin).args(["--", "/nonexistent/program"]), b"");
        assert_eq!(status.code(), Some(127), "{status}");
        assert_eq!(stdout, "");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    }

    #[test]
    fn much_output_on_both_streams_to_a_slow_reader_arrives_whole_line_by_line() {
        let Some(bin) = example("spawn") else {
            return;
        };
        // Both streams at once, far more than the pipes and the write queue hold.
        let script = "seq 1 60000 & seq 1 60000 >&2; wait";
        let child = Command::new(bin)
            .args(["--", "sh", "-c", script])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the example");
        let mut running = Running(child);
        let mut stdout = running.0.stdout.take().unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            // A slow reader on purpose: the example must hold the child back, not buffer.
            thread::sleep(Duration::from_millis(1));
            match stdout.read(&mut chunk).expect("read stdout") {
                0 => break,
                n => received.extend_from_slice(&chunk[..n]),
            }
        }
        let status = wait_for_exit(&mut running, "spawn");
        assert!(status.success(), "{status}");
        let text = String::from_utf8(received).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.pop(), Some("exit: 0"));
        let (mut next_out, mut next_err) = (1, 1);
        for line in lines {
            let (next, number) = match line.split_once(": ") {
                Some(("out", n)) => (&mut next_out, n),
                Some(("err", n)) => (&mut next_err, n),
                _ => panic!("not a prefixed line: {line:?}"),
            };
            assert_eq!(number, next.to_string(), "lost, reordered or mixed lines");
            *next += 1;
        }
        assert_eq!((next_out, next_err), (60_001, 60_001));
    }
}
