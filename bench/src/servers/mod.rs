//! The three echo servers under test, and the [`Control`] block through which the load
//! generator tells a server when to start and stop measuring its own CPU time.
//!
//! Each server runs on a thread of its own, binds `127.0.0.1:0`, sends its address back,
//! and serves until told to stop. It reads its thread's CPU time when the measured phase
//! begins and when it ends, from inside the thread, so nothing but the server's own work
//! (user and kernel) is counted.

pub mod mio;
pub mod tokio;
pub mod torsion;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cpu::CpuTimes;

/// How long a polling server waits for events before looking at its [`Control`] again. Only
/// matters while idle (between phases): under load every turn looks.
pub const TICK: Duration = Duration::from_millis(5);

/// Which echo server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// torsion's reactor with a `Protocol` that writes back what it receives.
    Torsion,
    /// A hand-written edge-triggered mio loop.
    Mio,
    /// tokio's current-thread runtime, one task per connection.
    Tokio,
}

impl ServerKind {
    /// All servers, in their default order.
    pub const ALL: [ServerKind; 3] = [ServerKind::Torsion, ServerKind::Mio, ServerKind::Tokio];

    /// The server's short name, as printed and as accepted on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Torsion => "torsion",
            ServerKind::Mio => "mio",
            ServerKind::Tokio => "tokio",
        }
    }

    /// The server named `name`, if any.
    pub fn from_name(name: &str) -> Option<ServerKind> {
        ServerKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl crate::external::Builtin for ServerKind {
    fn label(self) -> &'static str {
        self.name()
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Phases of a server's life, as requested by the load generator.
mod phase {
    /// Serving, not measuring (connecting, warming up).
    pub const WARMING: u8 = 0;
    /// Start measuring at the next opportunity.
    pub const MEASURE: u8 = 1;
    /// Stop measuring and return.
    pub const STOP: u8 = 2;
}

/// Shared between a server thread and the load generator.
#[derive(Default)]
pub struct Control {
    /// One of the [`phase`] values.
    phase: AtomicU8,
    /// Set by the server once it has read its CPU time at the start of the measured phase.
    measuring: AtomicBool,
    /// Connections the server has accepted (and handed to its connection handling).
    accepted: AtomicUsize,
    /// Wakes the tokio server, which waits on this instead of polling [`Control::phase`].
    wake: ::tokio::sync::Notify,
}

impl Control {
    /// A control block in the warming-up phase.
    pub fn new() -> Arc<Control> {
        Arc::new(Control::default())
    }

    /// Asks the server to read its CPU time and start the measured phase, and waits (at most
    /// `timeout`) until it has.
    pub fn begin_measuring(&self, timeout: Duration) -> io::Result<()> {
        self.request(phase::MEASURE);
        let deadline = Instant::now() + timeout;
        while !self.measuring.load(Ordering::Acquire) {
            if Instant::now() > deadline {
                return Err(io::Error::other("server did not start measuring in time"));
            }
            thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Asks the server to end the measured phase and return.
    pub fn stop(&self) {
        self.request(phase::STOP);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }

    /// Counts one accepted connection (called by the servers).
    pub fn count_accept(&self) {
        self.accepted.fetch_add(1, Ordering::Release);
    }

    fn request(&self, phase: u8) {
        self.phase.store(phase, Ordering::Release);
        self.wake.notify_one();
    }
}

/// The server side of a [`Control`]: keeps the CPU reading taken at the start of the measured
/// phase. Polling servers call [`Meter::check`] once per loop turn (one atomic load).
pub struct Meter {
    control: Arc<Control>,
    start: Option<CpuTimes>,
}

impl Meter {
    /// A meter for `control`, not yet measuring.
    pub fn new(control: Arc<Control>) -> Meter {
        Meter {
            control,
            start: None,
        }
    }

    /// Acts on the requested phase: starts measuring if asked to, and returns the CPU time of
    /// the measured phase once asked to stop (the server then returns it).
    pub fn check(&mut self) -> io::Result<Option<CpuTimes>> {
        match self.control.phase.load(Ordering::Acquire) {
            phase::WARMING => Ok(None),
            phase::MEASURE => {
                if self.start.is_none() {
                    self.start = Some(CpuTimes::now()?);
                    self.control.measuring.store(true, Ordering::Release);
                }
                Ok(None)
            }
            _ => {
                let end = CpuTimes::now()?;
                Ok(Some(end.since(self.start.unwrap_or(end))))
            }
        }
    }

    /// Waits (asynchronously) until the phase changes; for the tokio server.
    pub async fn changed(&self) {
        self.control.wake.notified().await;
    }

    /// The control block.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// A shared handle on the control block (for a factory that counts accepts).
    pub fn control_arc(&self) -> Arc<Control> {
        self.control.clone()
    }
}

/// A running server thread.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its control block.
    pub control: Arc<Control>,
    /// The thread; returns the measured phase's CPU time.
    pub thread: thread::JoinHandle<io::Result<CpuTimes>>,
}

impl RunningServer {
    /// Stops the server and returns the CPU time its thread spent in the measured phase.
    pub fn finish(self) -> io::Result<CpuTimes> {
        self.control.stop();
        self.thread
            .join()
            .map_err(|_| io::Error::other("server thread panicked"))?
    }
}

/// Starts a `kind` echo server on its own thread, on `127.0.0.1` and a free port.
pub fn spawn(kind: ServerKind) -> io::Result<RunningServer> {
    spawn_with(kind.name(), move |meter, addr_tx| match kind {
        ServerKind::Torsion => torsion::serve(meter, addr_tx),
        ServerKind::Mio => mio::serve(meter, addr_tx),
        ServerKind::Tokio => tokio::serve(meter, addr_tx),
    })
}

/// Starts `serve` on a thread named `{name}-server`, with a fresh [`Control`], and waits for
/// the address it sends once it listens. `serve` returns the measured phase's CPU time.
pub fn spawn_with<F>(name: &str, serve: F) -> io::Result<RunningServer>
where
    F: FnOnce(Meter, mpsc::Sender<SocketAddr>) -> io::Result<CpuTimes> + Send + 'static,
{
    let control = Control::new();
    let (addr_tx, addr_rx) = mpsc::channel();
    let meter = Meter::new(control.clone());
    let thread = thread::Builder::new()
        .name(format!("{name}-server"))
        .spawn(move || serve(meter, addr_tx))?;
    match addr_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(addr) => Ok(RunningServer {
            addr,
            control,
            thread,
        }),
        Err(_) => {
            // The thread failed before listening: report its error.
            control.stop();
            match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(io::Error::other(format!("{name} server did not start"))),
            }
        }
    }
}

/// The loopback address with a free port, where every server listens.
pub fn loopback_any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
