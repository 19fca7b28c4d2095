//! The TLS examples' command lines: `tls_echo_server` with the
//! self-signed certificate it makes and the path it prints, or a certificate of ours;
//! `tls_echo_client` printing each echoed line, and failing with the TLS reason; mutual TLS
//! with `--client-ca`; SIGTERM; bad arguments; and `http_server --tls-cert --tls-key` fetched
//! over HTTPS by curl and by torsion TLS clients (one closing with
//! `Connection: close`, one half-closing with close_notify). Certificates are made by
//! rcgen (`common/certs.rs`) and written to a directory of the test's own.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;

use common::certs::{Issued, TestCa};
use common::examples::{example, run_to_end, Running};
use common::{init_logging, machine, run_until, shared, DEADLINE};
use torsion::{ConnectOptions, Context, DisconnectReason, Protocol, Reactor};

/// A directory of this test's own under the system's temporary directory, removed when
/// dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("torsion-examples-tls-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test's directory");
        TempDir(path)
    }

    /// Writes `text` to file `name` here; returns its path as an argument.
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path.display().to_string()
    }

    /// Writes an issued certificate and its key; returns their paths.
    fn write_issued(&self, name: &str, issued: &Issued) -> (String, String) {
        let cert = self.write(&format!("{name}.pem"), &issued.cert_pem);
        let key = self.write(&format!("{name}.key"), &issued.key_pem);
        (cert, key)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server example running with its stdout read line by line on a thread.
struct Server {
    running: Running,
    addr: SocketAddr,
    /// The path after `certificate: `, if it printed one.
    certificate: Option<String>,
    /// Its stdout lines after the `listening on` one.
    lines: Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A server killed (not stopped by SIGTERM) leaves its certificate file behind.
        let _ = self.running.0.kill();
        let _ = self.running.0.wait();
        if let Some(path) = &self.certificate {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts example `binary` with `args` (its ADDR among them: `127.0.0.1:0`, so no port is
/// raced for) and reads its stdout until it says it is listening, on the port it printed.
fn start_server(binary: &Path, args: &[&str]) -> Server {
    let mut child = Command::new(binary)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server example");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (send, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
    let mut certificate = None;
    loop {
        let line = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("{} never said it listens: {e}", binary.display()));
        if let Some(path) = line.strip_prefix("certificate: ") {
            certificate = Some(path.to_string());
        } else if let Some((_, rest)) = line.split_once(" listening on ") {
            let addr = rest.split(',').next().unwrap().parse().expect("an address");
            return Server {
                running,
                addr,
                certificate,
                lines,
            };
        }
    }
}

/// Runs `tls_echo_client` with `args` to its end.
fn echo_client(binary: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    run_to_end(Command::new(binary).args(args))
}

/// Asserts a failed run: not 0, nothing on stdout, one line on stderr holding `reason`.
fn assert_fails_with(run: (ExitStatus, String, String), reason: &str) {
    let (status, stdout, stderr) = run;
    assert!(!status.success(), "exited {status}; stdout: {stdout:?}");
    assert_eq!(status.code(), Some(1), "a failure, not bad arguments");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.contains(reason), "names {reason:?}: {stderr:?}");
}

fn sigterm(server: &mut Server, name: &str) -> ExitStatus {
    server.running.terminate(name)
}

#[test]
fn tls_echo_client_gets_each_line_back_byte_exact_from_the_self_signed_tls_echo_server() {
    let (Some(server_bin), Some(client_bin)) =
        (example("tls_echo_server"), example("tls_echo_client"))
    else {
        return;
    };
    let mut server = start_server(&server_bin, &["127.0.0.1:0"]);
    let cert = server
        .certificate
        .clone()
        .expect("a `certificate: PATH` line");
    assert_eq!(
        Path::new(&cert).file_name().unwrap().to_str().unwrap(),
        format!("torsion-tls-echo-{}.pem", server.addr.port())
    );
    let addr = server.addr.to_string();
    let messages = ["hello", "two  words ", "", "ünïcode ✓ \t tab", "-dash"];
    let mut args = vec![addr.as_str(), "--cafile", &cert, "--"];
    args.extend(messages);

    let (status, stdout, stderr) = echo_client(&client_bin, &args);

    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, messages.map(|m| format!("{m}\n")).concat());
    // The certificate is valid for localhost too, not only for 127.0.0.1.
    let named = [&addr, "--name", "localhost", "--cafile", &cert, "hi"];
    let (status, stdout, stderr) = echo_client(&client_bin, &named);
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, "hi\n");

    let status = sigterm(&mut server, "tls_echo_server");
    assert!(
        status.success(),
        "tls_echo_server exited {status} on SIGTERM"
    );
    assert!(!Path::new(&cert).exists(), "{cert} is removed on exit");
}

