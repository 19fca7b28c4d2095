//! Connection limits: how many connections a listening port keeps open, how many one client
//! address may hold, and how many TLS handshakes the reactor runs at once. A port at its
//! limit stops accepting (its socket leaves the poll) and the kernel's backlog holds the
//! next clients until a connection of the port closes; no accept-then-close loop.
//!
//! The bookkeeping here is pure: the reactor (`reactor/limits.rs`) asks it whether a port may
//! accept, records each connection it admits, and releases it when the connection goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::table::Key;

/// TLS handshakes in progress on a reactor's TLS ports by default: beyond it, TLS ports stop
/// accepting until a handshake ends. A stalled handshake holds about 70 KiB (rustls's
/// session and buffers), so the default bounds them to about 18 MB, while a handshake that
/// completes takes a millisecond or two: a full cap means an attack or a stall, not load.
pub const DEFAULT_MAX_TLS_HANDSHAKES: usize = 256;

/// How often, at most, refusals of a client over its per-address limit are logged.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Limits on a listening port's connections, set with
/// [`ListeningPort::set_limits`](crate::ListeningPort::set_limits). No limit by default.
///
/// ```
/// use torsion_reactor::ConnectionLimits;
/// let limits = ConnectionLimits::new().max_connections(1000).max_per_address(20);
/// assert_eq!(limits.connections(), Some(1000));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionLimits {
    max_connections: Option<usize>,
    max_per_address: Option<usize>,
}

impl ConnectionLimits {
    /// No limits.
    pub fn new() -> ConnectionLimits {
        ConnectionLimits::default()
    }

    /// At most `n` connections of the port open at once (a TLS connection counts from its
    /// accept). At the limit the port stops accepting: clients wait in the kernel's backlog
    /// (their connect has succeeded, their bytes wait unread) until one closes.
    pub fn max_connections(mut self, n: usize) -> ConnectionLimits {
        self.max_connections = Some(n);
        self
    }

    /// At most `n` connections from one IP address (TCP ports; a UNIX port's peers have no
    /// address). A connection over it is accepted and closed at once, logged at `warn!` at
    /// most once every ten seconds per port with how many were refused.
    pub fn max_per_address(mut self, n: usize) -> ConnectionLimits {
        self.max_per_address = Some(n);
        self
    }

    /// The limit on open connections, if any.
    pub fn connections(&self) -> Option<usize> {
        self.max_connections
    }

    /// The limit per client address, if any.
    pub fn per_address(&self) -> Option<usize> {
        self.max_per_address
    }
}

/// A port's limits and what counts against them.
#[derive(Default)]
pub(crate) struct PortAdmission {
    pub(crate) limits: ConnectionLimits,
    /// Connections of the port open now (counted only while the port has limits).
    open: usize,
    per_address: HashMap<IpAddr, usize>,
    /// Refusals over the per-address limit since the last log line, and when that was.
    refused: u64,
    last_refusal_log: Option<Instant>,
}

impl PortAdmission {
    /// Whether the port is at its limit of open connections.
    pub(crate) fn is_full(&self) -> bool {
        self.limits
            .max_connections
            .is_some_and(|max| self.open >= max)
    }

    /// Whether one more connection from `ip` is over the per-address limit.
    pub(crate) fn is_over_address_limit(&self, ip: Option<IpAddr>) -> bool {
        match (self.limits.max_per_address, ip) {
            (Some(max), Some(ip)) => self.per_address.get(&ip).copied().unwrap_or(0) >= max,
            _ => false,
        }
    }

    /// Counts a refusal; returns the number to log if a log line is due at `now`.
    pub(crate) fn refused(&mut self, now: Instant) -> Option<u64> {
        self.refused += 1;
        let due = self
            .last_refusal_log
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL);
        if !due {
            return None;
        }
        self.last_refusal_log = Some(now);
        Some(std::mem::take(&mut self.refused))
    }

    fn admit(&mut self, ip: Option<IpAddr>) {
        self.open += 1;
        if let (Some(_), Some(ip)) = (self.limits.max_per_address, ip) {
            *self.per_address.entry(ip).or_insert(0) += 1;
        }
    }

    fn release(&mut self, ip: Option<IpAddr>) {
        self.open = self.open.saturating_sub(1);
        if let Some(ip) = ip {
            if let Some(n) = self.per_address.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_address.remove(&ip);
                }
            }
        }
    }
}

/// What a connection admitted under limits holds until it closes.
struct Admitted {
    /// The port that accepted it, if that port has limits.
    listener: Option<Key>,
    /// The client's address, if counted per address.
    ip: Option<IpAddr>,
    /// A TLS handshake of the connection counts against the reactor's cap.
    handshaking: bool,
}

/// The reactor's admissions: the connections counted against a port's limits or the cap on
/// handshakes, and the handshakes in progress. Empty (one branch per close) when no port has
/// limits and no TLS port is handshaking.
pub(crate) struct Admissions {
    by_connection: HashMap<Key, Admitted>,
    handshakes: usize,
    pub(crate) max_handshakes: usize,
    /// TLS ports that stopped accepting for the handshake cap.
    pub(crate) waiting_for_handshakes: Vec<Key>,
}

