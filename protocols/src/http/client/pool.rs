//! The keep-alive pool: per scheme, host and port, the idle connections (newest first, each
//! with its idle timeout), how many are open (connecting, busy or idle; at most
//! [`ClientConfig::max_per_host`](super::ClientConfig::max_per_host)), and the requests
//! waiting for one. Every request goes through [`HttpClient::dispatch`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use log::debug;
use torsion_reactor::{
    rustls, tls, ConnectError, ConnectOptions, ConnectionId, DelayedCall, Reactor, Target,
};

use super::connection::{ClientConnection, ConnectFactory};
use super::exchange::Exchange;
use super::target::{HostKey, Scheme};
use super::{ClientError, HttpClient};

/// The connections and waiting requests of every host.
#[derive(Default)]
pub(super) struct Pool {
    hosts: HashMap<HostKey, Host>,
    /// Requests given to an idle connection, until its protocol takes them.
    handoff: HashMap<ConnectionId, Exchange>,
}

#[derive(Default)]
struct Host {
    open: usize,
    idle: Vec<(ConnectionId, DelayedCall)>,
    queue: VecDeque<Exchange>,
}

impl Host {
    /// The first queued request that is still wanted (a timed-out or cancelled one is
    /// dropped here).
    fn next_queued(&mut self) -> Option<Exchange> {
        while let Some(exchange) = self.queue.pop_front() {
            if !exchange.slot.is_finished() {
                return Some(exchange);
            }
        }
        None
    }
}

impl Pool {
    /// Idle connections, over all hosts.
    pub(super) fn idle(&self) -> usize {
        self.hosts.values().map(|h| h.idle.len()).sum()
    }

    /// Open connections (connecting, busy or idle), over all hosts.
    pub(super) fn open(&self) -> usize {
        self.hosts.values().map(|h| h.open).sum()
    }
}

impl HttpClient {
    /// Sends `exchange` on an idle connection to its host, else on a new one if the host is
    /// under its limit, else queues it. A retried request never takes an idle connection
    /// (the one that just failed it may not be the only stale one).
    pub(super) fn dispatch(&self, reactor: &mut Reactor, exchange: Exchange) {
        if exchange.slot.is_finished() {
            return;
        }
        let key = exchange.target.key();
        let max = self.inner.config.max_per_host.max(1);
        let mut pool = self.inner.pool.borrow_mut();
        let host = pool.hosts.entry(key).or_default();
        if !exchange.retried {
            if let Some((id, timer)) = host.idle.pop() {
                drop(pool);
                timer.cancel(reactor);
                return self.hand_off(reactor, id, exchange);
            }
        }
        if host.open < max {
            host.open += 1;
            drop(pool);
            return self.connect(reactor, exchange);
        }
        debug!(
            "{}: {} connections open, request queued",
            exchange.target.authority, host.open
        );
        host.queue.push_back(exchange);
    }

    /// Gives `exchange` to the established connection `id`.
    fn hand_off(&self, reactor: &mut Reactor, id: ConnectionId, exchange: Exchange) {
        self.inner.pool.borrow_mut().handoff.insert(id, exchange);
        let call = reactor.call_later_on(id, Duration::ZERO, |c: &mut ClientConnection, cx| {
            c.take_handoff(cx)
        });
        if call.is_none() {
            // Gone already (its loss is being reported): send the request elsewhere.
            if let Some(exchange) = self.take_handoff(id) {
                self.dispatch(reactor, exchange);
            }
        }
    }

    /// The request handed to connection `id`.
    pub(super) fn take_handoff(&self, id: ConnectionId) -> Option<Exchange> {
        self.inner.pool.borrow_mut().handoff.remove(&id)
    }

    /// The connect step, chosen by scheme: plain TCP, or TLS verifying the URL's host (the
    /// server name a host target defaults to).
    fn connect(&self, reactor: &mut Reactor, exchange: Exchange) {
        let key = exchange.target.key();
        let target = Target::Host(exchange.target.host.clone(), exchange.target.port);
        let mut options = ConnectOptions::with_timeout(self.inner.config.connect_timeout);
        if let Scheme::Https = exchange.target.scheme {
            match self.tls_config() {
                Ok(config) => options = options.tls(config),
                Err(error) => return self.connect_failed(reactor, &key, exchange, Err(error)),
            }
        }
        let factory = ConnectFactory::new(self.clone(), key, exchange);
        reactor.connect(target, factory, options);
    }

