//! The stub resolver against small DNS servers written with torsion's own UDP and TCP, on
//! 127.0.0.1 only: nothing here reads the machine's resolv.conf or hosts file or sends
//! anywhere else. Timeouts are driven by a manual clock wherever a test waits for one.
#![cfg(feature = "reactor")]

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_protocols::dns::{
    AddressFamily, Hosts, LookupResult, Message, Name, Question, Rcode, Record, RecordData,
    RecordType, ResolveError, Resolver, ResolverConfig, Soa,
};
use torsion_protocols::prefixed::{FrameContext, FrameProtocol, FrameReceiver, Prefix};
use torsion_reactor::{
    Address, ClientFactory, ConnectError, ConnectOptions, Context, DatagramContext, DatagramPort,
    DatagramProtocol, ManualClock, Protocol, Reactor,
};

const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
const TIMEOUT: Duration = Duration::from_secs(2);

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn a(owner: &str, ttl: u32, address: [u8; 4]) -> Record {
    Record::new(name(owner), ttl, RecordData::A(address.into()))
}

/// What a test server knows and how it misbehaves; what it heard.
#[derive(Default)]
struct Script {
    records: Vec<Record>,
    /// Queries dropped before any is answered.
    drop_first: usize,
    /// Answer every query over UDP with TC set and no records.
    truncate: bool,
    /// Answer the first query with forgeries only.
    forge_first: bool,
    /// Send the forgeries before every answer, all at once.
    forge_before_answer: bool,
    /// Answer with every record, whatever was asked (as a recursive server sends a whole
    /// CNAME chain).
    answer_everything: bool,
    /// Another socket, to send replies from the wrong address.
    forger: Option<DatagramPort>,
    /// Answer with this error code instead.
    rcode: Option<Rcode>,
    /// Accept TCP connections and never answer on them.
    tcp_silent: bool,
    udp_queries: Vec<(Message, SocketAddr)>,
    tcp_queries: Vec<Message>,
}

type Shared = Rc<RefCell<Script>>;

/// The authoritative answer to `query` from `script`'s records (CNAMEs and the type asked),
/// NXDOMAIN with an SOA for a name it does not know.
fn answer(query: &Message, script: &Script) -> Message {
    let mut reply = Message::response_to(query, script.rcode.unwrap_or(Rcode::NO_ERROR));
    if script.rcode.is_some() {
        return reply;
    }
    if script.answer_everything {
        reply.answers = script.records.clone();
        return reply;
    }
    let question = &query.questions[0];
    reply.answers = script
        .records
        .iter()
        .filter(|r| r.name == question.name)
        .filter(|r| r.rtype == question.qtype || r.rtype == RecordType::CNAME)
        .cloned()
        .collect();
    if reply.answers.is_empty() {
        if !script.records.iter().any(|r| r.name == question.name) {
            reply.header.rcode = Rcode::NX_DOMAIN;
        }
        let soa = Soa {
            mname: name("ns.test"),
            rname: name("admin.test"),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 30,
        };
        reply
            .authority
            .push(Record::new(name("test"), 600, RecordData::Soa(soa)));
    }
    reply
}

/// The UDP side of a test server.
struct UdpServer(Shared);

impl DatagramProtocol for UdpServer {
    fn datagram_received(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        let from = from.as_tcp().expect("a UDP peer");
        let query = Message::decode(data).expect("the resolver sends well-formed queries");
        let mut script = self.0.borrow_mut();
        script.udp_queries.push((query.clone(), from));
        let heard = script.udp_queries.len();
        if heard <= script.drop_first {
            return;
        }
        if script.forge_first && heard == 1 {
            return send_forgeries(cx, &query, &script, from);
        }
        if script.forge_before_answer {
            send_forgeries(cx, &query, &script, from);
        }
        let mut reply = answer(&query, &script);
        if script.truncate {
            reply.header.truncated = true;
            reply.answers.clear();
            reply.authority.clear();
        }
        cx.send_to(&reply.encode(), from).unwrap();
    }
}

