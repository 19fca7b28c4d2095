//! Benchmark C: a million timers scheduled, half of them cancelled, the rest fired, on
//! torsion's reactor and on tokio's timer wheel, side by side in one run.
//!
//! Every sample runs on a fresh thread with a fresh reactor or runtime:
//!
//! 1. *schedule*: N timers, timer `i` with the delay `lead + window * perm(i) / N`, through the
//!    relative API each offers (`Reactor::call_later`, `tokio::time::sleep`,
//!    `DelayQueue::insert`), each of which reads the clock once;
//! 2. *cancel*: every other timer (odd `i`) cancelled, and whatever the cancel frees freed;
//! 3. *fire*: the other N/2 run, each counting itself;
//! 4. *cleanup*: the handles, then the reactor or runtime, dropped.
//!
//! `lead` is longer than the schedule and cancel phases take, so nothing comes due before the
//! fire phase (tokio would otherwise fire timers while they are still being scheduled, and
//! its cancels would hit finished tasks). In the default *burst* mode the thread then sleeps
//! until the last deadline has passed, so the fire phase finds every timer due and its time
//! is the cost of firing, not waiting. With `--live` it does not sleep: the fire phase waits
//! for the deadlines as a server would, and its CPU time and how late the last timer ran are
//! what tell the cost.

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::time::DelayQueue;
use torsion::{DelayedCall, Reactor};

use crate::alloc_counter;
use crate::cpu::thread_cpu_ns_exact;
use crate::stats::{max, median, min};

/// Longest any one phase may take before the benchmark gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long past the last deadline a burst-mode sample sleeps before firing, so that every
/// timer is due (tokio rounds deadlines up to the next millisecond).
const BURST_SLACK: Duration = Duration::from_millis(2);

/// Multiplier of the scrambled order: a prime, so `i * P mod N` is a permutation of `0..N`
/// for every N it does not divide.
const SCRAMBLE: u64 = 2_654_435_761;

/// Which timer implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// torsion: `Reactor::call_later` with a closure, `DelayedCall::cancel`, fired by
    /// `Reactor::iterate`.
    Torsion,
    /// tokio: one spawned task per timer that awaits `tokio::time::sleep` and then runs the
    /// callback's body; cancelled with `JoinHandle::abort`.
    Tokio,
    /// tokio-util's `DelayQueue` in one task: `insert`, `remove`, `poll_expired`.
    DelayQueue,
}

impl TimerKind {
    /// All implementations, in their default order.
    pub const ALL: [TimerKind; 3] = [TimerKind::Torsion, TimerKind::Tokio, TimerKind::DelayQueue];

