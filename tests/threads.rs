//! Threads: `call_from_thread` from many threads runs each call once, in each thread's order;
//! `call_in_thread` hands results (and panics) back on the reactor thread; a handle stops the
//! reactor from another thread and reports a dropped reactor; host names resolve off-thread.

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use torsion::{
    Address, ClientFactory, ConnectError, ConnectOptions, Context, Protocol, Reactor, ReactorGone,
};

#[test]
fn calls_from_eight_threads_each_run_once_in_per_thread_order() {
    const THREADS: usize = 8;
    const CALLS: usize = 10_000;
    let mut reactor = Reactor::new().unwrap();
    let seen: Rc<RefCell<Vec<Vec<usize>>>> = Rc::new(RefCell::new(vec![Vec::new(); THREADS]));
    // The calls carry (thread, sequence) into a Send channel-free log: each call pushes onto
    // a reactor-side vector through a thread-local handle to `seen`.
    let (sender, receiver) = mpsc::channel::<(usize, usize)>();
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = reactor.handle();
            let sender = sender.clone();
            thread::spawn(move || {
                for i in 0..CALLS {
                    let sender = sender.clone();
                    handle
                        .call_from_thread(move |_| sender.send((t, i)).unwrap())
                        .unwrap();
                }
            })
        })
        .collect();
    drop(sender);
    let main_thread = thread::current().id();
    let total = THREADS * CALLS;
    let mut received = 0;
    run_until(&mut reactor, "every call to run", || {
        while let Ok((t, i)) = receiver.try_recv() {
            assert_eq!(thread::current().id(), main_thread);
            seen.borrow_mut()[t].push(i);
            received += 1;
        }
        received == total
    });
    for s in senders {
        s.join().unwrap();
    }
    reactor.iterate(Duration::ZERO).unwrap();
    assert!(receiver.try_recv().is_err(), "no call ran twice");
    for (t, calls) in seen.borrow().iter().enumerate() {
        assert_eq!(calls.len(), CALLS, "thread {t}");
        assert!(
            calls.windows(2).all(|w| w[0] + 1 == w[1]),
            "thread {t}'s calls out of order"
        );
    }
}

#[test]
fn calls_from_threads_run_on_the_reactor_thread() {
    let mut reactor = Reactor::new().unwrap();
    let ran_on = Rc::new(RefCell::new(None));
    let handle = reactor.handle();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        handle
            .call_from_thread(move |_| tx.send(thread::current().id()).unwrap())
            .unwrap();
    })
    .join()
    .unwrap();
    run_until(&mut reactor, "the call", || {
        if let Ok(id) = rx.try_recv() {
            *ran_on.borrow_mut() = Some(id);
        }
        ran_on.borrow().is_some()
    });
    assert_eq!(*ran_on.borrow(), Some(thread::current().id()));
}

#[test]
fn work_runs_on_the_pool_and_its_result_comes_back_on_the_reactor_thread() {
    let mut reactor = Reactor::new().unwrap();
    let results: Rc<RefCell<Vec<(u64, bool)>>> = Rc::default();
    let reactor_thread = thread::current().id();
    for n in 0..20u64 {
        let results = results.clone();
        reactor.call_in_thread(
            move || {
                assert_ne!(
                    thread::current().id(),
                    reactor_thread,
                    "work must not block the reactor"
                );
                thread::sleep(Duration::from_millis(5)); // stands for blocking work
                n * n
            },
            move |_, result| {
                results
                    .borrow_mut()
                    .push((result.unwrap(), thread::current().id() == reactor_thread));
            },
        );
    }
    run_until(&mut reactor, "all results", || results.borrow().len() == 20);
    let mut got = results.borrow().clone();
    got.sort();
    assert_eq!(got, (0..20u64).map(|n| (n * n, true)).collect::<Vec<_>>());
}

#[test]
fn a_panic_in_pool_work_reaches_on_done_as_an_error() {
    let mut reactor = Reactor::new().unwrap();
    let outcome = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    reactor.call_in_thread(
        || -> u32 { panic!("disk on fire") },
        move |_, result| *o.borrow_mut() = Some(result.map_err(|e| e.to_string())),
    );
    run_until(&mut reactor, "the panic to be reported", || {
        outcome.borrow().is_some()
    });
    let outcome = outcome.borrow_mut().take().unwrap();
    assert!(outcome.unwrap_err().contains("disk on fire"));
}

#[test]
fn a_handle_stops_run_from_another_thread_and_sees_the_reactor_gone() {
    let mut reactor = Reactor::new().unwrap();
    let handle = reactor.handle();
    let stopper = handle.clone();
    let t = thread::spawn(move || stopper.stop().unwrap());
    reactor.run().unwrap();
    t.join().unwrap();
    drop(reactor);
    assert_eq!(handle.call_from_thread(|_| {}), Err(ReactorGone));
}

/// Records the connection's peer address, or the failure.
struct Probe(Rc<RefCell<Option<Result<SocketAddr, String>>>>);

impl Protocol for Probe {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        *self.0.borrow_mut() = Some(Ok(cx.peer_addr().unwrap()));
        cx.lose_connection();
    }
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

impl ClientFactory for Probe {
    type Protocol = Probe;
    fn build_protocol(&mut self, _peer: Address) -> Probe {
        Probe(self.0.clone())
    }
    fn client_connection_failed(&mut self, _reactor: &mut Reactor, error: ConnectError) {
        *self.0.borrow_mut() = Some(Err(format!("{error:?}")));
    }
}

#[test]
fn a_host_name_is_resolved_off_the_reactor_thread_and_connected() {
    let mut reactor = Reactor::new().unwrap();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let outcome = Rc::new(RefCell::new(None));
    reactor.connect(
        ("localhost", port),
        Probe(outcome.clone()),
        ConnectOptions::new(),
    );
    run_until(&mut reactor, "the connection", || {
        outcome.borrow().is_some()
    });
    let peer = outcome.borrow().clone().unwrap().expect("connected");
    assert_eq!(peer.port(), port);
    assert!(peer.ip().is_loopback());
}

#[test]
fn a_host_name_that_does_not_resolve_fails_with_resolve() {
    let mut reactor = Reactor::new().unwrap();
    let outcome = Rc::new(RefCell::new(None));
    // A name with a NUL byte fails in the resolver call itself: no query leaves the machine
    // (tests reach only loopback).
    let target = ("no\0such-host", 80);
    reactor.connect(target, Probe(outcome.clone()), ConnectOptions::new());
    run_until(&mut reactor, "the failure", || outcome.borrow().is_some());
    let failure = outcome.borrow().clone().unwrap().unwrap_err();
    assert!(failure.starts_with("Resolve("), "{failure}");
}
