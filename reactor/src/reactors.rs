//! One reactor per core: [`Reactors`] runs N reactors on N threads, each set up by the same
//! function on its own thread (a [`Reactor`] is not `Send`), and [`RunningReactors`] holds
//! their handles and threads. The reactors share nothing: a thread talks to another through
//! its [`ReactorHandle`].

use std::error::Error;
use std::io;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::{Reactor, ReactorHandle};

/// A setup function's error, whatever its type.
type SetupError = Box<dyn Error + Send + Sync>;

/// Runs several reactors, one per thread (Twisted has one reactor; this is how one program
/// uses every core). Each thread creates its reactor, optionally makes it handle SIGINT and
/// SIGTERM, and calls the setup function with it and its index (0 to N-1), which listens,
/// connects, schedules, as on a single reactor.
///
/// Setups run one after another, in index order, each on its own thread: what the setup of
/// reactor 0 made (a port to [`share`](crate::ListeningPort::share), the port number it
/// bound) is there for the setups after it. To serve one port from every reactor, either
/// listen in each with `SO_REUSEPORT` ([`Reactor::listen_tcp_with`]), or listen in reactor
/// 0 and share its socket ([`Reactor::listen_shared`]); `docs/deployment.md` compares them.
///
/// ```
/// # use torsion_reactor::{Context, ListenOptions, Protocol, Reactors};
/// # struct Echo;
/// # impl Protocol for Echo {
/// #     fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
/// #         cx.write(data);
/// #     }
/// # }
/// # fn main() -> std::io::Result<()> {
/// let options = ListenOptions::new().reuse_port(true);
/// let port = std::sync::Mutex::new("127.0.0.1:0".parse().unwrap());
/// let reactors = Reactors::new(2).start(move |reactor, _index| {
///     // The first binds port 0; the next bind the port it got.
///     let mut addr = port.lock().unwrap();
///     *addr = reactor.listen_tcp_with(*addr, options, || Echo)?.local_addr();
///     Ok::<(), std::io::Error>(())
/// })?;
/// assert_eq!(reactors.handles().len(), 2);
/// reactors.shutdown(); // gracefully, every reactor
/// reactors.join()
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Reactors {
    count: usize,
    handle_signals: bool,
}

impl Reactors {
    /// `count` reactors (at least one), not handling signals.
    pub fn new(count: usize) -> Reactors {
        Reactors {
            count: count.max(1),
            handle_signals: false,
        }
    }

    /// Makes SIGINT and SIGTERM shut every reactor down gracefully
    /// ([`Reactor::handle_signals`] on each: each drains its own connections).
    pub fn handle_signals(mut self) -> Reactors {
        self.handle_signals = true;
        self
    }

