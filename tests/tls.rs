//! TLS transports over loopback: echo of 16 MiB each way, close_notify told from an abrupt
//! close, half-close, flow control on plaintext bytes, plaintext sent to a TLS port,
//! handshake timeouts, and OpenSSL's `s_client` as a real peer. Certificates are made by
//! rcgen in each test (`tests/common/certs.rs`).

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use torsion::{
    ConnectOptions, Context, DisconnectReason, ManualClock, Protocol, Reactor, TlsOptions,
};

use common::certs::TestCa;
use common::tls::*;
use common::*;

#[test]
fn a_tls_client_and_server_echo_and_see_each_other() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, localhost_server(&ca));
    let seen = run_client(&mut reactor, addr, "localhost", trusting(&ca), b"hello", 5);
    let seen = seen.borrow();
    assert_eq!(seen.received, b"hello", "{seen:?}");
    assert!(
        seen.peer_certificate.is_some(),
        "the client sees the server's certificate"
    );
    let servers = servers.borrow();
    let server = servers[0].borrow();
    assert!(server.made);
    assert_eq!(server.sni.as_deref(), Some("localhost"));
    assert_eq!(
        server.peer_certificate, None,
        "no client certificate was asked for"
    );
}

/// Sends `total` bytes of the test pattern under flow control, checks every echoed byte,
/// then closes.
struct PatternPump {
    total: usize,
    sent: usize,
    received: usize,
    block: Vec<u8>,
    paused: bool,
    done: Rc<RefCell<Option<(usize, Reason)>>>,
}

impl PatternPump {
    fn pump(&mut self, cx: &mut Context<'_>) {
        while !self.paused && self.sent < self.total {
            let start = self.sent % PATTERN_PERIOD;
            let len = (PATTERN_PERIOD - start).min(self.total - self.sent);
            cx.write(&self.block[start..start + len]);
            self.sent += len;
            if cx.queued_bytes() > 256 * 1024 {
                break; // the rest on resume_writing, or the next turn's data_received
            }
        }
    }
}

impl Protocol for PatternPump {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.pump(cx);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if let Err(at) = check_pattern(&self.block, self.received, data) {
            panic!("echoed byte {at} differs from the byte sent");
        }
        self.received += data.len();
        if self.received == self.total {
            cx.lose_connection();
        } else {
            self.pump(cx);
        }
    }

    fn pause_writing(&mut self, _cx: &mut Context<'_>) {
        self.paused = true;
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.paused = false;
        self.pump(cx);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.done.borrow_mut() = Some((self.received, reason.into()));
    }
}

#[test]
fn sixteen_mib_each_way_through_a_tls_connection_arrive_intact() {
    const TOTAL: usize = 16 * 1024 * 1024;
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tls(any_loopback_port(), localhost_server(&ca), || Echo)
        .unwrap();
    let done = Rc::new(RefCell::new(None));
    let d = done.clone();
    let started = std::time::Instant::now();
    let pump = move || PatternPump {
        total: TOTAL,
        sent: 0,
        received: 0,
        block: pattern_block(),
        paused: false,
        done: d.clone(),
    };
    reactor.connect(port.local_addr(), pump, tls_to("localhost", &ca));
    run_until(&mut reactor, "the client to finish", || {
        done.borrow().is_some()
    });
    eprintln!("16 MiB each way over TLS took {:?}", started.elapsed());
    let (received, reason) = done.take().unwrap();
    assert_eq!(received, TOTAL, "every byte came back");
    assert_eq!(reason, Reason::Closed);
}

/// Closes when told: "close" with close_notify, "abort" abruptly.
fn close_on_command(cx: &mut Context<'_>, data: &[u8]) {
    match data {
        b"close" => cx.lose_connection(),
        b"abort" => cx.abort_connection(),
        _ => cx.write(data),
    }
}