    /// The short name, as printed and as accepted by `--impls`.
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Torsion => "torsion",
            TimerKind::Tokio => "tokio",
            TimerKind::DelayQueue => "delay-queue",
        }
    }

    /// The implementation named `name`, if any.
    pub fn from_name(name: &str) -> Option<TimerKind> {
        TimerKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct TimersConfig {
    /// Timers scheduled per sample; every other one is cancelled.
    pub timers: usize,
    /// Rounds; each runs every implementation once.
    pub rounds: usize,
    /// The shortest delay: longer than scheduling and cancelling take.
    pub lead: Duration,
    /// The delays spread over `lead .. lead + window`.
    pub window: Duration,
    /// Delays in scheduling order (each timer later than the one before) instead of
    /// scrambled.
    pub sorted: bool,
    /// Fire while the deadlines come due instead of after they all have.
    pub live: bool,
    /// The implementations compared.
    pub kinds: Vec<TimerKind>,
    /// Whether to measure heap bytes per pending timer (one extra untimed sample each).
    pub memory: bool,
    /// A new reactor or runtime for every sample, instead of one per implementation kept
    /// from sample to sample.
    pub fresh: bool,
}

impl Default for TimersConfig {
    fn default() -> Self {
        TimersConfig {
            timers: 1_000_000,
            rounds: 5,
            lead: Duration::ZERO, // filled in from `timers` by `effective_lead`
            window: Duration::from_millis(100),
            sorted: false,
            live: false,
            kinds: TimerKind::ALL.to_vec(),
            memory: true,
            fresh: false,
        }
    }
}

impl TimersConfig {
    /// The lead to use: as given, or by default 2.5 µs per timer plus 100 ms (2.6 s for a
    /// million), about twice what the slowest implementation (tokio's spawned tasks) needs to
    /// schedule and cancel.
    pub fn effective_lead(&self) -> Duration {
        if self.lead.is_zero() {
            Duration::from_millis(100)
                + Duration::from_nanos(2500) * u32::try_from(self.timers).unwrap_or(u32::MAX)
        } else {
            self.lead
        }
    }

    /// The delay of every timer, by scheduling index.
    fn delays(&self) -> Vec<Duration> {
        let n = self.timers as u64;
        let lead = self.effective_lead();
        let window = self.window.as_nanos() as u64;
        let mut scramble = SCRAMBLE;
        while gcd(scramble, n) != 1 {
            scramble += 2;
        }
        (0..n)
            .map(|i| {
                let slot = if self.sorted {
                    i
                } else {
                    ((u128::from(i) * u128::from(scramble)) % u128::from(n)) as u64
                };
                let offset = (u128::from(window) * u128::from(slot) / u128::from(n)) as u64;
                lead + Duration::from_nanos(offset)
            })
            .collect()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// What the benchmark hands each implementation: the delays, and which of the live timers
/// has the longest one (whose deadline the lateness is measured from).
struct Plan {
    delays: Vec<Duration>,
    /// Index of the longest delay among the timers that are not cancelled (even indices).
    last: usize,
    /// Sleep past the last deadline before firing (burst mode).
    burst: bool,
    /// Measure heap growth instead of time (the counting allocator is on): stop after the
    /// cancel phase.
    memory: bool,
}

impl Plan {
    fn new(config: &TimersConfig) -> Plan {
        let delays = config.delays();
        let last = (0..delays.len())
            .step_by(2)
            .max_by_key(|&i| (delays[i], i))
            .unwrap_or(0);
        Plan {
            delays,
            last,
            burst: !config.live,
            memory: false,
        }
    }

    fn cancels(&self) -> usize {
        self.delays.len() / 2
    }

    fn fires(&self) -> usize {
        self.delays.len() - self.cancels()
    }

    /// The first possible deadline of a sample that started scheduling at `start`.
    fn first_due(&self, start: Instant) -> Instant {
        start + self.delays.iter().min().copied().unwrap_or_default()
    }
}

/// Wall and CPU time of one phase.
#[derive(Clone, Copy, Debug, Default)]
struct Phase {
    wall: Duration,
    cpu_ns: u64,
}

/// Marks phase boundaries: wall clock and the thread's CPU time.
struct Stopwatch {
    wall: Instant,
    cpu_ns: u64,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            cpu_ns: thread_cpu_ns_exact(),
            wall: Instant::now(),
        }
    }

    /// The phase since the last mark; starts the next one.
    fn lap(&mut self) -> Phase {
        let wall = Instant::now();
        let cpu_ns = thread_cpu_ns_exact();
        let phase = Phase {
            wall: wall - self.wall,
            cpu_ns: cpu_ns.saturating_sub(self.cpu_ns),
        };
        self.wall = wall;
        self.cpu_ns = cpu_ns;
        phase
    }

    /// Starts the next phase now without ending one (after a deliberate sleep).
    fn restart(&mut self) {
        *self = Stopwatch::start();
    }
}

/// Heap bytes (counting allocator) at the phase boundaries of a memory sample.
#[derive(Clone, Copy, Debug, Default)]
struct Heap {
    /// Growth from before scheduling to after: N pending timers.
    scheduled: isize,
    /// Growth from before scheduling to after cancelling: N/2 pending.
    cancelled: isize,
}

impl Heap {
    fn reading(plan: &Plan) -> isize {
        if plan.memory {
            alloc_counter::live_bytes()
        } else {
            0
        }
    }
}

/// One measured sample.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    schedule: Phase,
    cancel: Phase,
    fire: Phase,
    cleanup: Phase,
    /// The deliberate sleep between cancel and fire (burst mode), not counted anywhere.
    waited: Duration,
    /// When the last timer ran, after its deadline.
    late: Duration,
    /// Time left before the first deadline when the cancel phase ended (must be positive).
    margin: Duration,
    heap: Heap,
}

impl Sample {
    fn total_wall(&self) -> Duration {
        self.schedule.wall + self.cancel.wall + self.fire.wall + self.cleanup.wall
    }

