//! The example servers' limits and metrics: `echo_server --max-connections N` keeps the next
//! client waiting until one leaves; `http_server` answers `GET /metrics` with its counters.
//!
//! Like `examples.rs`, a test whose example binary is missing or stale is skipped with a
//! printed reason, except under `CI=true`, where it fails.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::examples::{example, Running};
use common::{closed_loopback_port, connect, read_exact, round_trip};

/// Starts example `binary` with `args` and waits for its line saying where it listens.
fn start(binary: &Path, args: &[&str]) -> Running {
    let child = Command::new(binary)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the example");
    let mut server = Running(child);
    let stdout = server.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "the server said {line:?}");
    server
}

#[test]
fn echo_server_with_max_connections_keeps_the_next_client_waiting_until_one_leaves() {
    let Some(binary) = example("echo_server") else {
        return;
    };
    let addr = closed_loopback_port();
    let _server = start(&binary, &["--max-connections", "1", &addr.to_string()]);
    let mut first = connect(addr);
    assert_eq!(round_trip(&mut first, b"first"), b"first");

    let mut second = connect(addr);
    second.write_all(b"second").unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let waited = second.read(&mut [0; 16]).map_err(|e| e.kind());
    assert!(
        matches!(waited, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the second client was served over the limit: {waited:?}"
    );

    drop(first);
    second
        .set_read_timeout(Some(common::CLIENT_TIMEOUT))
        .unwrap();
    assert_eq!(read_exact(&mut second, 6), b"second");
}

#[test]
fn http_server_serves_its_counters_at_get_metrics() {
    let Some(binary) = example("http_server") else {
        return;
    };
    let addr = closed_loopback_port();
    let _server = start(&binary, &[&addr.to_string(), "--max-connections", "8"]);
    let mut stream = connect(addr);
    let request = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(request).unwrap();
    let (response, end) = common::read_to_end(&mut stream);
    end.unwrap();
    let response = String::from_utf8(response).unwrap();
    let metrics = response
        .rsplit_once("\r\n\r\n")
        .map(|(head, body)| {
            assert!(
                head.contains("content-type: text/plain; version=0.0.4"),
                "{head}"
            );
            body
        })
        .unwrap();
    // Both requests were written at once: they arrive in one read, before either answer.
    assert!(
        metrics.contains("\ntorsion_connections_accepted_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ntorsion_connections_open 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "\ntorsion_bytes_received_total {}\n",
        request.len()
    )));
    assert!(metrics.contains("# TYPE torsion_bytes_sent_total counter\n"));
}

/// The value of counter `name` in a Prometheus text body.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

#[test]
fn http_server_with_threads_sums_every_reactors_counters_at_get_metrics() {
    let Some(binary) = example("http_server") else {
        return;
    };
    let addr = closed_loopback_port();
    let _server = start(&binary, &["--threads", "2", &addr.to_string()]);
    // Connections one after another: the two reactors take turns accepting them.
    let clients = 8;
    for _ in 0..clients {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (response, end) = common::read_to_end(&mut stream);
        end.unwrap();
        assert!(response.ends_with(b"Hello, World!"));
    }
    // Each reactor publishes its counters every second; the one answering adds its own live
    // ones. Every connection so far (the metrics requests' too) is counted within a second
    // or two, and never more than were made.
    let deadline = std::time::Instant::now() + common::DEADLINE;
    for polls in 1.. {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (response, end) = common::read_to_end(&mut stream);
        end.unwrap();
        let response = String::from_utf8(response).unwrap();
        let accepted = counter(&response, "torsion_connections_accepted_total");
        let made = clients + polls;
        assert!(
            accepted <= made,
            "{accepted} accepted of {made}: {response}"
        );
        if accepted == made {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{accepted} of {made} counted: {response}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
