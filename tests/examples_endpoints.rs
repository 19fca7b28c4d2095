//! The example programs started with endpoint strings: the servers listen on `tcp:`, `tls:`
//! and `unix:` strings (and a bad string exits 2 naming the bad part), the clients connect to
//! `tcp:`, `tls:` and host-name strings. (Plain `HOST:PORT` arguments are exercised by
//! `examples.rs` and `examples_tls.rs`, unchanged.) Binaries are found, or the test skipped
//! outside CI, as in `common/examples.rs`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;

use common::certs::TestCa;
use common::examples::{example, run_to_end, run_with_input, Running};
use common::servers;
use common::CLIENT_TIMEOUT;

/// Starts server example `name` with `args` and waits for its `... listening on ADDR` line;
/// returns it running and the address it printed.
fn start_server(name: &str, args: &[&str]) -> Option<(Running, SocketAddr)> {
    let (running, printed) = start_server_printing(name, args)?;
    Some((running, printed.parse().expect("an address")))
}

/// As [`start_server`], returning the address as printed (a UNIX socket's path or `@name`).
fn start_server_printing(name: &str, args: &[&str]) -> Option<(Running, String)> {
    servers::start_server(name, args, None)
}

/// Runs `echo_client TARGET WORDS...` and checks it printed each word back on its own line;
/// false if the client is not built (the test is skipped, or fails under CI, by `example`).
fn echo_client_echoes(target: &str, words: &[&str]) -> bool {
    let Some(client) = example("echo_client") else {
        return false;
    };
    let (status, stdout, stderr) = run_to_end(Command::new(client).arg(target).args(words));
    assert!(status.success(), "{target}: {status}; stderr: {stderr}");
    let expected: String = words.iter().map(|w| format!("{w}\n")).collect();
    assert_eq!(stdout, expected, "{target}");
    true
}

/// Runs `chat_client TARGET`, joins as bob and asks `/who`; false if the client is not built.
fn chat_client_joins(target: &str) -> bool {
    let Some(client) = example("chat_client") else {
        return false;
    };
    let (status, stdout, stderr) = run_with_input(Command::new(client).arg(target), b"bob\n/who\n");
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert!(stdout.contains("Welcome, bob!\nUsers: bob\n"), "{stdout}");
    true
}

/// PEM files in a directory removed when dropped: a CA (`ca.pem`), and a server certificate
/// for localhost and 127.0.0.1 it issued (`cert.pem`, `key.pem`).
struct Pems(PathBuf);

impl Pems {
    fn new(name: &str) -> Pems {
        let dir = std::env::temp_dir().join(format!(
            "torsion-examples-endpoints-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::new("examples endpoints CA");
        let issued = ca.issue(&["localhost", "127.0.0.1"]);
        std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
        std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &issued.key_pem).unwrap();
        Pems(dir)
    }

    /// The file `name` here, as endpoint-string text (colons escaped).
    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string().replace(':', r"\:")
    }
}

impl Drop for Pems {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn echo_server_listens_on_a_tcp_string_and_echo_client_connects_with_one() {
    let Some((mut server, addr)) =
        start_server("echo_server", &["tcp:0:interface=127.0.0.1:backlog=16"])
    else {
        return;
    };
    assert!(addr.ip().is_loopback());
    for target in [
        format!("tcp:host=127.0.0.1:port={}:timeout=5", addr.port()),
        format!("localhost:{}", addr.port()),
        addr.to_string(),
    ] {
        if !echo_client_echoes(&target, &["hello", "world"]) {
            return;
        }
    }
    assert!(server.terminate("echo_server").success());
}

#[test]
fn chat_server_and_chat_client_take_endpoint_strings() {
    let Some((mut server, addr)) = start_server("chat_server", &["tcp:0:interface=127.0.0.1"])
    else {
        return;
    };
    if !chat_client_joins(&format!("tcp:host=127.0.0.1:port={}", addr.port())) {
        return;
    }
    assert!(server.terminate("chat_server").success());
}

#[test]
fn tls_echo_server_listens_on_a_tls_string_and_tls_echo_client_trusts_its_roots_from_one() {
    let pems = Pems::new("tls-echo");
    let endpoint = format!(
        "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
        pems.file("cert.pem"),
        pems.file("key.pem")
    );
    let Some((mut server, addr)) = start_server("tls_echo_server", &[&endpoint]) else {
        return;
    };
    let Some(client) = example("tls_echo_client") else {
        return;
    };
    let target = format!(
        "tls:host=localhost:port={}:trustRoots={}",
        addr.port(),
        pems.file("ca.pem")
    );
    let (status, stdout, stderr) = run_to_end(Command::new(client).args([&target, "hi", "there"]));
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, "hi\nthere\n");
    assert!(server.terminate("tls_echo_server").success());
}

