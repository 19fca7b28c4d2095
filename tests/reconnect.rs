//! The reconnecting client over loopback, on a manual clock: each retry waits exactly the
//! backoff's delay (no sleeps), reconnects after a loss and after refusals, resets after a
//! success, stops, and gives up.

mod common;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use torsion::{
    Backoff, BackoffState, ConnectError, ConnectOptions, Context, ManualClock, Protocol, Reactor,
    ReconnectEvent, ReconnectHandle, ReconnectState, ReconnectingClient,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A hook's event reduced to something comparable.
#[derive(Debug, Clone, PartialEq)]
enum Heard {
    Refused(Option<Duration>),
    FailedOther(String, Option<Duration>),
    Lost(Reason, Option<Duration>),
    GaveUp(u32),
}

fn heard(event: &ReconnectEvent<'_>) -> Heard {
    match event {
        ReconnectEvent::ConnectFailed {
            error: ConnectError::Refused(_),
            retry_in,
        } => Heard::Refused(*retry_in),
        ReconnectEvent::ConnectFailed { error, retry_in } => {
            Heard::FailedOther(format!("{error:?}"), *retry_in)
        }
        ReconnectEvent::ConnectionLost { reason, retry_in } => {
            Heard::Lost(Reason::from(*reason), *retry_in)
        }
        ReconnectEvent::GaveUp { failures } => Heard::GaveUp(*failures),
        other => panic!("unexpected event {other:?}"),
    }
}

/// A reactor on a manual clock, and the clock.
fn manual_reactor() -> (Reactor, ManualClock) {
    init_logging();
    let clock = ManualClock::new();
    let reactor = Reactor::with_clock(clock.clone()).expect("reactor");
    (reactor, clock)
}

/// Exact delays: 1 s, then doubling, at most 3 s.
fn exact_backoff() -> Backoff {
    Backoff::default()
        .with_jitter(0.0)
        .with_factor(2.0)
        .with_initial_delay(secs(1))
        .with_max_delay(secs(3))
}

/// Starts a client for `addr` whose hook records what it hears; its protocol counts the
/// connections it made.
fn start_client(
    reactor: &mut Reactor,
    addr: SocketAddr,
    backoff: Backoff,
) -> (ReconnectHandle, Shared<Vec<Heard>>, Rc<Cell<u32>>) {
    let events = shared(Vec::new());
    let made = Rc::new(Cell::new(0));
    let (log, count) = (events.clone(), made.clone());
    let handle = ReconnectingClient::new(addr, move |_| Counted(count.clone()))
        .backoff(backoff)
        .on_event(move |_, _, event| log.borrow_mut().push(heard(event)))
        .start(reactor);
    (handle, events, made)
}

/// Counts `connection_made`; ignores data.
struct Counted(Rc<Cell<u32>>);

impl Protocol for Counted {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        self.0.set(self.0.get() + 1);
    }
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// A server protocol that greets and hangs up at once.
struct HangUp;

impl Protocol for HangUp {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(b"bye\n");
        cx.lose_connection();
    }
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Listens on `addr` with a protocol from `build`, counting the connections accepted.
fn listen_counting<P: Protocol>(
    reactor: &mut Reactor,
    addr: SocketAddr,
    build: fn() -> P,
) -> (SocketAddr, Rc<Cell<u32>>) {
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    let port = reactor
        .listen_tcp(addr, move || {
            count.set(count.get() + 1);
            build()
        })
        .expect("listen");
    (port.local_addr(), accepted)
}

/// Runs a few turns without waiting for anything: to show that nothing happens.
fn idle_turns(reactor: &mut Reactor) {
    for _ in 0..5 {
        reactor.iterate(ms(5)).expect("turn");
    }
}

fn waiting_for(handle: &ReconnectHandle, clock: &ManualClock) -> Option<Duration> {
    match handle.state() {
        ReconnectState::Waiting { retry_at } => Some(retry_at - clock.now()),
        _ => None,
    }
}

#[test]
fn reconnects_after_the_server_closes_the_connection() {
    let (mut reactor, clock) = manual_reactor();
    let (addr, accepted) = listen_counting(&mut reactor, any_loopback_port(), || HangUp);
    let backoff = Backoff::default().with_initial_delay(secs(1));
    let seed = 7;
    let events = shared(Vec::new());
    let log = events.clone();
    let handle = ReconnectingClient::new(addr, |_| Counted(Rc::new(Cell::new(0))))
        .backoff(backoff)
        .seed(seed)
        .on_event(move |_, _, event| log.borrow_mut().push(heard(event)))
        .start(&mut reactor);

    run_until(&mut reactor, "the first loss", || {
        events.borrow().len() == 1
    });
    // The delay is the policy's, jittered by the seeded generator (not exactly 1 s).
    let expected = BackoffState::with_seed(backoff, seed).next_delay().unwrap();
    assert_ne!(expected, secs(1), "jitter applied");
    assert_eq!(
        events.borrow()[0],
        Heard::Lost(Reason::Closed, Some(expected))
    );
    assert_eq!(waiting_for(&handle, &clock), Some(expected));
    assert_eq!(
        (accepted.get(), handle.attempts(), handle.failures()),
        (1, 1, 1)
    );

    clock.advance(expected - ms(1));
    idle_turns(&mut reactor);
    assert_eq!(handle.attempts(), 1, "no retry before the delay has passed");
    clock.advance(ms(1));
    run_until(&mut reactor, "the second loss", || {
        events.borrow().len() == 2
    });
    assert_eq!(accepted.get(), 2, "the client came back");
    assert_eq!(handle.attempts(), 2);
}

#[test]
fn retries_a_refused_port_with_growing_delays_until_a_listener_appears() {
    let (mut reactor, clock) = manual_reactor();
    let addr = closed_loopback_port();
    let (handle, events, made) = start_client(&mut reactor, addr, exact_backoff());

    // 1 s, 2 s, then 4 s capped to 3 s, and 3 s again.
    let delays = [secs(1), secs(2), secs(3), secs(3)];
    for (n, delay) in delays.into_iter().enumerate() {
        run_until(&mut reactor, "a refusal", || events.borrow().len() == n + 1);
        assert_eq!(events.borrow()[n], Heard::Refused(Some(delay)));
        assert_eq!(waiting_for(&handle, &clock), Some(delay));
        assert_eq!(handle.current_delay(), Some(delay));
        assert_eq!(handle.failures(), n as u32 + 1);
        if n + 1 < delays.len() {
            clock.advance(delay);
        }
    }

    let (_, accepted) = listen_counting(&mut reactor, addr, || Echo);
    clock.advance(secs(3));
    run_until(&mut reactor, "the connection", || handle.is_connected());
    assert_eq!((accepted.get(), made.get()), (1, 1));
    assert_eq!(handle.attempts(), 5);
    assert_eq!(handle.failures(), 0, "reset once connected");
    assert_eq!(handle.current_delay(), None);
    let id = handle.connection_id().unwrap();
    assert_eq!(handle.state(), ReconnectState::Connected(id));
    assert!(reactor.is_connected(id));
}

#[test]
fn the_delay_resets_after_a_success() {
    let (mut reactor, clock) = manual_reactor();
    let addr = closed_loopback_port();
    let (handle, events, _made) = start_client(&mut reactor, addr, exact_backoff());
    run_until(&mut reactor, "a refusal", || events.borrow().len() == 1);
    clock.advance(secs(1));
    run_until(&mut reactor, "a refusal", || events.borrow().len() == 2);
    assert_eq!(handle.current_delay(), Some(secs(2)));

    listen_counting(&mut reactor, addr, || HangUp);
    clock.advance(secs(2));
    run_until(&mut reactor, "the loss", || events.borrow().len() == 3);
    assert_eq!(
        events.borrow()[2],
        Heard::Lost(Reason::Closed, Some(secs(1))),
        "after a success the first delay again, not 4 s (capped to 3)"
    );
    assert_eq!(handle.failures(), 1);
}

#[test]
fn stop_cancels_the_pending_retry_and_nothing_more_happens() {
    let (mut reactor, clock) = manual_reactor();
    let addr = closed_loopback_port();
    let (handle, events, _made) = start_client(&mut reactor, addr, exact_backoff());
    run_until(&mut reactor, "a refusal", || events.borrow().len() == 1);
    assert!(waiting_for(&handle, &clock).is_some());

    assert!(handle.clone().stop(&mut reactor), "any clone stops it");
    assert!(!handle.stop(&mut reactor), "already stopped");
    assert_eq!(handle.state(), ReconnectState::Stopped);
    assert!(!handle.is_trying());
    assert_eq!(
        reactor.next_timeout(),
        None,
        "no timer left: the reactor is idle"
    );

    let (_, accepted) = listen_counting(&mut reactor, addr, || Echo);
    clock.advance(secs(3600));
    idle_turns(&mut reactor);
    assert_eq!(accepted.get(), 0, "no further attempt");
    assert_eq!(handle.attempts(), 1);
    assert_eq!(
        events.borrow().len(),
        1,
        "the hook is not called after stop"
    );
}

#[test]
fn stop_abandons_an_attempt_in_progress() {
    let (mut reactor, _clock) = manual_reactor();
    let listener = SilentListener::new();
    let (handle, events, made) = start_client(&mut reactor, listener.addr(), exact_backoff());
    idle_turns(&mut reactor);
    assert_eq!(handle.state(), ReconnectState::Connecting);

    assert!(handle.stop(&mut reactor));
    assert_eq!(handle.state(), ReconnectState::Stopped);
    assert_eq!(
        reactor.next_timeout(),
        None,
        "the connect timeout is cancelled too"
    );
    idle_turns(&mut reactor);
    assert!(
        events.borrow().is_empty(),
        "the cancellation is not reported"
    );
    assert_eq!((made.get(), handle.attempts()), (0, 1));
}

#[test]
fn stop_while_connected_keeps_the_connection_and_never_reconnects() {
    let (mut reactor, clock) = manual_reactor();
    let (addr, accepted) = listen_counting(&mut reactor, any_loopback_port(), || Echo);
    let (handle, events, _made) = start_client(&mut reactor, addr, exact_backoff());
    run_until(&mut reactor, "the connection", || handle.is_connected());
    let id = handle.connection_id().unwrap();

    assert!(handle.stop(&mut reactor));
    assert_eq!(handle.state(), ReconnectState::Connected(id), "it stays up");
    assert!(reactor.is_connected(id));
    reactor.lose_connection(id);
    run_until(&mut reactor, "the connection to close", || {
        !handle.is_connected()
    });
    assert_eq!(handle.state(), ReconnectState::Stopped);
    clock.advance(secs(3600));
    idle_turns(&mut reactor);
    assert_eq!((accepted.get(), handle.attempts()), (1, 1));
    assert!(events.borrow().is_empty());
}

#[test]
fn max_retries_gives_up_and_reports() {
    let (mut reactor, clock) = manual_reactor();
    let addr = closed_loopback_port();
    let backoff = exact_backoff().with_max_retries(Some(2));
    let (handle, events, _made) = start_client(&mut reactor, addr, backoff);
    run_until(&mut reactor, "a refusal", || events.borrow().len() == 1);
    clock.advance(secs(1));
    run_until(&mut reactor, "a refusal", || events.borrow().len() == 2);
    clock.advance(secs(2));
    run_until(&mut reactor, "giving up", || events.borrow().len() == 4);

    assert_eq!(
        *events.borrow(),
        [
            Heard::Refused(Some(secs(1))),
            Heard::Refused(Some(secs(2))),
            Heard::Refused(None),
            Heard::GaveUp(3),
        ]
    );
    assert_eq!(handle.state(), ReconnectState::GaveUp);
    assert!(!handle.is_trying());
    assert!(!handle.stop(&mut reactor), "nothing left to stop");
    assert_eq!((handle.attempts(), handle.failures()), (3, 3));
    assert_eq!(reactor.next_timeout(), None);
}

#[test]
fn the_hook_can_give_up_early() {
    let (mut reactor, _clock) = manual_reactor();
    let calls = Rc::new(Cell::new(0));
    let count = calls.clone();
    let handle = ReconnectingClient::new(closed_loopback_port(), |_| HangUp)
        .on_event(move |reactor, handle, event| {
            count.set(count.get() + 1);
            assert!(matches!(
                event,
                ReconnectEvent::ConnectFailed {
                    retry_in: Some(_),
                    ..
                }
            ));
            assert!(handle.stop(reactor), "cancels the retry just scheduled");
        })
        .start(&mut reactor);
    run_until(&mut reactor, "the hook", || calls.get() == 1);
    assert_eq!(handle.state(), ReconnectState::Stopped);
    assert_eq!(reactor.next_timeout(), None);
}

/// A client protocol that stops its reconnecting client when the server says so.
struct Obedient(ReconnectHandle);

impl Protocol for Obedient {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        if data.starts_with(b"bye") {
            self.0.stop(cx.reactor());
        }
    }
}

