//! The reactor: a thin coordinator over the parts that own the state (the connection table,
//! the listeners, the connects in progress, the timers, the UDP sockets, the watched
//! descriptors, the threads, the shutdown). It waits for readiness, hands each event to the
//! part it names, and calls user code (protocols, factories, timers) between the parts' steps.
//!
//! Every `impl Reactor` lives in this folder, one file per concern: this file is the loop;
//! `connections.rs` drives connections (the read loop, the end-of-turn settle, closing, waking);
//! the others are the listening ports, connecting, TLS, timers, UDP, watched descriptors,
//! threads and shutdown.
//!
//! One turn is Twisted's three steps, in the order that lets `iterate` return once it has
//! done something: poll with a timeout computed from the next deadline, dispatch, run the
//! timers that are due. Then woken connections are told, and every connection that a callback
//! touched is settled once (flushed with one `writev`, closed, half-closed, told to pause or
//! resume writing), so writes made during a turn coalesce and leave in that same turn.

mod connecting;
mod connections;
mod datagrams;
mod endpoints;
mod limits;
mod listening;
mod pipes;
mod processes;
mod readers;
#[cfg(test)]
mod settle_tests;
mod sharing;
mod shutdown;
mod tasks;
mod threads;
mod timers;
mod tls;
mod unix;
#[cfg(test)]
mod wake_tests;

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Poll, Token};

use crate::connections::Connections;
use crate::limits::Admissions;
use crate::listeners::Listeners;
use crate::metrics::Metrics;
use crate::outgoing::Outgoing;
use crate::process::Process;
use crate::reader::Reader;
use crate::remote::{Threads, WAKER_TOKEN};
use crate::shutdown::{Shutdown, Signals, SIGNAL_TOKEN};
use crate::stream::Bits;
use crate::table::{Key, Kind, Table};
use crate::task::runner::Tasks;
use crate::timers::Timers;
use crate::timers::{Clock, ManualClock};
use crate::udp::UdpEndpoint;

/// Events taken from one `epoll_wait`.
const EVENTS_CAPACITY: usize = 1024;

/// The event loop. Create one per thread with [`Reactor::new`], add listening ports and
/// outgoing connections, then [`run`](Reactor::run) it (or drive it turn by turn with
/// [`iterate`](Reactor::iterate) from another loop).
///
/// The reactor is single-threaded (`!Send` protocols are welcome): everything it calls runs on
/// the thread that runs it. Dropping it closes every socket and drops every protocol and
/// factory without calling them.
pub struct Reactor {
    poll: Poll,
    /// Taken out for the dispatch (which needs `&mut self`) and put back: an `Option`, so
    /// no placeholder is built and dropped each turn.
    events: Option<Events>,
    connections: Connections,
    listeners: Listeners,
    /// Connections counted against ports' limits and the cap on TLS handshakes.
    admissions: Admissions,
    outgoing: Outgoing,
    timers: Timers,
    datagrams: Table<UdpEndpoint>,
    readers: Table<Reader>,
    /// Child processes, until each has exited and its pipes are closed.
    processes: Table<Process>,
    /// `SIGCHLD`, watched only where a child's pidfd could not be opened.
    sigchld: Option<Signals>,
    threads: Threads,
    shutdown: Shutdown,
    /// Sources with work left that no new readiness edge will announce: a connection over
    /// its read budget or whose reading was resumed, a listener with a backlog left, a UDP
    /// socket or watched descriptor over its budget.
    ready: VecDeque<Token>,
    stop_requested: bool,
    in_turn: bool,
    /// The counters of [`metrics`](Reactor::metrics); its gauges are filled in there.
    counters: Metrics,
    /// Async tasks.
    tasks: Tasks,
}

impl Drop for Reactor {
    fn drop(&mut self) {
        // Tasks first, in spawn order: a future's drop may still queue calls (dropped here
        // unrun) but finds every socket and timer in place.
        self.tasks.drop_all();
        self.threads.reactor_dropped();
    }
}

