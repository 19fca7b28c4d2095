//! The stub resolver: lookups answered from the hosts file, the cache, or queries to the
//! nameservers, each query a small state machine kept here and driven by its sockets
//! (`transport.rs`) and its timer; the retry over TCP of a truncated reply is in
//! `resolver/tcp_retry.rs`.
//!
//! A query's life: sent over UDP from a fresh socket (random port, random id) to the servers
//! in turn, `attempts` rounds, each try waiting `timeout`; a reply is accepted only from the
//! server asked, with the query's id and question; a truncated one sends the query again over
//! TCP to that server; SERVFAIL, REFUSED and the like, an ICMP port unreachable or a TCP
//! failure move on to the next try at once. The first good answer (or the last failure) goes
//! to every lookup waiting for that name and type, and into the cache for its TTL.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::debug;
use torsion_reactor::{Connector, DatagramPort, DelayedCall, Reactor};

use super::cache::{Cache, Cached};
use super::lookup::{Callback, Join};
use super::transport::QuerySocket;
use super::{
    AddressFamily, Header, LookupResult, Message, Name, Question, Rcode, RecordType, ResolveError,
    ResolverConfig,
};

/// A DNS stub resolver on the reactor: Twisted's `twisted.names.client.Resolver`.
///
/// Made with [`Resolver::new`] as an `Rc` (the reactor is single-threaded), shared by
/// everything that looks names up, so concurrent lookups of one name share one query and the
/// cache serves them all.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use torsion_protocols::dns::{Resolver, ResolverConfig};
/// use torsion_reactor::Reactor;
///
/// let mut reactor = Reactor::new()?;
/// let resolver = Resolver::new(ResolverConfig::system()?);
/// resolver.lookup(&mut reactor, "example.com", |reactor, result| {
///     match result {
///         Ok(addresses) => println!("example.com is at {addresses:?}"),
///         Err(e) => println!("example.com: {e}"),
///     }
///     reactor.stop();
/// });
/// reactor.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Resolver {
    state: RefCell<State>,
    /// Handed to sockets and timers, which must not keep the resolver alive.
    this: Weak<Resolver>,
}

/// Names a query in flight.
pub(super) type Token = u64;

struct State {
    config: ResolverConfig,
    cache: Cache,
    queries: HashMap<Token, Query>,
    by_question: HashMap<(Name, RecordType), Token>,
    ids: IdSource,
    next_token: Token,
}

/// One question being asked of the nameservers.
struct Query {
    question: Question,
    id: u16,
    /// The query on the wire.
    wire: Vec<u8>,
    /// Tries started (UDP sends; a TCP retry belongs to the try whose reply was truncated).
    tries: u32,
    /// One socket per server asked, connected to it, kept until the end so that a late
    /// reply to an earlier try still counts.
    sockets: Vec<(SocketAddr, DatagramPort)>,
    /// The TCP retry in progress, and the try it belongs to.
    tcp: Option<(u32, Connector)>,
    timer: Option<DelayedCall>,
    /// Why the latest try failed, if it failed rather than timed out.
    last_error: Option<ResolveError>,
    waiters: Vec<Callback>,
}

/// Query ids from SipHash keyed by the process's random `RandomState` keys, over a counter
/// and the time: unpredictable without the keys, and no dependency.
struct IdSource {
    keys: RandomState,
    counter: u64,
}

impl IdSource {
    fn next(&mut self) -> u16 {
        self.counter += 1;
        let mut hasher = self.keys.build_hasher();
        hasher.write_u64(self.counter);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        // Truncation is the point: any 16 bits of the hash are as good as any others.
        hasher.finish() as u16
    }
}

mod tcp_retry;

use tcp_retry::abandon_tcp;

