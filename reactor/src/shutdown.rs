//! Graceful shutdown: system event triggers (Twisted's `addSystemEventTrigger`), draining
//! every connection before `run` returns, and SIGINT/SIGTERM handling.

use std::time::Duration;

use mio::Token;
use signal_hook::SigId;

use crate::table::internal_token;
use crate::timers::ReactorCall;
use crate::timers::TimerKey;

/// The token of the signal pipe.
pub(crate) const SIGNAL_TOKEN: Token = internal_token(1);

/// How long a graceful shutdown waits for connections to flush and close, by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// When a shutdown trigger runs, relative to the reactor closing its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// First, while everything still runs: listeners still accept, connections still read.
    Before,
    /// Right after the reactor stopped listening and asked every connection to close.
    During,
    /// Once every connection is closed (or the deadline aborted the rest), just before `run`
    /// returns.
    After,
}

/// Shutdown state: triggers waiting, whether a shutdown is under way, signal registration.
pub(crate) struct Shutdown {
    pub(crate) triggers: Vec<(Phase, ReactorCall)>,
    pub(crate) timeout: Duration,
    pub(crate) draining: bool,
    pub(crate) deadline: Option<TimerKey>,
    pub(crate) signals: Option<Signals>,
}

impl Shutdown {
    /// Whether a graceful shutdown is under way.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining
    }

    /// Takes the triggers of `phase`, in the order they were added.
    pub(crate) fn take_triggers(&mut self, phase: Phase) -> Vec<ReactorCall> {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.triggers)
            .into_iter()
            .partition(|(p, _)| *p == phase);
        self.triggers = later;
        now.into_iter().map(|(_, trigger)| trigger).collect()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            triggers: Vec::new(),
            timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            draining: false,
            deadline: None,
            signals: None,
        }
    }
}

/// SIGINT and SIGTERM, delivered as bytes on a socket pair the reactor polls.
pub(crate) struct Signals {
    pub(crate) receiver: mio::net::UnixStream,
    pub(crate) ids: Vec<SigId>,
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