impl AsRawFd for Reactor {
    /// The epoll descriptor: readable whenever the reactor has events to dispatch. Another
    /// loop can wait on it (with [`next_timeout`](Reactor::next_timeout) as its timeout) and
    /// then call `iterate(Duration::ZERO)`.
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl AsFd for Reactor {
    /// The epoll descriptor; see the `AsRawFd` implementation.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poll.registry().as_fd()
    }
}

impl Reactor {
    /// Creates a reactor with its own epoll instance, on the monotonic clock.
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_clock_source(Clock::Monotonic)
    }

    /// Creates a reactor whose time moves only when `clock` is advanced: timers become due
    /// only through [`ManualClock::advance`], so tests of timer-driven logic need no sleeps.
    /// All of the reactor's own timers follow that clock too (connect timeouts, the accept
    /// back-off, the shutdown timeout), while sockets stay real.
    pub fn with_clock(clock: ManualClock) -> io::Result<Reactor> {
        Reactor::with_clock_source(Clock::Manual(clock))
    }

    fn with_clock_source(clock: Clock) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let threads = Threads::new(mio::Waker::new(poll.registry(), WAKER_TOKEN)?);
        let tasks = Tasks::new(&threads.remote);
        Ok(Reactor {
            poll,
            events: Some(Events::with_capacity(EVENTS_CAPACITY)),
            connections: Connections::default(),
            listeners: Listeners::default(),
            admissions: Admissions::default(),
            outgoing: Outgoing::default(),
            timers: Timers::new(clock),
            datagrams: Table::default(),
            readers: Table::default(),
            processes: Table::default(),
            sigchld: None,
            threads,
            shutdown: Shutdown::default(),
            ready: VecDeque::new(),
            stop_requested: false,
            in_turn: false,
            counters: Metrics::default(),
            tasks,
        })
    }

    /// Runs turns until [`stop`](Reactor::stop) is called, then returns (after finishing the
    /// turn in which it was called, so writes made in it are flushed).
    ///
    /// Errors only if polling itself fails; socket errors close their connection instead.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            self.iterate(None)?;
            if std::mem::take(&mut self.stop_requested) {
                return Ok(());
            }
        }
    }

    /// Asks [`run`](Reactor::run) to return at the end of the current turn. Callable from any
    /// callback. If `run` is not running, the next `run` returns after one turn.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Runs turns until `deadline` passes or [`stop`](Reactor::stop) is called, whichever
    /// comes first: for a host loop that gives the reactor a slice of time. Returns true if
    /// it returned for a `stop` (which it then consumes, as `run` does), false at the
    /// deadline.
    pub fn run_until(&mut self, deadline: Instant) -> io::Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(self.now());
            self.iterate(left)?;
            if std::mem::take(&mut self.stop_requested) {
                return Ok(true);
            }
            if self.now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// How long the reactor may wait before its next turn has work: zero when work is
    /// pending, the time to the next timer, or `None` when only I/O can bring work. With the
    /// reactor's fd ([`AsRawFd`]) this lets another loop wait on the reactor's behalf.
    pub fn next_timeout(&mut self) -> Option<Duration> {
        self.poll_timeout(None)
    }

    /// Whether [`stop`](Reactor::stop) was called and `run` has not yet returned for it.
    /// Hosts that drive the reactor with [`iterate`](Reactor::iterate) check this.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// Runs one turn: one poll that waits at most `timeout` (`None`: until something happens
    /// or the next timer is due), dispatch, then the timers that are due. The primitive for
    /// embedding the reactor in another loop: `iterate(Duration::ZERO)` never blocks,
    /// `iterate(Duration::from_millis(10))` waits at most 10 ms, `iterate(None)` waits for
    /// the next event or timer.
    ///
    /// Calling it from inside a reactor callback is an error (`io::ErrorKind::Other`).
    pub fn iterate(&mut self, timeout: impl Into<Option<Duration>>) -> io::Result<()> {
        let timeout = timeout.into();
        if self.in_turn {
            return Err(io::Error::other(
                "Reactor::iterate called from inside a reactor callback",
            ));
        }
        self.in_turn = true;
        let result = self.turn(timeout);
        self.in_turn = false;
        result
    }

    /// Poll, dispatch, then timers, then wakes: the poll sleeps at most until the next
    /// deadline, and the timers it woke for fire in the same turn, so `iterate(None)` returns
    /// once it has done something.
    fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // What the host asked between turns (writes, closes by id) is carried out first, so
        // a close asked before a timer is due beats the timer.
        self.settle_dirty();
        let carried_over = self.ready.len();
        let timeout = self.poll_timeout(timeout);
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(EVENTS_CAPACITY));
        let polled = match self.poll.poll(&mut events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        };
        self.counters.turns += 1;
        if polled.is_ok() {
            for event in events.iter() {
                self.counters.events += 1;
                self.dispatch(event);
            }
        }
        self.events = Some(events);
        polled?;
        self.run_ready(carried_over);
        self.report_failed_connects();
        self.run_due_timers();
        self.tell_woken();
        self.run_tasks();
        self.settle_dirty();
        if self.shutdown.is_draining() {
            self.finish_shutdown_if_drained();
        }
        Ok(())
    }

    /// How long this turn's poll may sleep: not at all when work is waiting, else until the
    /// next timer (on a manual clock, timers never shorten the wait: only `advance` moves
    /// time), capped by `limit`.
    fn poll_timeout(&mut self, limit: Option<Duration>) -> Option<Duration> {
        let urgent = !self.ready.is_empty()
            || self.outgoing.any_failed()
            || self.connections.any_dirty()
            || self.connections.any_woken()
            || self.threads.anything_sent()
            || self.tasks.has_work()
            || self.stop_requested;
        if urgent {
            return Some(Duration::ZERO);
        }
        let Some(next) = self.timers.next_deadline() else {
            return limit;
        };
        let until_next = next.saturating_duration_since(self.now());
        if until_next.is_zero() {
            Some(Duration::ZERO)
        } else if self.timers.is_manual() {
            limit
        } else {
            Some(limit.map_or(until_next, |limit| limit.min(until_next)))
        }
    }

    /// A snapshot of this reactor's counters, with the connections open and the bytes
    /// queued now (a walk over the connection table). Callable from any callback through
    /// [`Context::reactor`](crate::Context::reactor); sum snapshots of several reactors with
    /// `+`.
    pub fn metrics(&self) -> Metrics {
        let mut metrics = self.counters;
        for (_, conn) in self.connections.iter() {
            metrics.connections_open += 1;
            metrics.bytes_queued += conn.queue.len() as u64;
        }
        metrics
    }

    /// Hands an event to the part its token names. Each part looks its key up with the
    /// generation: an event for a source closed earlier in this batch finds nothing.
    fn dispatch(&mut self, event: &Event) {
        let (kind, key) = Key::from_token(event.token());
        match kind {
            Kind::Connection => self.connection_event(key, event),
            Kind::Listener => self.accept_ready(key),
            Kind::Udp => self.udp_ready(key, event.is_writable()),
            Kind::Reader => self.reader_ready(key),
            Kind::Process => self.process_ready(key),
            Kind::Internal => match event.token() {
                WAKER_TOKEN => self.run_remote_calls(),
                SIGNAL_TOKEN => self.signals_received(),
                processes::SIGCHLD_TOKEN => self.sigchld_received(),
                _ => {}
            },
        }
    }

    /// Serves the first `count` entries of the ready list; entries added meanwhile wait for
    /// the next turn, so one busy source cannot hold the loop.
    fn run_ready(&mut self, count: usize) {
        for _ in 0..count {
            let Some(token) = self.ready.pop_front() else {
                return;
            };
            let (kind, key) = Key::from_token(token);
            match kind {
                Kind::Connection => {
                    if let Some(conn) = self.connections.get_mut(key) {
                        conn.bits.clear(Bits::QUEUED_READ);
                        self.read_connection(key);
                    }
                }
                Kind::Listener => self.accept_queued(key),
                Kind::Udp => self.udp_ready(key, false),
                Kind::Reader => self.reader_ready(key),
                Kind::Process => self.process_ready(key),
                Kind::Internal => {}
            }
        }
    }

    /// Puts a source with work left on the ready list (connections use `queue_read`, which
    /// puts each on it once).
    fn push_ready(&mut self, kind: Kind, key: Key) {
        self.ready.push_back(key.token(kind));
    }
}
