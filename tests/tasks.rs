//! Async tasks on the reactor: spawned from the reactor, from a task and from another thread;
//! woken from the reactor's thread and from others; sleeping on the manual clock; aborted;
//! panicking without taking the reactor down; dropped with the reactor in spawn order.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use common::run_until;
use torsion::task::{Elapsed, JoinHandle};
use torsion::{ManualClock, Reactor};

/// Turns `reactor` until `handle`'s task has ended, and returns its result.
fn finish<T>(
    reactor: &mut Reactor,
    mut handle: JoinHandle<T>,
) -> Result<T, torsion::task::JoinError> {
    run_until(reactor, "the task to end", || handle.is_finished());
    let waker = Waker::noop();
    match Pin::new(&mut handle).poll(&mut Context::from_waker(waker)) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("finished but pending"),
    }
}

#[test]
fn a_task_runs_to_its_output_and_its_handle_gives_it() {
    let mut reactor = Reactor::new().unwrap();
    let handle = reactor.spawn_task(async { 6 * 7 });
    assert!(!handle.is_finished(), "spawned, not yet polled");
    assert_eq!(finish(&mut reactor, handle), Ok(42));
    assert_eq!(reactor.tasks_alive(), 0);
}

#[test]
fn a_task_awaits_another_task_it_spawned() {
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let handle = reactor.spawn_task(async move {
        let inner = local.spawn_task(async { "inner" });
        let got = inner.await.unwrap();
        format!("outer saw {got}")
    });
    assert_eq!(finish(&mut reactor, handle).unwrap(), "outer saw inner");
}

#[test]
fn sleeps_follow_the_manual_clock_and_a_timeout_drops_what_it_waited_for() {
    let clock = ManualClock::new();
    let mut reactor = Reactor::with_clock(clock.clone()).unwrap();
    let local = reactor.local_handle();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let handle = reactor.spawn_task(async move {
        local.sleep(Duration::from_secs(10)).await;
        l.borrow_mut().push("slept 10 s");
        let slow = local.sleep(Duration::from_secs(60));
        let timed = local.timeout(Duration::from_secs(5), slow).await;
        l.borrow_mut().push("timed out");
        timed
    });
    for _ in 0..5 {
        reactor.iterate(Duration::ZERO).unwrap();
    }
    assert!(log.borrow().is_empty(), "no time has passed");
    clock.advance(Duration::from_secs(10));
    reactor.iterate(Duration::ZERO).unwrap();
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(*log.borrow(), ["slept 10 s"]);
    clock.advance(Duration::from_millis(4_999));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(log.borrow().len(), 1, "the timeout has 1 ms left");
    clock.advance(Duration::from_millis(1));
    assert_eq!(finish(&mut reactor, handle), Ok(Err(Elapsed)));
}

#[test]
fn a_sleep_dropped_before_its_end_cancels_its_timer() {
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let handle = reactor.spawn_task(async move {
        let long = local.sleep(Duration::from_secs(3600));
        local.timeout(Duration::from_millis(1), long).await
    });
    assert_eq!(finish(&mut reactor, handle), Ok(Err(Elapsed)));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(reactor.next_timeout(), None, "no timer left behind");
}

#[test]
fn a_task_calls_the_reactor_and_gets_the_answer_in_the_same_turn() {
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let handle = reactor.spawn_task(async move {
        let port = local
            .call(|r| r.listen_tcp(common::any_loopback_port(), || Silent))
            .await
            .unwrap();
        port.local_addr().port()
    });
    reactor.iterate(Duration::ZERO).unwrap();
    assert!(
        handle.is_finished(),
        "the call ran right after the task yielded"
    );
    assert_ne!(finish(&mut reactor, handle).unwrap(), 0);
}

