//! Waking a connection and watching its writes, driven in memory.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::testing::{Harness, TestReactor};
use crate::{ConnectionId, Context, Protocol, WriteProgress};

/// Records what it is told, and wakes the connection named in the data it receives.
#[derive(Default)]
struct Sleeper {
    events: Rc<RefCell<Vec<String>>>,
    /// Wake itself again from `woken`, this many times.
    rewake: usize,
}

impl Protocol for Sleeper {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.events.borrow_mut().push("data".into());
        if data == b"wake me twice" {
            cx.wake();
            cx.wake();
            self.events.borrow_mut().push("data returns".into());
        }
    }

    fn woken(&mut self, cx: &mut Context<'_>) {
        self.events.borrow_mut().push("woken".into());
        if self.rewake > 0 {
            self.rewake -= 1;
            cx.wake();
        }
    }

    fn write_progress(&mut self, cx: &mut Context<'_>, progress: WriteProgress) {
        let WriteProgress {
            sent,
            queued,
            drained,
            ..
        } = progress;
        assert_eq!(queued, cx.queued_bytes());
        self.events
            .borrow_mut()
            .push(format!("progress {sent} {queued} {drained}"));
    }
}

fn sleeper() -> (Sleeper, Rc<RefCell<Vec<String>>>) {
    let events = Rc::new(RefCell::new(Vec::new()));
    let sleeper = Sleeper {
        events: events.clone(),
        rewake: 0,
    };
    (sleeper, events)
}

#[test]
fn wakes_coalesce_and_are_told_after_the_callback_that_asked() {
    let (protocol, events) = sleeper();
    let mut h = Harness::new(protocol);
    h.feed(b"wake me twice");
    assert_eq!(*events.borrow(), ["data", "data returns", "woken"]);
}

#[test]
fn another_connection_or_a_timer_wakes_a_connection_by_id() {
    let mut test = TestReactor::new();
    let (protocol, events) = sleeper();
    let sleeping = test.connect(protocol);
    let id = sleeping.id();

    /// Wakes `id` whenever it receives anything.
    struct Waker(ConnectionId);
    impl Protocol for Waker {
        fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
            assert!(cx.reactor().wake(self.0));
        }
    }
    let waker = test.connect(Waker(id));
    test.feed(&waker, b"go");
    assert_eq!(*events.borrow(), ["woken"]);

    test.reactor()
        .call_later(Duration::from_secs(1), move |reactor| {
            reactor.wake(id);
        });
    test.advance(Duration::from_secs(1));
    assert_eq!(*events.borrow(), ["woken", "woken"]);
}

#[test]
fn a_protocol_that_wakes_itself_is_told_once_per_turn() {
    let (mut protocol, events) = sleeper();
    protocol.rewake = 3;
    let mut test = TestReactor::new();
    let connection = test.connect(protocol);
    test.reactor().wake(connection.id());
    test.reactor().iterate(Duration::ZERO).unwrap();
    assert_eq!(events.borrow().len(), 1, "one woken per turn");
    test.run_pending();
    assert_eq!(events.borrow().len(), 4);
}

#[test]
fn a_stale_id_is_not_woken() {
    let mut test = TestReactor::new();
    let (protocol, events) = sleeper();
    let connection = test.connect(protocol);
    test.reactor().abort_connection(connection.id());
    test.run_pending();
    assert!(connection.is_closed());
    assert!(!test.reactor().wake(connection.id()));
    test.run_pending();
    assert!(events.borrow().is_empty());
}

/// Writes `size` bytes when it gets data, and watches them leave if asked.
struct Producer {
    events: Rc<RefCell<Vec<String>>>,
    watch: bool,
}

impl Protocol for Producer {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.watch_writes(self.watch);
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(&vec![7; data.len() * 1000]);
    }

    fn write_progress(&mut self, _cx: &mut Context<'_>, progress: WriteProgress) {
        self.events.borrow_mut().push(format!(
            "{} {} {}",
            progress.sent, progress.queued, progress.drained
        ));
    }
}