#[test]
fn close_notify_and_an_abrupt_close_are_told_apart() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let all = shared(Vec::new());
    let a = all.clone();
    let port = reactor
        .listen_tls(any_loopback_port(), localhost_server(&ca), move || {
            let seen = shared(Seen::default());
            a.borrow_mut().push(seen.clone());
            let mut recorder = Recorder::new(&seen);
            recorder.on_data = close_on_command;
            recorder
        })
        .unwrap();
    let clean = run_client(
        &mut reactor,
        port.local_addr(),
        "localhost",
        trusting(&ca),
        b"close",
        usize::MAX,
    );
    let abrupt = run_client(
        &mut reactor,
        port.local_addr(),
        "localhost",
        trusting(&ca),
        b"abort",
        usize::MAX,
    );

    let clean = clean.borrow();
    assert!(clean.eof, "close_notify reaches the client as eof_received");
    assert_eq!(clean.lost, Some(Reason::Closed));
    let abrupt = abrupt.borrow();
    assert!(!abrupt.eof, "an abrupt close is no clean EOF");
    assert_eq!(abrupt.lost, Some(Reason::Truncated));
    run_until(&mut reactor, "both server connections to end", || {
        all.borrow().iter().all(|s| s.borrow().lost.is_some())
    });
    let all = all.borrow();
    assert_eq!(all[0].borrow().lost, Some(Reason::Closed));
    assert_eq!(all[1].borrow().lost, Some(Reason::Aborted));
}

#[test]
fn a_client_that_drops_tcp_without_close_notify_is_truncated_on_the_server() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, localhost_server(&ca));
    let seen = shared(Seen::default());
    let mut factory = client(&seen, b"bye");
    factory.0.as_mut().unwrap().on_data = |cx, _| cx.abort_connection();
    reactor.connect(addr, factory, tls_to("localhost", &ca));
    run_until(&mut reactor, "the server connection to end", || {
        servers
            .borrow()
            .first()
            .is_some_and(|s| s.borrow().lost.is_some())
    });
    let servers = servers.borrow();
    let server = servers[0].borrow();
    assert_eq!(server.lost, Some(Reason::Truncated));
    assert!(!server.eof);
}

#[test]
fn plaintext_sent_to_a_tls_port_closes_that_connection_only() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, localhost_server(&ca));
    let ((ready, is_ready), (go, gone)) = (mpsc::channel(), mpsc::channel());
    let open = patient_tls_client(addr, trusting(&ca), ready, gone);
    run_until(&mut reactor, "the TLS client's first echo", || {
        is_ready.try_recv().is_ok()
    });
    let plaintext = thread::spawn(move || {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        read_to_end(&mut stream)
    });
    let (reply, end) = run_until_joined(&mut reactor, vec![plaintext]).remove(0);
    assert!(end.is_ok(), "the plaintext connection is closed: {end:?}");
    assert!(
        !reply.windows(4).any(|w| w == b"HTTP"),
        "no plaintext answer, at most a TLS alert"
    );
    // The TLS connection opened before is untouched, and still echoes.
    go.send(()).unwrap();
    let (first, again) = run_until_joined(&mut reactor, vec![open]).remove(0);
    assert_eq!((&first[..], &again[..]), (&b"first"[..], &b"again"[..]));
    run_until(&mut reactor, "the TLS connection to close", || {
        servers.borrow()[0].borrow().lost.is_some()
    });
    let servers = servers.borrow();
    assert_eq!(servers.len(), 2, "a protocol was built for each connection");
    let (tls, plain) = (servers[0].borrow(), servers[1].borrow());
    assert_eq!(tls.received, b"firstagain");
    assert_eq!(
        tls.lost,
        Some(Reason::Closed),
        "closed by the client, cleanly"
    );
    assert!(!plain.made, "the plaintext peer was never made");
    assert_eq!(plain.lost, None, "nor lost: it was never heard of");
}

#[test]
fn a_server_drops_a_client_that_never_completes_its_handshake() {
    init_logging();
    let ca = TestCa::new("test CA");
    let clock = ManualClock::new();
    let mut reactor = Reactor::with_clock(clock.clone()).unwrap();
    let options = TlsOptions::with_handshake_timeout(Duration::from_secs(5));
    let built = shared(0);
    let b = built.clone();
    let port = reactor
        .listen_tls_with(
            any_loopback_port(),
            localhost_server(&ca),
            move || {
                *b.borrow_mut() += 1;
                Echo
            },
            options,
        )
        .unwrap();
    let mut silent = connect(port.local_addr());
    run_until(&mut reactor, "the connection to be accepted", || {
        *built.borrow() == 1
    });
    clock.advance(Duration::from_secs(5));
    reactor.iterate(Duration::ZERO).unwrap();
    let reader = thread::spawn(move || read_to_end(&mut silent));
    let (bytes, end) = run_until_joined(&mut reactor, vec![reader]).remove(0);
    assert!(
        bytes.is_empty() && end.is_ok(),
        "closed without a word: {bytes:?} {end:?}"
    );
}