#[test]
fn a_protocol_can_stop_its_client_through_the_handle_it_was_built_with() {
    let (mut reactor, clock) = manual_reactor();
    let (addr, accepted) = listen_counting(&mut reactor, any_loopback_port(), || HangUp);
    let handle = ReconnectingClient::new(addr, |handle| Obedient(handle.clone()))
        .backoff(exact_backoff())
        .start(&mut reactor);
    run_until(&mut reactor, "the client to stop", || {
        handle.state() == ReconnectState::Stopped
    });
    clock.advance(secs(10));
    idle_turns(&mut reactor);
    assert_eq!((accepted.get(), handle.attempts()), (1, 1));
}

#[test]
fn a_host_name_is_resolved_for_each_attempt() {
    let (mut reactor, clock) = manual_reactor();
    let (addr, accepted) = listen_counting(&mut reactor, any_loopback_port(), || HangUp);
    let events = shared(Vec::new());
    let log = events.clone();
    let handle = ReconnectingClient::new_host("localhost", addr.port(), |_| HangUp)
        .backoff(exact_backoff())
        .on_event(move |_, _, event| log.borrow_mut().push(heard(event)))
        .start(&mut reactor);
    run_until(&mut reactor, "the first loss", || {
        events.borrow().len() == 1
    });
    clock.advance(secs(1));
    run_until(&mut reactor, "the second loss", || {
        events.borrow().len() == 2
    });
    assert_eq!(accepted.get(), 2);
    assert_eq!(
        events.borrow()[1],
        Heard::Lost(Reason::Closed, Some(secs(1)))
    );
    assert!(handle.stop(&mut reactor));
}