#[test]
fn http_server_listens_on_a_tcp_string() {
    let dir = std::env::temp_dir().display().to_string();
    let Some((mut server, addr)) =
        start_server("http_server", &["tcp:0:interface=127.0.0.1", &dir])
    else {
        return;
    };
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let request = b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(request).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("Hello, World!"), "{response}");
    assert!(server.terminate("http_server").success());
}

#[test]
fn http_server_serves_https_on_a_tls_string() {
    let pems = Pems::new("https");
    let endpoint = format!(
        "tls:0:interface=127.0.0.1:certKey={}:privateKey={}",
        pems.file("cert.pem"),
        pems.file("key.pem")
    );
    let dir = std::env::temp_dir().display().to_string();
    let Some((mut server, addr)) = start_server("http_server", &[&endpoint, &dir]) else {
        return;
    };
    let Some(client) = example("http_client") else {
        return;
    };
    let url = format!("https://localhost:{}/plaintext", addr.port());
    let ca = pems.0.join("ca.pem").display().to_string();
    let (status, stdout, stderr) = run_to_end(Command::new(client).args([&url, "--cacert", &ca]));
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, "Hello, World!");
    assert!(server.terminate("http_server").success());
}

#[test]
fn bad_endpoint_strings_exit_2_naming_the_bad_part() {
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "echo_server",
            &["tcp:80:bakclog=5"],
            r#"unknown option "bakclog""#,
        ),
        ("chat_server", &["tcp6:x"], r#"tcp6: bad port "x""#),
        ("http_server", &["tls:0"], "tls: missing the private key"),
        (
            "tls_echo_server",
            &[
                "tls:0:privateKey=k.pem",
                "--cert",
                "c.pem",
                "--key",
                "k.pem",
            ],
            "no --cert or --key",
        ),
        (
            "echo_client",
            &["tcp:host=localhost"],
            "tcp: missing the port",
        ),
        ("chat_client", &["tcp:host=a:port=0"], r#"bad port "0""#),
    ];
    for (name, args, names) in cases {
        let Some(binary) = example(name) else {
            continue;
        };
        let (status, stdout, stderr) = run_to_end(Command::new(binary).args(args));
        assert_eq!(status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert_eq!(stdout, "", "{name} {args:?}");
        assert!(stderr.contains(names), "{name} {args:?}: {stderr:?}");
    }
}

/// A temporary directory for UNIX socket files, removed when dropped.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new(name: &str) -> SocketDir {
        let dir = std::env::temp_dir().join(format!(
            "torsion-examples-unix-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        SocketDir(dir)
    }

    fn socket(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn echo_server_serves_a_unix_socket_and_echo_client_connects_to_it() {
    let dir = SocketDir::new("echo");
    let path = dir.socket("echo.sock");
    let Some((mut server, printed)) =
        start_server_printing("echo_server", &[&format!("unix:{path}")])
    else {
        return;
    };
    assert_eq!(printed, path, "it says the path it listens on");
    let mut stream = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.write_all(b"over a unix socket").unwrap();
    let mut back = [0; 18];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"over a unix socket");
    if !echo_client_echoes(&format!("unix:path={path}"), &["hi"]) {
        return;
    }
    assert!(server.terminate("echo_server").success());
}

#[test]
fn chat_server_serves_a_unix_socket_and_chat_client_joins_through_it() {
    let dir = SocketDir::new("chat");
    let path = dir.socket("chat.sock");
    let Some((mut server, printed)) =
        start_server_printing("chat_server", &[&format!("unix:{path}")])
    else {
        return;
    };
    assert_eq!(printed, path);
    if !chat_client_joins(&format!("unix:path={path}")) {
        return;
    }
    assert!(server.terminate("chat_server").success());
}

#[test]
fn echo_server_serves_an_abstract_unix_name() {
    let name = format!("@torsion-example-echo-{}", std::process::id());
    let Some((mut server, printed)) =
        start_server_printing("echo_server", &[&format!("unix:{name}")])
    else {
        return;
    };
    assert_eq!(printed, name);
    if !echo_client_echoes(&format!("unix:path={name}"), &["abstract"]) {
        return;
    }
    assert!(server.terminate("echo_server").success());
}
