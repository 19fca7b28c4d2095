//! Timers, looping calls and the manual clock: ordering, ties, cancel/reset/delay (also from
//! inside firing calls), calls scheduled by calls, connection-scoped timers, and Twisted's
//! skipped-interval semantics. All on a manual clock: no test here sleeps.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion::{Context, DelayedCall, DisconnectReason, ManualClock, Protocol, Reactor};

type Log = Rc<RefCell<Vec<String>>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn manual() -> (Reactor, ManualClock, Log) {
    let clock = ManualClock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    (reactor, clock, Log::default())
}

fn note(log: &Log, what: impl Into<String>) -> impl FnOnce(&mut Reactor) + 'static {
    let log = log.clone();
    let what = what.into();
    move |_| log.borrow_mut().push(what)
}

/// Advances the clock and runs the turns that fire what became due.
fn advance(reactor: &mut Reactor, clock: &ManualClock, by: Duration) {
    clock.advance(by);
    for _ in 0..3 {
        reactor.iterate(Duration::ZERO).unwrap();
    }
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.borrow_mut())
}

#[test]
fn calls_fire_in_deadline_order_and_ties_in_scheduling_order() {
    let (mut reactor, clock, log) = manual();
    reactor.call_later(ms(30), note(&log, "c"));
    reactor.call_later(ms(10), note(&log, "a1"));
    reactor.call_later(ms(20), note(&log, "b"));
    reactor.call_later(ms(10), note(&log, "a2"));
    advance(&mut reactor, &clock, ms(9));
    assert!(taken(&log).is_empty(), "nothing is due before 10 ms");
    advance(&mut reactor, &clock, ms(100));
    assert_eq!(taken(&log), ["a1", "a2", "b", "c"]);
}

#[test]
fn cancel_reset_and_delay_change_what_fires() {
    let (mut reactor, clock, log) = manual();
    let cancelled = reactor.call_later(ms(10), note(&log, "cancelled"));
    let reset = reactor.call_later(ms(10), note(&log, "reset"));
    let delayed = reactor.call_later(ms(10), note(&log, "delayed"));
    assert!(cancelled.cancel(&mut reactor));
    assert!(
        !cancelled.cancel(&mut reactor),
        "a second cancel does nothing"
    );
    assert!(reset.reset(&mut reactor, ms(50)));
    assert!(delayed.delay(&mut reactor, ms(30)));
    assert_eq!(delayed.deadline(&reactor), Some(clock.now() + ms(40)));
    advance(&mut reactor, &clock, ms(39));
    assert!(taken(&log).is_empty());
    assert!(reset.active(&reactor) && delayed.active(&reactor) && !cancelled.active(&reactor));
    advance(&mut reactor, &clock, ms(1));
    assert_eq!(taken(&log), ["delayed"]);
    advance(&mut reactor, &clock, ms(10));
    assert_eq!(taken(&log), ["reset"]);
    assert!(
        !reset.active(&reactor) && !reset.cancel(&mut reactor) && !reset.reset(&mut reactor, ms(1))
    );
}

#[test]
fn a_firing_call_can_cancel_or_reset_a_call_due_at_the_same_time() {
    let (mut reactor, clock, log) = manual();
    let victims: Rc<RefCell<Vec<DelayedCall>>> = Rc::default();
    let v = victims.clone();
    let l = log.clone();
    reactor.call_later(ms(10), move |r| {
        l.borrow_mut().push("first".into());
        let v = v.borrow();
        assert!(v[0].cancel(r), "a due call not yet fired can be cancelled");
        assert!(v[1].reset(r, ms(5)), "and reset");
    });
    let cancelled = reactor.call_later(ms(10), note(&log, "cancelled"));
    let reset = reactor.call_later(ms(10), note(&log, "reset"));
    victims.borrow_mut().extend([cancelled, reset]);
    advance(&mut reactor, &clock, ms(10));
    assert_eq!(taken(&log), ["first"]);
    advance(&mut reactor, &clock, ms(5));
    assert_eq!(taken(&log), ["reset"]);
}