#[test]
fn a_graceful_shutdown_stops_the_client_and_the_reactor_exits() {
    let (mut reactor, _clock) = manual_reactor();
    let addr = closed_loopback_port();
    let (handle, events, _made) = start_client(&mut reactor, addr, exact_backoff());
    run_until(&mut reactor, "a refusal", || events.borrow().len() == 1);

    let _watchdog = Watchdog::arm(secs(10), "the reactor to exit after shutdown");
    reactor.shutdown();
    reactor.run().expect("run");
    assert_eq!(handle.state(), ReconnectState::Stopped);
    assert_eq!(
        reactor.next_timeout(),
        None,
        "the pending retry was cancelled"
    );
    assert_eq!(handle.attempts(), 1);
}

#[test]
fn a_tls_client_reconnects_after_a_loss_and_retries_a_refused_certificate() {
    let (mut reactor, clock) = manual_reactor();
    let ca = common::certs::TestCa::new("reconnect CA");
    let accepted = Rc::new(Cell::new(0));
    let count = accepted.clone();
    let port = reactor
        .listen_tls(
            any_loopback_port(),
            common::tls::localhost_server(&ca),
            move || {
                count.set(count.get() + 1);
                HangUp
            },
        )
        .expect("listen_tls");
    let addr = port.local_addr();

    // Trusting the server's CA: connected over TLS, lost when the server hangs up, back
    // after the delay.
    let made = Rc::new(Cell::new(0));
    let (events, log) = (shared(Vec::new()), made.clone());
    let recorded = events.clone();
    let handle = ReconnectingClient::new(addr, move |_| Counted(log.clone()))
        .backoff(exact_backoff())
        .tls(common::tls::trusting(&ca), "localhost")
        .on_event(move |_, _, event| recorded.borrow_mut().push(heard(event)))
        .start(&mut reactor);
    run_until(&mut reactor, "the first loss", || {
        events.borrow().len() == 1
    });
    assert_eq!(made.get(), 1, "connection_made after the handshake");
    assert!(matches!(events.borrow()[0], Heard::Lost(_, Some(d)) if d == secs(1)));
    clock.advance(secs(1));
    run_until(&mut reactor, "the second loss", || {
        events.borrow().len() == 2
    });
    assert_eq!((made.get(), accepted.get()), (2, 2));
    handle.stop(&mut reactor);

    // Trusting another CA: each attempt fails its handshake, and is retried like a refusal.
    let other = common::certs::TestCa::new("another CA");
    let (events, log) = (shared(Vec::new()), made.clone());
    let recorded = events.clone();
    let handle = ReconnectingClient::new(addr, move |_| Counted(log.clone()))
        .backoff(exact_backoff())
        .tls(common::tls::trusting(&other), "localhost")
        .on_event(move |_, _, event| recorded.borrow_mut().push(heard(event)))
        .start(&mut reactor);
    run_until(&mut reactor, "a refused certificate", || {
        events.borrow().len() == 1
    });
    clock.advance(secs(1));
    run_until(&mut reactor, "another", || events.borrow().len() == 2);
    for event in events.borrow().iter() {
        assert!(
            matches!(event, Heard::FailedOther(error, Some(_)) if error.contains("UnknownIssuer")),
            "{event:?}"
        );
    }
    assert_eq!(
        made.get(),
        2,
        "no protocol for a server that failed verification"
    );
    handle.stop(&mut reactor);
}

