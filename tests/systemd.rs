//! Socket activation: `echo_server` takes the listening socket systemd passes it
//! (`systemd:domain=INET:index=0`, or by `name=`), started by `systemd-socket-activate`
//! (Debian's `systemd` package), which binds the port and starts the server on the first
//! connection; a server not socket-activated refuses the endpoint, naming what is missing.
//! `systemd-socket-activate` missing: skipped outside CI, failed under `CI=true`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::examples::{example, run_to_end, Running};
use common::machine::require_tool;
use common::{CLIENT_TIMEOUT, DEADLINE};

const ACTIVATE: &str = "systemd-socket-activate";

/// Connects to `addr` once something listens there (the launcher binds it right after it
/// starts).
fn connect_when_listening(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
                return stream;
            }
            Err(e) => assert!(Instant::now() < deadline, "nothing listens on {addr}: {e}"),
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `echo_server ENDPOINT` under `systemd-socket-activate` with `launcher_args`, then
/// checks a client's line comes back through the passed socket, and that the server said
/// it listens on the launcher's address.
fn echo_through_a_passed_socket(launcher_args: &[&str], endpoint: &str) {
    if require_tool(ACTIVATE, "--version").is_none() {
        return;
    }
    let Some(echo_server) = example("echo_server") else {
        return;
    };
    let addr = common::closed_loopback_port();
    let child = Command::new(ACTIVATE)
        .arg(format!("--listen={addr}"))
        .args(launcher_args)
        .arg(echo_server)
        .arg(endpoint)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn systemd-socket-activate");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let mut client = connect_when_listening(addr);
    client.write_all(b"hello through systemd\n").unwrap();
    let mut back = [0; 22];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello through systemd\n");
    let mut said = String::new();
    BufReader::new(stdout).read_line(&mut said).unwrap();
    assert_eq!(said.trim(), format!("echo server listening on {addr}"));
    let status = running.terminate("echo_server under systemd-socket-activate");
    assert!(status.success(), "{status}");
}

#[test]
fn echo_server_serves_the_socket_systemd_passes_by_index() {
    echo_through_a_passed_socket(&[], "systemd:domain=INET:index=0");
}

#[test]
fn echo_server_serves_the_socket_systemd_passes_by_name() {
    echo_through_a_passed_socket(&["--fdname=echo"], "systemd:domain=INET:name=echo");
}

#[test]
fn a_server_not_socket_activated_refuses_a_systemd_endpoint_naming_why() {
    let Some(echo_server) = example("echo_server") else {
        return;
    };
    let mut command = Command::new(echo_server);
    command
        .arg("systemd:domain=INET:index=0")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID");
    let (status, _, stderr) = run_to_end(&mut command);
    assert!(!status.success());
    assert!(stderr.contains("LISTEN_FDS is not set"), "{stderr}");
    let mut command = Command::new(example("echo_server").unwrap());
    command
        .arg("systemd:domain=INET:index=0")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1");
    let (status, _, stderr) = run_to_end(&mut command);
    assert!(!status.success());
    assert!(
        stderr.contains("LISTEN_PID is \"1\", not this process"),
        "{stderr}"
    );
}