#[test]
fn a_client_whose_server_never_answers_the_handshake_fails_with_a_timeout() {
    init_logging();
    let ca = TestCa::new("test CA");
    let clock = ManualClock::new();
    let mut reactor = Reactor::with_clock(clock.clone()).unwrap();
    let mute = std::net::TcpListener::bind(any_loopback_port()).unwrap();
    let seen = shared(Seen::default());
    let options = tls_to("localhost", &ca).handshake_timeout(Duration::from_secs(3));
    let addr = mute.local_addr().unwrap();
    reactor.connect(addr, client(&seen, b""), options);
    let (_held, _) = mute.accept().unwrap();
    // Let the connect complete and the ClientHello go out before time moves.
    for _ in 0..10 {
        reactor.iterate(Duration::from_millis(10)).unwrap();
    }
    clock.advance(Duration::from_secs(3));
    run_until(&mut reactor, "the failure", || {
        seen.borrow().failed.is_some()
    });
    assert_eq!(
        seen.borrow().failed_tls,
        Some(TlsErrorKind::HandshakeTimeout)
    );
}

#[test]
fn openssl_s_client_talks_to_a_tls_server() {
    if machine::require_tool("openssl", "version").is_none() {
        return;
    }
    init_logging();
    let ca = TestCa::new("test CA");
    let dir = std::env::temp_dir().join(format!("torsion-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let mut reactor = Reactor::new().unwrap();
    let mut config = localhost_server(&ca);
    config.alpn_protocols = vec![b"echo".to_vec()];
    let (addr, servers) = echo_server(&mut reactor, config);
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "openssl s_client");
    let client = thread::spawn(move || {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                "localhost",
            ])
            .args([
                "-verify_return_error",
                "-alpn",
                "echo",
                "-quiet",
                "-no_ign_eof",
            ])
            .arg("-CAfile")
            .arg(&ca_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello from openssl\n").unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut echoed = Vec::new();
        let mut buf = [0; 256];
        while !echoed.ends_with(b"\n") {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => echoed.extend_from_slice(&buf[..n]),
            }
        }
        drop(stdin); // end of input: s_client sends close_notify and exits
        let status = child.wait().unwrap();
        let _ = std::fs::remove_dir_all(ca_file.parent().unwrap());
        (echoed, status.success())
    });
    let (echoed, success) = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert_eq!(echoed, b"hello from openssl\n");
    assert!(
        success,
        "openssl s_client verified the server and exited cleanly"
    );
    run_until(&mut reactor, "the server connection to close", || {
        servers.borrow()[0].borrow().lost.is_some()
    });
    let servers = servers.borrow();
    let server = servers[0].borrow();
    assert_eq!(server.alpn.as_deref(), Some(&b"echo"[..]));
    assert!(
        server.eof,
        "openssl's close_notify reached the protocol as EOF"
    );
    assert_eq!(server.lost, Some(Reason::Closed));
}

/// Sends "ping" and half-closes; the server answers "pong" to the EOF, then closes.
struct HalfCloser {
    received: Shared<Vec<u8>>,
    lost: Shared<Option<Reason>>,
}

impl Protocol for HalfCloser {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"ping");
        cx.shutdown_write();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.received.borrow_mut().extend_from_slice(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.lost.borrow_mut() = Some(reason.into());
    }
}

/// Echoes, and on EOF writes "pong" before closing.
struct PongOnEof;

impl Protocol for PongOnEof {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        cx.write(b"pong");
        cx.lose_connection();
    }
}

#[test]
fn half_close_sends_close_notify_and_the_other_side_can_still_answer() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tls(any_loopback_port(), localhost_server(&ca), || PongOnEof)
        .unwrap();
    let (received, lost) = (shared(Vec::new()), shared(None));
    let (r, l) = (received.clone(), lost.clone());
    let half_closer = move || HalfCloser {
        received: r.clone(),
        lost: l.clone(),
    };
    reactor.connect(port.local_addr(), half_closer, tls_to("localhost", &ca));
    run_until(&mut reactor, "the client connection to end", || {
        lost.borrow().is_some()
    });
    assert_eq!(
        *received.borrow(),
        b"pingpong",
        "the answer after our EOF arrived"
    );
    assert_eq!(
        *lost.borrow(),
        Some(Reason::Closed),
        "both sides closed cleanly"
    );
}

