//! `StaticFiles` as a handler, and bodies with a length streamed, through the in-memory
//! harness.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderMap, StatusCode};
use torsion_reactor::testing::{TestConnection, TestReactor};
use torsion_reactor::Reactor;

use super::*;
use crate::http::static_files::StaticFiles;

/// A temporary directory served by a server, removed on drop.
struct Site {
    root: PathBuf,
    server: HttpServer<Router>,
}

impl Site {
    /// `files` (name, bytes) in a fresh directory, served as the fallback of a router that
    /// also has `/short` and `/long` (bodies that break their `Content-Length`).
    fn new(files: &[(&str, &[u8])]) -> Site {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "torsion-static-handler-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        for (name, bytes) in files {
            fs::write(root.join(name), bytes).unwrap();
        }
        let router = Router::new()
            .get("/short", |_: Request, res: Responder, r: &mut Reactor| {
                let mut body = res.stream_with_length(r, StatusCode::OK, &HeaderMap::new(), 10);
                let _ = body.write(r, "12345");
                body.finish(r);
            })
            .get("/long", |_: Request, res: Responder, r: &mut Reactor| {
                let mut body = res.stream_with_length(r, StatusCode::OK, &HeaderMap::new(), 3);
                // Not sent: it would go past the length.
                let _ = body.write(r, "12345");
                body.finish(r);
            })
            .fallback(StaticFiles::new(&root).unwrap());
        Site {
            root,
            server: HttpServer::new(router),
        }
    }

    fn connect(&mut self) -> (TestReactor, TestConnection) {
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut self.server).unwrap();
        (test, client)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A byte pattern that shows misplaced bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// (head, body) of one response in `wire`.
fn split(wire: &[u8]) -> (String, &[u8]) {
    let at = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&wire[..at]).into_owned(),
        &wire[at + 4..],
    )
}

#[test]
fn a_large_file_goes_out_whole_with_bounded_queue_to_a_slow_client() {
    const SIZE: usize = 3 << 20;
    let data = pattern(SIZE);
    let mut site = Site::new(&[("big.bin", &data)]);
    let (mut test, client) = site.connect();
    client.set_write_room(Some(1000));
    test.feed(&client, b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut wire = Vec::new();
    let mut max_queued = 0;
    for _ in 0..10_000 {
        let queued = test.reactor().queued_bytes(client.id());
        max_queued = max_queued.max(queued);
        wire.extend(client.take_written());
        if wire.len() >= SIZE {
            let (_, body) = split(&wire);
            if body.len() == SIZE {
                break;
            }
        }
        client.set_write_room(Some(50_000));
        test.run_pending();
    }
    // The high watermark, one 64 KiB chunk, the head.
    assert!(max_queued <= (64 + 64) * 1024 + 512, "queued {max_queued}");
    let (head, body) = split(&wire);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert!(body == data, "the body arrives intact");
    assert!(!client.is_closed());
    // The connection goes on.
    client.set_write_room(None);
    test.feed(&client, b"HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    let wire = client.take_written();
    let (head, body) = split(&wire);
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    assert!(body.is_empty());
}

#[test]
fn not_modified_carries_no_content_length_and_keeps_the_connection() {
    let mut site = Site::new(&[("a.txt", b"hello")]);
    let (mut test, client) = site.connect();
    test.feed(&client, b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = client.take_text();
    let etag = text
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .to_string();
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
    let request = format!("GET /a.txt HTTP/1.1\r\nHost: a\r\nIf-None-Match: {etag}\r\n\r\n");
    test.feed(&client, request.as_bytes());
    let text = client.take_text();
    assert!(text.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{text}");
    assert!(!text.contains("content-length"), "{text}");
    assert!(!text.contains("Transfer-Encoding"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body: {text}");
    assert!(!client.is_closed());
    test.feed(&client, b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(client.take_text().ends_with("\r\n\r\nhello"));
}

#[test]
fn other_methods_get_405_and_a_missing_file_404() {
    let mut site = Site::new(&[("a.txt", b"hello")]);
    let (mut test, client) = site.connect();
    test.feed(
        &client,
        b"POST /a.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    );
    let text = client.take_text();
    assert!(text.starts_with("HTTP/1.1 405 "), "{text}");
    assert!(text.contains("allow: GET, HEAD\r\n"), "{text}");
    test.feed(&client, b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(client.take_text().starts_with("HTTP/1.1 404 "));
    assert!(!client.is_closed());
}

#[test]
fn a_file_that_shrinks_mid_body_closes_the_connection() {
    const SIZE: usize = 1 << 20;
    let mut site = Site::new(&[("big.bin", &pattern(SIZE))]);
    let (mut test, client) = site.connect();
    client.set_write_room(Some(1000));
    test.feed(&client, b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(!client.is_closed(), "the transfer is parked");
    fs::OpenOptions::new()
        .write(true)
        .open(site.root.join("big.bin"))
        .unwrap()
        .set_len(300_000)
        .unwrap();
    client.set_write_room(None);
    test.run_pending();
    let wire = client.take_written();
    let (head, body) = split(&wire);
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    assert!(body.len() < SIZE && body.len() <= 300_000, "{}", body.len());
    assert!(client.is_closed(), "cut short: the client must see a close");
}

#[test]
fn a_parked_transfer_is_dropped_quietly_when_the_client_leaves() {
    let mut site = Site::new(&[("big.bin", &pattern(1 << 20))]);
    let (mut test, client) = site.connect();
    client.set_write_room(Some(1000));
    test.feed(&client, b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    test.run_pending();
    test.reset(&client);
    test.run_pending();
    assert!(client.is_closed());
}

#[test]
fn a_body_short_of_or_past_its_length_closes_the_connection() {
    for (path, sent) in [("/short", "12345"), ("/long", "")] {
        let mut site = Site::new(&[]);
        let (mut test, client) = site.connect();
        test.feed(
            &client,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
        let text = client.take_text();
        assert!(text.ends_with(&format!("\r\n\r\n{sent}")), "{text}");
        assert!(client.is_closed(), "{path}");
    }
}
