//! Connection ids carry a generation: an id kept after its connection closed is a harmless
//! no-op, even once a new connection has taken the same slab slot.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::*;
use torsion::{Bytes, ConnectionId, Context, DisconnectReason, Protocol, Reactor};

/// Every connection the server saw, what each sent, and which are gone.
#[derive(Default)]
struct Seen {
    made: Vec<ConnectionId>,
    data: HashMap<ConnectionId, Vec<u8>>,
    lost: Vec<ConnectionId>,
}

/// Records into `Seen`; writes nothing of its own.
struct Tracked(Shared<Seen>);

impl Protocol for Tracked {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().made.push(cx.id());
    }

    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        let mut seen = self.0.borrow_mut();
        seen.data
            .entry(cx.id())
            .or_default()
            .extend_from_slice(data);
    }

    fn connection_lost(&mut self, cx: &mut Context<'_>, _reason: &DisconnectReason) {
        self.0.borrow_mut().lost.push(cx.id());
    }
}

/// The slab index inside an id, read from its `Display` form `#index.generation` (the index
/// is not public; the test needs it only to show the slot really was reused).
fn slot_index(id: ConnectionId) -> String {
    let shown = id.to_string();
    let (index, _generation) = shown.split_once('.').expect("#index.generation");
    index.to_string()
}

#[test]
fn a_stale_id_never_reaches_the_connection_that_reused_its_slot() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let seen = shared(Seen::default());
    let s = seen.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Tracked(s.clone()))
        .unwrap();
    let addr = port.local_addr();

    let a = connect(addr);
    run_until(&mut reactor, "A to be accepted", || {
        seen.borrow().made.len() == 1
    });
    let a_id = seen.borrow().made[0];
    drop(a);
    run_until(&mut reactor, "A to close", || seen.borrow().lost == [a_id]);

    let mut b = connect(addr);
    run_until(&mut reactor, "B to be accepted", || {
        seen.borrow().made.len() == 2
    });
    let b_id = seen.borrow().made[1];
    assert_ne!(a_id, b_id);
    assert_eq!(slot_index(a_id), slot_index(b_id), "B took A's slot");

    assert!(!reactor.write_to(a_id, b"stale"));
    assert!(!reactor.write_bytes_to(a_id, Bytes::from_static(b"stale bytes")));
    reactor.lose_connection(a_id);
    reactor.abort_connection(a_id);
    assert!(!reactor.is_connected(a_id));
    assert_eq!(reactor.queued_bytes(a_id), 0);

    // B is untouched: it still reads...
    b.write_all(b"ping").unwrap();
    run_until(&mut reactor, "B's ping", || {
        seen.borrow().data.get(&b_id).map(Vec::as_slice) == Some(b"ping")
    });
    assert!(reactor.is_connected(b_id));
    assert_eq!(seen.borrow().lost, [a_id], "B was not closed");

    // ...and what it receives is exactly what was written to its own id.
    assert!(reactor.write_to(b_id, b"fresh"));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(read_exact(&mut b, 5), b"fresh");
    b.set_nonblocking(true).unwrap();
    let more = b.read(&mut [0; 64]);
    assert!(
        matches!(&more, Err(e) if e.kind() == ErrorKind::WouldBlock),
        "B received more than its own bytes: {more:?}"
    );
}
