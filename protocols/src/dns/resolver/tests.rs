//! The resolver's unit tests: query ids, and replies from the wrong address.

use super::*;

#[test]
fn query_ids_are_spread_over_the_whole_range() {
    let mut ids = IdSource {
        keys: RandomState::new(),
        counter: 0,
    };
    let drawn: Vec<u16> = (0..1000).map(|_| ids.next()).collect();
    let distinct: std::collections::HashSet<_> = drawn.iter().collect();
    assert!(
        distinct.len() > 950,
        "{} distinct ids of 1000",
        distinct.len()
    );
    assert!(drawn.iter().any(|&id| id > 0xC000) && drawn.iter().any(|&id| id < 0x4000));
}

/// The query sockets are connected, so the kernel already drops datagrams from other
/// addresses; this checks the resolver's own check behind it.
#[test]
fn a_reply_from_another_address_than_the_server_asked_is_dropped() {
    use super::super::{Record, RecordData};
    use torsion_reactor::ManualClock;

    let server_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = server_socket.local_addr().unwrap();
    let mut reactor = Reactor::with_clock(ManualClock::new()).unwrap();
    let resolver = Resolver::new(ResolverConfig::new(vec![server]));
    let result = Rc::new(RefCell::new(None));
    let slot = result.clone();
    resolver.lookup_family(&mut reactor, "x.test", AddressFamily::Ipv4, move |_, r| {
        *slot.borrow_mut() = Some(r);
    });
    let (token, query) = {
        let state = resolver.state.borrow();
        let (token, query) = state.queries.iter().next().unwrap();
        (*token, Message::decode(&query.wire).unwrap())
    };
    let mut reply = Message::response_to(&query, Rcode::NO_ERROR);
    let address = RecordData::A([192, 0, 2, 1].into());
    let x = Name::from_ascii("x.test").unwrap();
    reply.answers.push(Record::new(x, 60, address));
    let wire = reply.encode();

    let elsewhere = SocketAddr::new(server.ip(), server.port() ^ 1);
    resolver.datagram(&mut reactor, token, server, &wire, elsewhere);
    reactor.iterate(Duration::ZERO).unwrap();
    assert!(result.borrow().is_none());
    resolver.datagram(&mut reactor, token, server, &wire, server);
    let addresses = result.borrow_mut().take().unwrap().unwrap();
    assert_eq!(addresses, [IpAddr::from([192, 0, 2, 1])]);
}
