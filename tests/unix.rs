//! UNIX domain sockets over real sockets: echo by path and by abstract name, a stale socket
//! file replaced and a live one not, the file's mode, the file removed when the port stops,
//! connecting through `Reactor::connect`, peer credentials, descriptors passed both ways and
//! in order with the bytes, datagrams, and a peer that vanishes closing only its connection.

mod common;

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;

use common::*;
use torsion::{
    Address, ClientFactory, ConnectError, ConnectOptions, Context, Credentials, DatagramContext,
    DatagramProtocol, DisconnectReason, Factory, Protocol, Reactor, UnixAddress, UnixListenOptions,
};

/// A directory of this test's own under the system's temporary directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("torsion-unix-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test's directory");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An abstract name no other test (or test run) uses.
fn abstract_name(test: &str) -> UnixAddress {
    UnixAddress::abstract_name(format!("torsion-test-{}-{test}", std::process::id()))
}

/// A blocking client of a socket file, with timeouts.
fn unix_client(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).expect("client connects");
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// Writes `message` and reads as many bytes back.
fn unix_round_trip(stream: &mut UnixStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    back
}

/// Echoes, and records the peer addresses its factory and its context saw.
struct Echoes {
    peers: Shared<Vec<Address>>,
}

impl Factory for Echoes {
    type Protocol = Echo;

    fn build_protocol(&mut self, peer: Address) -> Option<Echo> {
        self.peers.borrow_mut().push(peer);
        Some(Echo)
    }
}

fn echo_server(reactor: &mut Reactor, address: UnixAddress) -> Shared<Vec<Address>> {
    let peers = shared(Vec::new());
    let factory = Echoes {
        peers: peers.clone(),
    };
    reactor
        .listen_unix(address, UnixListenOptions::new(), factory)
        .expect("listen_unix");
    peers
}

#[test]
fn a_server_on_a_path_echoes_and_sees_unnamed_peers() {
    init_logging();
    let dir = TempDir::new("echo-path");
    let path = dir.path("echo.sock");
    let mut reactor = Reactor::new().unwrap();
    let peers = echo_server(&mut reactor, UnixAddress::path(&path));
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());

    let p = path.clone();
    let client = thread::spawn(move || unix_round_trip(&mut unix_client(&p), b"over a path"));
    let back = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert_eq!(back, b"over a path");
    let peer = peers.borrow()[0].clone();
    assert!(
        peer.as_unix().is_some_and(UnixAddress::is_unnamed),
        "{peer:?}"
    );
    assert!(peer.as_tcp().is_none());
}

#[test]
fn a_server_on_an_abstract_name_echoes_and_leaves_no_file() {
    init_logging();
    let name = abstract_name("echo-abstract");
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_unix(name.clone(), UnixListenOptions::new(), || Echo)
        .unwrap();
    assert_eq!(port.address(&reactor), Some(Address::Unix(name.clone())));

    let std_name = std_abstract(&name);
    let client = thread::spawn(move || {
        let mut stream = UnixStream::connect_addr(&std_name).expect("connect by name");
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        unix_round_trip(&mut stream, b"no file")
    });
    let back = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert_eq!(back, b"no file");
}

fn std_abstract(name: &UnixAddress) -> std::os::unix::net::SocketAddr {
    use std::os::linux::net::SocketAddrExt;
    let bytes = name.as_abstract_name().unwrap();
    std::os::unix::net::SocketAddr::from_abstract_name(bytes).unwrap()
}

#[test]
fn a_socket_file_left_by_a_dead_server_is_replaced() {
    init_logging();
    let dir = TempDir::new("stale");
    let path = dir.path("stale.sock");
    // A server that went away without removing its file: std leaves it behind on drop.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let mut reactor = Reactor::new().unwrap();
    echo_server(&mut reactor, UnixAddress::path(&path));
    let p = path.clone();
    let client = thread::spawn(move || unix_round_trip(&mut unix_client(&p), b"fresh"));
    assert_eq!(run_until_joined(&mut reactor, vec![client])[0], b"fresh");
}

