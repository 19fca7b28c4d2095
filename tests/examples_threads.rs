//! The per-connection example servers with `--threads 2` (before or after their positional
//! arguments): they serve many connections (or datagrams) and exit 0 on SIGTERM, every
//! reactor shut down. Missing example binaries skip as in `examples.rs`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::examples::{example, run_to_end, Running};
use common::DEADLINE;

/// Starts `binary` with `args` and reads stdout up to its `listening on ADDR` line (or
/// `udp echo on ADDR`); returns the server, the address and a `certificate: ` path if any.
fn start(binary: &Path, args: &[&str]) -> (Running, SocketAddr, Option<String>) {
    let mut child = Command::new(binary)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the example");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let running = Running(child);
    let mut certificate = None;
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "{} ended before listening", binary.display());
        let line = line.trim_end();
        if let Some(path) = line.strip_prefix("certificate: ") {
            certificate = Some(path.to_string());
        } else if let Some((_, rest)) = line
            .split_once(" listening on ")
            .or_else(|| line.split_once("udp echo on "))
        {
            let addr = rest.split(',').next().unwrap().parse().expect("an address");
            return (running, addr, certificate);
        }
    }
}

fn echo_round_trips(addr: SocketAddr, connections: usize) {
    let mut streams: Vec<TcpStream> = (0..connections)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let message = format!("message {i}\n");
        stream.write_all(message.as_bytes()).unwrap();
        let mut echoed = vec![0; message.len()];
        stream.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, message.as_bytes());
    }
}

#[test]
fn echo_server_with_threads_before_its_endpoint_serves_and_exits_zero_on_sigterm() {
    let Some(binary) = example("echo_server") else {
        return;
    };
    let (mut server, addr, _) = start(&binary, &["--threads", "2", "tcp:0:interface=127.0.0.1"]);
    echo_round_trips(addr, 32);
    let status = server.terminate("echo_server");
    assert!(status.success(), "echo_server exited {status} on SIGTERM");
}

#[test]
fn http_server_with_threads_after_its_arguments_serves_and_exits_zero_on_sigterm() {
    let Some(binary) = example("http_server") else {
        return;
    };
    let dir = env!("CARGO_MANIFEST_DIR");
    let (mut server, addr, _) = start(&binary, &["127.0.0.1:0", dir, "--threads", "2"]);
    for _ in 0..32 {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let request = "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("Hello, World!"), "{response}");
    }
    let status = server.terminate("http_server");
    assert!(status.success(), "http_server exited {status} on SIGTERM");
}

#[test]
fn tls_echo_server_with_threads_serves_and_removes_its_certificate_on_sigterm() {
    let (Some(server_bin), Some(client_bin)) =
        (example("tls_echo_server"), example("tls_echo_client"))
    else {
        return;
    };
    let (mut server, addr, cert) = start(&server_bin, &["127.0.0.1:0", "--threads", "2"]);
    let cert = cert.expect("a `certificate: PATH` line");
    for i in 0..6 {
        let message = format!("hello {i}");
        let args = [&addr.to_string(), "--cafile", &cert, &message];
        let (status, stdout, stderr) = run_to_end(Command::new(&client_bin).args(args));
        assert!(status.success(), "{status}; stderr: {stderr}");
        assert_eq!(stdout, format!("{message}\n"));
    }
    let status = server.terminate("tls_echo_server");
    assert!(
        status.success(),
        "tls_echo_server exited {status} on SIGTERM"
    );
    assert!(!Path::new(&cert).exists(), "{cert} is removed on exit");
}

#[test]
fn udp_echo_with_threads_answers_every_peer_and_exits_zero_on_sigterm() {
    let Some(binary) = example("udp_echo") else {
        return;
    };
    let (mut server, addr, _) = start(&binary, &["--threads", "2", "127.0.0.1:0"]);
    // Each peer's datagrams reach one of the two sockets; eight peers from distinct ports.
    for i in 0..8 {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let message = format!("ping {i}");
        let deadline = Instant::now() + DEADLINE;
        let mut buf = [0u8; 64];
        // The sockets are bound before the address is printed, but a datagram may still
        // be lost on loopback under pressure: resend until answered.
        let (n, from) = loop {
            assert!(
                Instant::now() < deadline,
                "udp_echo never answered peer {i}"
            );
            client.send_to(message.as_bytes(), addr).unwrap();
            if let Ok(got) = client.recv_from(&mut buf) {
                break got;
            }
        };
        assert_eq!((&buf[..n], from), (message.as_bytes(), addr));
    }
    let status = server.terminate("udp_echo");
    assert!(status.success(), "udp_echo exited {status} on SIGTERM");
}

#[test]
fn a_bad_thread_count_exits_2_naming_the_option() {
    for name in ["echo_server", "http_server", "tls_echo_server", "udp_echo"] {
        let Some(binary) = example(name) else {
            continue;
        };
        for bad in [
            &["--threads", "0"][..],
            &["--threads", "two"],
            &["--threads"],
        ] {
            let (status, stdout, stderr) = run_to_end(Command::new(&binary).args(bad));
            assert_eq!(status.code(), Some(2), "{name} {bad:?}: {stdout}{stderr}");
            assert!(stderr.contains("--threads"), "{name} {bad:?}: {stderr}");
        }
    }
}