    fn total_cpu_ns(&self) -> u64 {
        self.schedule.cpu_ns + self.cancel.cpu_ns + self.fire.cpu_ns + self.cleanup.cpu_ns
    }
}

/// One implementation's reactor or runtime, kept from sample to sample as a long-running
/// program keeps it: the first sample grows its tables and the allocator's pool, the later
/// ones find them grown.
enum Engine {
    Torsion(Box<Reactor>),
    Tokio(tokio::runtime::Runtime),
    DelayQueue(tokio::runtime::Runtime, DelayQueue<usize>),
}

impl Engine {
    fn new(kind: TimerKind) -> io::Result<Engine> {
        Ok(match kind {
            TimerKind::Torsion => Engine::Torsion(Box::new(Reactor::new()?)),
            TimerKind::Tokio => Engine::Tokio(tokio_runtime()?),
            TimerKind::DelayQueue => Engine::DelayQueue(tokio_runtime()?, DelayQueue::new()),
        })
    }

    fn sample(&mut self, plan: &Plan) -> io::Result<Sample> {
        match self {
            Engine::Torsion(reactor) => run_torsion(reactor, plan),
            Engine::Tokio(runtime) => run_tokio(runtime, plan),
            Engine::DelayQueue(runtime, queue) => run_delay_queue(runtime, queue, plan),
        }
    }
}