#[test]
fn a_call_cannot_cancel_itself_once_firing() {
    let (mut reactor, clock, log) = manual();
    let me: Rc<RefCell<Option<DelayedCall>>> = Rc::default();
    let m = me.clone();
    let l = log.clone();
    let call = reactor.call_later(ms(1), move |r| {
        let me = m.borrow().unwrap();
        l.borrow_mut()
            .push(format!("active={} cancel={}", me.active(r), me.cancel(r)));
    });
    *me.borrow_mut() = Some(call);
    advance(&mut reactor, &clock, ms(1));
    assert_eq!(taken(&log), ["active=false cancel=false"]);
}

#[test]
fn calls_scheduled_by_a_firing_call_run_on_a_later_turn_even_when_due() {
    let (mut reactor, clock, log) = manual();
    let l = log.clone();
    reactor.call_later(ms(10), move |r| {
        l.borrow_mut().push("outer".into());
        let l2 = l.clone();
        r.call_later(Duration::ZERO, move |_| {
            l2.borrow_mut().push("inner".into())
        });
    });
    reactor.call_later(ms(10), note(&log, "sibling"));
    clock.advance(ms(10));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(taken(&log), ["outer", "sibling"]);
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(taken(&log), ["inner"]);
}

#[test]
fn a_looping_call_counts_skipped_intervals_instead_of_bursting() {
    let (mut reactor, clock, log) = manual();
    let l = log.clone();
    let lc = reactor.start_looping_call(Duration::from_secs(1), false, move |_, count| {
        l.borrow_mut().push(count.to_string())
    });
    advance(&mut reactor, &clock, ms(999));
    assert!(taken(&log).is_empty());
    advance(&mut reactor, &clock, ms(1));
    assert_eq!(taken(&log), ["1"]);
    // The reactor falls 2.5 intervals behind: one run, told 3 intervals passed.
    advance(&mut reactor, &clock, ms(3500));
    assert_eq!(taken(&log), ["3"]);
    // The next run is back on the grid: at 5 s, not 5.5 s.
    advance(&mut reactor, &clock, ms(500));
    assert_eq!(taken(&log), ["1"]);
    assert!(lc.is_running(&reactor));
    assert!(lc.stop(&mut reactor));
    advance(&mut reactor, &clock, Duration::from_secs(10));
    assert!(taken(&log).is_empty() && !lc.is_running(&reactor));
}

#[test]
fn a_looping_call_started_now_runs_at_once_and_can_stop_itself() {
    let (mut reactor, clock, log) = manual();
    let l = log.clone();
    let me: Rc<RefCell<Option<torsion::LoopingCall>>> = Rc::default();
    let m = me.clone();
    let mut runs = 0;
    let lc = reactor.start_looping_call(ms(100), true, move |r, count| {
        l.borrow_mut().push(count.to_string());
        runs += 1;
        if runs == 3 {
            assert!(m.borrow().unwrap().stop(r));
        }
    });
    *me.borrow_mut() = Some(lc);
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(taken(&log), ["1"], "now=true runs on the first turn");
    for _ in 0..5 {
        advance(&mut reactor, &clock, ms(100));
    }
    assert_eq!(taken(&log), ["1", "1"]);
    assert!(!lc.is_running(&reactor));
}

/// Closes its connection after 5 s of silence; logs what happens.
struct IdleTimeout {
    log: Log,
    timer: Option<DelayedCall>,
}

impl Protocol for IdleTimeout {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.timer = cx.call_later(Duration::from_secs(5), |this: &mut Self, cx| {
            this.log.borrow_mut().push("idle".into());
            cx.write(b"bye\n");
            cx.lose_connection();
        });
    }

    fn data_received(&mut self, cx: &mut Context<'_>, _data: &[u8]) {
        let timer = self.timer.unwrap();
        assert!(timer.reset(cx.reactor(), Duration::from_secs(5)));
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, reason: &DisconnectReason) {
        let active = self.timer.unwrap().active(cx.reactor());
        self.log.borrow_mut().push(format!(
            "lost clean={} timer_active={active}",
            reason.is_clean()
        ));
    }
}

fn run_until(reactor: &mut Reactor, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        reactor.iterate(ms(10)).unwrap();
    }
}

