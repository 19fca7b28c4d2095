//! The chat client of `chat_client.rs`, written as async code instead of protocols: lines
//! typed on stdin go to the server, lines from the server are printed; end of input sends
//! `/quit`. Same command line, same output, same exit codes; compare the two files (the
//! guide's async page does, side by side).
//!
//! Run:   cargo run --example chat_client_async ADDR          (e.g. 127.0.0.1:8000)
//!        ADDR: HOST:PORT, or a client endpoint string (`tcp:host=HOST:port=PORT`,
//!        `tls:host=HOST:port=PORT`; see `docs/endpoints.md`)
//!
//! Exits 0 when the server closes the connection cleanly (after `/quit`, say); 1 with a
//! one-line error on stderr if it cannot connect or the connection breaks; 2 on bad arguments.
//!
//! The protocol version is two protocols sharing a session and a hand-written hand-over
//! between them; here it is one `async fn` and one task for typing, and the backpressure
//! (a server that sends faster than stdout takes it) is `write_all`'s waiting.

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;

use torsion::task::LocalHandle;
use torsion::{ConnectOptions, Reactor};

/// The longest line printed whole; a longer one is printed in pieces of this length.
const MAX_LINE: usize = 64 * 1024;

/// The chat session: connect, type and print until the server closes.
async fn session(local: LocalHandle, target: String) -> Result<(), String> {
    let mut terminal = local
        .stdio()
        .await
        .map_err(|e| format!("standard I/O: {e}"))?;
    let connect = local
        .connect_endpoint(&target, ConnectOptions::new())
        .map_err(|e| e.to_string())?;
    let mut server = connect.await.map_err(|e| format!("cannot connect: {e}"))?;
    let printer = terminal.writer();
    let to_server = server.writer();
    // Typing has a task of its own: it waits on stdin while this one waits on the server.
    let typing = local.spawn_task(async move {
        let mut mid_line = false;
        while let Ok(Some(typed)) = terminal.read().await {
            mid_line = typed.last() != Some(&b'\n');
            if to_server.write_all(typed).await.is_err() {
                break;
            }
        }
        let quit = if mid_line { "\n/quit\n" } else { "/quit\n" };
        let _ = to_server.write_all(quit).await;
        terminal // kept open for the printer until the session ends
    });
    let ended = loop {
        match server.read_line_bytes(MAX_LINE).await {
            Ok(Some(line)) => {
                let _ = printer.write(line);
                if printer.write_all("\n").await.is_err() {
                    break Err("standard I/O closed".to_string());
                }
            }
            Ok(None) => break Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                // Over-long: print what there is, as a line of its own.
                let piece = server
                    .read_exact(MAX_LINE)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = printer.write(piece);
                let _ = printer.write_all("\n").await;
            }
            Err(e) => break Err(format!("connection lost: {e}")),
        }
    };
    let _ = printer.flush().await;
    typing.abort();
    ended
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let Some(target) = std::env::args().nth(1) else {
        eprintln!("usage: chat_client_async ADDR");
        return ExitCode::from(2);
    };
    if let Err(e) = target.parse::<torsion::ClientEndpoint>() {
        eprintln!("chat_client_async: bad address {target:?}: {e} (usage: chat_client_async ADDR)");
        return ExitCode::from(2);
    }
    match run(target.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("chat_client_async: {target}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the session on a reactor until it ends.
fn run(target: String) -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    let local = reactor.local_handle();
    let outcome = Rc::new(RefCell::new(None));
    let slot = outcome.clone();
    let stopper = local.clone();
    reactor.spawn_task(async move {
        *slot.borrow_mut() = Some(session(stopper.clone(), target).await);
        stopper.defer(Reactor::stop);
    });
    reactor.run().map_err(|e| e.to_string())?;
    let outcome = outcome.borrow_mut().take();
    outcome.unwrap_or_else(|| Err("the reactor stopped unexpectedly".to_string()))
}
