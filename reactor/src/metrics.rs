//! Per-reactor counters, read as a [`Metrics`] snapshot with [`Reactor::metrics`]
//! (crate::Reactor::metrics), summed over reactors, and rendered in Prometheus's text format.
//!
//! The counters are plain integers the reactor bumps where the events already are (a turn,
//! a dispatched event, an accept, a read handed to a protocol, a flush that sent bytes, a
//! timer fired): no atomics, no locks, one instruction each where it changes (six per echoed
//! message, about half a percent of the reactor's user-space instructions). The gauges
//! (connections open, bytes queued) are read off the connection table when the snapshot is
//! taken, so the hot path never maintains them.

use std::fmt::Write;
use std::iter::Sum;
use std::ops::Add;

/// A snapshot of a reactor's counters ([`Reactor::metrics`](crate::Reactor::metrics)).
/// Counters only grow over the reactor's life; `connections_open` and `bytes_queued` are
/// the values at the snapshot. Snapshots of several reactors add up (`+`, or `.sum()`).
///
/// Bytes are counted where the protocol sees them: on a TLS connection, the plaintext
/// handed to the protocol and queued by it, not the records on the wire.
///
/// ```
/// use torsion_reactor::Metrics;
/// let (mut a, mut b) = (Metrics::default(), Metrics::default());
/// (a.bytes_received, a.connections_open) = (10, 1);
/// (b.bytes_received, b.connections_open) = (5, 2);
/// let total: Metrics = [a, b].into_iter().sum();
/// assert_eq!(total.bytes_received, 15);
/// assert!(total.to_prometheus().contains("torsion_connections_open 3\n"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Turns of the loop (`iterate`, or each turn of `run`).
    pub turns: u64,
    /// Readiness events dispatched.
    pub events: u64,
    /// Connections accepted on listening ports (including those a limit closed at once).
    pub connections_accepted: u64,
    /// Reads that handed bytes to a protocol (`data_received` calls).
    pub reads: u64,
    /// Flushes that sent bytes (each one `writev` or a few).
    pub writes: u64,
    /// Bytes handed to protocols.
    pub bytes_received: u64,
    /// Bytes of the write queues sent.
    pub bytes_sent: u64,
    /// Timers fired (calls, looping calls, the reactor's own timeouts).
    pub timers_fired: u64,
    /// Connections open at the snapshot, in and out, including those connecting or in their
    /// TLS handshake.
    pub connections_open: u64,
    /// Bytes waiting in write queues at the snapshot.
    pub bytes_queued: u64,
}

/// One line of the Prometheus rendering: name, type, help, and how to read the value.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Metrics) -> u64,
}

const FAMILIES: [Family; 10] = [
    Family {
        name: "torsion_connections_accepted_total",
        kind: "counter",
        help: "Connections accepted on listening ports.",
        value: |m| m.connections_accepted,
    },
    Family {
        name: "torsion_connections_open",
        kind: "gauge",
        help: "Connections open, in and out.",
        value: |m| m.connections_open,
    },
    Family {
        name: "torsion_bytes_received_total",
        kind: "counter",
        help: "Bytes handed to protocols.",
        value: |m| m.bytes_received,
    },
    Family {
        name: "torsion_bytes_sent_total",
        kind: "counter",
        help: "Bytes of the write queues sent.",
        value: |m| m.bytes_sent,
    },
    Family {
        name: "torsion_bytes_queued",
        kind: "gauge",
        help: "Bytes waiting in write queues.",
        value: |m| m.bytes_queued,
    },
    Family {
        name: "torsion_reads_total",
        kind: "counter",
        help: "Reads that handed bytes to a protocol.",
        value: |m| m.reads,
    },
    Family {
        name: "torsion_writes_total",
        kind: "counter",
        help: "Flushes that sent bytes.",
        value: |m| m.writes,
    },
    Family {
        name: "torsion_timers_fired_total",
        kind: "counter",
        help: "Timers fired.",
        value: |m| m.timers_fired,
    },
    Family {
        name: "torsion_reactor_turns_total",
        kind: "counter",
        help: "Turns of the event loop.",
        value: |m| m.turns,
    },
    Family {
        name: "torsion_reactor_events_total",
        kind: "counter",
        help: "Readiness events dispatched.",
        value: |m| m.events,
    },
];

impl Metrics {
    /// The snapshot in Prometheus's text exposition format (version 0.0.4: serve it as
    /// `text/plain; version=0.0.4`), each metric with its `# HELP` and `# TYPE` lines.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(1024);
        for family in &FAMILIES {
            let Family {
                name, kind, help, ..
            } = family;
            let value = (family.value)(self);
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        }
        out
    }
}

impl Add for Metrics {
    type Output = Metrics;

    fn add(self, other: Metrics) -> Metrics {
        Metrics {
            turns: self.turns + other.turns,
            events: self.events + other.events,
            connections_accepted: self.connections_accepted + other.connections_accepted,
            reads: self.reads + other.reads,
            writes: self.writes + other.writes,
            bytes_received: self.bytes_received + other.bytes_received,
            bytes_sent: self.bytes_sent + other.bytes_sent,
            timers_fired: self.timers_fired + other.timers_fired,
            connections_open: self.connections_open + other.connections_open,
            bytes_queued: self.bytes_queued + other.bytes_queued,
        }
    }
}

impl Sum for Metrics {
    fn sum<I: Iterator<Item = Metrics>>(iter: I) -> Metrics {
        iter.fold(Metrics::default(), Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_type_and_one_sample() {
        let text = Metrics {
            connections_accepted: 7,
            ..Metrics::default()
        }
        .to_prometheus();
        assert_eq!(text.lines().count(), 3 * FAMILIES.len());
        assert!(text.contains(
            "# HELP torsion_connections_accepted_total Connections accepted on listening ports.\n\
             # TYPE torsion_connections_accepted_total counter\n\
             torsion_connections_accepted_total 7\n"
        ));
        for name in [
            "torsion_connections_open",
            "torsion_bytes_received_total",
            "torsion_bytes_sent_total",
        ] {
            assert!(text.contains(&format!("\n{name} 0\n")), "{name} missing");
        }
    }
}
