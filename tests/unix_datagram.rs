//! UNIX datagram sockets through `DatagramProtocol`, over real sockets: both ways by path and
//! by abstract name, the socket file (stale replaced, live refused, removed on close), unnamed
//! senders, and a connected socket.

mod common;

use std::io::ErrorKind;

use common::unix::*;
use common::*;
use torsion::{
    Address, DatagramContext, DatagramProtocol, Reactor, UnixAddress, UnixListenOptions,
};

/// The datagrams a socket received, and from whom.
type Received = Shared<Vec<(Vec<u8>, Address)>>;

/// A datagram socket that answers every datagram with it, and records what it receives.
struct DatagramEcho {
    answer: bool,
    seen: Received,
}

impl DatagramProtocol for DatagramEcho {
    fn datagram_received(&mut self, cx: &mut DatagramContext<'_>, data: &[u8], from: Address) {
        if self.answer {
            cx.send_to(data, &from).expect("answer the sender");
        }
        self.seen.borrow_mut().push((data.to_vec(), from));
    }
}

fn datagram_socket(
    reactor: &mut Reactor,
    address: UnixAddress,
    answer: bool,
) -> (torsion::DatagramPort, Received) {
    let seen = shared(Vec::new());
    let protocol = DatagramEcho {
        answer,
        seen: seen.clone(),
    };
    let port = reactor
        .listen_unix_datagram(address, UnixListenOptions::new(), protocol)
        .expect("listen_unix_datagram");
    (port, seen)
}

#[test]
fn datagrams_go_both_ways_by_path_and_by_abstract_name() {
    init_logging();
    let dir = TempDir::new("datagram");
    let mut reactor = Reactor::new().unwrap();
    let pairs = [
        (
            UnixAddress::path(dir.path("server.sock")),
            UnixAddress::path(dir.path("client.sock")),
        ),
        (abstract_name("dgram-server"), abstract_name("dgram-client")),
    ];
    for (server_address, client_address) in pairs {
        let (_server, at_server) = datagram_socket(&mut reactor, server_address.clone(), true);
        let (client, at_client) = datagram_socket(&mut reactor, client_address.clone(), false);
        assert_eq!(
            client.address(&reactor),
            Some(Address::Unix(client_address.clone()))
        );
        client
            .send_to(&mut reactor, b"ping", server_address.clone())
            .unwrap();
        run_until(&mut reactor, "the answer", || at_client.borrow().len() == 1);
        let expected_at_server = (b"ping".to_vec(), Address::Unix(client_address));
        assert_eq!(at_server.borrow()[0], expected_at_server);
        let expected_at_client = (b"ping".to_vec(), Address::Unix(server_address));
        assert_eq!(at_client.borrow()[0], expected_at_client);
    }
}

#[test]
fn a_datagram_socket_file_is_replaced_when_stale_and_removed_when_closed() {
    init_logging();
    let dir = TempDir::new("datagram-file");
    let path = dir.path("dgram.sock");
    drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
    let mut reactor = Reactor::new().unwrap();
    let (port, _) = datagram_socket(&mut reactor, UnixAddress::path(&path), true);
    let second = reactor.listen_unix_datagram(
        UnixAddress::path(&path),
        UnixListenOptions::new(),
        DatagramEcho {
            answer: false,
            seen: shared(Vec::new()),
        },
    );
    assert_eq!(second.unwrap_err().kind(), ErrorKind::AddrInUse);
    assert!(port.stop_listening(&mut reactor));
    assert!(!path.exists());
}

#[test]
fn an_unnamed_sender_is_heard_but_cannot_be_answered() {
    init_logging();
    let dir = TempDir::new("datagram-unnamed");
    let server_address = UnixAddress::path(dir.path("server.sock"));
    let mut reactor = Reactor::new().unwrap();
    let (_server, at_server) = datagram_socket(&mut reactor, server_address.clone(), false);
    let (sender, _) = datagram_socket(&mut reactor, UnixAddress::unnamed(), false);
    sender
        .send_to(&mut reactor, b"anonymous", server_address)
        .unwrap();
    run_until(&mut reactor, "the datagram", || {
        at_server.borrow().len() == 1
    });
    let from = at_server.borrow()[0].1.clone();
    assert!(from.as_unix().is_some_and(UnixAddress::is_unnamed));
    let answer = sender.send_to(&mut reactor, b"x", from);
    assert_eq!(answer.unwrap_err().kind(), ErrorKind::InvalidInput);
}

/// Connects to `server` when it starts and sends it a datagram without naming it.
struct ConnectedSender(UnixAddress);

impl DatagramProtocol for ConnectedSender {
    fn start_protocol(&mut self, cx: &mut DatagramContext<'_>) {
        cx.connect(self.0.clone())
            .expect("connect the datagram socket");
        cx.send(b"connected").expect("send to the connected peer");
    }

    fn datagram_received(&mut self, _cx: &mut DatagramContext<'_>, _data: &[u8], _from: Address) {}
}

#[test]
fn a_connected_unix_datagram_socket_sends_to_its_peer() {
    init_logging();
    let dir = TempDir::new("datagram-connected");
    let server_address = UnixAddress::path(dir.path("server.sock"));
    let mut reactor = Reactor::new().unwrap();
    let (_server, at_server) = datagram_socket(&mut reactor, server_address.clone(), false);
    let client_address = UnixAddress::path(dir.path("client.sock"));
    reactor
        .listen_unix_datagram(
            client_address.clone(),
            UnixListenOptions::new(),
            ConnectedSender(server_address),
        )
        .unwrap();
    run_until(&mut reactor, "the datagram", || {
        at_server.borrow().len() == 1
    });
    let expected = (b"connected".to_vec(), Address::Unix(client_address));
    assert_eq!(at_server.borrow()[0], expected);
}