impl Default for Admissions {
    fn default() -> Self {
        Admissions {
            by_connection: HashMap::new(),
            handshakes: 0,
            max_handshakes: DEFAULT_MAX_TLS_HANDSHAKES,
            waiting_for_handshakes: Vec::new(),
        }
    }
}

/// What the release of a connection freed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Released {
    /// The port whose count went down.
    pub(crate) listener: Option<Key>,
    /// A handshake slot was freed.
    pub(crate) handshake: bool,
}

impl Admissions {
    /// Whether the cap on handshakes in progress is reached.
    pub(crate) fn handshakes_full(&self) -> bool {
        self.handshakes >= self.max_handshakes
    }

    /// Handshakes in progress.
    pub(crate) fn handshakes(&self) -> usize {
        self.handshakes
    }

    /// Records connection `key`, accepted by `listener` (whose admission is `port`, if the
    /// port has limits) from `ip`, handshaking if `tls`.
    pub(crate) fn admit(
        &mut self,
        key: Key,
        listener: Key,
        port: Option<&mut PortAdmission>,
        ip: Option<IpAddr>,
        tls: bool,
    ) {
        let listener = port.map(|port| {
            port.admit(ip);
            listener
        });
        if listener.is_none() && !tls {
            return;
        }
        self.handshakes += usize::from(tls);
        let ip = ip.filter(|_| listener.is_some());
        let admitted = Admitted {
            listener,
            ip,
            handshaking: tls,
        };
        self.by_connection.insert(key, admitted);
    }

    /// Connection `key`'s handshake ended (completed): its slot is freed; true if it held one.
    pub(crate) fn handshake_done(&mut self, key: Key) -> bool {
        let Some(admitted) = self.by_connection.get_mut(&key) else {
            return false;
        };
        if !std::mem::take(&mut admitted.handshaking) {
            return false;
        }
        self.handshakes -= 1;
        if admitted.listener.is_none() {
            self.by_connection.remove(&key);
        }
        true
    }

    /// Connection `key` closed: what it held is released, its port's count with
    /// `port_of(listener)`.
    pub(crate) fn release<'a>(
        &mut self,
        key: Key,
        port_of: impl FnOnce(Key) -> Option<&'a mut PortAdmission>,
    ) -> Released {
        if self.by_connection.is_empty() {
            return Released::default();
        }
        let Some(admitted) = self.by_connection.remove(&key) else {
            return Released::default();
        };
        if admitted.handshaking {
            self.handshakes -= 1;
        }
        if let Some(port) = admitted.listener.and_then(port_of) {
            port.release(admitted.ip);
        }
        Released {
            listener: admitted.listener,
            handshake: admitted.handshaking,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(index: u32) -> Key {
        Key {
            index,
            generation: 0,
        }
    }

    #[test]
    fn a_port_fills_and_empties() {
        let mut port = PortAdmission {
            limits: ConnectionLimits::new()
                .max_connections(2)
                .max_per_address(1),
            ..PortAdmission::default()
        };
        let mut admissions = Admissions::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let listener = key(100);
        admissions.admit(key(1), listener, Some(&mut port), Some(ip), false);
        assert!(port.is_over_address_limit(Some(ip)));
        assert!(!port.is_over_address_limit(Some(other)));
        assert!(!port.is_full());
        admissions.admit(key(2), listener, Some(&mut port), Some(other), false);
        assert!(port.is_full());
        let released = admissions.release(key(1), |_| Some(&mut port));
        assert_eq!(released.listener, Some(listener));
        assert!(!port.is_full());
        assert!(!port.is_over_address_limit(Some(ip)));
    }

    #[test]
    fn handshakes_count_until_done_or_closed() {
        let mut admissions = Admissions {
            max_handshakes: 2,
            ..Admissions::default()
        };
        let listener = key(100);
        admissions.admit(key(1), listener, None, None, true);
        admissions.admit(key(2), listener, None, None, true);
        assert!(admissions.handshakes_full());
        assert!(admissions.handshake_done(key(1)));
        assert!(!admissions.handshake_done(key(1)));
        assert_eq!(admissions.handshakes(), 1);
        let released = admissions.release(key(2), |_| None);
        assert!(released.handshake);
        assert_eq!(admissions.handshakes(), 0);
        assert!(admissions.by_connection.is_empty());
    }

    #[test]
    fn refusals_are_logged_at_most_every_interval() {
        let mut port = PortAdmission::default();
        let start = Instant::now();
        assert_eq!(port.refused(start), Some(1));
        assert_eq!(port.refused(start + Duration::from_secs(1)), None);
        assert_eq!(port.refused(start + Duration::from_secs(2)), None);
        assert_eq!(port.refused(start + REFUSAL_LOG_INTERVAL), Some(3));
    }
}
