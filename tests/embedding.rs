//! Embedding: a host loop that drives the reactor with `iterate`, `run_until`, and a foreign
//! `poll(2)` loop that waits on the reactor's fd with `next_timeout` and then turns it with
//! `iterate(Duration::ZERO)` (libuv's `uv_backend_fd`/`uv_backend_timeout` model).

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use torsion::Reactor;

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// A client thread: one echo round trip, then the connection closes.
fn echo_once(addr: std::net::SocketAddr) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut stream = connect(addr);
        stream.write_all(b"ping").unwrap();
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).unwrap();
        reply.to_vec()
    })
}

#[test]
fn a_foreign_poll_loop_drives_the_reactor_through_its_fd_and_next_timeout() {
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let started = Instant::now();
    reactor.call_later(Duration::from_millis(100), move |_| f.set(true));
    let client = echo_once(port.local_addr());

    let mut waits = 0;
    while !(fired.get() && client.is_finished()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the foreign loop stalled"
        );
        // The host's own loop: wait on the reactor's fd, for no longer than it allows.
        let timeout = reactor.next_timeout().map(timespec);
        let mut fds = [PollFd::new(&reactor, PollFlags::IN)];
        poll(&mut fds, timeout.as_ref()).unwrap();
        waits += 1;
        // Then let the reactor do everything that is ready, without blocking.
        loop {
            reactor.iterate(Duration::ZERO).unwrap();
            if reactor.next_timeout() != Some(Duration::ZERO) {
                break;
            }
        }
    }
    assert_eq!(client.join().unwrap(), b"ping");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "the timer fired early"
    );
    assert!(
        waits < 50,
        "the foreign loop woke {waits} times: a busy loop"
    );
}

#[test]
fn a_host_loop_with_its_own_tick_serves_between_ticks() {
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let client = echo_once(port.local_addr());
    let mut ticks = 0;
    let started = Instant::now();
    while !client.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the host loop stalled"
        );
        ticks += 1; // the host's own work for this tick
        let tick_end = Instant::now() + Duration::from_millis(10);
        reactor.run_until(tick_end).unwrap();
    }
    assert_eq!(client.join().unwrap(), b"ping");
    assert!(ticks >= 1);
}

#[test]
fn run_until_returns_at_the_deadline_or_at_stop() {
    let mut reactor = Reactor::new().unwrap();
    let started = Instant::now();
    let stopped = reactor
        .run_until(started + Duration::from_millis(30))
        .unwrap();
    assert!(!stopped, "ended by the deadline");
    assert!(started.elapsed() >= Duration::from_millis(30));

    reactor.call_later(Duration::from_millis(10), |r| r.stop());
    let started = Instant::now();
    let stopped = reactor
        .run_until(started + Duration::from_secs(10))
        .unwrap();
    assert!(stopped, "ended by stop");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop did not end run_until"
    );
    assert!(!reactor.stop_requested(), "the stop was consumed");
}

#[test]
fn next_timeout_reports_pending_timers_and_none_when_idle() {
    let mut reactor = Reactor::new().unwrap();
    assert_eq!(reactor.next_timeout(), None);
    let call = reactor.call_later(Duration::from_secs(60), |_| {});
    let t = reactor.next_timeout().unwrap();
    assert!(
        t > Duration::from_secs(59) && t <= Duration::from_secs(60),
        "{t:?}"
    );
    call.cancel(&mut reactor);
    assert_eq!(reactor.next_timeout(), None);
}
