//! Async tasks: spawning and waking on torsion's reactor against tokio's current-thread
//! runtime, in one run, on one thread each.
//!
//! Three loads, each timed in thread CPU time and divided by its operations:
//!
//! - *spawn*: a driver task spawns `--tasks` tasks that each return a number, then awaits
//!   every handle in spawn order (a spawn, a poll, a completion, a wake of the driver);
//! - *yield*: one task that wakes itself and yields `--wakes` times (a wake and a re-poll
//!   from the same thread, the cost of a task woken by a protocol callback);
//! - *ping-pong*: two tasks handing a token back and forth `--wakes / 2` times through a
//!   shared cell, each waking the other (a wake of another task and its poll).
//!
//! torsion: `Reactor::spawn_task` and `LocalHandle::spawn_task`, the reactor turned with
//! `iterate` until the driver ends. tokio: a current-thread runtime (`enable_all`) with a
//! `LocalSet` (`spawn_local`: its tasks need not be `Send`, as torsion's), and for *spawn*
//! also plain `tokio::spawn` on the runtime (its `Send` path). Rounds alternate the
//! runtimes; the report gives the median ns per operation and the median of the per-round
//! ratios.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use torsion::Reactor;

use crate::cpu::thread_cpu_ns_exact;
use crate::stats::{max, median, min};

/// What `tasks` runs.
#[derive(Debug, Clone)]
pub struct TasksConfig {
    pub rounds: usize,
    pub tasks: usize,
    pub wakes: usize,
}

/// Parses `tasks [--rounds N] [--tasks N] [--wakes N]`.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<TasksConfig, String> {
    let mut config = TasksConfig {
        rounds: 7,
        tasks: 200_000,
        wakes: 1_000_000,
    };
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let n = value
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{arg}: bad value {value:?}"))?;
        match arg.as_str() {
            "--rounds" => config.rounds = n,
            "--tasks" => config.tasks = n,
            "--wakes" => config.wakes = n,
            _ => return Err(format!("tasks: unknown option {arg}")),
        }
    }
    Ok(config)
}

/// Wakes itself once and yields: the next poll is ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The token two tasks pass: whose turn it is, and the waker of the one waiting.
#[derive(Default)]
struct Baton {
    turn: Cell<u8>,
    waiting: RefCell<[Option<Waker>; 2]>,
}

/// Task `me` of two: waits for its turn, passes it, `rounds` times.
async fn pass_baton(baton: Rc<Baton>, me: u8, rounds: usize) {
    for _ in 0..rounds {
        std::future::poll_fn(|cx| {
            if baton.turn.get() == me {
                Poll::Ready(())
            } else {
                baton.waiting.borrow_mut()[me as usize] = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        baton.turn.set(1 - me);
        if let Some(other) = baton.waiting.borrow_mut()[1 - me as usize].take() {
            other.wake();
        }
    }
}

/// The loads, as async blocks over a spawner.
async fn yield_load(wakes: usize) {
    for _ in 0..wakes {
        YieldOnce(false).await;
    }
}

/// Runs `make`'s driver on a fresh reactor until it ends; thread CPU ns.
fn on_torsion<F: Future<Output = ()> + 'static>(make: impl FnOnce(&Reactor) -> F) -> u64 {
    let mut reactor = Reactor::new().expect("reactor");
    let driver = make(&reactor);
    let start = thread_cpu_ns_exact();
    let handle = reactor.spawn_task(driver);
    while !handle.is_finished() {
        reactor.iterate(Duration::ZERO).expect("turn");
    }
    thread_cpu_ns_exact() - start
}

/// Runs a driver on a fresh tokio current-thread runtime inside a `LocalSet`; thread CPU ns.
fn on_tokio_local<F: Future<Output = ()> + 'static>(driver: F) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let start = thread_cpu_ns_exact();
    local.block_on(&runtime, driver);
    thread_cpu_ns_exact() - start
}

/// The spawn load on torsion.
fn torsion_spawn(tasks: usize) -> u64 {
    on_torsion(|reactor| {
        let local = reactor.local_handle();
        async move {
            let handles: Vec<_> = (0..tasks)
                .map(|i| local.spawn_task(async move { i as u64 }))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("task");
            }
            assert_eq!(sum, (tasks as u64 - 1) * tasks as u64 / 2);
        }
    })
}