fn producer(watch: bool) -> (Harness<Producer>, Rc<RefCell<Vec<String>>>) {
    let events = Rc::new(RefCell::new(Vec::new()));
    let producer = Producer {
        events: events.clone(),
        watch,
    };
    (Harness::new(producer), events)
}

#[test]
fn a_watched_connection_hears_each_flush_that_sends_and_when_all_has_left() {
    let (mut h, events) = producer(true);
    h.connection().set_write_room(Some(4000));
    h.feed(b"ten bytes!"); // 10,000 bytes to write; the peer takes 4,000
    assert_eq!(*events.borrow(), ["4000 6000 false"]);
    h.connection().set_write_room(Some(5000));
    h.test_reactor().run_pending();
    assert_eq!(*events.borrow(), ["4000 6000 false", "5000 1000 false"]);
    h.connection().set_write_room(None);
    h.test_reactor().run_pending();
    assert_eq!(
        *events.borrow(),
        ["4000 6000 false", "5000 1000 false", "1000 0 true"]
    );
    assert_eq!(h.take_written().len(), 10_000);
}

#[test]
fn a_flush_that_sends_nothing_is_not_reported_nor_is_an_unwatched_one() {
    let (mut h, events) = producer(true);
    h.connection().set_write_room(Some(0));
    h.feed(b"x");
    assert!(events.borrow().is_empty(), "{:?}", events.borrow());

    let (mut h, events) = producer(false);
    h.feed(b"x");
    assert_eq!(h.take_written().len(), 1000);
    assert!(events.borrow().is_empty());
}

/// Wakes itself in `connection_made`, then again from `woken`, `rewake` times.
struct WokenAtBirth {
    woken: Rc<RefCell<usize>>,
    rewake: usize,
}

impl Protocol for WokenAtBirth {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.wake();
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn woken(&mut self, cx: &mut Context<'_>) {
        *self.woken.borrow_mut() += 1;
        if self.rewake > 0 {
            self.rewake -= 1;
            cx.wake();
        }
    }
}

#[test]
fn a_wake_from_connection_made_is_told_once_and_a_rewake_waits_for_the_next_turn() {
    let woken = Rc::new(RefCell::new(0));
    let protocol = WokenAtBirth {
        woken: woken.clone(),
        rewake: 1,
    };
    let mut reactor = crate::Reactor::with_clock(crate::ManualClock::new()).unwrap();
    let peer = Rc::new(RefCell::new(crate::testing::MemoryPeer::new(1)));
    // The harness's own `connect` runs turns until nothing is left: one turn is looked at here.
    reactor.insert_memory(peer, Box::new(protocol)).unwrap();
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(
        *woken.borrow(),
        1,
        "a wake asked from woken is told on the next turn"
    );
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(*woken.borrow(), 2);
}

#[test]
fn a_wake_sent_through_the_handle_from_a_timer_is_told_before_advance_returns() {
    let (protocol, events) = sleeper();
    let mut test = TestReactor::new();
    let connection = test.connect(protocol);
    let id = connection.id();
    // A drop, say, where only the handle can reach the connection (the HTTP server's
    // responders do this), made from a timer: the wake waits in the handle's queue.
    let handle = test.reactor().handle();
    test.reactor()
        .call_later(Duration::from_secs(1), move |_| handle.wake(id).unwrap());
    test.advance(Duration::from_secs(1));
    assert_eq!(*events.borrow(), ["woken"]);
}

#[test]
fn a_thread_waking_in_a_loop_queues_one_wake_per_connection() {
    let (protocol, events) = sleeper();
    let mut test = TestReactor::new();
    let connection = test.connect(protocol);
    let (id, handle) = (connection.id(), test.reactor().handle());
    std::thread::spawn(move || {
        for _ in 0..10_000 {
            handle.wake(id).unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(test.reactor().threads.take_sent().wakes.len(), 1);
    test.reactor().wake(id);
    test.run_pending();
    assert_eq!(*events.borrow(), ["woken"]);
}