/// A thread of its own for one implementation, holding its [`Engine`] and running a sample
/// whenever asked.
struct Worker {
    kind: TimerKind,
    requests: Option<mpsc::Sender<Arc<Plan>>>,
    results: mpsc::Receiver<io::Result<Sample>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Worker {
    fn spawn(kind: TimerKind) -> io::Result<Worker> {
        let (requests, inbox) = mpsc::channel::<Arc<Plan>>();
        let (outbox, results) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("timers-{}", kind.name()))
            .spawn(move || {
                let mut engine = Engine::new(kind);
                for plan in inbox {
                    let result = match &mut engine {
                        Ok(engine) => engine.sample(&plan),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    if outbox.send(result).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Worker {
            kind,
            requests: Some(requests),
            results,
            thread: Some(thread),
        })
    }

    /// Runs one sample on the worker's engine and waits for it (bounded).
    fn sample(&self, plan: &Arc<Plan>) -> io::Result<Sample> {
        let gone = || io::Error::other(format!("the {} worker died", self.kind.name()));
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(Arc::clone(plan))
            .map_err(|_| gone())?;
        let longest = 4 * PHASE_TIMEOUT + plan.delays.iter().max().copied().unwrap_or_default();
        self.results.recv_timeout(longest).map_err(|_| gone())?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.requests = None; // ends the worker's loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Checks that nothing came due before the fire phase; returns the time that was left.
fn check_margin(plan: &Plan, start: Instant, fired: usize) -> io::Result<Duration> {
    let now = Instant::now();
    let first = plan.first_due(start);
    if fired > 0 || now >= first {
        return Err(io::Error::other(format!(
            "timers came due before the fire phase ({fired} fired; schedule and cancel took \
             {:.0} ms, the lead is {:.0} ms): rerun with a longer --lead",
            (now - start).as_secs_f64() * 1e3,
            (first - start).as_secs_f64() * 1e3,
        )));
    }
    Ok(first - now)
}

/// Burst mode: sleeps until `last_deadline` has passed. Returns how long it slept.
fn sleep_until_due(plan: &Plan, last_deadline: Instant) -> Duration {
    let start = Instant::now();
    if plan.burst {
        let until = last_deadline + BURST_SLACK;
        // Bounded: the deadline is at most lead + window away.
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            thread::sleep(left);
        }
    }
    start.elapsed()
}

/// torsion: `call_later` closures on a real-clock reactor, driven by `iterate`.
fn run_torsion(reactor: &mut Reactor, plan: &Plan) -> io::Result<Sample> {
    let fired = Rc::new(Cell::new(0usize));
    let last_fire: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
    let target = plan.fires();
    let mut handles: Vec<DelayedCall> = Vec::with_capacity(plan.delays.len());
    let mut sample = Sample::default();
    let heap_before = Heap::reading(plan);

    let start = Instant::now();
    let mut watch = Stopwatch::start();
    for &delay in &plan.delays {
        let fired = Rc::clone(&fired);
        let last_fire = Rc::clone(&last_fire);
        handles.push(reactor.call_later(delay, move |_: &mut Reactor| {
            let n = fired.get() + 1;
            fired.set(n);
            if n == target {
                last_fire.set(Some(Instant::now()));
            }
        }));
    }
    sample.schedule = watch.lap();
    sample.heap.scheduled = Heap::reading(plan) - heap_before;

    let mut cancelled = 0;
    for handle in handles.iter().skip(1).step_by(2) {
        cancelled += usize::from(handle.cancel(reactor));
    }
    sample.cancel = watch.lap();
    sample.heap.cancelled = Heap::reading(plan) - heap_before;
    if plan.memory {
        return Ok(sample);
    }
    if cancelled != plan.cancels() {
        return Err(io::Error::other(format!(
            "torsion cancelled {cancelled} of {} timers",
            plan.cancels()
        )));
    }
    sample.margin = check_margin(plan, start, fired.get())?;
    let last_deadline = handles[plan.last]
        .deadline(reactor)
        .ok_or_else(|| io::Error::other("the last timer is not pending"))?;

    sample.waited = sleep_until_due(plan, last_deadline);
    watch.restart();
    let give_up =
        Instant::now() + PHASE_TIMEOUT + plan.delays.iter().max().copied().unwrap_or_default();
    while fired.get() < target && Instant::now() < give_up {
        reactor.iterate(Duration::from_millis(100))?;
    }
    sample.fire = watch.lap();
    if fired.get() != target {
        return Err(io::Error::other(format!(
            "torsion fired {} of {target} timers",
            fired.get()
        )));
    }
    sample.late = last_fire.get().map_or(Duration::ZERO, |t| {
        t.saturating_duration_since(last_deadline)
    });

    drop(handles);
    sample.cleanup = watch.lap();
    Ok(sample)
}

/// What tokio's timer tasks share: counters, the instants the benchmark needs, and one
/// `Notify` per phase for the benchmark's own task.
struct TokioShared {
    /// Tasks polled once (so their `Sleep` is registered with the timer wheel).
    registered: AtomicUsize,
    /// Task futures dropped: by `abort` during the cancel phase.
    dropped: AtomicUsize,
    /// Timers fired.
    fired: AtomicUsize,
    timers: usize,
    cancels: usize,
    fires: usize,
    all_registered: Notify,
    all_cancelled: Notify,
    all_fired: Notify,
    /// The deadline of the task with the longest delay among those not cancelled.
    last_deadline: Mutex<Option<Instant>>,
    /// When the last timer ran.
    last_fire: Mutex<Option<Instant>>,
}

/// Lives in each timer task's future; counts the future's drop (the end of an aborted task).
struct TaskProbe(Arc<TokioShared>);

impl Drop for TaskProbe {
    fn drop(&mut self) {
        if self.0.dropped.fetch_add(1, Ordering::Relaxed) + 1 == self.0.cancels {
            self.0.all_cancelled.notify_one();
        }
    }
}

/// A current-thread runtime with the time driver, as a tokio user would build one.
fn tokio_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

/// Awaits `notified` for at most [`PHASE_TIMEOUT`].
async fn wait(notified: tokio::sync::futures::Notified<'_>, what: &str) -> io::Result<()> {
    tokio::time::timeout(PHASE_TIMEOUT, notified)
        .await
        .map_err(|_| io::Error::other(format!("timed out waiting until {what}")))
}

/// tokio: a spawned task per timer sleeping until its deadline, `JoinHandle::abort` to cancel.
fn run_tokio(runtime: &tokio::runtime::Runtime, plan: &Plan) -> io::Result<Sample> {
    let shared = Arc::new(TokioShared {
        registered: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
        fired: AtomicUsize::new(0),
        timers: plan.delays.len(),
        cancels: plan.cancels(),
        fires: plan.fires(),
        all_registered: Notify::new(),
        all_cancelled: Notify::new(),
        all_fired: Notify::new(),
        last_deadline: Mutex::new(None),
        last_fire: Mutex::new(None),
    });
    let mut sample = Sample::default();
    let mut handles = Vec::with_capacity(plan.delays.len());
    let heap_before = Heap::reading(plan);

    let mut watch = runtime.block_on(async {
        let start = Instant::now();
        let mut watch = Stopwatch::start();
        for (i, &delay) in plan.delays.iter().enumerate() {
            let probe = TaskProbe(Arc::clone(&shared));
            let is_last = i == plan.last;
            handles.push(tokio::spawn(async move {
                let shared = &probe.0;
                if shared.registered.fetch_add(1, Ordering::Relaxed) + 1 == shared.timers {
                    shared.all_registered.notify_one();
                }
                let sleep = tokio::time::sleep(delay);
                if is_last {
                    *lock(&shared.last_deadline) = Some(sleep.deadline().into_std());
                }
                sleep.await;
                if shared.fired.fetch_add(1, Ordering::Relaxed) + 1 == shared.fires {
                    *lock(&shared.last_fire) = Some(Instant::now());
                    shared.all_fired.notify_one();
                }
                drop(probe);
            }));
        }
        // The tasks register their sleeps when first polled, once this task waits.
        wait(
            shared.all_registered.notified(),
            "every timer is registered",
        )
        .await?;
        sample.schedule = watch.lap();
        sample.heap.scheduled = Heap::reading(plan) - heap_before;

        for handle in handles.iter().skip(1).step_by(2) {
            handle.abort();
        }
        // `abort` only marks and schedules a task: the runtime drops its future (and
        // deregisters its sleep) when it next runs it.
        wait(
            shared.all_cancelled.notified(),
            "every aborted task is dropped",
        )
        .await?;
        sample.cancel = watch.lap();
        sample.heap.cancelled = Heap::reading(plan) - heap_before;
        if plan.memory {
            return Ok(watch);
        }
        sample.margin = check_margin(plan, start, shared.fired.load(Ordering::Relaxed))?;
        let last_deadline = lock(&shared.last_deadline)
            .ok_or_else(|| io::Error::other("the last timer recorded no deadline"))?;

        // Blocks the runtime's only thread: nothing runs meanwhile.
        sample.waited = sleep_until_due(plan, last_deadline);
        watch.restart();
        wait(shared.all_fired.notified(), "every timer has fired").await?;
        sample.fire = watch.lap();
        sample.late = lock(&shared.last_fire).map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(last_deadline)
        });
        drop(handles);
        io::Result::Ok(watch)
    })?;
    sample.cleanup = watch.lap();
    Ok(sample)
}

/// Locks a mutex nobody panics while holding.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// tokio-util: one `DelayQueue` of the timers' indices in the benchmark's task.
fn run_delay_queue(
    runtime: &tokio::runtime::Runtime,
    queue: &mut DelayQueue<usize>,
    plan: &Plan,
) -> io::Result<Sample> {
    let mut sample = Sample::default();
    let mut keys = Vec::with_capacity(plan.delays.len());
    let heap_before = Heap::reading(plan);

    let mut watch = runtime.block_on(async {
        let start = Instant::now();
        let mut watch = Stopwatch::start();
        for (i, &delay) in plan.delays.iter().enumerate() {
            keys.push(queue.insert(i, delay));
        }
        sample.schedule = watch.lap();
        sample.heap.scheduled = Heap::reading(plan) - heap_before;

        for key in keys.iter().skip(1).step_by(2) {
            queue.remove(key);
        }
        sample.cancel = watch.lap();
        sample.heap.cancelled = Heap::reading(plan) - heap_before;
        if plan.memory {
            return Ok(watch);
        }
        sample.margin = check_margin(plan, start, 0)?;
        let last_deadline = queue.deadline(&keys[plan.last]).into_std();

        sample.waited = sleep_until_due(plan, last_deadline);
        watch.restart();
        let mut fired = 0;
        let mut last_fire = None;
        let expired = async {
            while let Some(expired) = poll_fn(|cx| queue.poll_expired(cx)).await {
                std::hint::black_box(expired.into_inner());
                fired += 1;
                if fired == plan.fires() {
                    last_fire = Some(Instant::now());
                }
            }
        };
        tokio::time::timeout(PHASE_TIMEOUT, expired)
            .await
            .map_err(|_| io::Error::other("timed out waiting for the delay queue"))?;
        sample.fire = watch.lap();
        if fired != plan.fires() {
            return Err(io::Error::other(format!(
                "the delay queue fired {fired} of {} timers",
                plan.fires()
            )));
        }
        sample.late = last_fire.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(last_deadline)
        });
        drop(keys);
        io::Result::Ok(watch)
    })?;
    sample.cleanup = watch.lap();
    Ok(sample)
}

