//! The example programs' command lines: `echo_server ADDR` serves, `echo_client ADDR MSG...`
//! prints each echo on its own line and exits 0, and exits non-zero with one line on stderr
//! when it cannot connect; the chat and UDP examples likewise; `http_client URL [-X METHOD]
//! [-d DATA] [-H 'Name: value']... [-L] [--timeout SECS] [-v] [--cacert PEM]` prints the body byte for byte,
//! the head on stderr with `-v`, and fails with one line on stderr. (The TLS examples and
//! `http_server --tls-cert` are in `examples_tls.rs`; finding and running the binaries is in
//! `common/examples.rs`.)
//!
//! `cargo test` builds the examples into `target/<profile>/examples/` next to the test
//! binaries; a test whose example binary is missing (e.g. under `cargo test --test examples`
//! alone, which does not build examples) is skipped with a printed reason, except under
//! `CI=true`, where it fails. So is the multicast beacon test on a machine whose loopback
//! carries no multicast (probed with plain sockets first).

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::examples::{example, run_bytes, run_to_end, run_with_input, wait_for_exit, Running};
use common::{closed_loopback_port, machine, DEADLINE};

/// Starts `echo_server` on a free loopback port and waits until it accepts connections.
fn start_echo_server(binary: &PathBuf) -> (Running, SocketAddr) {
    let addr = closed_loopback_port();
    let child = Command::new(binary)
        .arg(addr.to_string())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn echo_server");
    let mut server = Running(child);
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(addr).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("echo_server exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "echo_server never listened");
        thread::sleep(Duration::from_millis(10));
    }
    (server, addr)
}

#[test]
fn echo_client_prints_each_echo_of_echo_server_on_its_own_line() {
    let (Some(server_bin), Some(client_bin)) = (example("echo_server"), example("echo_client"))
    else {
        return;
    };
    let (_server, addr) = start_echo_server(&server_bin);

    let (status, stdout, stderr) =
        run_to_end(Command::new(client_bin).args([&addr.to_string(), "hello", "world"]));

    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, "hello\nworld\n");
}

#[test]
fn echo_client_exits_non_zero_with_one_error_line_when_refused() {
    let Some(client_bin) = example("echo_client") else {
        return;
    };
    let addr = closed_loopback_port();

    let (status, stdout, stderr) =
        run_to_end(Command::new(client_bin).args([&addr.to_string(), "hello"]));

    assert!(!status.success(), "exited {status}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr:?}");
    assert!(stderr.ends_with('\n'), "stderr: {stderr:?}");
    assert!(
        stderr.to_lowercase().contains("refused"),
        "the error says why: {stderr:?}"
    );
}

#[test]
fn every_echo_serving_example_echoes_and_exits_zero_on_sigterm() {
    let Some(client_bin) = example("echo_client") else {
        return;
    };
    for name in ["echo_server", "embed_host_loop", "embed_thread"] {
        let Some(server_bin) = example(name) else {
            continue;
        };
        let (mut server, addr) = start_echo_server(&server_bin);
        let (status, stdout, stderr) =
            run_to_end(Command::new(&client_bin).args([&addr.to_string(), "ping"]));
        assert!(status.success(), "{name}: {status}; stderr: {stderr}");
        assert_eq!(stdout, "ping\n", "{name}");

        let status = server.terminate(name);
        assert!(status.success(), "{name} exited {status} on SIGTERM, not 0");
    }
}

#[test]
fn chat_client_talks_to_chat_server_until_end_of_input_and_the_server_exits_zero_on_sigterm() {
    for client in ["chat_client", "chat_client_async"] {
        talks_until_end_of_input(client);
    }
}

/// `client` (the protocol or the async chat client) against `chat_server`.
fn talks_until_end_of_input(client: &str) {
    let (Some(server_bin), Some(client_bin)) = (example("chat_server"), example(client)) else {
        return;
    };
    // Not echo, but it serves on the ADDR argument like the echo servers do.
    let (mut server, addr) = start_echo_server(&server_bin);

    let (status, stdout, stderr) = run_with_input(
        Command::new(client_bin).arg(addr.to_string()),
        b"bob\n/who\n",
    );

    assert!(status.success(), "{client}: {status}; stderr: {stderr}");
    let greeting = torsion::protocols::chat::room::GREETING;
    assert_eq!(
        stdout,
        format!("{greeting}\nWelcome, bob!\nUsers: bob\nBye\n"),
        "{client}"
    );

    let status = server.terminate("chat_server");
    assert!(
        status.success(),
        "chat_server exited {status} on SIGTERM, not 0"
    );
}

