//! Connection limits on the reactor: a port at its limit of open connections, or a TLS port
//! while the reactor's cap on handshakes in progress is reached, leaves the poll (the kernel's
//! backlog holds the next clients) and comes back when a connection closes or a handshake
//! ends; a client over its per-address limit is accepted and closed at once.

use std::net::IpAddr;

use log::{debug, warn};

use crate::limits::{ConnectionLimits, PortAdmission, Released};
use crate::table::Key;
use crate::{Address, ListeningPort, Reactor};

impl Reactor {
    /// Sets the cap on TLS handshakes in progress on this reactor's TLS ports
    /// (default [`DEFAULT_MAX_TLS_HANDSHAKES`](crate::DEFAULT_MAX_TLS_HANDSHAKES)). At the cap,
    /// TLS ports stop accepting until a handshake completes, fails or times out; clients wait
    /// in the kernel's backlog meanwhile. A cap of 0 is taken as 1.
    pub fn set_max_tls_handshakes(&mut self, max: usize) {
        self.admissions.max_handshakes = max.max(1);
        self.resume_waiting_for_handshakes();
    }

    /// TLS handshakes in progress on this reactor's TLS ports (those the cap counts).
    pub fn tls_handshakes_in_progress(&self) -> usize {
        self.admissions.handshakes()
    }

    /// Sets the limits of port `key`; false if it stopped.
    pub(crate) fn set_port_limits(&mut self, key: Key, limits: ConnectionLimits) -> bool {
        let Some(listener) = self.listeners.get_mut(key) else {
            return false;
        };
        listener.admission.get_or_insert_with(Box::default).limits = limits;
        self.resume_accepting(key);
        true
    }

    /// Whether port `key` may accept one more connection now; if not, it stops accepting
    /// until what holds it back is released.
    pub(crate) fn may_accept(&mut self, key: Key) -> bool {
        let handshakes_full = self.admissions.handshakes_full();
        let Some(listener) = self.listeners.get_mut(key) else {
            return false;
        };
        if listener.paused {
            return false;
        }
        let full = listener.admission.as_ref().is_some_and(|a| a.is_full());
        let held_by_handshakes = listener.tls.is_some() && handshakes_full;
        if !full && !held_by_handshakes {
            return true;
        }
        if held_by_handshakes {
            self.admissions.waiting_for_handshakes.push(key);
            debug!("TLS handshake cap reached: a TLS port stops accepting");
        } else {
            debug!("a port reached its connection limit: it stops accepting");
        }
        self.listeners.pause(self.poll.registry(), key);
        false
    }

    /// Whether a connection from `peer` is over port `key`'s per-address limit; if so, the
    /// refusal is counted and logged now and then.
    pub(crate) fn over_address_limit(&mut self, key: Key, peer: &Address) -> bool {
        let now = self.now();
        let ip = peer_ip(peer);
        let Some(admission) = self.port_admission(key) else {
            return false;
        };
        if !admission.is_over_address_limit(ip) {
            return false;
        }
        if let Some(count) = admission.refused(now) {
            warn!(
                "refused {count} connection(s) from {peer} and others over the per-address limit"
            );
        }
        true
    }

    /// Records connection `conn`, just accepted by port `listener` from `peer`.
    pub(crate) fn admit(&mut self, conn: Key, listener: Key, peer: &Address, tls: bool) {
        let port = self
            .listeners
            .get_mut(listener)
            .and_then(|l| l.admission.as_deref_mut());
        self.admissions
            .admit(conn, listener, port, peer_ip(peer), tls);
    }

    /// Connection `key` left the table: its port may accept again, and a TLS port waiting
    /// for a handshake slot too.
    pub(crate) fn release_admission(&mut self, key: Key) {
        let listeners = &mut self.listeners;
        let Released {
            listener,
            handshake,
        } = self
            .admissions
            .release(key, |l| listeners.get_mut(l)?.admission.as_deref_mut());
        if let Some(listener) = listener {
            self.resume_accepting(listener);
        }
        if handshake {
            self.resume_waiting_for_handshakes();
        }
    }

    /// Connection `key`'s handshake completed: its slot is free.
    pub(crate) fn release_handshake(&mut self, key: Key) {
        if self.admissions.handshake_done(key) {
            self.resume_waiting_for_handshakes();
        }
    }

    fn resume_waiting_for_handshakes(&mut self) {
        if self.admissions.handshakes_full() {
            return;
        }
        for key in std::mem::take(&mut self.admissions.waiting_for_handshakes) {
            self.resume_accepting(key);
        }
    }

    /// Puts a paused port back in the poll and on the ready list: connections that queued
    /// in the backlog meanwhile announce no new edge. `may_accept` pauses it again if it is
    /// still held back.
    fn resume_accepting(&mut self, key: Key) {
        if self.listeners.resume(self.poll.registry(), key) {
            self.queue_accept(key);
        }
    }

    fn port_admission(&mut self, key: Key) -> Option<&mut PortAdmission> {
        self.listeners.get_mut(key)?.admission.as_deref_mut()
    }
}

impl ListeningPort {
    /// Limits the port's connections ([`ConnectionLimits`]): set them before the reactor
    /// runs, as connections already open are not counted. Returns false if the port stopped.
    pub fn set_limits(&self, reactor: &mut Reactor, limits: ConnectionLimits) -> bool {
        reactor.set_port_limits(self.key, limits)
    }
}

fn peer_ip(peer: &Address) -> Option<IpAddr> {
    match peer {
        Address::Tcp(addr) => Some(addr.ip()),
        _ => None,
    }
}
