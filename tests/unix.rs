//! UNIX domain stream sockets over real sockets: echo by path and by abstract name, a stale
//! socket file replaced and a live one not, the file's mode, the file removed when the port
//! stops, connecting through `Reactor::connect`, peer credentials, a peer that vanishes closing
//! only its connection, half-close, the watermarks under a slow reader, and TLS over a UNIX
//! socket. Descriptor passing is in `unix_fds.rs`, datagrams in `unix_datagram.rs`.

mod common;

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::thread;

use common::unix::*;
use common::*;
use torsion::{
    Address, ClientFactory, ConnectError, ConnectOptions, Context, Credentials, DisconnectReason,
    Factory, Protocol, Reactor, UnixAddress, UnixListenOptions,
};

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
fn with_a_lock_file_a_second_server_fails_on_the_lock_and_a_later_one_starts() {
    init_logging();
    let dir = TempDir::new("lock");
    let path = dir.path("locked.sock");
    let lock = dir.path("locked.sock.lock");
    let options = UnixListenOptions::new().lock_file(true);
    let mut reactor = Reactor::new().unwrap();
    let first = reactor
        .listen_unix(UnixAddress::path(&path), options.clone(), || Echo)
        .unwrap();
    assert!(lock.exists());

    let second = reactor.listen_unix(UnixAddress::path(&path), options.clone(), || Echo);
    let error = second.expect_err("a second server while the first holds the lock");
    assert_eq!(error.kind(), ErrorKind::AddrInUse);
    assert!(
        error.to_string().contains("another server holds"),
        "{error}"
    );
    assert!(path.exists(), "the first server's socket is untouched");

    assert!(first.stop_listening(&mut reactor));
    assert!(
        !path.exists() && lock.exists(),
        "the socket goes, the lock file stays"
    );
    reactor
        .listen_unix(UnixAddress::path(&path), options, || Echo)
        .expect("the lock is free once the first server stopped");
}

