//! The TLS stage driven in memory (the test harness's peer beneath it, a rustls client on
//! the test's side): a STARTTLS upgrade with the ClientHello cut at every point between the
//! command's read and the next, and every record fed in every chunk size from one byte.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConnection, ServerConfig};

use crate::stream::Stream;
use crate::testing::Harness;
use crate::tls::stage::TlsStream;
use crate::tls::{self, ClientAuth, Identity};
use crate::{Context, Protocol};

fn server_config() -> Arc<ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let identity = Identity::new(
        vec![certified.cert.der().clone()],
        PrivateKeyDer::Pkcs8(key),
    );
    Arc::new(tls::server_config(identity, ClientAuth::None).unwrap())
}

fn client() -> ClientConnection {
    // Verification is the integration tests' subject (tests/tls_auth.rs); here, the plumbing.
    let config = tls::dangerous_client_config_accepting_any_server_certificate().unwrap();
    ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap()
}

/// A line protocol that answers "OK" to its first line and upgrades to TLS, handing back what
/// followed the line; then echoes.
struct Upgrader {
    config: Arc<ServerConfig>,
    buffer: Vec<u8>,
    upgraded: bool,
    /// Once upgraded: pause reading at the first data (answering "paused"), resume a second
    /// later, and keep what comes instead of echoing it.
    pause: bool,
    received: Vec<u8>,
    /// Pause reading (answering "paused") when the handshake completes, resume a second later.
    pause_at_handshake: bool,
}

impl Protocol for Upgrader {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if cx.is_tls() && self.pause {
            if self.received.is_empty() {
                cx.pause_reading();
                cx.write(b"paused");
                cx.call_later(Duration::from_secs(1), |_: &mut Upgrader, cx| {
                    cx.resume_reading()
                });
            }
            return self.received.extend_from_slice(data);
        }
        if cx.is_tls() {
            return cx.write(data);
        }
        self.buffer.extend_from_slice(data);
        if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
            let rest = self.buffer.split_off(end + 2);
            cx.write(b"OK\r\n");
            cx.start_tls_server(self.config.clone(), &rest).unwrap();
        }
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        self.upgraded = true;
        if self.pause_at_handshake {
            cx.pause_reading();
            cx.write(b"paused");
            cx.call_later(Duration::from_secs(1), |_: &mut Upgrader, cx| {
                cx.resume_reading()
            });
        }
    }
}

/// Everything the client wants to send.
fn client_output(client: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut out).unwrap();
    }
    out
}

/// Hands the client what the server wrote.
fn to_client(client: &mut ClientConnection, mut data: &[u8]) {
    while !data.is_empty() {
        client.read_tls(&mut data).unwrap();
        client.process_new_packets().unwrap();
    }
}

/// Runs the handshake and one echo, the client's bytes fed `chunk` at a time.
fn handshake_and_echo(h: &mut Harness<Upgrader>, client: &mut ClientConnection, chunk: usize) {
    for _ in 0..10 {
        for piece in client_output(client).chunks(chunk) {
            h.feed(piece);
        }
        let written = h.take_written();
        to_client(client, &written);
        if !client.is_handshaking() && h.protocol().upgraded {
            break;
        }
    }
    assert!(
        h.protocol().upgraded,
        "handshake incomplete with chunks of {chunk}"
    );
    client.writer().write_all(b"hello over TLS").unwrap();
    for piece in client_output(client).chunks(chunk) {
        h.feed(piece);
    }
    let written = h.take_written();
    to_client(client, &written);
    let mut echo = [0; 14];
    client.reader().read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"hello over TLS", "chunks of {chunk}");
}

fn upgrader() -> Harness<Upgrader> {
    Harness::new(Upgrader {
        config: server_config(),
        buffer: Vec::new(),
        upgraded: false,
        pause: false,
        received: Vec::new(),
        pause_at_handshake: false,
    })
}

#[test]
fn the_client_hello_cut_anywhere_after_the_command_is_neither_lost_nor_misread() {
    let hello_len = client_output(&mut client()).len();
    for cut in 0..=hello_len {
        let mut h = upgrader();
        let mut client = client();
        let hello = client_output(&mut client);
        let mut first = b"STARTTLS\r\n".to_vec();
        first.extend_from_slice(&hello[..cut]);
        h.feed(&first);
        h.feed(&hello[cut..]);
        let written = h.take_written();
        assert_eq!(
            &written[..4],
            b"OK\r\n",
            "the answer leaves in plaintext, first"
        );
        to_client(&mut client, &written[4..]);
        handshake_and_echo(&mut h, &mut client, usize::MAX);
    }
}

#[test]
fn records_fed_in_every_chunk_size_decrypt_the_same() {
    for chunk in [1, 2, 3, 5, 64, 1000, usize::MAX] {
        let mut h = upgrader();
        h.feed(b"STARTTLS\r\n");
        assert_eq!(h.take_written(), b"OK\r\n");
        handshake_and_echo(&mut h, &mut client(), chunk);
    }
}

#[test]
fn a_peer_that_is_not_tls_ends_the_connection_with_the_reason() {
    let mut h = upgrader();
    h.feed(b"STARTTLS\r\nGET / HTTP/1.1\r\n\r\n");
    assert!(h.is_closed());
    let reason = h.close_reason().unwrap().to_string();
    assert!(reason.contains("does not speak TLS"), "{reason}");
}

/// The stage of the harness's connection.
fn stage<P: Protocol>(h: &mut Harness<P>) -> &TlsStream {
    let key = h.connection().id().0;
    let conn = h.test_reactor().reactor().connections().get(key).unwrap();
    conn.stream.tls().unwrap()
}