    /// The configured TLS configuration, else one trusting the system's roots, made once.
    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let mut tls = self.inner.tls.borrow_mut();
        if let Some(config) = tls.as_ref() {
            return Ok(config.clone());
        }
        let config = tls::system_roots()
            .and_then(tls::client_config)
            .map_err(|e| ClientError::Tls(Box::new(e)))?;
        Ok(tls.insert(Arc::new(config)).clone())
    }

    /// A connection attempt for `exchange` failed: the request fails, and the next queued
    /// one gets its own attempt.
    pub(super) fn connect_failed(
        &self,
        reactor: &mut Reactor,
        key: &HostKey,
        exchange: Exchange,
        error: Result<ConnectError, ClientError>,
    ) {
        self.closed(key);
        let timeout = self.inner.config.connect_timeout;
        let error = error
            .map(|e| ClientError::from_connect(&exchange.target.host, e, timeout))
            .unwrap_or_else(|e| e);
        debug!("{}: {error}", exchange.target.authority);
        exchange.slot.fail(reactor, error);
        self.pump(reactor, key);
        self.forget_if_unused(key);
    }

    /// Connection `id` finished a response and can carry another request: the next queued
    /// one, or it waits idle (closed after the idle timeout).
    pub(super) fn release(&self, reactor: &mut Reactor, key: &HostKey, id: ConnectionId) {
        let next = self
            .inner
            .pool
            .borrow_mut()
            .hosts
            .get_mut(key)
            .and_then(Host::next_queued);
        if let Some(exchange) = next {
            return self.hand_off(reactor, id, exchange);
        }
        let client = self.clone();
        let expiring = key.clone();
        let timer = reactor.call_later(self.inner.config.idle_timeout, move |reactor| {
            client.idle_expired(reactor, &expiring, id)
        });
        let mut pool = self.inner.pool.borrow_mut();
        pool.hosts
            .entry(key.clone())
            .or_default()
            .idle
            .push((id, timer));
    }

    fn idle_expired(&self, reactor: &mut Reactor, key: &HostKey, id: ConnectionId) {
        if let Some(host) = self.inner.pool.borrow_mut().hosts.get_mut(key) {
            host.idle.retain(|(idle, _)| *idle != id);
        }
        debug!("connection {id}: idle timeout, closing");
        reactor.lose_connection(id);
    }

    /// Connection `id` is closing (the server's EOF came while it had no request): it leaves
    /// the idle list, and a request handed to it and not yet taken goes elsewhere. It still
    /// counts as open until [`connection_lost`](Self::connection_lost).
    pub(super) fn closing(&self, reactor: &mut Reactor, key: &HostKey, id: ConnectionId) {
        let (timer, handed) = self.forget(key, id);
        if let Some(timer) = timer {
            timer.cancel(reactor);
        }
        if let Some(exchange) = handed {
            debug!("connection {id}: closed by the server, its request goes elsewhere");
            self.dispatch(reactor, exchange);
        }
    }

    /// Takes connection `id` out of the idle list (its idle timer, if it was there) and takes
    /// back a request handed to it.
    fn forget(&self, key: &HostKey, id: ConnectionId) -> (Option<DelayedCall>, Option<Exchange>) {
        let mut pool = self.inner.pool.borrow_mut();
        let timer = pool.hosts.get_mut(key).and_then(|host| {
            let at = host.idle.iter().position(|(idle, _)| *idle == id)?;
            Some(host.idle.remove(at).1)
        });
        (timer, pool.handoff.remove(&id))
    }

    /// Connection `id` is gone: it leaves the pool; a request handed to it and not yet
    /// taken goes elsewhere; a queued request may now connect.
    pub(super) fn connection_lost(&self, reactor: &mut Reactor, key: &HostKey, id: ConnectionId) {
        let (timer, handed) = self.forget(key, id);
        self.closed(key);
        if let Some(timer) = timer {
            timer.cancel(reactor);
        }
        if let Some(exchange) = handed {
            self.dispatch(reactor, exchange);
        }
        self.pump(reactor, key);
        self.forget_if_unused(key);
    }

    /// Drops the record of a host with nothing open or queued, so a client that talked to
    /// many hosts keeps no memory for them.
    fn forget_if_unused(&self, key: &HostKey) {
        let mut pool = self.inner.pool.borrow_mut();
        let unused = pool.hosts.get(key);
        if unused.is_some_and(|h| h.open == 0 && h.queue.is_empty()) {
            pool.hosts.remove(key);
        }
    }

    /// One connection of `key` fewer.
    fn closed(&self, key: &HostKey) {
        if let Some(host) = self.inner.pool.borrow_mut().hosts.get_mut(key) {
            host.open = host.open.saturating_sub(1);
        }
    }

    /// Starts connections for queued requests while the host is under its limit.
    fn pump(&self, reactor: &mut Reactor, key: &HostKey) {
        let max = self.inner.config.max_per_host.max(1);
        loop {
            let next = {
                let mut pool = self.inner.pool.borrow_mut();
                let Some(host) = pool.hosts.get_mut(key).filter(|h| h.open < max) else {
                    return;
                };
                let Some(exchange) = host.next_queued() else {
                    return;
                };
                host.open += 1;
                exchange
            };
            self.connect(reactor, next);
        }
    }

    /// Closes every idle connection now (e.g. before the program ends).
    pub fn close_idle(&self, reactor: &mut Reactor) {
        let idle: Vec<_> = {
            let mut pool = self.inner.pool.borrow_mut();
            pool.hosts
                .values_mut()
                .flat_map(|h| h.idle.drain(..))
                .collect()
        };
        for (id, timer) in idle {
            timer.cancel(reactor);
            reactor.lose_connection(id);
        }
    }
}