impl Resolver {
    /// A resolver with `config`.
    pub fn new(config: ResolverConfig) -> Rc<Resolver> {
        Rc::new_cyclic(|this| Resolver {
            state: RefCell::new(State {
                cache: Cache::new(config.cache_size),
                config,
                queries: HashMap::new(),
                by_question: HashMap::new(),
                ids: IdSource {
                    keys: RandomState::new(),
                    counter: 0,
                },
                next_token: 0,
            }),
            this: this.clone(),
        })
    }

    /// A resolver with the machine's configuration ([`ResolverConfig::system`]).
    pub fn system() -> io::Result<Rc<Resolver>> {
        Ok(Resolver::new(ResolverConfig::system()?))
    }

    /// Looks up the IPv4 and IPv6 addresses of `host` (IPv4 first); see
    /// [`lookup_family`](Resolver::lookup_family).
    pub fn lookup(
        &self,
        reactor: &mut Reactor,
        host: &str,
        callback: impl FnOnce(&mut Reactor, LookupResult) + 'static,
    ) {
        self.lookup_family(reactor, host, AddressFamily::Any, callback)
    }

    /// Looks up the addresses of `host` of `family`, and calls `callback` with them, always
    /// later from the reactor, never from inside this call.
    ///
    /// An address literal is its own answer. Otherwise the hosts file answers first (when it
    /// has addresses of the family), then the cache, then the nameservers: for
    /// [`AddressFamily::Any`] an A and an AAAA query go out together, and the lookup
    /// succeeds if either finds addresses. The name is asked as given (no search domains).
    pub fn lookup_family(
        &self,
        reactor: &mut Reactor,
        host: &str,
        family: AddressFamily,
        callback: impl FnOnce(&mut Reactor, LookupResult) + 'static,
    ) {
        let callback: Callback = Box::new(callback);
        if let Ok(address) = host.parse::<IpAddr>() {
            let result = match family.admits(&address) {
                true => Ok(vec![address]),
                false => Err(ResolveError::NoAddresses),
            };
            return deliver_later(reactor, callback, result);
        }
        let name = match Name::from_ascii(host) {
            Ok(name) => name,
            Err(e) => return deliver_later(reactor, callback, Err(ResolveError::InvalidName(e))),
        };
        let from_hosts: Vec<IpAddr> = {
            let state = self.state.borrow();
            let addresses = state.config.hosts.lookup(&name);
            addresses
                .iter()
                .copied()
                .filter(|a| family.admits(a))
                .collect()
        };
        if !from_hosts.is_empty() {
            return deliver_later(reactor, callback, Ok(from_hosts));
        }
        match family {
            AddressFamily::Ipv4 => self.query(reactor, name, RecordType::A, callback),
            AddressFamily::Ipv6 => self.query(reactor, name, RecordType::AAAA, callback),
            AddressFamily::Any => self.query_both(reactor, name, callback),
        }
    }

    /// Forgets every cached answer.
    pub fn clear_cache(&self) {
        let capacity = self.state.borrow().config.cache_size;
        self.state.borrow_mut().cache = Cache::new(capacity);
    }

    /// An A and an AAAA query together, their answers joined.
    fn query_both(&self, reactor: &mut Reactor, name: Name, callback: Callback) {
        let join = Rc::new(RefCell::new(Join::new(callback)));
        for (i, qtype) in [(0, RecordType::A), (1, RecordType::AAAA)] {
            let join = join.clone();
            let half: Callback = Box::new(move |reactor, result| {
                let done = join.borrow_mut().complete(i, result);
                if let Some((callback, result)) = done {
                    callback(reactor, result);
                }
            });
            self.query(reactor, name.clone(), qtype, half);
        }
    }