    /// Starts the threads and returns once every setup has returned, so every port the
    /// setups opened is listening. If a setup (or creating a reactor) fails, the reactors
    /// already started are stopped and joined, and its error is returned.
    ///
    /// Every reactor exists (and, with [`handle_signals`](Reactors::handle_signals),
    /// catches SIGINT and SIGTERM) before the first setup runs: a signal that comes while
    /// later setups run still reaches every reactor.
    pub fn start<F, E>(self, setup: F) -> io::Result<RunningReactors>
    where
        F: Fn(&mut Reactor, usize) -> Result<(), E> + Send + Sync + 'static,
        E: Into<SetupError>,
    {
        let setup = Arc::new(setup);
        let mut starting = Vec::with_capacity(self.count);
        let mut running = RunningReactors {
            handles: Vec::with_capacity(self.count),
            threads: Vec::with_capacity(self.count),
        };
        let mut failed = None;
        for index in 0..self.count {
            match Starting::spawn(index, self.handle_signals, setup.clone()) {
                Ok((start, handle, thread)) => {
                    starting.push(start);
                    running.handles.push(handle);
                    running.threads.push(thread);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if failed.is_none() {
            // One after another: a setup may use what the ones before it made.
            failed = starting.into_iter().find_map(|start| start.set_up().err());
        } else {
            drop(starting);
        }
        match failed {
            None => Ok(running),
            Some(e) => {
                // The `go` senders are dropped: threads still waiting for their setup end.
                running.stop();
                // The started reactors' own results matter less than why start-up failed.
                let _ = running.join();
                Err(e)
            }
        }
    }

    /// [`start`](Reactors::start), then [`join`](RunningReactors::join): runs until every
    /// reactor has stopped.
    pub fn run<F, E>(self, setup: F) -> io::Result<()>
    where
        F: Fn(&mut Reactor, usize) -> Result<(), E> + Send + Sync + 'static,
        E: Into<SetupError>,
    {
        self.start(setup)?.join()
    }
}

/// A reactor thread whose reactor exists and waits for the word to run its setup.
struct Starting {
    go: mpsc::Sender<()>,
    done: mpsc::Receiver<io::Result<()>>,
}

impl Starting {
    /// Starts thread `index`: it creates its reactor and reports its handle, then runs its
    /// setup when told to, then the reactor.
    fn spawn<F, E>(
        index: usize,
        signals: bool,
        setup: Arc<F>,
    ) -> io::Result<(Starting, ReactorHandle, ReactorThread)>
    where
        F: Fn(&mut Reactor, usize) -> Result<(), E> + Send + Sync + 'static,
        E: Into<SetupError>,
    {
        let (created_tx, created) = mpsc::channel::<io::Result<ReactorHandle>>();
        let (go, go_rx) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel::<io::Result<()>>();
        let thread = thread::Builder::new()
            .name(format!("torsion-reactor-{index}"))
            .spawn(move || {
                let mut reactor = match create(signals) {
                    Ok(reactor) => reactor,
                    Err(e) => {
                        let _ = created_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let _ = created_tx.send(Ok(reactor.handle()));
                if go_rx.recv().is_err() {
                    return Ok(()); // start-up failed elsewhere: never set up
                }
                let set_up = run_setup(&mut reactor, index, &*setup);
                let failed = set_up.is_err();
                let _ = done_tx.send(set_up);
                if failed {
                    return Ok(());
                }
                reactor.run()
            })?;
        match created.recv() {
            Ok(Ok(handle)) => Ok((Starting { go, done }, handle, thread)),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(panicked(thread.join().err())),
        }
    }

    /// Runs the thread's setup and waits for it.
    fn set_up(self) -> io::Result<()> {
        let _ = self.go.send(());
        match self.done.recv() {
            Ok(result) => result,
            // The thread ended without a word: its setup panicked.
            Err(_) => Err(io::Error::other("a reactor's setup panicked")),
        }
    }
}

/// A reactor, catching SIGINT and SIGTERM if `signals`.
fn create(signals: bool) -> io::Result<Reactor> {
    let mut reactor = Reactor::new()?;
    if signals {
        reactor.handle_signals()?;
    }
    Ok(reactor)
}

/// Runs a setup function, its error as an `io::Error`.
fn run_setup<F, E>(reactor: &mut Reactor, index: usize, setup: &F) -> io::Result<()>
where
    F: Fn(&mut Reactor, usize) -> Result<(), E>,
    E: Into<SetupError>,
{
    setup(reactor, index).map_err(|e| match e.into().downcast::<io::Error>() {
        Ok(e) => *e,
        Err(e) => io::Error::other(e),
    })
}

type ReactorThread = JoinHandle<io::Result<()>>;

/// Reactors running on their threads ([`Reactors::start`]).
#[derive(Debug)]
pub struct RunningReactors {
    handles: Vec<ReactorHandle>,
    threads: Vec<ReactorThread>,
}

impl RunningReactors {
    /// A handle per reactor, in index order: run code on one
    /// ([`call_from_thread`](ReactorHandle::call_from_thread)), wake a connection, stop it.
    pub fn handles(&self) -> &[ReactorHandle] {
        &self.handles
    }

    /// Shuts every reactor down gracefully ([`Reactor::shutdown`]: stop listening, let
    /// every connection flush and close, within the shutdown timeout); returns at once.
    pub fn shutdown(&self) {
        for handle in &self.handles {
            // A reactor already gone has nothing left to shut down.
            let _ = handle.call_from_thread(Reactor::shutdown);
        }
    }

    /// Stops every reactor at the end of its current turn ([`Reactor::stop`]), without
    /// closing connections; returns at once.
    pub fn stop(&self) {
        for handle in &self.handles {
            let _ = handle.stop();
        }
    }

    /// Waits for every reactor to return from `run`; the first error (a poll that failed,
    /// a reactor thread that panicked) is returned after all have ended.
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            let ended = thread.join().unwrap_or_else(|p| Err(panicked(Some(p))));
            if let (Ok(()), Err(e)) = (&result, ended) {
                result = Err(e);
            }
        }
        result
    }
}

/// A reactor thread's panic as an error.
fn panicked(payload: Option<Box<dyn std::any::Any + Send>>) -> io::Error {
    let message = payload
        .as_ref()
        .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| {
            payload
                .as_ref()
                .and_then(|p| p.downcast_ref::<String>().cloned())
        })
        .unwrap_or_else(|| "a reactor thread panicked".to_string());
    io::Error::other(message)
}