#[test]
fn an_idle_tls_connection_holds_no_ciphertext_buffer() {
    let mut h = upgrader();
    h.feed(b"STARTTLS\r\n");
    h.take_written();
    handshake_and_echo(&mut h, &mut client(), usize::MAX);
    assert_eq!(stage(&mut h).buffered_capacity(), 0);
}

#[test]
fn a_paused_reader_keeps_the_ciphertext_and_its_writes_still_go_out() {
    let mut h = upgrader();
    h.feed(b"STARTTLS\r\n");
    h.take_written();
    let mut client = client();
    handshake_and_echo(&mut h, &mut client, usize::MAX);
    h.protocol_mut().pause = true;
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut records = Vec::new();
    for piece in sent.chunks(16 * 1024) {
        client.writer().write_all(piece).unwrap();
        records.extend(client_output(&mut client));
    }
    h.feed(&records);
    let first = h.protocol().received.len();
    assert!(
        first > 0 && first < sent.len(),
        "{first} bytes before the pause"
    );
    assert!(
        stage(&mut h).has_handed_back(),
        "the rest waits, undecrypted"
    );
    // Written while paused, with complete records still waiting: encrypted and sent.
    to_client(&mut client, &h.take_written());
    let mut answer = [0; 6];
    client.reader().read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"paused");
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.protocol().received,
        sent,
        "everything, in order, after the resume"
    );
    assert_eq!(stage(&mut h).buffered_capacity(), 0);
}

/// A server whose certificate (a thousand names) makes a Certificate message of about 30 KiB:
/// more than one record, so the client joins it across records.
fn big_certificate_server() -> rustls::ServerConnection {
    let names: Vec<String> = (0..1000).map(|i| format!("host-{i:04}.example")).collect();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let identity = Identity::new(
        vec![certified.cert.der().clone()],
        PrivateKeyDer::Pkcs8(key),
    );
    let config = tls::server_config(identity, ClientAuth::None).unwrap();
    rustls::ServerConnection::new(Arc::new(config)).unwrap()
}

/// Upgrades to TLS as the client as soon as it is connected, then keeps what it receives.
/// Until the handshake completes it writes an "x" every 100 ms (a handshake may take 10 s): each makes the reactor
/// flush the stage mid-handshake (the bytes wait in the queue for the handshake's end).
#[derive(Default)]
struct TlsClient {
    upgraded: bool,
    received: Vec<u8>,
    ticks: usize,
}

impl TlsClient {
    fn tick(&mut self, cx: &mut Context<'_>) {
        if !self.upgraded {
            self.ticks += 1;
            cx.write(b"x");
            cx.call_later(Duration::from_millis(100), TlsClient::tick);
        }
    }
}

impl Protocol for TlsClient {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let config = tls::dangerous_client_config_accepting_any_server_certificate().unwrap();
        cx.start_tls_client(config, "host-0000.example").unwrap();
        cx.call_later(Duration::from_millis(100), TlsClient::tick);
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.received.extend_from_slice(data);
    }

    fn tls_handshake_completed(&mut self, cx: &mut Context<'_>) {
        self.upgraded = true;
        cx.write(b"from the client");
    }
}

/// Everything `server` wants to send.
fn server_output(server: &mut rustls::ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut out).unwrap();
    }
    out
}

#[test]
fn a_handshake_message_over_several_records_survives_the_flushes_between_its_pieces() {
    for chunk in [300, 5000, 17_000] {
        let mut h = Harness::new(TlsClient::default());
        let mut server = big_certificate_server();
        let hello = h.take_written();
        server.read_tls(&mut &hello[..]).unwrap();
        server.process_new_packets().unwrap();
        let flight = server_output(&mut server);
        assert!(flight.len() > 17_000, "{} bytes", flight.len());
        for piece in flight.chunks(chunk) {
            h.feed(piece);
            h.advance(Duration::from_millis(100)); // a write, so a flush, between the pieces
        }
        assert!(h.protocol().upgraded, "chunks of {chunk}");
        let answer = h.take_written();
        server.read_tls(&mut &answer[..]).unwrap();
        server.process_new_packets().unwrap();
        assert!(!server.is_handshaking(), "chunks of {chunk}");
        let mut expected = vec![b'x'; h.protocol().ticks];
        expected.extend_from_slice(b"from the client");
        let mut got = vec![0; expected.len()];
        server.reader().read_exact(&mut got).unwrap();
        assert_eq!(got, expected, "chunks of {chunk}");
        server.writer().write_all(b"from the server").unwrap();
        h.feed(&server_output(&mut server));
        assert_eq!(
            h.protocol().received,
            b"from the server",
            "chunks of {chunk}"
        );
    }
}

#[test]
fn data_with_the_handshakes_end_waits_for_a_reader_paused_there_and_writes_go_out_meanwhile() {
    let mut h = upgrader();
    h.protocol_mut().pause_at_handshake = true;
    h.feed(b"STARTTLS\r\n");
    h.take_written();
    let mut client = client();
    h.feed(&client_output(&mut client));
    to_client(&mut client, &h.take_written());
    assert!(!client.is_handshaking());
    client.writer().write_all(b"right behind Finished").unwrap();
    h.feed(&client_output(&mut client)); // the client's Finished and the data, in one read
    assert!(h.protocol().upgraded);
    to_client(&mut client, &h.take_written());
    let mut answer = [0; 6];
    client.reader().read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"paused", "written while the data waits");
    h.advance(Duration::from_secs(1));
    to_client(&mut client, &h.take_written());
    let mut echo = [0; 21];
    client.reader().read_exact(&mut echo).unwrap();
    assert_eq!(
        &echo, b"right behind Finished",
        "delivered after the resume"
    );
}