    /// Answers `callback` from the cache, or joins the query in flight for the same name and
    /// type, or starts one.
    fn query(&self, reactor: &mut Reactor, name: Name, qtype: RecordType, callback: Callback) {
        let key = (name, qtype);
        let mut state = self.state.borrow_mut();
        if let Some(cached) = state.cache.get(&key, reactor.now()) {
            drop(state);
            return deliver_later(reactor, callback, cached.into_result());
        }
        if let Some(token) = state.by_question.get(&key).copied() {
            if let Some(query) = state.queries.get_mut(&token) {
                query.waiters.push(callback);
                return;
            }
        }
        if state.config.nameservers.is_empty() {
            drop(state);
            return deliver_later(reactor, callback, Err(ResolveError::NoNameservers));
        }
        let token = state.next_token;
        state.next_token += 1;
        let id = state.ids.next();
        let question = Question::new(key.0.clone(), qtype);
        let wire = Message {
            header: Header::query(id),
            questions: vec![question.clone()],
            ..Message::default()
        }
        .encode();
        debug!("dns: asking {} {qtype} (id {id})", key.0);
        let query = Query {
            question,
            id,
            wire,
            tries: 0,
            sockets: Vec::new(),
            tcp: None,
            timer: None,
            last_error: None,
            waiters: vec![callback],
        };
        state.queries.insert(token, query);
        state.by_question.insert(key, token);
        drop(state);
        self.next_try(reactor, token);
    }

    /// Sends the query to the next server in turn and waits `timeout` for it, or, with no
    /// try left, fails the query.
    fn next_try(&self, reactor: &mut Reactor, token: Token) {
        loop {
            let Some((server, try_number, timeout)) = self.start_try(token) else {
                return self.give_up(reactor, token);
            };
            let port = match self.socket_for(reactor, token, server) {
                Ok(port) => port,
                Err(e) => {
                    debug!("dns: no socket for {server}: {e}");
                    self.note_error(token, ResolveError::Io(Arc::new(e)));
                    continue;
                }
            };
            let wire = match self.state.borrow().queries.get(&token) {
                Some(query) => query.wire.clone(),
                None => return,
            };
            if let Err(e) = port.send_to(reactor, &wire, server) {
                debug!("dns: query to {server} not sent: {e}");
                self.note_error(token, ResolveError::Io(Arc::new(e)));
                continue;
            }
            let this = self.this.clone();
            let timer = reactor.call_later(timeout, move |reactor| {
                if let Some(this) = this.upgrade() {
                    this.timed_out(reactor, token, try_number);
                }
            });
            return self.set_timer(reactor, token, Some(timer));
        }
    }

    /// Counts a new try: its server, its number and its timeout; `None` when none is left.
    fn start_try(&self, token: Token) -> Option<(SocketAddr, u32, Duration)> {
        let mut state = self.state.borrow_mut();
        let State {
            config, queries, ..
        } = &mut *state;
        let query = queries.get_mut(&token)?;
        let servers = config.nameservers.len();
        let total = usize::try_from(config.attempts.max(1)).unwrap_or(1) * servers;
        let index = usize::try_from(query.tries).unwrap_or(usize::MAX);
        if index >= total {
            return None;
        }
        query.tries += 1;
        Some((
            config.nameservers[index % servers],
            query.tries,
            config.timeout,
        ))
    }

