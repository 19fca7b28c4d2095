//! `Reactor::stop`: called from a callback, `run` returns at the end of that turn, with the
//! turn's writes already flushed.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::*;
use torsion::{Context, Protocol, Reactor};

/// Answers the first bytes with a goodbye and stops the reactor in the same callback.
struct ByeAndStop;

impl Protocol for ByeAndStop {
    fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
        cx.write(b"bye");
        cx.reactor().stop();
    }
}

#[test]
fn stop_from_a_callback_returns_run_with_that_callbacks_write_flushed() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), || ByeAndStop)
        .unwrap();
    let addr = port.local_addr();
    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        stream.write_all(b"hi").unwrap();
        read_exact(&mut stream, 3)
    });

    let watchdog = Watchdog::arm(DEADLINE, "Reactor::run returning after stop()");
    reactor.run().unwrap();
    drop(watchdog);
    assert!(!reactor.stop_requested(), "run consumed the stop request");

    // The reactor turns no more: the goodbye can only arrive if run flushed it before returning.
    let bye = client.join().expect("client received the goodbye");
    assert_eq!(bye, b"bye");
}

#[test]
fn stop_before_run_makes_run_return_after_one_turn() {
    let mut reactor = Reactor::new().unwrap();
    reactor.stop();
    assert!(reactor.stop_requested());
    let watchdog = Watchdog::arm(Duration::from_secs(5), "run returning at once");
    reactor.run().unwrap();
    drop(watchdog);
    assert!(!reactor.stop_requested());
}