/// Runs the timer benchmark and prints its tables.
pub fn run(config: &TimersConfig) -> io::Result<()> {
    let plan = Arc::new(Plan::new(config));
    let lead = config.effective_lead();
    println!();
    println!(
        "timers: 1 cold + {} measured rounds x {} implementations, {} timers per sample; {}",
        config.rounds,
        config.kinds.len(),
        config.timers,
        if config.fresh {
            "a new reactor/runtime on a new thread for every sample"
        } else {
            "each implementation keeps one reactor/runtime on a thread of its own"
        }
    );
    let mut workers = config
        .kinds
        .iter()
        .map(|&kind| Worker::spawn(kind))
        .collect::<io::Result<Vec<_>>>()?;
    let mut samples: Vec<(usize, TimerKind, Sample)> = Vec::new();
    // Round 0 is each engine's first sample (cold); rounds 1..=rounds are measured. With
    // `fresh`, every sample gets a new engine, so every round is like round 0.
    for round in 0..=config.rounds {
        let n = workers.len();
        for i in 0..n {
            let worker = &mut workers[(i + round) % n];
            if config.fresh && round > 0 {
                *worker = Worker::spawn(worker.kind)?;
            }
            let s = worker.sample(&plan)?;
            eprintln!(
                "  {:<5} {:<11} schedule {:>7.1} ms  cancel {:>6.1} ms  fire {:>7.1} ms  cleanup {:>6.1} ms  total {:>7.1} ms  CPU {:>7.1} ms  late {:>6.1} ms  (margin {:.0} ms)",
                if round == 0 {
                    "cold".to_string()
                } else {
                    format!("{round}/{}", config.rounds)
                },
                worker.kind.name(),
                ms(s.schedule.wall),
                ms(s.cancel.wall),
                ms(s.fire.wall),
                ms(s.cleanup.wall),
                ms(s.total_wall()),
                s.total_cpu_ns() as f64 / 1e6,
                ms(s.late),
                ms(s.margin),
            );
            samples.push((round, worker.kind, s));
        }
    }
    drop(workers);
    let memory = if config.memory {
        measure_memory(config)?
    } else {
        Vec::new()
    };
    print_table(config, lead, &samples, &memory);
    Ok(())
}

