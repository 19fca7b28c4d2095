//! Standard I/O as a transport, over real processes: the `stdio_lines` example with stdin a
//! pipe, a regular file (also one the shell already read part of) and `/dev/null`, stdout a
//! pipe and a regular file, a reader that reads slowly (everything arrives, then exit 0), and a
//! line over the bound (one error line, exit 1).

mod common;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::examples::{example, run_with_input, wait_for_exit, Running};

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("torsion-stdio-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write a temporary file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What `stdio_lines` writes for `lines`.
fn numbered(lines: &[&str]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(&format!("{}: {line}\n", i + 1));
    }
    out.push_str(&format!("lines: {}\n", lines.len()));
    out
}

/// `count` lines of a recognisable pattern, and what `stdio_lines` makes of them.
fn many_lines(count: usize) -> (Vec<u8>, String) {
    let lines: Vec<String> = (0..count)
        .map(|i| format!("line {i} {}", "x".repeat(i % 50)))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    (lines.join("\n").into_bytes(), numbered(&refs))
}

#[test]
fn stdio_lines_numbers_a_piped_stdin_and_counts_at_its_end() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    let (status, stdout, stderr) = run_with_input(&mut Command::new(bin), b"one\ntwo\r\n\nlast");
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, numbered(&["one", "two", "", "last"]));
    assert_eq!(stderr, "");
}

#[test]
fn stdio_lines_reads_a_regular_file_to_its_end() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    // More than one turn's read budget, so the file is read over several turns.
    let (input, expected) = many_lines(40_000);
    let file = TempFile::new("regular-in", &input);
    let mut command = Command::new(bin);
    command.stdin(File::open(&file.0).unwrap());
    let (status, stdout, stderr) = run_piped_out(&mut command);
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert!(
        stdout == expected.as_bytes(),
        "output differs from the file's numbering"
    );
}

#[test]
fn stdio_lines_starts_where_the_shell_left_a_regular_file() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    let file = TempFile::new("shared-offset", b"skipped\nsecond\nthird\n");
    // The shell reads the first line from the same open file, then runs the example on it:
    // the example must go on from that offset, not from the file's start.
    let script = format!("read first; exec '{}'", bin.display());
    let mut command = Command::new("sh");
    command
        .args(["-c", &script])
        .stdin(File::open(&file.0).unwrap());
    let (status, stdout, stderr) = run_piped_out(&mut command);
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(
        String::from_utf8(stdout).unwrap(),
        numbered(&["second", "third"])
    );
}

#[test]
fn stdio_lines_with_dev_null_as_stdin_counts_zero_lines() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    let mut command = Command::new(bin);
    command.stdin(Stdio::null());
    let (status, stdout, stderr) = run_piped_out(&mut command);
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(String::from_utf8(stdout).unwrap(), "lines: 0\n");
}

#[test]
fn stdio_lines_writes_to_a_regular_file_as_stdout() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    let (input, expected) = many_lines(20_000);
    let out = TempFile::new("regular-out", b"");
    let child = Command::new(bin)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(File::create(&out.0).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stdio_lines");
    let mut running = Running(child);
    let mut stdin = running.0.stdin.take().unwrap();
    let writer = thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let status = wait_for_exit(&mut running, "stdio_lines");
    writer.join().unwrap().expect("write stdin");
    assert!(status.success(), "{status}");
    let written = std::fs::read(&out.0).unwrap();
    assert!(
        written == expected.as_bytes(),
        "the file differs from the numbering"
    );
}

#[test]
fn stdio_lines_flushes_everything_to_a_slow_reader_before_exiting_zero() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    // Far more than a pipe holds (64 KiB) and than the write queue's high watermark, so the
    // example must wait for the reader, pausing its reading of stdin meanwhile.
    let (input, expected) = many_lines(30_000);
    let file = TempFile::new("slow-reader", &input);
    let child = Command::new(bin)
        .env_remove("RUST_LOG")
        .stdin(File::open(&file.0).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stdio_lines");
    let mut running = Running(child);
    let mut stdout = running.0.stdout.take().unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // The reader is slow on purpose: the example's pipe fills while it sleeps.
        thread::sleep(Duration::from_millis(2));
        match stdout.read(&mut chunk).expect("read stdout") {
            0 => break,
            n => received.extend_from_slice(&chunk[..n]),
        }
    }
    let status = wait_for_exit(&mut running, "stdio_lines");
    assert!(status.success(), "{status}");
    assert!(received == expected.as_bytes(), "lost or reordered output");
}

#[test]
fn stdio_lines_refuses_a_line_over_its_bound_with_one_error_line() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    let mut input = b"fine\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend_from_slice(b"\nafter\n");
    // From a file: the example stops reading at the error, so a pipe's writer would fail.
    let file = TempFile::new("too-long", &input);
    let mut command = Command::new(bin);
    command.stdin(File::open(&file.0).unwrap());
    let (status, stdout, stderr) = run_piped_out(&mut command);
    assert_eq!(status.code(), Some(1), "{status}");
    assert_eq!(String::from_utf8(stdout).unwrap(), "1: fine\n");
    assert_eq!(stderr, "stdio_lines: line 2 is longer than 16384 bytes\n");
}

/// Runs `command` with its stdout piped (stdin as the command set it), to the end.
fn run_piped_out(command: &mut Command) -> (std::process::ExitStatus, Vec<u8>, String) {
    let child = command
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut running = Running(child);
    let mut stdout = running.0.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let status = wait_for_exit(&mut running, &format!("{command:?}"));
    let stdout = reader.join().unwrap().expect("read stdout");
    let mut stderr = String::new();
    running
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stdout, stderr)
}

#[test]
fn stdio_lines_reads_a_terminal_and_leaves_it_blocking_for_the_shell() {
    let Some(bin) = example("stdio_lines") else {
        return;
    };
    // `script` runs the command on a new pseudo-terminal: the example, then `cat` showing the
    // flags of the terminal's open file, which the shell shares.
    if common::machine::require_tool("script", "--version").is_none() {
        return;
    }
    let command = format!("'{}'; cat /proc/self/fdinfo/0", bin.display());
    let child = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script");
    let mut running = Running(child);
    let mut stdin = running.0.stdin.take().unwrap();
    // A line, then the terminal's end of input (^D at the start of a line).
    std::io::Write::write_all(&mut stdin, b"hello\n\x04").unwrap();
    let mut stdout = running.0.stdout.take().unwrap();
    let (sender, received) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
            let _ = sender.send(String::from_utf8_lossy(&seen).into_owned());
        }
    });
    let mut output = String::new();
    while !output.contains("mnt_id") {
        output = received
            .recv_timeout(common::DEADLINE)
            .unwrap_or_else(|_| panic!("no flags shown; output so far: {output:?}"));
    }
    // `script` ends its session once its own input ends.
    drop(stdin);
    wait_for_exit(&mut running, "script");
    let output = output.replace("\r\n", "\n");
    assert!(output.contains("1: hello\nlines: 1\n"), "{output:?}");
    let flags = output
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .map(|flags| u32::from_str_radix(flags.trim(), 8).unwrap())
        .unwrap();
    const O_NONBLOCK: u32 = 0o4000;
    assert_eq!(flags & O_NONBLOCK, 0, "the terminal is left non-blocking");
}