#[test]
fn tls_echo_client_names_the_tls_reason_when_verification_fails() {
    let (Some(server_bin), Some(client_bin)) =
        (example("tls_echo_server"), example("tls_echo_client"))
    else {
        return;
    };
    let dir = TempDir::new();
    let server = start_server(&server_bin, &["127.0.0.1:0"]);
    let addr = server.addr.to_string();
    let cert = server.certificate.clone().unwrap();
    let wrong_name = [&addr, "--cafile", &cert, "--name", "example.com", "hi"];
    assert_fails_with(
        echo_client(&client_bin, &wrong_name),
        "not valid for the requested name",
    );
    let other_ca = dir.write("other-ca.pem", &TestCa::new("another CA").pem);
    assert_fails_with(
        echo_client(&client_bin, &[&addr, "--cafile", &other_ca, "hi"]),
        "unknown certificate authority",
    );

    // A server with an expired certificate of ours (--cert, --key).
    let ca = TestCa::new("test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let (cert, key) = dir.write_issued("expired", &ca.issue_expired(&["localhost"]));
    let args = ["--cert", &cert, "127.0.0.1:0", "--key", &key];
    let expired = start_server(&server_bin, &args);
    assert_eq!(expired.certificate, None, "no self-signed certificate made");
    let target = format!("localhost:{}", expired.addr.port());
    assert_fails_with(
        echo_client(&client_bin, &[&target, "--cafile", &ca_file, "hi"]),
        "expired",
    );
}

#[test]
fn tls_echo_server_with_client_ca_serves_only_clients_certified_by_it() {
    let (Some(server_bin), Some(client_bin)) =
        (example("tls_echo_server"), example("tls_echo_client"))
    else {
        return;
    };
    let dir = TempDir::new();
    let client_ca = TestCa::new("client CA");
    let client_ca_file = dir.write("client-ca.pem", &client_ca.pem);
    let (alice_cert, alice_key) = dir.write_issued("alice", &client_ca.issue(&["alice"]));
    let stranger = TestCa::new("stranger CA").issue(&["mallory"]);
    let (mallory_cert, mallory_key) = dir.write_issued("mallory", &stranger);
    let mut server = start_server(
        &server_bin,
        &["127.0.0.1:0", "--client-ca", &client_ca_file],
    );
    let addr = server.addr.to_string();
    let cafile = server.certificate.clone().unwrap();
    let client = |extra: &[&str]| {
        let mut args = vec![addr.as_str(), "--cafile", &cafile];
        args.extend(extra);
        args.push("secret");
        echo_client(&client_bin, &args)
    };

    let (status, stdout, stderr) = client(&["--cert", &alice_cert, "--key", &alice_key]);
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, "secret\n");
    let line = server
        .lines
        .recv_timeout(DEADLINE)
        .expect("the subject line");
    assert!(
        line.starts_with("client 127.0.0.1:") && line.ends_with(": CN=alice"),
        "{line:?}"
    );

    // TLS 1.3: the server refuses after the client's half of the handshake, with an alert.
    assert_fails_with(client(&[]), "CertificateRequired");
    let refused = client(&["--cert", &mallory_cert, "--key", &mallory_key]);
    assert_fails_with(refused, "UnknownCA");

    assert!(
        server.lines.try_recv().is_err(),
        "no other client was served"
    );
    let status = sigterm(&mut server, "tls_echo_server");
    assert!(
        status.success(),
        "tls_echo_server exited {status} on SIGTERM"
    );
}