#[test]
fn a_connection_timer_reaches_its_protocol_and_is_reset_by_traffic() {
    let (mut reactor, clock, log) = manual();
    let l = log.clone();
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), move || IdleTimeout {
            log: l.clone(),
            timer: None,
        })
        .unwrap();
    let mut client = TcpStream::connect(port.local_addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    reactor.iterate(ms(100)).unwrap();
    advance(&mut reactor, &clock, Duration::from_secs(4));
    client.write_all(b"ping").unwrap();
    reactor.iterate(ms(100)).unwrap();
    advance(&mut reactor, &clock, Duration::from_secs(4));
    assert!(
        taken(&log).is_empty(),
        "traffic at 4 s pushed the timeout to 9 s"
    );
    advance(&mut reactor, &clock, Duration::from_secs(1));
    run_until(&mut reactor, || log.borrow().len() == 2);
    assert_eq!(taken(&log), ["idle", "lost clean=true timer_active=false"]);
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye\n");
}

#[test]
fn connection_timers_are_cancelled_when_the_connection_goes() {
    let (mut reactor, clock, log) = manual();
    let l = log.clone();
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), move || IdleTimeout {
            log: l.clone(),
            timer: None,
        })
        .unwrap();
    let client = TcpStream::connect(port.local_addr()).unwrap();
    reactor.iterate(ms(100)).unwrap();
    drop(client);
    run_until(&mut reactor, || !log.borrow().is_empty());
    assert_eq!(taken(&log), ["lost clean=true timer_active=false"]);
    advance(&mut reactor, &clock, Duration::from_secs(60));
    assert!(
        taken(&log).is_empty(),
        "the idle timer never fires on a closed connection"
    );
}

#[test]
fn real_time_timers_fire_without_busy_waiting() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let started = Instant::now();
    reactor.call_later(ms(50), note(&log, "fired"));
    let mut turns = 0;
    while log.borrow().is_empty() {
        reactor.iterate(None).unwrap();
        turns += 1;
        assert!(
            turns < 10,
            "the poll timeout did not follow the deadline: {turns} turns"
        );
    }
    assert!(
        started.elapsed() >= ms(50),
        "fired early: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_million_timers_scheduled_and_cancelled() {
    // A functional check at scale (the timing comparison with tokio lives in bench/).
    let (mut reactor, clock, _log) = manual();
    let fired = Rc::new(std::cell::Cell::new(0u32));
    let mut calls = Vec::with_capacity(1_000_000);
    for i in 0..1_000_000u64 {
        let fired = fired.clone();
        calls.push(reactor.call_later(Duration::from_micros(i), move |_| {
            fired.set(fired.get() + 1)
        }));
    }
    for call in calls.iter().step_by(2) {
        assert!(call.cancel(&mut reactor));
    }
    advance(&mut reactor, &clock, Duration::from_secs(2));
    assert_eq!(fired.get(), 500_000);
}

/// Counts calls made on it from outside its own callbacks.
#[derive(Default)]
struct Target(u32);

impl Protocol for Target {
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

#[test]
fn code_holding_only_the_reactor_reaches_a_connection_with_call_later_on() {
    let mut test = torsion::testing::TestReactor::new();
    let connection = test.connect(Target::default());
    let id = connection.id();
    let reactor = test.reactor();
    let call = reactor.call_later_on(id, Duration::ZERO, |this: &mut Target, cx| {
        this.0 += 1;
        cx.write(b"reached");
    });
    assert!(call.is_some());
    test.run_pending();
    assert_eq!(test.protocol::<Target>(&connection).unwrap().0, 1);
    assert_eq!(connection.take_written(), b"reached");
    // Scheduled on a connection that then closes: never runs.
    test.reactor()
        .call_later_on(id, Duration::from_secs(1), |this: &mut Target, _| {
            this.0 += 1
        });
    test.reactor().abort_connection(id);
    test.advance(Duration::from_secs(2));
    assert_eq!(test.protocol::<Target>(&connection).unwrap().0, 1);
    assert!(test
        .reactor()
        .call_later_on(id, Duration::ZERO, |_: &mut Target, _| {})
        .is_none());
}
