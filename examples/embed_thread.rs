//! Embedding, way (b): the reactor runs on its own thread, serving echo on ADDR, and the main
//! thread steers it through a `ReactorHandle`. Once a second the main thread prints how many
//! bytes have been echoed: that count lives on the reactor thread, and the main thread learns
//! it by sending a call there with `call_from_thread`.
//!
//! Run:  cargo run --example embed_thread [ENDPOINT]      (default 127.0.0.1:8000)
//!       ENDPOINT: an IP:PORT or an endpoint string (`tcp:8000:interface=127.0.0.1`...)
//! Talk: nc 127.0.0.1 8000
//! Stop: Ctrl-C or SIGTERM (a graceful shutdown of the reactor thread; exits 0).

use std::cell::Cell;
use std::io;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use torsion::{Context, Protocol, Reactor, ReactorHandle, ServerEndpoint};

thread_local! {
    /// Bytes echoed so far. Only the reactor thread touches it: the protocols count into it,
    /// and the main thread's calls read it there.
    static ECHOED: Cell<u64> = const { Cell::new(0) };
}

struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
        ECHOED.with(|echoed| echoed.set(echoed.get() + data.len() as u64));
    }
    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
    }
    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        cx.resume_reading();
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_string());
    let Ok(addr) = arg.parse::<ServerEndpoint>() else {
        eprintln!("embed_thread: bad address {arg:?} (usage: embed_thread [ENDPOINT])");
        return ExitCode::from(2);
    };
    let (ready, started) = mpsc::channel::<Result<ReactorHandle, String>>();
    let reactor_thread = thread::spawn(move || serve(addr, ready));
    let handle = match started.recv() {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => {
            eprintln!("embed_thread: {e}");
            return ExitCode::FAILURE;
        }
        Err(_) => return ExitCode::FAILURE,
    };
    // The main thread's own loop: once a second, ask the reactor thread for the count.
    loop {
        thread::sleep(Duration::from_secs(1));
        let (reply, answer) = mpsc::channel();
        let asked = handle.call_from_thread(move |_reactor| {
            let _ = reply.send(ECHOED.with(Cell::get));
        });
        match (asked, answer.recv()) {
            (Ok(()), Ok(echoed)) => println!("echoed {echoed} bytes"),
            // The reactor thread has shut down (a signal asked it to): leave too.
            _ => break,
        }
    }
    match reactor_thread.join() {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("embed_thread: {e}");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

/// The reactor thread: set up, hand the main thread a handle, run until a signal.
fn serve(
    addr: ServerEndpoint,
    ready: mpsc::Sender<Result<ReactorHandle, String>>,
) -> io::Result<()> {
    let mut reactor = match start(addr) {
        Ok(reactor) => reactor,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return Err(e);
        }
    };
    let _ = ready.send(Ok(reactor.handle()));
    reactor.run()
}

fn start(addr: ServerEndpoint) -> io::Result<Reactor> {
    let mut reactor = Reactor::new()?;
    reactor.handle_signals()?;
    let port = reactor.listen(addr, || Echo).map_err(io::Error::other)?;
    println!(
        "reactor thread serving echo on {}",
        port.address(&reactor).expect("listening")
    );
    Ok(reactor)
}
