//! Numbers the lines of standard input: writes `N: LINE` for each (N from 1), and at the end of
//! input `lines: N`. Standard input and output are one transport (`Reactor::stdio`), with the
//! write queue, watermarks and pause/resume of a socket.
//!
//! Run:   printf 'a\nb\n' | cargo run --example stdio_lines
//!        cargo run --example stdio_lines < Cargo.toml | less
//!
//! Exits 0 once everything written has been taken by stdout, however slowly it is read. A
//! line longer than 16 KiB is an error: one line on stderr, exit 1 (nothing is buffered past
//! that bound). A last line without its newline is still a line.

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::protocols::line::{Delimiter, LineError, LineFrame, LineFramer};
use torsion::{Context, DisconnectReason, Protocol, Reactor};

/// The longest line accepted, in bytes (newline excluded).
const MAX_LINE: usize = 16 * 1024;

/// Numbers lines as they come.
struct Numbering {
    framer: LineFramer,
    lines: u64,
    /// Why it failed, if it did (read by `main` once the reactor stops).
    error: Rc<RefCell<Option<String>>>,
}

impl Numbering {
    fn failed(&self) -> bool {
        self.error.borrow().is_some()
    }

    fn line(&mut self, cx: &mut Context<'_>, line: &[u8]) {
        write_line(cx, &mut self.lines, line);
    }

    fn too_long(&mut self, cx: &mut Context<'_>) {
        let n = self.lines + 1;
        *self.error.borrow_mut() = Some(format!("line {n} is longer than {MAX_LINE} bytes"));
        // What was numbered before it is still written, then the transport closes.
        cx.pause_reading();
        cx.lose_connection();
    }
}

/// Writes `N: LINE`, counting it.
fn write_line(cx: &mut Context<'_>, lines: &mut u64, line: &[u8]) {
    *lines += 1;
    cx.write(format!("{lines}: ").as_bytes());
    cx.write(line);
    cx.write(b"\n");
}

impl Protocol for Numbering {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if self.failed() {
            return;
        }
        let mut frames = self.framer.feed(data);
        let mut too_long = false;
        while let Some(frame) = frames.next() {
            match frame {
                Ok(LineFrame::Line(line)) | Ok(LineFrame::Raw(line)) => {
                    write_line(cx, &mut self.lines, line)
                }
                Err(LineError::TooLong { .. }) | Err(_) => {
                    too_long = true;
                    break;
                }
            }
        }
        drop(frames);
        if too_long {
            self.too_long(cx);
        }
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        if self.failed() {
            return;
        }
        let last = self.framer.take_buffered();
        if !last.is_empty() {
            let last = last.strip_suffix(b"\r").unwrap_or(&last);
            self.line(cx, last);
        }
        cx.write(format!("lines: {}\n", self.lines).as_bytes());
        cx.lose_connection();
    }

    // Stdout is slower than stdin: stop reading until it catches up, so memory stays bounded.
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        if !self.failed() {
            cx.resume_reading();
        }
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        if !matches!(reason, DisconnectReason::Closed) && !self.failed() {
            *self.error.borrow_mut() = Some(format!("standard I/O: {reason}"));
        }
        cx.reactor().stop();
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stdio_lines: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    let error = Rc::new(RefCell::new(None));
    let numbering = Numbering {
        framer: LineFramer::new()
            .with_delimiter(Delimiter::Newline)
            .with_max_line_length(MAX_LINE),
        lines: 0,
        error: error.clone(),
    };
    reactor
        .stdio(numbering)
        .map_err(|e| format!("standard I/O: {e}"))?;
    reactor.run().map_err(|e| e.to_string())?;
    match error.take() {
        Some(message) => Err(message),
        None => Ok(()),
    }
}