/// The spawn load on tokio: `spawn_local` in a `LocalSet`, or `spawn` on the runtime.
fn tokio_spawn(tasks: usize, local_set: bool) -> u64 {
    let driver = async move {
        let mut sum = 0;
        if local_set {
            let handles: Vec<_> = (0..tasks)
                .map(|i| tokio::task::spawn_local(async move { i as u64 }))
                .collect();
            for handle in handles {
                sum += handle.await.expect("task");
            }
        } else {
            let handles: Vec<_> = (0..tasks)
                .map(|i| tokio::spawn(async move { i as u64 }))
                .collect();
            for handle in handles {
                sum += handle.await.expect("task");
            }
        }
        assert_eq!(sum, (tasks as u64 - 1) * tasks as u64 / 2);
    };
    if local_set {
        return on_tokio_local(driver);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = thread_cpu_ns_exact();
    runtime.block_on(driver);
    thread_cpu_ns_exact() - start
}

fn torsion_ping_pong(rounds: usize) -> u64 {
    on_torsion(|reactor| {
        let local = reactor.local_handle();
        async move {
            let baton = Rc::new(Baton::default());
            let a = local.spawn_task(pass_baton(baton.clone(), 0, rounds));
            let b = local.spawn_task(pass_baton(baton, 1, rounds));
            a.await.expect("a");
            b.await.expect("b");
        }
    })
}

fn tokio_ping_pong(rounds: usize) -> u64 {
    on_tokio_local(async move {
        let baton = Rc::new(Baton::default());
        let a = tokio::task::spawn_local(pass_baton(baton.clone(), 0, rounds));
        let b = tokio::task::spawn_local(pass_baton(baton, 1, rounds));
        a.await.expect("a");
        b.await.expect("b");
    })
}

/// One load's samples: ns per operation for each runtime, per round.
struct Row {
    name: &'static str,
    torsion: Vec<f64>,
    tokio: Vec<f64>,
    /// tokio's `Send` spawn path, for the spawn load only.
    tokio_send: Vec<f64>,
}

impl Row {
    fn new(name: &'static str) -> Row {
        Row {
            name,
            torsion: Vec::new(),
            tokio: Vec::new(),
            tokio_send: Vec::new(),
        }
    }

    fn print(&self) {
        let ratios: Vec<f64> = self
            .torsion
            .iter()
            .zip(&self.tokio)
            .map(|(t, k)| t / k)
            .collect();
        print!(
            "{:<10} torsion {:>7.1} ns ({:.1}..{:.1})   tokio LocalSet {:>7.1} ns ({:.1}..{:.1})   \
             ratio {:.2} (median of rounds {:.2})",
            self.name,
            median(&self.torsion),
            min(&self.torsion),
            max(&self.torsion),
            median(&self.tokio),
            min(&self.tokio),
            max(&self.tokio),
            median(&self.torsion) / median(&self.tokio),
            median(&ratios),
        );
        if !self.tokio_send.is_empty() {
            print!(
                "   tokio spawn {:>7.1} ns, ratio {:.2}",
                median(&self.tokio_send),
                median(&self.torsion) / median(&self.tokio_send)
            );
        }
        println!();
    }
}

/// Runs every load for every round, alternating which runtime goes first.
pub fn run(config: &TasksConfig) {
    println!(
        "tasks: {} rounds; spawn {} tasks; yield {} wakes; ping-pong {} wakes \
         (thread CPU ns per operation, lower is better)",
        config.rounds, config.tasks, config.wakes, config.wakes
    );
    let (tasks, wakes) = (config.tasks, config.wakes);
    let mut rows = [Row::new("spawn"), Row::new("yield"), Row::new("ping-pong")];
    for round in 0..config.rounds {
        let per = |ns: u64, ops: usize| ns as f64 / ops as f64;
        let torsion_first = round % 2 == 0;
        for first in [torsion_first, !torsion_first] {
            if first {
                rows[0].torsion.push(per(torsion_spawn(tasks), tasks));
                rows[1]
                    .torsion
                    .push(per(on_torsion(|_| yield_load(wakes)), wakes));
                rows[2]
                    .torsion
                    .push(per(torsion_ping_pong(wakes / 2), wakes));
            } else {
                rows[0].tokio.push(per(tokio_spawn(tasks, true), tasks));
                rows[0]
                    .tokio_send
                    .push(per(tokio_spawn(tasks, false), tasks));
                rows[1]
                    .tokio
                    .push(per(on_tokio_local(yield_load(wakes)), wakes));
                rows[2].tokio.push(per(tokio_ping_pong(wakes / 2), wakes));
            }
        }
    }
    for row in &rows {
        row.print();
    }
}