#[test]
fn a_host_client_with_tls_in_its_options_verifies_the_host_name() {
    let (mut reactor, _clock) = manual_reactor();
    let ca = common::certs::TestCa::new("reconnect CA");
    let port = reactor
        .listen_tls(
            any_loopback_port(),
            common::tls::localhost_server(&ca),
            || HangUp,
        )
        .expect("listen_tls");
    // No server name: each attempt connects to one of the addresses "localhost" resolves to,
    // and verifies the certificate for "localhost", not for that address.
    let options = ConnectOptions::new().tls(common::tls::trusting(&ca));
    let made = Rc::new(Cell::new(0));
    let (events, log) = (shared(Vec::new()), made.clone());
    let recorded = events.clone();
    let handle = ReconnectingClient::new_host("localhost", port.local_addr().port(), move |_| {
        Counted(log.clone())
    })
    .backoff(exact_backoff())
    .connect_options(options)
    .on_event(move |_, _, event| recorded.borrow_mut().push(heard(event)))
    .start(&mut reactor);
    run_until(&mut reactor, "the first loss", || {
        events.borrow().len() == 1
    });
    assert_eq!(made.get(), 1, "{:?}", events.borrow());
    assert!(matches!(events.borrow()[0], Heard::Lost(_, Some(_))));
    handle.stop(&mut reactor);
}
