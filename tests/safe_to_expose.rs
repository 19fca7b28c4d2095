//! The examples facing untrusted peers, attacked as an attacker would over loopback:
//! `udp_echo` sent datagrams that claim to come from its own port (the echo loop inetd guards
//! against) must stay silent, while still answering an ordinary client; `udp_beacon` sent a
//! beacon whose name holds an escape sequence and is too long prints it escaped and cut.
//!
//! "Stayed silent" is proved without sleeping: datagrams on one socket are read in order, so
//! once the echo of a later ordinary ping is back, the earlier forged datagram was handled.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::examples::{example, Running};
use common::{machine, DEADLINE};
use socket2::{Domain, Protocol, Socket, Type};

/// Starts `udp_echo` on a free loopback port and returns it once it answers.
fn start_udp_echo() -> Option<(Running, SocketAddr, UdpSocket)> {
    let binary = example("udp_echo")?;
    let addr = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap();
    let child = Command::new(binary)
        .arg(addr.to_string())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn udp_echo");
    let server = Running(child);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 64];
    // Until the server is up datagrams are lost, so keep sending.
    loop {
        assert!(Instant::now() < deadline, "udp_echo never answered");
        let _ = client.send_to(b"ping", addr);
        if client.recv_from(&mut buf).is_ok() {
            return Some((server, addr, client));
        }
    }
}

/// Sends a ping from `client` and waits for its echo: everything the server received before
/// it has been handled once this returns.
fn ping(client: &UdpSocket, server: SocketAddr) {
    client.send_to(b"later ping", server).unwrap();
    let mut buf = [0u8; 64];
    loop {
        let (n, from) = client.recv_from(&mut buf).expect("the echo of the ping");
        // Stray echoes of the start-up pings may come first.
        if from == server && &buf[..n] == b"later ping" {
            return;
        }
    }
}

fn assert_nothing_arrived(socket: &UdpSocket, what: &str) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    match socket.recv_from(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("udp_echo answered {what}: {other:?}"),
    }
}

#[test]
fn udp_echo_ignores_a_datagram_from_its_own_port_on_another_loopback_address() {
    let Some((server, addr, client)) = start_udp_echo() else {
        return;
    };
    // 127.0.0.2 is loopback too: a socket there may hold the server's port number.
    let spoofer = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), addr.port())).unwrap();
    spoofer.send_to(b"loop forever", addr).unwrap();
    ping(&client, addr);
    assert_nothing_arrived(&spoofer, "a datagram from its own port");
    drop(server);
}

#[test]
fn udp_echo_ignores_a_datagram_from_a_chargen_port() {
    let Some((server, addr, client)) = start_udp_echo() else {
        return;
    };
    // Port 19 is privileged: only a test run as root (as CI is) can hold it.
    let chargen = match UdpSocket::bind("127.0.0.3:19") {
        Ok(socket) => socket,
        Err(e) => return eprintln!("skipped: cannot bind 127.0.0.3:19 without root: {e}"),
    };
    chargen.send_to(b"chargen output", addr).unwrap();
    ping(&client, addr);
    assert_nothing_arrived(&chargen, "a datagram from the chargen port");
    drop(server);
}

/// A UDP packet from `port` to `port`, checksum 0 (none, allowed over IPv4).
fn udp_packet(port: u16, payload: &[u8]) -> Vec<u8> {
    let length = u16::try_from(8 + payload.len()).unwrap();
    let mut packet = Vec::new();
    for field in [port, port, length, 0] {
        packet.extend_from_slice(&field.to_be_bytes());
    }
    packet.extend_from_slice(payload);
    packet
}

/// How many UDP packets from `port` to `port` the raw socket saw (IPv4 header first).
fn count_self_addressed(sniffer: &Socket, port: u16) -> usize {
    let mut count = 0;
    let mut bytes = [0u8; 2048];
    while let Ok(n) = (&*sniffer).read(&mut bytes) {
        assert!(n >= 28, "an IPv4 header and a UDP header: {n} bytes");
        let header = usize::from(bytes[0] & 0x0f) * 4;
        let source = u16::from_be_bytes([bytes[header], bytes[header + 1]]);
        let destination = u16::from_be_bytes([bytes[header + 2], bytes[header + 3]]);
        count += usize::from(source == port && destination == port);
    }
    count
}

#[test]
fn udp_echo_does_not_answer_a_forged_datagram_from_its_own_address() {
    // A raw socket writes the UDP header itself, so the datagram really comes "from"
    // 127.0.0.1:PORT, the server's own address. It needs CAP_NET_RAW (root).
    let raw = || Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP));
    let (forger, sniffer) = match (raw(), raw()) {
        (Ok(forger), Ok(sniffer)) => (forger, sniffer),
        (Err(e), _) | (_, Err(e)) => {
            return eprintln!("skipped: no raw socket without CAP_NET_RAW: {e}");
        }
    };
    let Some((server, addr, client)) = start_udp_echo() else {
        return;
    };
    sniffer.set_nonblocking(true).unwrap();
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    forger
        .send_to(&udp_packet(addr.port(), b"echo me to myself"), &to.into())
        .unwrap();
    ping(&client, addr);
    // The forged datagram, seen once as it arrived; an echo would have been a second (and a
    // third, and so on: the server answering itself for ever).
    assert_eq!(count_self_addressed(&sniffer, addr.port()), 1);
    drop(server);
}

#[test]
fn udp_beacon_prints_a_hostile_name_escaped_and_cut_to_64_characters() {
    let Some(binary) = example("udp_beacon") else {
        return;
    };
    let group = Ipv4Addr::new(239, 255, 42, 44);
    if let Err(why) = machine::probe_loopback_multicast(group) {
        return machine::skip_or_fail(format!("no multicast over loopback here: {why}"));
    }
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let child = Command::new(binary)
        .args(["--group", &format!("{group}:{port}"), "--name", "alpha"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn udp_beacon");
    let mut beacon = Running(child);
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = beacon.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first = lines.recv_timeout(DEADLINE).expect("the announcing line");
    assert!(first.starts_with("announcing as"), "{first:?}");
    // It has joined the group once it announces: a hostile beacon now reaches it.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&sender)
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap();
    let hostile = format!("torsion-beacon \x1b[2J\r{}", "y".repeat(500));
    sender.send_to(hostile.as_bytes(), (group, port)).unwrap();
    let printed = lines
        .recv_timeout(DEADLINE)
        .expect("the hostile beacon printed");
    let name = format!("^[[2J^M{}…", "y".repeat(56));
    assert_eq!(name.chars().count(), 64);
    let from = sender.local_addr().unwrap();
    assert_eq!(printed, format!("beacon from {name} at {from}"));
    let status = beacon.terminate("udp_beacon");
    assert!(status.success(), "udp_beacon exited {status} on SIGTERM");
}