/// Replies that must all be dropped: a wrong id, a wrong name, a wrong type, a query instead
/// of a response, and a perfect reply from the wrong address. Each carries an address the
/// test would see if it were accepted.
fn send_forgeries(cx: &mut DatagramContext<'_>, query: &Message, script: &Script, to: SocketAddr) {
    let question = &query.questions[0];
    let forged = |n: u8| a(&question.name.to_string(), 300, [6, 6, 6, n]);
    let mut wrong_id = Message::response_to(query, Rcode::NO_ERROR);
    wrong_id.header.id = query.header.id.wrapping_add(1);
    wrong_id.answers.push(forged(1));
    let mut wrong_name = Message::response_to(query, Rcode::NO_ERROR);
    wrong_name.questions = vec![Question::new(name("evil.test"), question.qtype)];
    wrong_name.answers.push(a("evil.test", 300, [6, 6, 6, 2]));
    let mut wrong_type = Message::response_to(query, Rcode::NO_ERROR);
    wrong_type.questions[0].qtype = RecordType::MX;
    wrong_type.answers.push(forged(3));
    let mut not_a_response = Message::response_to(query, Rcode::NO_ERROR);
    not_a_response.header.response = false;
    not_a_response.answers.push(forged(4));
    for forgery in [wrong_id, wrong_name, wrong_type, not_a_response] {
        cx.send_to(&forgery.encode(), to).unwrap();
    }
    cx.send_to(b"\x00\x01garbage", to).unwrap();
    let mut perfect = Message::response_to(query, Rcode::NO_ERROR);
    perfect.answers.push(forged(5));
    let forger = script.forger.expect("a forger socket");
    forger.send_to(cx.reactor(), &perfect.encode(), to).unwrap();
}

/// The TCP side of a test server, on the UDP side's port.
struct TcpServer(Shared);

impl FrameReceiver for TcpServer {
    fn frame_received(&mut self, cx: &mut FrameContext<'_, '_>, frame: &[u8]) {
        let query = Message::decode(frame).unwrap();
        let reply = answer(&query, &self.0.borrow());
        self.0.borrow_mut().tcp_queries.push(query);
        if !self.0.borrow().tcp_silent {
            cx.send_frame(&reply.encode()).unwrap();
        }
    }
}

/// A server on 127.0.0.1 (UDP, and TCP on the same port) following `script`.
fn serve(reactor: &mut Reactor, script: Script) -> (SocketAddr, Shared) {
    let shared = Rc::new(RefCell::new(script));
    for _ in 0..20 {
        let udp = reactor
            .listen_udp(LOOPBACK, UdpServer(shared.clone()))
            .unwrap();
        let for_tcp = shared.clone();
        let factory = move || FrameProtocol::new(TcpServer(for_tcp.clone()), Prefix::U16);
        // The kernel picked the UDP port; the same TCP port is almost always free.
        if reactor.listen_tcp(udp.local_addr(), factory).is_ok() {
            return (udp.local_addr(), shared);
        }
        udp.stop_listening(reactor);
    }
    panic!("no port free for both UDP and TCP");
}

/// A server on 127.0.0.1 that answers from `records` and misbehaves in no way.
fn serve_records(reactor: &mut Reactor, records: Vec<Record>) -> (SocketAddr, Shared) {
    serve(
        reactor,
        Script {
            records,
            ..Script::default()
        },
    )
}

/// A nameserver that hears and never answers.
fn silent(reactor: &mut Reactor) -> (SocketAddr, Shared) {
    serve(
        reactor,
        Script {
            drop_first: usize::MAX,
            ..Script::default()
        },
    )
}

fn resolver(servers: Vec<SocketAddr>) -> Rc<Resolver> {
    Resolver::new(ResolverConfig::new(servers).with_timeout(TIMEOUT))
}

/// A resolver asking `servers`, each up to twice.
fn resolver_with_two_attempts(servers: Vec<SocketAddr>) -> Rc<Resolver> {
    let config = ResolverConfig::new(servers)
        .with_timeout(TIMEOUT)
        .with_attempts(2);
    Resolver::new(config)
}