#[test]
fn a_live_server_is_not_replaced() {
    init_logging();
    let dir = TempDir::new("live");
    let path = dir.path("live.sock");
    let mut reactor = Reactor::new().unwrap();
    echo_server(&mut reactor, UnixAddress::path(&path));

    let second = reactor.listen_unix(UnixAddress::path(&path), UnixListenOptions::new(), || Echo);
    let error = second.expect_err("a second server on a live socket");
    assert_eq!(error.kind(), ErrorKind::AddrInUse);
    assert!(
        error.to_string().contains("a server is listening"),
        "{error}"
    );

    // The first server still answers on its file.
    let p = path.clone();
    let client = thread::spawn(move || unix_round_trip(&mut unix_client(&p), b"still here"));
    assert_eq!(
        run_until_joined(&mut reactor, vec![client])[0],
        b"still here"
    );
}

#[test]
fn a_file_that_is_not_a_socket_is_never_removed() {
    init_logging();
    let dir = TempDir::new("not-a-socket");
    let path = dir.path("data.txt");
    fs::write(&path, b"precious").unwrap();
    let mut reactor = Reactor::new().unwrap();
    let result = reactor.listen_unix(UnixAddress::path(&path), UnixListenOptions::new(), || Echo);
    let error = result.expect_err("listening over a regular file");
    assert_eq!(error.kind(), ErrorKind::AddrInUse);
    assert!(error.to_string().contains("not a socket"), "{error}");
    assert_eq!(fs::read(&path).unwrap(), b"precious");
}

#[test]
fn the_mode_option_sets_the_socket_files_permissions() {
    init_logging();
    let dir = TempDir::new("mode");
    let mut reactor = Reactor::new().unwrap();
    for (name, mode) in [("owner.sock", 0o600), ("group.sock", 0o660)] {
        let path = dir.path(name);
        let options = UnixListenOptions::new().mode(mode);
        reactor
            .listen_unix(UnixAddress::path(&path), options, || Echo)
            .unwrap();
        let permissions = fs::metadata(&path).unwrap().permissions();
        assert_eq!(permissions.mode() & 0o777, mode, "{name}");
    }
}

#[test]
fn stopping_a_port_removes_its_file_but_not_a_successors() {
    init_logging();
    let dir = TempDir::new("stop");
    let path = dir.path("stop.sock");
    let mut reactor = Reactor::new().unwrap();
    let options = UnixListenOptions::new();
    let port = reactor
        .listen_unix(UnixAddress::path(&path), options.clone(), || Echo)
        .unwrap();
    assert!(port.stop_listening(&mut reactor));
    assert!(!path.exists(), "the stopped port's file is gone");

    // A port whose file was replaced by another server's leaves the new file alone.
    let port = reactor
        .listen_unix(UnixAddress::path(&path), options, || Echo)
        .unwrap();
    fs::remove_file(&path).unwrap();
    let successor = std::os::unix::net::UnixListener::bind(&path).unwrap();
    assert!(port.stop_listening(&mut reactor));
    assert!(path.exists(), "the successor's file stays");
    drop(successor);
}

/// A client that sends a greeting and records what comes back, the peer its factory saw, and
/// how the attempt failed.
#[derive(Default)]
struct ClientLog {
    peer: Option<Address>,
    received: Vec<u8>,
    failed: Option<ConnectError>,
    fds_text: Vec<String>,
    fd_arrivals: Vec<usize>,
}

struct Greeter(Shared<ClientLog>);

impl ClientFactory for Greeter {
    type Protocol = Greeter;

    fn build_protocol(&mut self, peer: Address) -> Greeter {
        self.0.borrow_mut().peer = Some(peer);
        Greeter(self.0.clone())
    }

    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        self.0.borrow_mut().failed = Some(error);
    }
}

impl Protocol for Greeter {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"hello");
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.0.borrow_mut().received.extend_from_slice(data);
    }
}

#[test]
fn the_reactor_connects_to_a_unix_socket_by_path_and_by_name() {
    init_logging();
    let dir = TempDir::new("connect");
    let mut reactor = Reactor::new().unwrap();
    for address in [
        UnixAddress::path(dir.path("connect.sock")),
        abstract_name("connect"),
    ] {
        echo_server(&mut reactor, address.clone());
        let log = shared(ClientLog::default());
        reactor.connect(address.clone(), Greeter(log.clone()), ConnectOptions::new());
        run_until(&mut reactor, "the echo", || {
            log.borrow().received == b"hello"
        });
        assert_eq!(log.borrow().peer, Some(Address::Unix(address)));
    }
}