/// One untimed sample per implementation, each on a fresh engine, with the counting
/// allocator on.
fn measure_memory(config: &TimersConfig) -> io::Result<Vec<(TimerKind, Heap)>> {
    let mut plan = Plan::new(config);
    plan.memory = true;
    let plan = Arc::new(plan);
    let mut results = Vec::new();
    alloc_counter::enable();
    for &kind in &config.kinds {
        let s = Worker::spawn(kind).and_then(|worker| worker.sample(&plan));
        match s {
            Ok(s) => results.push((kind, s.heap)),
            Err(e) => {
                alloc_counter::disable();
                return Err(e);
            }
        }
    }
    alloc_counter::disable();
    Ok(results)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The columns of the table, each a value of a sample.
type Column = (&'static str, fn(&Sample) -> f64);

fn print_table(
    config: &TimersConfig,
    lead: Duration,
    samples: &[(usize, TimerKind, Sample)],
    memory: &[(TimerKind, Heap)],
) {
    let n = config.timers;
    let cancels = n / 2;
    let fires = n - cancels;
    println!();
    println!(
        "Timers: {n} scheduled with delays {:.0} ms + 0..{:.0} ms ({}), every other cancelled, {fires} fired; {}; {} rounds{}",
        ms(lead),
        ms(config.window),
        if config.sorted { "in order" } else { "scrambled" },
        if config.live {
            "live: fired as they come due"
        } else {
            "burst: all due before the fire phase"
        },
        config.rounds,
        if config.fresh {
            ", each on a fresh reactor/runtime"
        } else {
            " on each implementation's reactor/runtime after its cold sample"
        }
    );
    let wall: [Column; 6] = [
        ("schedule", |s| ms(s.schedule.wall)),
        ("cancel", |s| ms(s.cancel.wall)),
        ("fire", |s| ms(s.fire.wall)),
        ("cleanup", |s| ms(s.cleanup.wall)),
        ("total", |s| ms(s.total_wall())),
        ("late", |s| ms(s.late)),
    ];
    let (cold, samples): (Vec<_>, Vec<_>) = samples
        .iter()
        .copied()
        .partition(|(round, _, _)| *round == 0);
    let samples = &samples[..];
    // `late` gets no ratio: in burst mode it is the fire phase plus the sleep's slack.
    let medians = print_block(config, "wall ms (median)", &wall, 5, samples);
    let cpu: [Column; 5] = [
        ("schedule", |s| s.schedule.cpu_ns as f64 / 1e6),
        ("cancel", |s| s.cancel.cpu_ns as f64 / 1e6),
        ("fire", |s| s.fire.cpu_ns as f64 / 1e6),
        ("cleanup", |s| s.cleanup.cpu_ns as f64 / 1e6),
        ("total", |s| s.total_cpu_ns() as f64 / 1e6),
    ];
    print_block(config, "CPU ms (median)", &cpu, 5, samples);
    print_block(config, "cold wall ms", &wall[..5], 5, &cold);
    for other in [TimerKind::Tokio, TimerKind::DelayQueue] {
        if !(config.kinds.contains(&TimerKind::Torsion) && config.kinds.contains(&other)) {
            continue;
        }
        let paired = paired_total_ratio(samples, other);
        println!(
            "torsion/{} wall total, per round: median {:.3}, min {:.3}, max {:.3}",
            other.name(),
            median(&paired),
            min(&paired),
            max(&paired)
        );
    }
    println!(
        "{:<19} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "wall ns per op", "sched/N", "canc/N/2", "fire/N/2", "clean/N", "total/N"
    );
    for (kind, v) in &medians {
        println!(
            "{:<19} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            kind.name(),
            v[0] * 1e6 / n as f64,
            v[1] * 1e6 / cancels as f64,
            v[2] * 1e6 / fires as f64,
            v[3] * 1e6 / n as f64,
            v[4] * 1e6 / n as f64,
        );
    }
    if !memory.is_empty() {
        println!(
            "{:<19} {:>19} {:>19}",
            "heap B per timer", "N pending", "after N/2 cancels"
        );
        for (kind, heap) in memory {
            println!(
                "{:<19} {:>19.1} {:>19.1}",
                kind.name(),
                heap.scheduled as f64 / n as f64,
                heap.cancelled as f64 / fires as f64
            );
        }
    }
}

/// Prints the medians of `columns` for every implementation, then torsion's over the others'
/// for the first `ratios` columns; returns the medians.
fn print_block(
    config: &TimersConfig,
    title: &str,
    columns: &[Column],
    ratios: usize,
    samples: &[(usize, TimerKind, Sample)],
) -> Vec<(TimerKind, Vec<f64>)> {
    print!("{title:<19}");
    for (name, _) in columns {
        print!(" {name:>9}");
    }
    println!();
    let medians: Vec<(TimerKind, Vec<f64>)> = config
        .kinds
        .iter()
        .map(|&kind| {
            let values = columns
                .iter()
                .map(|(_, f)| {
                    let v: Vec<f64> = samples
                        .iter()
                        .filter(|(_, k, _)| *k == kind)
                        .map(|(_, _, s)| f(s))
                        .collect();
                    median(&v)
                })
                .collect();
            (kind, values)
        })
        .collect();
    for (kind, values) in &medians {
        print!("{:<19}", kind.name());
        for v in values {
            print!(" {v:>9.1}");
        }
        println!();
    }
    let of = |k: TimerKind| medians.iter().find(|(m, _)| *m == k).map(|(_, v)| v);
    if let Some(torsion) = of(TimerKind::Torsion) {
        for other in [TimerKind::Tokio, TimerKind::DelayQueue] {
            let Some(o) = of(other) else { continue };
            print!("{:<19}", format!("torsion/{}", other.name()));
            for (t, o) in torsion.iter().zip(o).take(ratios) {
                if *o >= 0.1 {
                    print!(" {:>9.3}", t / o);
                } else {
                    print!(" {:>9}", "-");
                }
            }
            println!();
        }
    }
    medians
}

/// Torsion's total over `other`'s in the same round, for each round.
fn paired_total_ratio(samples: &[(usize, TimerKind, Sample)], other: TimerKind) -> Vec<f64> {
    samples
        .iter()
        .filter(|(_, k, _)| *k == TimerKind::Torsion)
        .filter_map(|(round, _, t)| {
            samples
                .iter()
                .find(|(r, k, _)| *r == *round && *k == other)
                .map(|(_, _, o)| t.total_wall().as_secs_f64() / o.total_wall().as_secs_f64())
        })
        .collect()
}