#[test]
fn a_live_socket_of_the_other_type_is_not_replaced() {
    init_logging();
    let dir = TempDir::new("live-datagram");
    let path = dir.path("datagram.sock");
    let _datagram = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let mut reactor = Reactor::new().unwrap();
    let result = reactor.listen_unix(UnixAddress::path(&path), UnixListenOptions::new(), || Echo);
    let error = result.expect_err("a stream server over a live datagram socket");
    assert_eq!(error.kind(), ErrorKind::AddrInUse);
    assert!(error.to_string().contains("another type"), "{error}");
    assert!(path.exists());
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
fn endpoint_strings_listen_and_connect_on_unix_sockets() {
    init_logging();
    let dir = TempDir::new("endpoints");
    let path = dir.path("endpoint.sock");
    let name = abstract_name("endpoint");
    let at_name = format!(
        "@{}",
        String::from_utf8_lossy(name.as_abstract_name().unwrap())
    );
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen(format!("unix:{}:mode=0600", path.display()), || Echo)
        .expect("listen on a path");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    reactor
        .listen(format!("unix:{at_name}"), || Echo)
        .expect("listen on an abstract name");
    for (endpoint, address) in [
        (
            format!("unix:path={}", path.display()),
            UnixAddress::path(&path),
        ),
        (format!("unix:path={at_name}"), name.clone()),
    ] {
        let log = shared(ClientLog::default());
        reactor
            .connect_endpoint(endpoint.as_str(), Greeter(log.clone()))
            .expect(&endpoint);
        run_until(&mut reactor, "the echo", || {
            log.borrow().received == b"hello"
        });
        assert_eq!(
            log.borrow().peer,
            Some(Address::Unix(address)),
            "{endpoint}"
        );
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

/// Upgrades each connection to TLS at once, then echoes the plaintext; records the peer's
/// credentials as seen under TLS.
struct TlsEcho(
    std::sync::Arc<torsion::rustls::ServerConfig>,
    Shared<Option<Credentials>>,
);

impl Protocol for TlsEcho {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.start_tls_server(self.0.clone(), &[]).expect("start TLS");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        *self.1.borrow_mut() = cx.peer_credentials().and_then(Result::ok);
        cx.write(data);
    }
}

#[test]
fn tls_runs_over_a_unix_socket_given_a_server_name_and_keeps_the_credentials() {
    init_logging();
    let dir = TempDir::new("tls");
    let path = dir.path("tls.sock");
    let ca = common::certs::TestCa::new("unix test CA");
    let config = std::sync::Arc::new(common::tls::localhost_server(&ca));
    let mut reactor = Reactor::new().unwrap();
    let credentials = shared(None);
    let c = credentials.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || TlsEcho(config.clone(), c.clone()),
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
    let pid = credentials.borrow().map(|c| c.pid);
    assert_eq!(
        pid,
        Some(std::process::id() as i32),
        "credentials under TLS"
    );

    // Without a server name there is nothing to verify the certificate for.
    let unnamed = shared(ClientLog::default());
    let options = ConnectOptions::new().tls(common::tls::trusting(&ca));
    reactor.connect(UnixAddress::path(&path), Greeter(unnamed.clone()), options);
    run_until(&mut reactor, "the refusal", || {
        unnamed.borrow().failed.is_some()
    });
    let failed = unnamed.borrow_mut().failed.take();
    assert!(
        matches!(
            failed,
            Some(ConnectError::Tls(torsion::TlsError::InvalidServerName(_)))
        ),
        "{failed:?}"
    );
}

#[test]
fn a_half_close_reaches_the_server_and_what_it_wrote_before_closing_arrives() {
    init_logging();
    let dir = TempDir::new("eof");
    let path = dir.path("eof.sock");
    let mut reactor = Reactor::new().unwrap();
    echo_server(&mut reactor, UnixAddress::path(&path));
    let mut client = unix_client(&path);
    let reader = thread::spawn(move || {
        client.write_all(b"bye").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut client, &mut all).unwrap();
        all
    });
    // The echo's default `eof_received` closes once what it queued is written.
    assert_eq!(run_until_joined(&mut reactor, vec![reader])[0], b"bye");
}

/// Writes a reply far larger than the watermarks at once, and records `pause_writing` and
/// `resume_writing` with the bytes queued at each.
struct BigReply(Shared<Vec<(&'static str, usize)>>);

const BIG_REPLY: usize = 4 << 20;

impl Protocol for BigReply {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write_bytes(vec![b'r'; BIG_REPLY].into());
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().push(("pause", cx.queued_bytes()));
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().push(("resume", cx.queued_bytes()));
    }
}

#[test]
fn a_peer_that_reads_slowly_pauses_and_resumes_the_writer() {
    init_logging();
    let dir = TempDir::new("watermarks");
    let path = dir.path("slow.sock");
    let mut reactor = Reactor::new().unwrap();
    let events = shared(Vec::new());
    let e = events.clone();
    reactor
        .listen_unix(
            UnixAddress::path(&path),
            UnixListenOptions::new(),
            move || BigReply(e.clone()),
        )
        .unwrap();
    // The client reads only once the server has paused.
    let mut client = unix_client(&path);
    run_until(&mut reactor, "pause_writing", || {
        !events.borrow().is_empty()
    });
    let reader = thread::spawn(move || {
        let mut reply = vec![0; BIG_REPLY];
        std::io::Read::read_exact(&mut client, &mut reply).unwrap();
        reply.len()
    });
    assert_eq!(run_until_joined(&mut reactor, vec![reader])[0], BIG_REPLY);
    run_until(&mut reactor, "resume_writing", || {
        events.borrow().len() == 2
    });
    let events = events.borrow();
    let [("pause", at_pause), ("resume", at_resume)] = events[..] else {
        panic!("expected one pause then one resume, got {events:?}");
    };
    assert!(at_pause > 64 * 1024, "paused with {at_pause} bytes queued");
    assert!(
        at_resume <= 16 * 1024,
        "resumed with {at_resume} bytes queued"
    );
}