#[test]
fn connecting_to_a_path_where_nothing_listens_fails_through_the_factory() {
    init_logging();
    let dir = TempDir::new("connect-nothing");
    let mut reactor = Reactor::new().unwrap();
    let missing = shared(ClientLog::default());
    let address = UnixAddress::path(dir.path("missing.sock"));
    reactor.connect(address, Greeter(missing.clone()), ConnectOptions::new());
    assert!(
        missing.borrow().failed.is_none(),
        "never from inside connect"
    );
    run_until(&mut reactor, "the failure", || {
        missing.borrow().failed.is_some()
    });
    assert!(
        matches!(missing.borrow().failed, Some(ConnectError::Io(ref e)) if e.kind() == ErrorKind::NotFound)
    );

    let stale = dir.path("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let refused = shared(ClientLog::default());
    reactor.connect(
        UnixAddress::path(&stale),
        Greeter(refused.clone()),
        ConnectOptions::new(),
    );
    run_until(&mut reactor, "the refusal", || {
        refused.borrow().failed.is_some()
    });
    assert!(matches!(
        refused.borrow().failed,
        Some(ConnectError::Refused(_))
    ));
}

/// Records the peer's credentials as the connection sees them.
struct WhoIsIt(Shared<Vec<Option<Credentials>>>);

impl Protocol for WhoIsIt {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let credentials = cx.peer_credentials().map(|c| c.expect("SO_PEERCRED"));
        self.0.borrow_mut().push(credentials);
        cx.lose_connection();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

#[test]
fn the_peers_credentials_are_those_of_the_connecting_process_and_tcp_has_none() {
    init_logging();
    let dir = TempDir::new("credentials");
    let path = dir.path("who.sock");
    let mut reactor = Reactor::new().unwrap();
    let seen = shared(Vec::new());
    let s = seen.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || WhoIsIt(s.clone()),
        )
        .unwrap();
    let s = seen.clone();
    let tcp = reactor
        .listen_tcp(any_loopback_port(), move || WhoIsIt(s.clone()))
        .unwrap();

    let _unix = unix_client(&path);
    run_until(&mut reactor, "the UNIX connection", || {
        seen.borrow().len() == 1
    });
    let _tcp = connect(tcp.local_addr());
    run_until(&mut reactor, "the TCP connection", || {
        seen.borrow().len() == 2
    });

    let credentials = seen.borrow()[0].expect("a UNIX peer has credentials");
    assert_eq!(credentials.pid, std::process::id() as i32);
    assert_eq!(credentials.uid, rustix::process::getuid().as_raw());
    assert_eq!(credentials.gid, rustix::process::getgid().as_raw());
    assert_eq!(seen.borrow()[1], None, "TCP has no peer credentials");
}

/// Text written into a fresh pipe, and the pipe's read end to pass on.
fn pipe_holding(text: &str) -> OwnedFd {
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(text.as_bytes()).unwrap();
    OwnedFd::from(reader)
}

/// Reads what a received descriptor holds to its end.
fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    File::from(fd).read_to_string(&mut text).unwrap();
    text
}

/// Both ends of the descriptor tests: sends `before`, then a pipe holding `text` with one
/// byte, then `after`; records the bytes and descriptors that arrive.
struct Passer {
    log: Shared<ClientLog>,
    text: &'static str,
    before: usize,
}

impl Passer {
    fn send(&self, cx: &mut Context<'_>) {
        if self.before > 0 {
            cx.write_bytes(vec![b'a'; self.before].into());
        }
        cx.write_with_fds(b"b", vec![pipe_holding(self.text)])
            .expect("fds queued");
        cx.write(b"c");
    }
}

impl Protocol for Passer {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.send(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut log = self.log.borrow_mut();
        log.received.extend_from_slice(data);
        for fd in cx.take_received_fds() {
            let arrived_with = log.received.len();
            log.fd_arrivals.push(arrived_with);
            log.fds_text.push(read_all(fd));
        }
    }
}

impl ClientFactory for Passer {
    type Protocol = Passer;

    fn build_protocol(&mut self, _peer: Address) -> Passer {
        Passer {
            log: self.log.clone(),
            ..*self
        }
    }
}

