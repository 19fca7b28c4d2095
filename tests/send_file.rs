//! File segments queued on connections (`Context::write_file`): over plain TCP (`sendfile`)
//! and TLS (read and encrypted), in order with the bytes around them, under the watermarks'
//! backpressure; a file that shrank fails its connection.

mod common;

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use torsion::{Context, DisconnectReason, FileSegment, Protocol, Reactor};

use common::certs::TestCa;
use common::tls::*;
use common::*;

/// A temporary file of pattern bytes, removed on drop.
struct PatternFile {
    path: PathBuf,
    data: Vec<u8>,
}

impl PatternFile {
    fn new(name: &str, len: usize) -> PatternFile {
        let block = pattern_block();
        let data: Vec<u8> = block.iter().copied().cycle().take(len).collect();
        let path =
            std::env::temp_dir().join(format!("torsion-send-file-{}-{name}", std::process::id()));
        fs::write(&path, &data).unwrap();
        PatternFile { path, data }
    }

    fn open(&self) -> Arc<File> {
        Arc::new(File::open(&self.path).unwrap())
    }
}

impl Drop for PatternFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a sender saw.
#[derive(Default, Debug)]
struct Sent {
    pauses: usize,
    resumes: usize,
    max_queued: usize,
    lost: Option<String>,
}

/// Writes `head`, the segment, `tail`, then closes; records the backpressure it hears.
struct FileSender {
    segment: Option<FileSegment>,
    seen: Shared<Sent>,
}

impl Protocol for FileSender {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"head");
        if let Some(segment) = self.segment.take() {
            cx.write_file(segment);
        }
        cx.write(b"tail");
        let mut seen = self.seen.borrow_mut();
        seen.max_queued = seen.max_queued.max(cx.queued_bytes());
        cx.lose_connection();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn pause_writing(&mut self, _cx: &mut Context<'_>) {
        self.seen.borrow_mut().pauses += 1;
    }

    fn resume_writing(&mut self, _cx: &mut Context<'_>) {
        self.seen.borrow_mut().resumes += 1;
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.seen.borrow_mut().lost = Some(format!("{reason:?}"));
    }
}

/// `head`, bytes `from..to` of `data`, `tail`.
fn expected(data: &[u8], from: usize, to: usize) -> Vec<u8> {
    let mut expected = b"head".to_vec();
    expected.extend_from_slice(&data[from..to]);
    expected.extend_from_slice(b"tail");
    expected
}

#[test]
fn a_file_segment_goes_out_over_tcp_whole_and_in_order_to_a_slow_reader() {
    const LEN: usize = 8 << 20;
    init_logging();
    let file = PatternFile::new("tcp", LEN + 1000);
    let seen = shared(Sent::default());
    let mut reactor = Reactor::new().unwrap();
    let (f, s) = (file.open(), seen.clone());
    let port = reactor
        .listen_tcp(any_loopback_port(), move || FileSender {
            segment: Some(FileSegment::new(f.clone(), 1000, LEN as u64)),
            seen: s.clone(),
        })
        .unwrap();
    let addr = port.local_addr();
    let client = thread::spawn(move || read_to_end(&mut connect(addr)));
    let (received, end) = run_until_joined(&mut reactor, vec![client]).remove(0);
    end.unwrap();
    assert!(
        received == expected(&file.data, 1000, LEN + 1000),
        "{} bytes arrived, not the ones sent",
        received.len()
    );
    let seen = seen.borrow();
    assert_eq!(
        seen.max_queued,
        LEN + 8,
        "the segment counts as queued bytes"
    );
    assert!(seen.pauses >= 1 && seen.resumes >= 1, "{seen:?}");
    assert_eq!(seen.lost.as_deref(), Some("Closed"));
}

#[test]
fn a_file_segment_goes_out_over_tls_read_and_encrypted() {
    const LEN: usize = 3 << 20;
    init_logging();
    let ca = TestCa::new("test CA");
    let file = PatternFile::new("tls", LEN);
    let seen = shared(Sent::default());
    let mut reactor = Reactor::new().unwrap();
    let (f, s) = (file.open(), seen.clone());
    let port = reactor
        .listen_tls(any_loopback_port(), localhost_server(&ca), move || {
            FileSender {
                segment: Some(FileSegment::new(f.clone(), 0, LEN as u64)),
                seen: s.clone(),
            }
        })
        .unwrap();
    let received = shared(Vec::new());
    let ended = shared(None);
    let (r, e) = (received.clone(), ended.clone());
    reactor.connect(
        port.local_addr(),
        move || Collector {
            received: r.clone(),
            ended: e.clone(),
        },
        tls_to("localhost", &ca),
    );
    run_until(&mut reactor, "the client to see the close", || {
        ended.borrow().is_some()
    });
    assert_eq!(
        ended.borrow().as_deref(),
        Some("Closed"),
        "close_notify came"
    );
    assert!(*received.borrow() == expected(&file.data, 0, LEN));
    run_until(&mut reactor, "the server to close", || {
        seen.borrow().lost.is_some()
    });
}

#[test]
fn a_file_that_shrank_before_it_was_sent_fails_its_connection_only() {
    init_logging();
    let file = PatternFile::new("shrank", 100_000);
    let seen = shared(Sent::default());
    let mut reactor = Reactor::new().unwrap();
    let (f, s) = (file.open(), seen.clone());
    let port = reactor
        .listen_tcp(any_loopback_port(), move || FileSender {
            // Promises 50,000 bytes more than the file has.
            segment: Some(FileSegment::new(f.clone(), 0, 150_000)),
            seen: s.clone(),
        })
        .unwrap();
    let addr = port.local_addr();
    let client = thread::spawn(move || read_to_end(&mut connect(addr)));
    let (received, _end) = run_until_joined(&mut reactor, vec![client]).remove(0);
    assert!(received.len() <= 100_004, "{}", received.len());
    assert!(
        received[..] == expected(&file.data, 0, 100_000)[..received.len()],
        "what came is the file's start"
    );
    let lost = seen.borrow().lost.clone().unwrap();
    assert!(lost.contains("Error") && lost.contains("shrank"), "{lost}");
}

/// A client that keeps what it receives and how its connection ended.
struct Collector {
    received: Shared<Vec<u8>>,
    ended: Shared<Option<String>>,
}

impl Protocol for Collector {
    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.received.borrow_mut().extend_from_slice(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.ended.borrow_mut() = Some(format!("{reason:?}"));
    }
}