#[test]
fn a_task_woken_from_another_thread_runs_on_the_reactor_thread() {
    let mut reactor = Reactor::new().unwrap();
    let shared: Arc<Mutex<(Option<u32>, Option<Waker>)>> = Arc::default();
    let s = shared.clone();
    let reactor_thread = thread::current().id();
    let handle = reactor.spawn_task(std::future::poll_fn(move |cx| {
        assert_eq!(thread::current().id(), reactor_thread);
        let mut state = s.lock().unwrap();
        match state.0.take() {
            Some(value) => Poll::Ready(value),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }));
    reactor.iterate(Duration::ZERO).unwrap();
    let waker = shared
        .lock()
        .unwrap()
        .1
        .take()
        .expect("polled once, waker kept");
    let other = thread::spawn(move || {
        shared.lock().unwrap().0 = Some(7);
        waker.wake();
    });
    other.join().unwrap();
    // The wake must end the reactor's wait: one blocking turn is enough.
    reactor.iterate(None).unwrap();
    assert_eq!(finish(&mut reactor, handle), Ok(7));
}

#[test]
fn a_task_spawned_from_another_thread_sends_its_output_back() {
    let mut reactor = Reactor::new().unwrap();
    let handle = reactor.handle();
    let other = thread::spawn(move || {
        let task = handle.spawn_task(|local| async move {
            local.sleep(Duration::from_millis(1)).await;
            thread::current().name().map(str::to_string)
        });
        task.wait()
    });
    run_until(&mut reactor, "the other thread to get its answer", || {
        other.is_finished()
    });
    let name = other.join().unwrap().unwrap();
    assert_eq!(
        name,
        thread::current().name().map(str::to_string),
        "ran on the reactor thread"
    );
}

#[test]
fn an_aborted_task_is_dropped_and_its_handle_says_cancelled() {
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let dropped = Rc::new(RefCell::new(false));
    let guard = DropFlag(dropped.clone());
    let handle = reactor.spawn_task(async move {
        let _guard = guard;
        local.sleep(Duration::from_secs(3600)).await;
    });
    reactor.iterate(Duration::ZERO).unwrap();
    handle.abort();
    let result = finish(&mut reactor, handle);
    assert!(result.unwrap_err().is_cancelled());
    assert!(*dropped.borrow());
    assert_eq!(reactor.tasks_alive(), 0);
}

#[test]
fn a_panicking_task_is_reported_and_the_reactor_goes_on() {
    let mut reactor = Reactor::new().unwrap();
    let bad = reactor.spawn_task(async {
        panic!("task failure on purpose");
    });
    let good = reactor.spawn_task(async { "still here" });
    let error = finish(&mut reactor, bad).unwrap_err();
    assert!(error.is_panic(), "{error}");
    assert!(
        error.to_string().contains("task failure on purpose"),
        "{error}"
    );
    assert_eq!(finish(&mut reactor, good), Ok("still here"));
}

/// A protocol that does nothing.
struct Silent;

impl torsion::Protocol for Silent {
    fn data_received(&mut self, _cx: &mut torsion::Context<'_>, _data: &[u8]) {}
}

/// Records its name in a shared log when dropped.
struct DropLog(&'static str, Rc<RefCell<Vec<&'static str>>>);

impl Drop for DropLog {
    fn drop(&mut self) {
        self.1.borrow_mut().push(self.0);
    }
}

struct DropFlag(Rc<RefCell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.borrow_mut() = true;
    }
}

#[test]
fn tasks_pending_when_the_reactor_is_dropped_are_dropped_in_spawn_order() {
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut handles = Vec::new();
    for name in ["first", "second", "third"] {
        let guard = DropLog(name, log.clone());
        let local = local.clone();
        handles.push(reactor.spawn_task(async move {
            let _guard = guard;
            local.sleep(Duration::from_secs(3600)).await;
        }));
    }
    // The second finishes early: its slot is reused by nothing, order still holds.
    reactor.iterate(Duration::ZERO).unwrap();
    drop(reactor);
    assert_eq!(*log.borrow(), ["first", "second", "third"]);
    for handle in handles {
        assert!(handle.is_finished());
    }
}

/// Wakes itself and yields, forever, counting its polls.
struct Spinner(Rc<std::cell::Cell<u64>>);

impl Future for Spinner {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.set(self.0.get() + 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_task_that_keeps_waking_itself_cannot_hold_the_loop_from_its_timers() {
    let mut reactor = Reactor::new().unwrap();
    let polls = Rc::new(std::cell::Cell::new(0));
    let spinner = reactor.spawn_task(Spinner(polls.clone()));
    let fired = Rc::new(std::cell::Cell::new(false));
    let f = fired.clone();
    reactor.call_later(Duration::from_millis(20), move |_| f.set(true));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(polls.get(), 128, "one turn's budget of polls");
    run_until(
        &mut reactor,
        "the timer to fire beside the spinning task",
        || fired.get(),
    );
    spinner.abort();
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(reactor.tasks_alive(), 0);
}
