//! Futures from crates that need only `std::task::Waker` run as torsion tasks, woken from
//! other threads: `futures-channel`'s oneshot and mpsc, `async-channel`, `event-listener`.
//! (Futures that need tokio's runtime, its sockets and timers, do not run here: see the
//! async guide page for the way across.)

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::run_until;
use torsion::Reactor;

#[test]
fn a_futures_channel_oneshot_and_mpsc_feed_a_task_from_another_thread() {
    let mut reactor = Reactor::new().unwrap();
    let (answer, answered) = futures_channel::oneshot::channel::<u32>();
    let (mut send, mut receive) = futures_channel::mpsc::channel::<u32>(4);
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let task = reactor.spawn_task(async move {
        let first = answered.await.unwrap();
        g.borrow_mut().push(first);
        while let Ok(n) = receive.recv().await {
            g.borrow_mut().push(n);
        }
    });
    let sender = thread::spawn(move || {
        answer.send(1).unwrap();
        for n in 2..=20 {
            // Bounded: the sender waits while the task has not taken what is queued.
            loop {
                match send.try_send(n) {
                    Ok(()) => break,
                    Err(e) if e.is_full() => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        }
    });
    run_until(&mut reactor, "the task to take every message", || {
        task.is_finished() || got.borrow().len() == 20
    });
    sender.join().unwrap();
    run_until(&mut reactor, "the task to see the channel closed", || {
        task.is_finished()
    });
    assert_eq!(*got.borrow(), (1..=20).collect::<Vec<_>>());
}

#[test]
fn an_async_channel_carries_work_both_ways_between_a_thread_and_a_task() {
    let mut reactor = Reactor::new().unwrap();
    let (to_task, from_thread) = async_channel::bounded::<String>(1);
    let (to_thread, from_task) = async_channel::unbounded::<usize>();
    let task = reactor.spawn_task(async move {
        let mut total = 0;
        while let Ok(word) = from_thread.recv().await {
            total += word.len();
            to_thread.send(word.len()).await.unwrap();
        }
        total
    });
    let worker = thread::spawn(move || {
        let mut lengths = Vec::new();
        for word in ["one", "three", "eleven"] {
            to_task.send_blocking(word.to_string()).unwrap();
            lengths.push(from_task.recv_blocking().unwrap());
        }
        lengths
    });
    run_until(&mut reactor, "the worker to get its answers", || {
        worker.is_finished()
    });
    assert_eq!(worker.join().unwrap(), [3, 5, 6]);
    run_until(&mut reactor, "the task to end", || task.is_finished());
}

#[test]
fn an_event_listener_notified_from_another_thread_wakes_a_task() {
    let mut reactor = Reactor::new().unwrap();
    let event = Arc::new(event_listener::Event::new());
    let flag = Arc::new(AtomicBool::new(false));
    let (e, f) = (event.clone(), flag.clone());
    let task = reactor.spawn_task(async move {
        loop {
            if f.load(Ordering::Acquire) {
                return "notified";
            }
            let listener = e.listen();
            if f.load(Ordering::Acquire) {
                return "notified";
            }
            listener.await;
        }
    });
    reactor.iterate(std::time::Duration::ZERO).unwrap();
    assert!(!task.is_finished(), "waiting for the event");
    let notifier = thread::spawn(move || {
        flag.store(true, Ordering::Release);
        event.notify(usize::MAX);
    });
    notifier.join().unwrap();
    run_until(&mut reactor, "the task to wake", || task.is_finished());
}