#[test]
fn descriptors_pass_both_ways_with_their_bytes_in_order() {
    init_logging();
    let dir = TempDir::new("fds");
    let path = dir.path("fds.sock");
    let mut reactor = Reactor::new().unwrap();
    // More than the socket buffers hold before the descriptor, so the writes are cut where
    // it goes and resumed on writable events.
    let before = 4 << 20;
    let server = shared(ClientLog::default());
    let s = server.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || Passer {
                log: s.clone(),
                text: "from the server",
                before,
            },
        )
        .unwrap();
    let client = shared(ClientLog::default());
    let passer = Passer {
        log: client.clone(),
        text: "from the client",
        before: 0,
    };
    reactor.connect(UnixAddress::path(&path), passer, ConnectOptions::new());
    run_until(&mut reactor, "both descriptors and all bytes", || {
        client.borrow().received.len() == before + 2 && server.borrow().fds_text.len() == 1
    });

    assert_eq!(server.borrow().fds_text, ["from the client"]);
    assert_eq!(client.borrow().fds_text, ["from the server"]);
    // The descriptor came with the byte it was sent with: never before the bytes queued
    // ahead of it.
    let arrived_with = client.borrow().fd_arrivals[0];
    assert!(arrived_with > before, "arrived after {arrived_with} bytes");
    assert_eq!(&client.borrow().received[before..], b"bc");
    assert_eq!(server.borrow().received, b"bc");
}

/// Tries the ways `write_with_fds` refuses, then records what it heard.
struct Refusals(Shared<Vec<ErrorKind>>);

impl Protocol for Refusals {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let mut kinds = self.0.borrow_mut();
        let empty = cx.write_with_fds(b"", vec![pipe_holding("x")]);
        kinds.push(empty.unwrap_err().kind());
        let many = (0..=torsion::MAX_FDS_PER_MESSAGE)
            .map(|_| pipe_holding("x"))
            .collect();
        kinds.push(cx.write_with_fds(b"x", many).unwrap_err().kind());
        cx.lose_connection();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

#[test]
fn descriptors_without_a_byte_too_many_or_over_tcp_are_refused() {
    init_logging();
    let dir = TempDir::new("fd-refusals");
    let path = dir.path("refuse.sock");
    let mut reactor = Reactor::new().unwrap();
    let kinds = shared(Vec::new());
    let k = kinds.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || Refusals(k.clone()),
        )
        .unwrap();
    let _client = unix_client(&path);
    run_until(&mut reactor, "the refusals", || kinds.borrow().len() == 2);
    assert_eq!(
        *kinds.borrow(),
        [ErrorKind::InvalidInput, ErrorKind::InvalidInput]
    );

    let over_tcp = shared(None);
    let o = over_tcp.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || TcpFds(o.clone()))
        .unwrap();
    let _tcp = connect(port.local_addr());
    run_until(&mut reactor, "the TCP refusal", || {
        over_tcp.borrow().is_some()
    });
    assert_eq!(*over_tcp.borrow(), Some(ErrorKind::Unsupported));
}

struct TcpFds(Shared<Option<ErrorKind>>);

impl Protocol for TcpFds {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let result = cx.write_with_fds(b"x", vec![pipe_holding("x")]);
        *self.0.borrow_mut() = Some(result.unwrap_err().kind());
        assert!(cx.take_received_fds().is_empty());
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Counts connections lost, and echoes.
struct CountLost(Shared<Vec<String>>);

impl Protocol for CountLost {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.0.borrow_mut().push(format!("{reason:?}"));
    }
}

#[test]
fn a_peer_that_vanishes_closes_only_its_own_connection() {
    init_logging();
    let dir = TempDir::new("vanish");
    let path = dir.path("vanish.sock");
    let mut reactor = Reactor::new().unwrap();
    let lost = shared(Vec::new());
    let l = lost.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || CountLost(l.clone()),
        )
        .unwrap();
    let mut stays = unix_client(&path);
    let first = thread::spawn(move || {
        let back = unix_round_trip(&mut stays, b"one");
        (stays, back)
    });
    let (mut stays, back) = run_until_joined(&mut reactor, vec![first]).remove(0);
    assert_eq!(back, b"one");

    // A peer that writes and goes away without reading what it is sent (its close resets).
    let mut vanishes = unix_client(&path);
    vanishes.write_all(&[b'x'; 1000]).unwrap();
    drop(vanishes);
    run_until(&mut reactor, "the vanished peer's loss", || {
        lost.borrow().len() == 1
    });

    // The other connection goes on.
    let second = thread::spawn(move || {
        let back = unix_round_trip(&mut stays, b"two");
        (stays, back)
    });
    let (_stays, back) = run_until_joined(&mut reactor, vec![second]).remove(0);
    assert_eq!(back, b"two");
    assert_eq!(
        lost.borrow().len(),
        1,
        "only the vanished peer's connection closed"
    );
}

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