#[test]
fn chat_client_reads_a_regular_file_as_stdin_and_finishes_its_unfinished_last_line() {
    for client in ["chat_client", "chat_client_async"] {
        reads_a_regular_file(client);
    }
}

/// `client` with a regular file as stdin, its last line unfinished.
fn reads_a_regular_file(client: &str) {
    let (Some(server_bin), Some(client_bin)) = (example("chat_server"), example(client)) else {
        return;
    };
    let (mut server, addr) = start_echo_server(&server_bin);
    let input = std::env::temp_dir().join(format!(
        "torsion-chat-input-{client}-{}",
        std::process::id()
    ));
    std::fs::write(&input, b"bob\n/who").unwrap();

    let child = Command::new(client_bin)
        .arg(addr.to_string())
        .env_remove("RUST_LOG")
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the chat client");
    let mut running = Running(child);
    let status = wait_for_exit(&mut running, "the chat client");
    let _ = std::fs::remove_file(&input);
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut running.0.stdout.take().unwrap(), &mut stdout).unwrap();

    assert!(status.success(), "{status}");
    let greeting = torsion::protocols::chat::room::GREETING;
    assert_eq!(
        stdout,
        format!("{greeting}\nWelcome, bob!\nUsers: bob\nBye\n")
    );
    server.terminate("chat_server");
}

#[test]
fn chat_client_exits_non_zero_with_one_error_line_when_refused() {
    for client in ["chat_client", "chat_client_async"] {
        exits_one_when_refused(client);
    }
}

/// `client` refused: one line on stderr saying so, exit 1.
fn exits_one_when_refused(client: &str) {
    let Some(client_bin) = example(client) else {
        return;
    };
    let addr = closed_loopback_port();

    let (status, stdout, stderr) =
        run_with_input(Command::new(client_bin).arg(addr.to_string()), b"");

    assert!(!status.success(), "exited {status}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr:?}");
    assert!(stderr.ends_with('\n'), "stderr: {stderr:?}");
    assert!(
        stderr.to_lowercase().contains("refused"),
        "the error says why: {stderr:?}"
    );
}

/// Starts a UDP example with `args` and stdout piped, killed when dropped.
fn start_udp_example(binary: &PathBuf, args: &[&str]) -> Running {
    let child = Command::new(binary)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the example");
    Running(child)
}

#[test]
fn udp_echo_sends_datagrams_back_and_exits_zero_on_sigterm() {
    let Some(binary) = example("udp_echo") else {
        return;
    };
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap();
    let mut server = start_udp_example(&binary, &[&addr.to_string()]);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // The server is up once a datagram comes back; until then datagrams are lost (or
    // refused), so keep sending.
    let deadline = Instant::now() + DEADLINE;
    let mut buf = [0u8; 64];
    let echoed = loop {
        assert!(Instant::now() < deadline, "udp_echo never answered");
        let _ = client.send_to(b"ping", addr);
        if let Ok((n, from)) = client.recv_from(&mut buf) {
            break (buf[..n].to_vec(), from);
        }
    };
    assert_eq!(echoed, (b"ping".to_vec(), addr));
    let status = server.terminate("udp_echo");
    assert!(
        status.success(),
        "udp_echo exited {status} on SIGTERM, not 0"
    );
}