/// More plaintext than the kernel's buffers and rustls's take while the peer does not read.
const BIG_REPLY: usize = 16 * 1024 * 1024;

/// Queues a large reply once made and records the watermark callbacks with the queue size.
struct BigReply {
    events: Shared<Vec<(&'static str, usize)>>,
}

impl Protocol for BigReply {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write_bytes(torsion::Bytes::from(vec![b'r'; BIG_REPLY]));
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn pause_writing(&mut self, cx: &mut Context<'_>) {
        self.events.borrow_mut().push(("pause", cx.queued_bytes()));
    }

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.events.borrow_mut().push(("resume", cx.queued_bytes()));
    }
}

/// Reads only when told to, counting what arrives.
struct LazyReader {
    received: Shared<usize>,
}

impl Protocol for LazyReader {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.pause_reading();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        *self.received.borrow_mut() += data.len();
    }
}

#[test]
fn watermarks_count_plaintext_and_a_paused_reader_resumes_where_it_stopped() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let events = shared(Vec::new());
    let e = events.clone();
    let port = reactor
        .listen_tls(any_loopback_port(), localhost_server(&ca), move || {
            BigReply { events: e.clone() }
        })
        .unwrap();
    let received = shared(0);
    let r = received.clone();
    let lazy = move || LazyReader {
        received: r.clone(),
    };
    let connector = reactor.connect(port.local_addr(), lazy, tls_to("localhost", &ca));
    run_until(&mut reactor, "pause_writing", || {
        !events.borrow().is_empty()
    });
    // The backlog is in the plaintext queue, not in rustls: almost all of it is still queued.
    let (_, at_pause) = events.borrow()[0];
    assert!(
        at_pause > BIG_REPLY - 8 * 1024 * 1024,
        "paused at {at_pause}"
    );
    reactor.call_later_on(connector.id(), Duration::ZERO, |_: &mut LazyReader, cx| {
        cx.resume_reading()
    });
    run_until(&mut reactor, "the whole reply", || {
        *received.borrow() == BIG_REPLY
    });
    run_until(&mut reactor, "resume_writing", || {
        events.borrow().len() == 2
    });
    let events = events.borrow();
    assert_eq!(events[0].0, "pause");
    assert_eq!(events[1].0, "resume");
    assert!(
        events[1].1 <= 16 * 1024,
        "resumed with {} queued",
        events[1].1
    );
}

#[test]
fn a_host_target_is_resolved_and_its_name_verified_by_default() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, _) = echo_server(&mut reactor, localhost_server(&ca));
    let seen = shared(Seen::default());
    // No server name: the host's is verified.
    let options = ConnectOptions::new().tls(trusting(&ca));
    reactor.connect(("localhost", addr.port()), client(&seen, b"name"), options);
    run_until(&mut reactor, "the echo", || {
        let s = seen.borrow();
        s.failed.is_some() || s.received.len() >= 4
    });
    assert_eq!(seen.borrow().received, b"name", "{:?}", seen.borrow());
}

#[test]
fn a_graceful_shutdown_ends_tls_connections_with_close_notify() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, servers) = echo_server(&mut reactor, localhost_server(&ca));
    // An external client (a thread), so that the shutdown closes the server's side alone.
    let config = trusting(&ca);
    let client = std::thread::spawn(move || {
        let mut tcp = connect(addr);
        let name = "localhost".try_into().unwrap();
        let mut conn = torsion::rustls::ClientConnection::new(config, name).unwrap();
        let mut tls = torsion::rustls::Stream::new(&mut conn, &mut tcp);
        tls.write_all(b"up").unwrap();
        let mut echo = [0; 2];
        tls.read_exact(&mut echo).unwrap();
        let mut rest = Vec::new();
        // Ok: the server's close_notify came before its FIN (a truncation would be an error).
        tls.read_to_end(&mut rest).map(|_| rest.len())
    });
    run_until(&mut reactor, "the connection to be made", || {
        servers.borrow().first().is_some_and(|s| s.borrow().made)
    });
    run_until(&mut reactor, "the echo", || {
        servers.borrow()[0].borrow().received.len() == 2
    });
    reactor.shutdown();
    let ended = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert_eq!(ended.unwrap(), 0, "a clean TLS end, nothing after the echo");
    assert_eq!(servers.borrow()[0].borrow().lost, Some(Reason::Closed));
}