/// Sends two descriptors, each with its own byte: two messages, back to back.
struct TwoBatches;

impl Protocol for TwoBatches {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write_with_fds(b"b", vec![pipe_holding("first")])
            .unwrap();
        cx.write_with_fds(b"c", vec![pipe_holding("second")])
            .unwrap();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Receives bytes and descriptors, sending nothing.
struct Collector(Shared<ClientLog>);

impl Protocol for Collector {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut log = self.0.borrow_mut();
        log.received.extend_from_slice(data);
        for fd in cx.take_received_fds() {
            log.fds_text.push(read_all(fd));
        }
    }
}

impl ClientFactory for Collector {
    type Protocol = Collector;

    fn build_protocol(&mut self, _peer: Address) -> Collector {
        Collector(self.0.clone())
    }
}

#[test]
fn a_read_cut_short_by_descriptors_goes_on_to_the_bytes_behind_them() {
    init_logging();
    let dir = TempDir::new("fd-batches");
    let path = dir.path("batches.sock");
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen_unix(UnixAddress::path(&path), UnixListenOptions::new(), || {
            TwoBatches
        })
        .unwrap();
    let log = shared(ClientLog::default());
    reactor.connect(
        UnixAddress::path(&path),
        Collector(log.clone()),
        ConnectOptions::new(),
    );
    // The kernel ends a read after the first message's byte; the second waits behind it
    // with no new readiness edge to announce it.
    run_until(&mut reactor, "both messages", || {
        log.borrow().received == b"bc"
    });
    assert_eq!(log.borrow().fds_text, ["first", "second"]);
}

/// Upgrades each connection to TLS at once, then echoes the plaintext.
struct TlsEcho(std::sync::Arc<torsion::rustls::ServerConfig>);

impl Protocol for TlsEcho {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.start_tls_server(self.0.clone(), &[]).expect("start TLS");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }
}

#[test]
fn tls_runs_over_a_unix_socket_given_a_server_name() {
    init_logging();
    let dir = TempDir::new("tls");
    let path = dir.path("tls.sock");
    let ca = common::certs::TestCa::new("unix test CA");
    let config = std::sync::Arc::new(common::tls::localhost_server(&ca));
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || TlsEcho(config.clone()),
        )
        .unwrap();
    let seen = shared(common::tls::Seen::default());
    let options = common::tls::tls_to("localhost", &ca);
    let client = common::tls::client(&seen, b"over TLS over UNIX");
    reactor.connect(UnixAddress::path(&path), client, options);
    run_until(&mut reactor, "the encrypted echo", || {
        let s = seen.borrow();
        s.failed.is_some() || s.received.len() >= 18
    });
    assert!(seen.borrow().failed.is_none(), "{:?}", seen.borrow().failed);
    assert_eq!(seen.borrow().received, b"over TLS over UNIX");
}

/// Sends five messages of [`torsion::MAX_FDS_PER_MESSAGE`] descriptors each.
struct Flood;

impl Protocol for Flood {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        for _ in 0..5 {
            let fds = (0..torsion::MAX_FDS_PER_MESSAGE)
                .map(|_| pipe_holding(""))
                .collect();
            cx.write_with_fds(b"f", fds).unwrap();
        }
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Takes no descriptor until all five bytes are in, then counts what is held.
struct TakeLate(Shared<Option<usize>>, usize);

impl Protocol for TakeLate {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.1 += data.len();
        if self.1 == 5 {
            *self.0.borrow_mut() = Some(cx.take_received_fds().len());
        }
    }
}

impl ClientFactory for TakeLate {
    type Protocol = TakeLate;

    fn build_protocol(&mut self, _peer: Address) -> TakeLate {
        TakeLate(self.0.clone(), 0)
    }
}

#[test]
fn descriptors_not_taken_are_held_up_to_a_bound_and_the_rest_closed() {
    init_logging();
    let dir = TempDir::new("fd-bound");
    let path = dir.path("flood.sock");
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen_unix(UnixAddress::path(&path), UnixListenOptions::new(), || Flood)
        .unwrap();
    let held = shared(None);
    let client = TakeLate(held.clone(), 0);
    reactor.connect(UnixAddress::path(&path), client, ConnectOptions::new());
    run_until(&mut reactor, "all five messages", || {
        held.borrow().is_some()
    });
    assert_eq!(*held.borrow(), Some(torsion::MAX_HELD_FDS));
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