#[test]
fn the_tls_examples_and_http_server_exit_2_on_bad_arguments() {
    let cases: [(&str, &[&str], &str); 7] = [
        ("tls_echo_client", &["127.0.0.1:1", "hi"], "--cafile"),
        (
            "tls_echo_client",
            &["127.0.0.1:1", "--cafile", "x"],
            "MESSAGE",
        ),
        (
            "tls_echo_client",
            &["nowhere", "--cafile", "x", "hi"],
            "bad address",
        ),
        (
            "tls_echo_client",
            &["127.0.0.1:1", "--cafile", "/nonexistent", "hi"],
            "/nonexistent",
        ),
        ("tls_echo_server", &["--cert", "c.pem"], "--key"),
        ("tls_echo_server", &["--client-ca"], "--client-ca"),
        ("http_server", &["--tls-key", "k.pem"], "--tls-cert"),
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

/// `http_server` serving HTTPS with a certificate for localhost and 127.0.0.1 from `ca`.
fn start_https_server(binary: &Path, dir: &TempDir, ca: &TestCa) -> Server {
    let (cert, key) = dir.write_issued("server", &ca.issue(&["localhost", "127.0.0.1"]));
    let root = dir.0.display().to_string();
    // Options before, between and after the positionals.
    let args = ["--tls-cert", &cert, "127.0.0.1:0", &root, "--tls-key", &key];
    start_server(binary, &args)
}

#[test]
fn curl_fetches_plaintext_from_http_server_over_https() {
    let Some(curl) = machine::require_tool("curl", "--version") else {
        return;
    };
    if !curl.contains("https") {
        return machine::skip_or_fail("this curl has no HTTPS");
    }
    let Some(binary) = example("http_server") else {
        return;
    };
    let dir = TempDir::new();
    let ca = TestCa::new("test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let mut server = start_https_server(&binary, &dir, &ca);
    let port = server.addr.port();
    let url = format!("https://localhost:{port}/plaintext");
    // localhost may resolve to ::1 first; the server is on 127.0.0.1 only.
    let resolve = format!("localhost:{port}:127.0.0.1");

    let (status, stdout, stderr) = run_to_end(Command::new("curl").args([
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        &ca_file,
        "--resolve",
        &resolve,
        "-w",
        " %{http_code} %{scheme} %{http_version}",
        &url,
    ]));

    assert!(status.success(), "curl: {status}; {stderr}");
    assert_eq!(stdout, "Hello, World! 200 HTTPS 1.1");
    let status = sigterm(&mut server, "http_server");
    assert!(status.success(), "http_server exited {status} on SIGTERM");
}

#[test]
fn http_client_with_cacert_fetches_from_http_server_over_https() {
    let (Some(server_binary), Some(client_binary)) =
        (example("http_server"), example("http_client"))
    else {
        return;
    };
    let dir = TempDir::new();
    let ca = TestCa::new("test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let mut server = start_https_server(&server_binary, &dir, &ca);
    let url = format!("https://127.0.0.1:{}/plaintext", server.addr.port());

    let (status, stdout, stderr) =
        run_to_end(Command::new(&client_binary).args([url.as_str(), "--cacert", &ca_file, "-v"]));
    assert!(status.success(), "http_client: {status}; {stderr}");
    assert_eq!(stdout, "Hello, World!");
    assert!(stderr.starts_with("HTTP/1.1 200 OK"), "{stderr}");

    // Without --cacert the system's roots are used, and none of them signed the test CA.
    let (status, stdout, stderr) = run_to_end(Command::new(&client_binary).arg(&url));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("http_client: TLS error: "), "{stderr}");

    let status = sigterm(&mut server, "http_server");
    assert!(status.success(), "http_server exited {status} on SIGTERM");
}

#[test]
fn a_torsion_tls_client_fetches_plaintext_from_http_server_over_https() {
    let Some(binary) = example("http_server") else {
        return;
    };
    init_logging();
    let dir = TempDir::new();
    let ca = TestCa::new("test CA");
    let server = start_https_server(&binary, &dir, &ca);
    let mut reactor = Reactor::new().unwrap();
    let seen = shared(common::tls::Seen::default());
    let request = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let config = common::tls::trusting(&ca);
    let factory = common::tls::client(&seen, request);

    let options = ConnectOptions::new().tls(config).server_name("localhost");
    reactor.connect(server.addr, factory, options);
    run_until(&mut reactor, "the response and the close", || {
        let seen = seen.borrow();
        seen.failed.is_some() || seen.lost.is_some()
    });

    let seen = seen.borrow();
    assert_eq!(seen.failed, None);
    let response = String::from_utf8_lossy(&seen.received);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nHello, World!"), "{response}");
    // The server ended the connection with close_notify (`Connection: close`), not a bare
    // TCP close: the client heard the end of the stream.
    assert!(seen.eof, "close_notify received");
    assert_eq!(seen.lost, Some(common::Reason::Closed));
}

/// Sends its requests, half-closes (close_notify), and records what comes back.
struct HalfClosingClient {
    requests: &'static [u8],
    seen: common::Shared<common::tls::Seen>,
}

impl Protocol for HalfClosingClient {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(self.requests);
        cx.shutdown_write();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.seen.borrow_mut().received.extend_from_slice(data);
    }

    fn eof_received(&mut self, cx: &mut Context<'_>) {
        self.seen.borrow_mut().eof = true;
        cx.lose_connection();
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.seen.borrow_mut().lost = Some(reason.into());
    }
}

#[test]
fn http_server_over_https_answers_every_request_sent_before_a_half_close() {
    let Some(binary) = example("http_server") else {
        return;
    };
    init_logging();
    let dir = TempDir::new();
    let ca = TestCa::new("test CA");
    let server = start_https_server(&binary, &dir, &ca);
    let mut reactor = Reactor::new().unwrap();
    let seen = shared(common::tls::Seen::default());
    let config = common::tls::trusting(&ca);
    let recorded = seen.clone();
    let client = move || HalfClosingClient {
        requests:
            b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\n",
        seen: recorded.clone(),
    };

    // The certificate is for 127.0.0.1 too: an IP address is a server name.
    let options = ConnectOptions::new().tls(config).server_name("127.0.0.1");
    reactor.connect(server.addr, client, options);
    run_until(&mut reactor, "both responses and the close", || {
        seen.borrow().lost.is_some()
    });

    let seen = seen.borrow();
    let responses = String::from_utf8_lossy(&seen.received);
    assert_eq!(
        responses.matches("HTTP/1.1 200 OK\r\n").count(),
        2,
        "{responses}"
    );
    assert!(
        responses.ends_with(r#"{"message":"Hello, World!"}"#),
        "{responses}"
    );
    assert!(seen.eof, "the server ended with close_notify");
    assert_eq!(seen.lost, Some(common::Reason::Closed));
}