type Outcome = Rc<RefCell<Option<LookupResult>>>;

fn lookup(
    resolver: &Resolver,
    reactor: &mut Reactor,
    host: &str,
    family: AddressFamily,
) -> Outcome {
    let outcome: Outcome = Rc::default();
    let slot = outcome.clone();
    resolver.lookup_family(reactor, host, family, move |_, result| {
        assert!(slot.borrow_mut().replace(result).is_none(), "called twice");
    });
    outcome
}

/// Turns the reactor until `done`, failing after 10 s of real time.
fn run_until(reactor: &mut Reactor, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting");
        reactor.iterate(Duration::from_millis(5)).unwrap();
    }
}

/// Runs until `outcome` is in, and returns it.
fn result_of(reactor: &mut Reactor, outcome: &Outcome) -> LookupResult {
    run_until(reactor, || outcome.borrow().is_some());
    outcome.borrow_mut().take().unwrap()
}

/// Runs until `outcome` is in, and returns its addresses (failing if it is an error).
fn addresses_of(reactor: &mut Reactor, outcome: &Outcome) -> Vec<IpAddr> {
    result_of(reactor, outcome).unwrap()
}

/// Looks `host` up and runs until the result is in.
fn resolve(
    resolver: &Resolver,
    reactor: &mut Reactor,
    host: &str,
    family: AddressFamily,
) -> LookupResult {
    let outcome = lookup(resolver, reactor, host, family);
    result_of(reactor, &outcome)
}

/// Asserts that `host` resolves to `expected`.
fn assert_resolves(
    resolver: &Resolver,
    reactor: &mut Reactor,
    (host, family): (&str, AddressFamily),
    expected: &[&str],
) {
    let addresses = resolve(resolver, reactor, host, family).unwrap();
    assert_eq!(addresses, ips(expected), "{host}");
}

/// A few turns, to let anything that would happen without time passing happen.
fn settle(reactor: &mut Reactor) {
    for _ in 0..20 {
        reactor.iterate(Duration::from_millis(2)).unwrap();
    }
}