#[test]
fn two_udp_beacons_on_a_group_print_each_others_beacons() {
    let Some(binary) = example("udp_beacon") else {
        return;
    };
    let group = Ipv4Addr::new(239, 255, 42, 43);
    if let Err(why) = machine::probe_loopback_multicast(group) {
        return machine::skip_or_fail(format!("no multicast over loopback here: {why}"));
    }
    // A group and port of this test's own, so other beacons on the host do not interfere.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let group = format!("{group}:{port}");
    let mut a = start_udp_example(&binary, &["--group", &group, "--name", "alpha"]);
    let mut b = start_udp_example(&binary, &["--group", &group, "--name", "beta"]);
    // Each beacon announces once a second: read alpha's output until it heard beta.
    let stdout = a.0.stdout.take().unwrap();
    let (heard, hearing) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let found = lines.any(|line| line.is_ok_and(|l| l.starts_with("beacon from beta")));
        let _ = heard.send(found);
    });
    // Plain sockets carry multicast here: the beacons must hear each other.
    let found = hearing
        .recv_timeout(DEADLINE)
        .expect("alpha printed beta's beacon within the deadline");
    assert!(found, "alpha printed beta's beacon before its output ended");
    for (beacon, name) in [(&mut a, "alpha"), (&mut b, "beta")] {
        let status = beacon.terminate(name);
        assert!(status.success(), "{name} exited {status} on SIGTERM");
    }
}

/// A body with every byte value, in a chunked response: what `http_client` must print as is.
fn binary_body() -> Vec<u8> {
    (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect()
}

#[test]
fn http_client_prints_the_body_byte_exact_and_the_head_with_v() {
    let Some(binary) = example("http_client") else {
        return;
    };
    let server = common::scripted::Scripted::start(|accept| {
        let mut stream = accept();
        common::scripted::read_request(&mut stream);
        let body = binary_body();
        let mut wire =
            b"HTTP/1.1 404 Not Found\r\nX-Test: yes\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body.chunks(10_000) {
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        stream.write_all(&wire).unwrap();
    });
    let (status, stdout, stderr) =
        run_bytes(Command::new(binary).arg(server.url("/x")).arg("-v"), b"");
    server.thread.join().unwrap();
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert!(stdout == binary_body(), "the body is printed byte for byte");
    assert!(stderr.starts_with("HTTP/1.1 404 Not Found\n"), "{stderr:?}");
    assert!(stderr.contains("x-test: yes\n"), "{stderr:?}");
}

#[test]
fn http_client_sends_method_data_and_headers() {
    let Some(binary) = example("http_client") else {
        return;
    };
    let server = common::scripted::Scripted::start(|accept| {
        let mut stream = accept();
        let request = common::scripted::read_request(&mut stream).unwrap();
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{request}",
            request.len()
        );
        stream.write_all(answer.as_bytes()).unwrap();
    });
    let (status, stdout, stderr) = run_bytes(
        Command::new(&binary).arg(server.url("/echo?q=1")).args([
            "-d",
            "hello",
            "-H",
            "X-Name: value one",
            "-H",
            "Accept: */*",
        ]),
        b"",
    );
    server.thread.join().unwrap();
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stderr, "");
    let request = String::from_utf8(stdout).unwrap();
    assert!(
        request.starts_with("POST /echo?q=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nx-name: value one\r\n"), "{request}");
    assert!(request.contains("\r\ncontent-length: 5\r\n"), "{request}");
    assert!(request.ends_with("\r\n\r\nhello"), "{request}");
}

/// Runs `http_client` with `args` and checks it fails with one line on stderr containing
/// `expected`.
fn http_client_fails(args: &[&str], expected: &str) {
    let Some(binary) = example("http_client") else {
        return;
    };
    let (status, stdout, stderr) = run_bytes(Command::new(binary).args(args), b"");
    assert!(!status.success(), "{args:?} exited {status}");
    assert!(stdout.is_empty(), "{args:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(
        stderr.to_lowercase().contains(expected),
        "{args:?}: {stderr:?} should say {expected:?}"
    );
}

#[test]
fn http_client_fails_with_one_line_for_a_bad_url_a_refused_port_and_a_timeout() {
    http_client_fails(&["http//no-colon"], "invalid url");
    http_client_fails(&["http://127.0.0.1:80/", "--bogus"], "unknown option");
    let refused = format!("http://{}/", closed_loopback_port());
    http_client_fails(&[&refused], "refused");
    let silent = common::SilentListener::new();
    let url = format!("http://{}/", silent.addr());
    let started = Instant::now();
    http_client_fails(&[&url, "--timeout", "0.3"], "timed out");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn http_client_fails_on_a_protocol_error() {
    if example("http_client").is_none() {
        return; // nobody would connect to the server below
    }
    let server = common::scripted::Scripted::once(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    http_client_fails(&[&server.url("/")], "protocol error");
    let _ = server.thread.join();
}
