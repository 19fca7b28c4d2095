//! STARTTLS over loopback: a plaintext exchange, then an upgrade in place; the client's
//! ClientHello in the same segment as its STARTTLS command is handed back to TLS, not lost;
//! `start_tls_client` and `start_tls_server` between two torsion protocols; a failed STARTTLS
//! handshake reaches the protocol in `connection_lost`.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use torsion::{ConnectOptions, Context, DisconnectReason, Protocol, Reactor};

use common::certs::TestCa;
use common::tls::*;
use common::*;

/// A plaintext line echo with a STARTTLS command: "STARTTLS\r\n" is answered "OK\r\n" in
/// plaintext, then the connection switches to TLS, handing back whatever followed the
/// command in the same read (the client's ClientHello, if it did not wait for the OK).
struct StartTlsServer {
    config: Arc<torsion::rustls::ServerConfig>,
    buffer: Vec<u8>,
    seen: Shared<Seen>,
}

impl Protocol for StartTlsServer {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if cx.is_tls() {
            self.seen.borrow_mut().received.extend_from_slice(data);
            return cx.write(data);
        }
        self.buffer.extend_from_slice(data);
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.buffer.drain(..end + 2).collect();
            if line == b"STARTTLS\r\n" {
                cx.write(b"OK\r\n");
                let rest = std::mem::take(&mut self.buffer);
                self.seen.borrow_mut().handed_back = rest.len();
                cx.start_tls_server(self.config.clone(), &rest).unwrap();
                return;
            }
            cx.write(&line);
        }
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        let mut seen = self.seen.borrow_mut();
        seen.handshake_completed = true;
        seen.sni = cx.sni_name().map(str::to_string);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.seen.borrow_mut().lost = Some(reason.into());
    }
}

fn starttls_server(reactor: &mut Reactor, ca: &TestCa) -> (SocketAddr, Shared<Seen>) {
    let config = Arc::new(localhost_server(ca));
    let seen = shared(Seen::default());
    let s = seen.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || StartTlsServer {
            config: config.clone(),
            buffer: Vec::new(),
            seen: s.clone(),
        })
        .unwrap();
    (port.local_addr(), seen)
}

#[test]
fn start_tls_with_the_client_hello_in_the_same_segment_as_the_command() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, server) = starttls_server(&mut reactor, &ca);
    let config = trusting(&ca);
    let client = thread::spawn(move || {
        let mut tcp = connect(addr);
        assert_eq!(round_trip(&mut tcp, b"PLAIN\r\n"), b"PLAIN\r\n");
        let name = "localhost".try_into().unwrap();
        let mut conn = torsion::rustls::ClientConnection::new(config, name).unwrap();
        let mut command = b"STARTTLS\r\n".to_vec();
        conn.write_tls(&mut command).unwrap(); // the ClientHello, right behind the command
        tcp.write_all(&command).unwrap();
        assert_eq!(
            read_exact(&mut tcp, 4),
            b"OK\r\n",
            "the answer is plaintext"
        );
        let mut tls = torsion::rustls::Stream::new(&mut conn, &mut tcp);
        tls.write_all(b"secret").unwrap();
        let mut echo = [0; 6];
        tls.read_exact(&mut echo).unwrap();
        conn.send_close_notify();
        conn.write_tls(&mut tcp).unwrap();
        echo
    });
    let echo = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert_eq!(&echo, b"secret");
    run_until(&mut reactor, "the server connection to close", || {
        server.borrow().lost.is_some()
    });
    let server = server.borrow();
    assert!(server.handshake_completed);
    assert!(
        server.handed_back > 0,
        "the ClientHello came in the command's read"
    );
    assert_eq!(server.sni.as_deref(), Some("localhost"));
    assert_eq!(
        server.lost,
        Some(Reason::Closed),
        "close_notify, then a clean close"
    );
    assert_eq!(
        server.received, b"secret",
        "over TLS the protocol got the secret alone: the ClientHello handed back was not data"
    );
}

/// A plaintext client that asks for STARTTLS, upgrades on "OK", then sends a secret over TLS
/// and closes when it comes back.
struct StartTlsClient {
    config: Arc<torsion::rustls::ClientConfig>,
    received: Vec<u8>,
    seen: Shared<Seen>,
}

impl Protocol for StartTlsClient {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"PLAIN\r\n");
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.received.extend_from_slice(data);
        match &self.received[..] {
            b"PLAIN\r\n" => cx.write(b"STARTTLS\r\n"),
            b"PLAIN\r\nOK\r\n" => cx
                .start_tls_client(self.config.clone(), "localhost")
                .unwrap(),
            b"PLAIN\r\nOK\r\nsecret" => cx.lose_connection(),
            _ => {}
        }
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        self.seen.borrow_mut().handshake_completed = true;
        self.seen.borrow_mut().peer_certificate =
            cx.peer_certificates().and_then(|c| c.first().cloned());
        cx.write(b"secret");
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        let mut seen = self.seen.borrow_mut();
        seen.received = self.received.clone();
        seen.lost = Some(reason.into());
    }
}

#[test]
fn start_tls_client_and_server_after_a_plaintext_exchange() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, server) = starttls_server(&mut reactor, &ca);
    let seen = shared(Seen::default());
    let s = seen.clone();
    let config = trusting(&ca);
    let client = move || StartTlsClient {
        config: config.clone(),
        received: Vec::new(),
        seen: s.clone(),
    };
    reactor.connect(addr, client, ConnectOptions::new());
    run_until(&mut reactor, "both ends to close", || {
        seen.borrow().lost.is_some() && server.borrow().lost.is_some()
    });
    let seen = seen.borrow();
    assert_eq!(seen.received, b"PLAIN\r\nOK\r\nsecret");
    assert!(seen.handshake_completed && seen.peer_certificate.is_some());
    assert_eq!(seen.lost, Some(Reason::Closed));
    assert_eq!(server.borrow().lost, Some(Reason::Closed));
    assert!(server.borrow().handshake_completed);
}

#[test]
fn a_failed_start_tls_handshake_reaches_the_protocol_in_connection_lost() {
    init_logging();
    let ca = TestCa::new("test CA");
    let mut reactor = Reactor::new().unwrap();
    let (addr, server) = starttls_server(&mut reactor, &ca);
    let client = thread::spawn(move || {
        let mut tcp = connect(addr);
        tcp.write_all(b"STARTTLS\r\n").unwrap();
        assert_eq!(read_exact(&mut tcp, 4), b"OK\r\n");
        tcp.write_all(b"but no TLS after all\r\n").unwrap();
        read_to_end(&mut tcp)
    });
    let (_, end) = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert!(end.is_ok(), "the server closed the connection: {end:?}");
    run_until(&mut reactor, "the server protocol to hear it", || {
        server.borrow().lost.is_some()
    });
    let server = server.borrow();
    assert!(!server.handshake_completed);
    assert_eq!(
        server.lost,
        Some(Reason::Tls(torsion::TlsError::NotTls.to_string())),
        "the protocol made before STARTTLS hears why its handshake failed"
    );
}