/// Runs until `done`, then [`settle`]s.
fn run_until_settled(reactor: &mut Reactor, done: impl FnMut() -> bool) {
    run_until(reactor, done);
    settle(reactor);
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn manual_reactor() -> (Reactor, ManualClock) {
    let clock = ManualClock::new();
    (Reactor::with_clock(clock.clone()).unwrap(), clock)
}

const V4: AddressFamily = AddressFamily::Ipv4;

#[test]
fn a_and_aaaa_are_answered_by_a_server_on_loopback() {
    let mut reactor = Reactor::new().unwrap();
    let aaaa = RecordData::Aaaa("2001:db8::1".parse().unwrap());
    let records = vec![
        a("host.test", 300, [192, 0, 2, 1]),
        Record::new(name("host.test"), 300, aaaa),
    ];
    let (server, script) = serve_records(&mut reactor, records);
    let resolver = resolver(vec![server]);
    let both = ("host.test", AddressFamily::Any);
    assert_resolves(&resolver, &mut reactor, both, &["192.0.2.1", "2001:db8::1"]);

    let script = script.borrow();
    let asked: Vec<RecordType> = script
        .udp_queries
        .iter()
        .map(|(q, _)| q.questions[0].qtype)
        .collect();
    assert_eq!(asked.len(), 2);
    assert!(asked.contains(&RecordType::A) && asked.contains(&RecordType::AAAA));
    let (first, from_a) = &script.udp_queries[0];
    let (second, from_b) = &script.udp_queries[1];
    assert!(first.header.recursion_desired);
    assert_ne!(
        from_a.port(),
        from_b.port(),
        "each query has its own socket"
    );
    assert_ne!(first.header.id, second.header.id);
}

#[test]
fn a_cname_is_followed_to_its_addresses() {
    let mut reactor = Reactor::new().unwrap();
    let records = vec![
        Record::new(name("www.test"), 300, RecordData::Cname(name("web.test"))),
        a("web.test", 300, [192, 0, 2, 80]),
    ];
    // One reply carrying the whole chain, as recursive servers send it.
    let script = Script {
        records,
        answer_everything: true,
        ..Script::default()
    };
    let (server, _) = serve(&mut reactor, script);
    let resolver = resolver(vec![server]);
    assert_resolves(&resolver, &mut reactor, ("www.test", V4), &["192.0.2.80"]);
}

#[test]
fn a_server_that_drops_the_first_query_is_asked_again_after_the_timeout() {
    let (mut reactor, clock) = manual_reactor();
    let script = Script {
        records: vec![a("retry.test", 300, [192, 0, 2, 2])],
        drop_first: 1,
        ..Script::default()
    };
    let (server, script) = serve(&mut reactor, script);
    let resolver = resolver(vec![server]);
    let outcome = lookup(&resolver, &mut reactor, "retry.test", V4);
    run_until_settled(&mut reactor, || script.borrow().udp_queries.len() == 1);
    assert!(outcome.borrow().is_none(), "nothing before the timeout");
    assert_eq!(
        script.borrow().udp_queries.len(),
        1,
        "no retry before the timeout"
    );

    clock.advance(TIMEOUT);
    assert_eq!(addresses_of(&mut reactor, &outcome), ips(&["192.0.2.2"]));
    let script = script.borrow();
    assert_eq!(script.udp_queries.len(), 2);
    assert_eq!(
        script.udp_queries[0].0.questions,
        script.udp_queries[1].0.questions
    );
}

#[test]
fn a_silent_server_is_passed_over_for_the_next() {
    let (mut reactor, clock) = manual_reactor();
    let (dead, dead_script) = silent(&mut reactor);
    let records = vec![a("next.test", 300, [192, 0, 2, 3])];
    let (alive, alive_script) = serve_records(&mut reactor, records);
    let resolver = resolver(vec![dead, alive]);
    let outcome = lookup(&resolver, &mut reactor, "next.test", V4);
    run_until_settled(&mut reactor, || dead_script.borrow().udp_queries.len() == 1);
    assert!(
        alive_script.borrow().udp_queries.is_empty(),
        "the first server first"
    );

    clock.advance(TIMEOUT);
    assert_eq!(addresses_of(&mut reactor, &outcome), ips(&["192.0.2.3"]));
}

#[test]
fn every_server_silent_times_out_after_every_attempt() {
    let (mut reactor, clock) = manual_reactor();
    let (first, first_script) = silent(&mut reactor);
    let (second, second_script) = silent(&mut reactor);
    let resolver = resolver_with_two_attempts(vec![first, second]);
    let outcome = lookup(&resolver, &mut reactor, "void.test", V4);
    let heard =
        || first_script.borrow().udp_queries.len() + second_script.borrow().udp_queries.len();
    for sent in 1..=4 {
        run_until_settled(&mut reactor, || heard() == sent);
        assert!(outcome.borrow().is_none(), "not over after {sent} queries");
        clock.advance(TIMEOUT);
    }
    assert!(matches!(
        result_of(&mut reactor, &outcome),
        Err(ResolveError::TimedOut)
    ));
    assert_eq!(first_script.borrow().udp_queries.len(), 2);
    assert_eq!(second_script.borrow().udp_queries.len(), 2);
}

#[test]
fn forged_replies_are_dropped_and_the_real_one_accepted() {
    let (mut reactor, clock) = manual_reactor();
    let forger = reactor
        .listen_udp(LOOPBACK, UdpServer(Rc::default()))
        .unwrap();
    let script = Script {
        records: vec![a("bank.test", 300, [192, 0, 2, 4])],
        forge_first: true,
        forger: Some(forger),
        ..Script::default()
    };
    let (server, script) = serve(&mut reactor, script);
    let resolver = resolver(vec![server]);
    let outcome = lookup(&resolver, &mut reactor, "bank.test", V4);
    run_until_settled(&mut reactor, || script.borrow().udp_queries.len() == 1);
    assert!(
        outcome.borrow().is_none(),
        "a forgery was accepted: {:?}",
        outcome.borrow()
    );

    // The retry gets the real answer, after the same forgeries would have failed again.
    clock.advance(TIMEOUT);
    assert_eq!(addresses_of(&mut reactor, &outcome), ips(&["192.0.2.4"]));
}

#[test]
fn forged_replies_before_the_real_one_in_the_same_turn_do_not_hide_it() {
    let mut reactor = Reactor::new().unwrap();
    let forger = reactor
        .listen_udp(LOOPBACK, UdpServer(Rc::default()))
        .unwrap();
    let script = Script {
        records: vec![a("bank.test", 300, [192, 0, 2, 5])],
        forge_before_answer: true,
        forger: Some(forger),
        ..Script::default()
    };
    let (server, _) = serve(&mut reactor, script);
    let resolver = resolver(vec![server]);
    assert_resolves(&resolver, &mut reactor, ("bank.test", V4), &["192.0.2.5"]);
}

#[test]
fn a_truncated_reply_is_asked_again_over_tcp() {
    let mut reactor = Reactor::new().unwrap();
    // 40 A records: about 650 bytes, over the 512 of a UDP reply.
    let records: Vec<Record> = (1..=40)
        .map(|i| a("big.test", 300, [10, 0, 0, i]))
        .collect();
    let script = Script {
        records,
        truncate: true,
        ..Script::default()
    };
    let (server, script) = serve(&mut reactor, script);
    let resolver = resolver(vec![server]);
    let addresses = resolve(&resolver, &mut reactor, "big.test", V4).unwrap();
    assert_eq!(addresses.len(), 40);
    assert_eq!(addresses[39], IpAddr::from([10, 0, 0, 40]));
    let script = script.borrow();
    assert_eq!(script.udp_queries.len(), 1);
    assert_eq!(script.tcp_queries.len(), 1);
    assert_eq!(
        script.tcp_queries[0].questions,
        script.udp_queries[0].0.questions
    );
}

#[test]
fn a_tcp_retry_that_gets_no_answer_times_out_like_a_udp_try() {
    let (mut reactor, clock) = manual_reactor();
    let script = Script {
        records: vec![a("big.test", 300, [10, 0, 0, 1])],
        truncate: true,
        tcp_silent: true,
        ..Script::default()
    };
    let (server, script) = serve(&mut reactor, script);
    let resolver = resolver_with_two_attempts(vec![server]);
    let outcome = lookup(&resolver, &mut reactor, "big.test", V4);
    for tries in 1..=2 {
        run_until_settled(&mut reactor, || script.borrow().tcp_queries.len() == tries);
        assert!(outcome.borrow().is_none());
        clock.advance(TIMEOUT);
    }
    assert!(matches!(
        result_of(&mut reactor, &outcome),
        Err(ResolveError::TimedOut)
    ));
    assert_eq!(script.borrow().udp_queries.len(), 2);
}

#[test]
fn a_truncated_reply_with_no_tcp_listener_fails_over_to_the_next_try() {
    let (mut reactor, _clock) = manual_reactor();
    let shared: Shared = Rc::new(RefCell::new(Script {
        records: vec![a("big.test", 300, [10, 0, 0, 1])],
        truncate: true,
        ..Script::default()
    }));
    // UDP only: the TCP connect is refused.
    let server = reactor
        .listen_udp(LOOPBACK, UdpServer(shared.clone()))
        .unwrap();
    let resolver = Resolver::new(ResolverConfig::new(vec![server.local_addr()]).with_attempts(2));
    match resolve(&resolver, &mut reactor, "big.test", V4) {
        Err(ResolveError::Io(e)) => assert!(e.to_string().contains("refused"), "{e}"),
        other => panic!("expected the TCP connect's refusal, got {other:?}"),
    }
    assert_eq!(
        shared.borrow().udp_queries.len(),
        2,
        "each try asked over UDP first"
    );
}

#[test]
fn answers_are_cached_for_their_ttl_and_asked_again_after() {
    let (mut reactor, clock) = manual_reactor();
    let records = vec![a("cached.test", 60, [192, 0, 2, 6])];
    let (server, script) = serve_records(&mut reactor, records);
    let resolver = resolver(vec![server]);
    let asked = || script.borrow().udp_queries.len();
    let address = &["192.0.2.6"];

    assert_resolves(&resolver, &mut reactor, ("cached.test", V4), address);
    assert_eq!(asked(), 1);

    clock.advance(Duration::from_secs(59));
    assert_resolves(&resolver, &mut reactor, ("CACHED.test.", V4), address);
    assert_eq!(asked(), 1, "a hit within the TTL asks nobody");

    clock.advance(Duration::from_secs(1));
    assert_resolves(&resolver, &mut reactor, ("cached.test", V4), address);
    assert_eq!(asked(), 2, "past the TTL the server is asked again");
}

#[test]
fn a_missing_name_is_not_found_and_cached_for_the_soa_minimum() {
    let (mut reactor, clock) = manual_reactor();
    let (server, script) = serve(&mut reactor, Script::default());
    let resolver = resolver(vec![server]);
    for (advance, asked) in [(0, 1), (29, 1), (1, 2)] {
        clock.advance(Duration::from_secs(advance));
        assert!(matches!(
            resolve(&resolver, &mut reactor, "nowhere.test", V4),
            Err(ResolveError::NotFound)
        ));
        assert_eq!(script.borrow().udp_queries.len(), asked);
    }
}

#[test]
fn concurrent_lookups_of_one_name_share_one_query() {
    let mut reactor = Reactor::new().unwrap();
    let records = vec![a("shared.test", 300, [192, 0, 2, 7])];
    let (server, script) = serve_records(&mut reactor, records);
    let resolver = resolver(vec![server]);
    let outcomes: Vec<Outcome> = (0..5)
        .map(|_| lookup(&resolver, &mut reactor, "shared.test", V4))
        .collect();
    for outcome in &outcomes {
        assert_eq!(addresses_of(&mut reactor, outcome), ips(&["192.0.2.7"]));
    }
    assert_eq!(script.borrow().udp_queries.len(), 1);
}

/// A server on 127.0.0.1 that answers every query with `rcode`.
fn failing(reactor: &mut Reactor, rcode: Rcode) -> SocketAddr {
    let script = Script {
        rcode: Some(rcode),
        ..Script::default()
    };
    serve(reactor, script).0
}

#[test]
fn a_server_failure_moves_on_to_the_next_server_at_once() {
    let (mut reactor, _clock) = manual_reactor();
    let first = failing(&mut reactor, Rcode::SERV_FAIL);
    let records = vec![a("flaky.test", 300, [192, 0, 2, 8])];
    let (second, _) = serve_records(&mut reactor, records);
    let resolver = resolver(vec![first, second]);
    // No clock advance: SERVFAIL is not a timeout.
    assert_resolves(&resolver, &mut reactor, ("flaky.test", V4), &["192.0.2.8"]);

    // With only failing servers, the failure is reported.
    let only = failing(&mut reactor, Rcode::REFUSED);
    let resolver = self::resolver(vec![only]);
    assert!(matches!(
        resolve(&resolver, &mut reactor, "flaky.test", V4),
        Err(ResolveError::ServerFailure(Rcode::REFUSED))
    ));
}

#[test]
fn a_closed_port_fails_at_once_without_waiting_for_the_timeout() {
    let (mut reactor, _clock) = manual_reactor();
    let closed = {
        let socket = std::net::UdpSocket::bind(LOOPBACK).unwrap();
        socket.local_addr().unwrap()
    };
    let resolver = Resolver::new(ResolverConfig::new(vec![closed]).with_attempts(1));
    match resolve(&resolver, &mut reactor, "closed.test", V4) {
        Err(ResolveError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
        other => panic!("expected refused, got {other:?}"),
    }
}

#[test]
fn the_hosts_file_answers_before_any_server() {
    let mut reactor = Reactor::new().unwrap();
    let (server, script) = silent(&mut reactor);
    let hosts = Hosts::parse("192.0.2.9 printer.test printer\n2001:db8::9 printer.test\n");
    let resolver = Resolver::new(ResolverConfig::new(vec![server]).with_hosts(hosts));
    let any = ("PRINTER.test", AddressFamily::Any);
    assert_resolves(&resolver, &mut reactor, any, &["192.0.2.9", "2001:db8::9"]);
    let v6 = ("printer.test", AddressFamily::Ipv6);
    assert_resolves(&resolver, &mut reactor, v6, &["2001:db8::9"]);
    settle(&mut reactor);
    assert!(script.borrow().udp_queries.is_empty());
}

#[test]
fn literals_and_bad_names_need_no_server() {
    let mut reactor = Reactor::new().unwrap();
    let resolver = Resolver::new(ResolverConfig::new(Vec::new()));
    let mut ask = |host, family| resolve(&resolver, &mut reactor, host, family);
    let any = AddressFamily::Any;
    assert_eq!(ask("127.0.0.1", any).unwrap(), ips(&["127.0.0.1"]));
    assert!(matches!(ask("::1", V4), Err(ResolveError::NoAddresses)));
    assert!(matches!(
        ask("a..b", any),
        Err(ResolveError::InvalidName(_))
    ));
    assert!(matches!(
        ask("no.servers.test", any),
        Err(ResolveError::NoNameservers)
    ));
}

#[test]
fn the_callback_never_runs_inside_lookup() {
    let mut reactor = Reactor::new().unwrap();
    let resolver = Resolver::new(ResolverConfig::new(Vec::new()));
    let outcome = lookup(&resolver, &mut reactor, "127.0.0.1", AddressFamily::Any);
    assert!(outcome.borrow().is_none());
    reactor.iterate(Duration::ZERO).unwrap();
    assert!(outcome.borrow().is_some());
}

/// Records how its connection attempt went.
#[derive(Clone, Default)]
struct Attempt(Rc<RefCell<Option<Result<SocketAddr, ConnectError>>>>);

struct Connected(Attempt);

impl Protocol for Connected {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        *self.0 .0.borrow_mut() = Some(Ok(cx.peer_addr().unwrap()));
        cx.lose_connection();
    }
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

impl ClientFactory for Attempt {
    type Protocol = Connected;
    fn build_protocol(&mut self, _peer: Address) -> Connected {
        Connected(self.clone())
    }
    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        *self.0.borrow_mut() = Some(Err(error));
    }
}

struct Idle;

impl Protocol for Idle {
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

#[test]
fn connect_resolves_the_host_then_connects() {
    let mut reactor = Reactor::new().unwrap();
    let listener = reactor.listen_tcp(LOOPBACK, || Idle).unwrap();
    let records = vec![a("svc.test", 300, [127, 0, 0, 1])];
    let (server, _) = serve_records(&mut reactor, records);
    let resolver = resolver(vec![server]);
    let attempt = Attempt::default();
    let port = listener.local_addr().port();
    resolver.connect(
        &mut reactor,
        "svc.test",
        port,
        attempt.clone(),
        ConnectOptions::new(),
    );
    run_until(&mut reactor, || attempt.0.borrow().is_some());
    let peer = attempt.0.borrow_mut().take().unwrap().unwrap();
    assert_eq!(peer, listener.local_addr());
}

#[test]
fn connect_to_an_unknown_host_fails_with_resolve() {
    let mut reactor = Reactor::new().unwrap();
    let (server, _) = serve(&mut reactor, Script::default());
    let resolver = resolver(vec![server]);
    let attempt = Attempt::default();
    resolver.connect(
        &mut reactor,
        "nowhere.test",
        80,
        attempt.clone(),
        ConnectOptions::new(),
    );
    run_until(&mut reactor, || attempt.0.borrow().is_some());
    let outcome = attempt.0.borrow_mut().take().unwrap();
    match outcome {
        Err(ConnectError::Resolve(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            let cause = e.get_ref().and_then(|c| c.downcast_ref::<ResolveError>());
            assert!(matches!(cause, Some(ResolveError::NotFound)), "{e}");
        }
        other => panic!("expected a resolve error, got {other:?}"),
    }
}