    /// The query's socket for `server`, opened (on a random port, connected to the server)
    /// if it has none yet.
    fn socket_for(
        &self,
        reactor: &mut Reactor,
        token: Token,
        server: SocketAddr,
    ) -> io::Result<DatagramPort> {
        let (existing, lifetime) = {
            let state = self.state.borrow();
            let existing = state.queries.get(&token).and_then(|q| {
                q.sockets
                    .iter()
                    .find(|(s, _)| *s == server)
                    .map(|(_, p)| *p)
            });
            (existing, longest_query(&state.config))
        };
        if let Some(port) = existing {
            return Ok(port);
        }
        let any: IpAddr = match server {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let socket = QuerySocket::new(self.this.clone(), token, server, lifetime);
        let port = reactor.listen_udp(SocketAddr::new(any, 0), socket)?;
        match self.state.borrow_mut().queries.get_mut(&token) {
            Some(query) => query.sockets.push((server, port)),
            None => {
                port.stop_listening(reactor);
            }
        }
        Ok(port)
    }

    fn note_error(&self, token: Token, error: ResolveError) {
        if let Some(query) = self.state.borrow_mut().queries.get_mut(&token) {
            query.last_error = Some(error);
        }
    }

    /// Replaces the query's timer, cancelling the one it had.
    fn set_timer(&self, reactor: &mut Reactor, token: Token, timer: Option<DelayedCall>) {
        let old = match self.state.borrow_mut().queries.get_mut(&token) {
            Some(query) => std::mem::replace(&mut query.timer, timer),
            None => timer,
        };
        if let Some(old) = old {
            old.cancel(reactor);
        }
    }

    /// Try `try_number` got no answer in time (over UDP, or over TCP after a truncation).
    fn timed_out(&self, reactor: &mut Reactor, token: Token, try_number: u32) {
        let tcp = {
            let mut state = self.state.borrow_mut();
            let Some(query) = state.queries.get_mut(&token) else {
                return;
            };
            if query.tries != try_number {
                return;
            }
            query.timer = None;
            query.tcp.take()
        };
        debug!("dns: try {try_number} of query {token} timed out");
        if let Some((_, connector)) = tcp {
            abandon_tcp(reactor, connector);
        }
        self.next_try(reactor, token);
    }

    /// A datagram came to the query's socket for `server`: the answer, a truncated answer
    /// to ask again over TCP, or something to drop.
    pub(super) fn datagram(
        &self,
        reactor: &mut Reactor,
        token: Token,
        server: SocketAddr,
        data: &[u8],
        from: SocketAddr,
    ) {
        let truncated = {
            let state = self.state.borrow();
            let Some(query) = state.queries.get(&token) else {
                return;
            };
            if from != server {
                return debug!("dns: dropped a reply from {from}: asked {server}");
            }
            if query.tcp.is_some() {
                return debug!("dns: dropped a reply from {from}: asking over TCP now");
            }
            let head = Message::decode_head(data);
            match head
                .map_err(|e| e.to_string())
                .and_then(|head| query.check(&head))
            {
                Ok(truncated) => truncated,
                Err(why) => return debug!("dns: dropped a reply from {from}: {why}"),
            }
        };
        if truncated {
            return self.ask_over_tcp(reactor, token, server);
        }
        match Message::decode(data) {
            Ok(message) => self.answered(reactor, token, message),
            Err(e) => debug!("dns: dropped a malformed reply from {from}: {e}"),
        }
    }

    /// The socket for `server` heard an ICMP port unreachable: if that server is being
    /// asked now, move on without waiting for the timeout.
    pub(super) fn refused(&self, reactor: &mut Reactor, token: Token, server: SocketAddr) {
        let current = {
            let state = self.state.borrow();
            let servers = &state.config.nameservers;
            state.queries.get(&token).and_then(|q| {
                let index = usize::try_from(q.tries.checked_sub(1)?).ok()?;
                let asked = *servers.get(index % servers.len().max(1))?;
                Some(asked == server && q.tcp.is_none())
            })
        };
        if current == Some(true) {
            debug!("dns: {server} refused the query");
            let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
            self.note_error(token, ResolveError::Io(Arc::new(refused)));
            self.set_timer(reactor, token, None);
            self.next_try(reactor, token);
        }
    }

    /// A reply that matched the query: the answer, or a server error to try past.
    fn answered(&self, reactor: &mut Reactor, token: Token, message: Message) {
        let Some(question) = self
            .state
            .borrow()
            .queries
            .get(&token)
            .map(|q| q.question.clone())
        else {
            return;
        };
        let negative_ttl = message.negative_ttl();
        match message.header.rcode {
            Rcode::NO_ERROR => {
                let answer = message.addresses(&question);
                if answer.addresses.is_empty() {
                    self.finish(reactor, token, Err(ResolveError::NoAddresses), negative_ttl);
                } else {
                    self.finish(reactor, token, Ok(answer.addresses), answer.ttl);
                }
            }
            Rcode::NX_DOMAIN => {
                self.finish(reactor, token, Err(ResolveError::NotFound), negative_ttl)
            }
            rcode => {
                debug!(
                    "dns: {} {}: {rcode}, trying on",
                    question.name, question.qtype
                );
                self.note_error(token, ResolveError::ServerFailure(rcode));
                self.set_timer(reactor, token, None);
                self.next_try(reactor, token);
            }
        }
    }

    /// No try left: fail with why the last one failed, or as timed out.
    fn give_up(&self, reactor: &mut Reactor, token: Token) {
        let error = self
            .state
            .borrow_mut()
            .queries
            .get_mut(&token)
            .and_then(|q| q.last_error.take())
            .unwrap_or(ResolveError::TimedOut);
        self.finish(reactor, token, Err(error), None);
    }

    /// Ends the query: closes its sockets and connection, caches the result for `ttl`
    /// seconds (capped), and hands it to every waiting lookup.
    fn finish(&self, reactor: &mut Reactor, token: Token, result: LookupResult, ttl: Option<u32>) {
        let query = {
            let mut state = self.state.borrow_mut();
            let Some(query) = state.queries.remove(&token) else {
                return;
            };
            let key = (query.question.name.clone(), query.question.qtype);
            state.by_question.remove(&key);
            let cached = Cached::from_result(&result);
            if let (Some(cached), Some(ttl)) = (cached, ttl) {
                let ttl = Duration::from_secs(ttl.into()).min(state.config.max_ttl);
                state.cache.insert(key, cached, ttl, reactor.now());
            }
            query
        };
        if let Some(timer) = query.timer {
            timer.cancel(reactor);
        }
        for (_, port) in query.sockets {
            port.stop_listening(reactor);
        }
        if let Some((_, connector)) = query.tcp {
            abandon_tcp(reactor, connector);
        }
        for waiter in query.waiters {
            waiter(reactor, result.clone());
        }
    }
}

impl Query {
    /// Whether a reply's header and questions answer this query: a response, with its id,
    /// a standard query, and exactly its question. `Ok(true)` if it is truncated.
    fn check(&self, (header, questions): &(Header, Vec<Question>)) -> Result<bool, String> {
        if !header.response {
            return Err("not a response".into());
        }
        if header.id != self.id {
            return Err(format!("id {} is not the query's", header.id));
        }
        if header.opcode != 0 {
            return Err(format!("opcode {}", header.opcode));
        }
        if questions.as_slice() != [self.question.clone()] {
            return Err(format!("question {questions:?} is not the query's"));
        }
        Ok(header.truncated)
    }
}

impl Cached {
    /// What of a result is worth caching: addresses, or the name's absence.
    fn from_result(result: &LookupResult) -> Option<Cached> {
        match result {
            Ok(addresses) => Some(Cached::Addresses(addresses.clone())),
            Err(ResolveError::NotFound) => Some(Cached::NotFound),
            Err(ResolveError::NoAddresses) => Some(Cached::NoData),
            Err(_) => None,
        }
    }

    fn into_result(self) -> LookupResult {
        match self {
            Cached::Addresses(addresses) => Ok(addresses),
            Cached::NotFound => Err(ResolveError::NotFound),
            Cached::NoData => Err(ResolveError::NoAddresses),
        }
    }
}

/// The longest a query can last: every try timing out. A query socket closes itself after
/// that (and one timeout more), even if the resolver was dropped meanwhile.
fn longest_query(config: &ResolverConfig) -> Duration {
    let tries = config.attempts.max(1) * u32::try_from(config.nameservers.len()).unwrap_or(1);
    config.timeout.saturating_mul(tries.saturating_add(1))
}

/// Calls `callback` with `result` on the next turn.
fn deliver_later(reactor: &mut Reactor, callback: Callback, result: LookupResult) {
    reactor.call_later(Duration::ZERO, move |reactor| callback(reactor, result));
}

#[cfg(test)]
mod tests;
