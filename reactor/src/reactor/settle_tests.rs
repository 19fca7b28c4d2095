//! The end-of-turn settle and the read loop, driven in memory.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::connections::SETTLE_ROUNDS;
use crate::connections::READ_BUFFER_SIZE;
use crate::testing::TestReactor;
use crate::{Context, Protocol};

/// Starts producing 100 KiB per `resume_writing` once its timer fires, `left` times.
struct Producer {
    resumes: Rc<Cell<usize>>,
    left: usize,
}

impl Producer {
    fn produce(&mut self, cx: &mut Context<'_>) {
        if self.left > 0 {
            self.left -= 1;
            cx.write(&[7; 100 * 1024]);
        }
    }
}

impl Protocol for Producer {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.call_later(Duration::from_secs(1), |this: &mut Producer, cx| {
            this.produce(cx)
        });
    }
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.resumes.set(self.resumes.get() + 1);
        self.produce(cx);
    }
}

/// Echoes, noting how many bytes were still queued when each chunk arrived.
struct NotingEcho {
    queued_on_arrival: Rc<RefCell<Vec<usize>>>,
}

impl Protocol for NotingEcho {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        self.queued_on_arrival.borrow_mut().push(cx.queued_bytes());
        cx.write(data);
    }
}

#[test]
fn a_bulk_echo_is_flushed_read_by_read_not_at_the_end_of_the_turn() {
    let mut test = TestReactor::new();
    let queued = Rc::new(RefCell::new(Vec::new()));
    let connection = test.connect(NotingEcho {
        queued_on_arrival: queued.clone(),
    });
    let data: Vec<u8> = (0..3 * READ_BUFFER_SIZE + 100).map(|i| i as u8).collect();
    test.feed(&connection, &data);
    assert_eq!(connection.take_written(), data);
    assert_eq!(
        *queued.borrow(),
        [0, 0, 0, 0],
        "each read's echo left before the next"
    );
}

#[test]
fn a_bulk_echo_the_peer_does_not_take_stays_queued_in_order() {
    let mut test = TestReactor::new();
    let queued = Rc::new(RefCell::new(Vec::new()));
    let connection = test.connect(NotingEcho {
        queued_on_arrival: queued.clone(),
    });
    connection.set_write_room(Some(1000));
    let data: Vec<u8> = (0..2 * READ_BUFFER_SIZE).map(|i| (i % 251) as u8).collect();
    test.feed(&connection, &data);
    assert_eq!(*queued.borrow(), [0, READ_BUFFER_SIZE - 1000]);
    assert_eq!(
        test.reactor().queued_bytes(connection.id()),
        data.len() - 1000
    );
    connection.set_write_room(None);
    test.run_pending();
    assert_eq!(connection.take_written(), data);
}

#[test]
fn a_producer_the_kernel_keeps_up_with_cannot_hold_a_turn() {
    let mut test = TestReactor::new();
    let resumes = Rc::new(Cell::new(0));
    let connection = test.connect(Producer {
        resumes: resumes.clone(),
        left: 100,
    });
    test.clock().advance(Duration::from_secs(1));
    test.reactor().iterate(Duration::ZERO).unwrap();
    assert!(
        (1..=SETTLE_ROUNDS).contains(&resumes.get()),
        "{} pause/resume cycles in one turn",
        resumes.get()
    );
    test.run_pending();
    assert_eq!(connection.take_written().len(), 100 * 100 * 1024);
}

/// Produces 100 KiB per `resume_writing` once its timer fires, `left` times, and on its first
/// resume also writes a byte to each of `others` (by id), dirtying them during the settle.
struct BroadcastingProducer {
    left: usize,
    others: Vec<crate::ConnectionId>,
}

impl Protocol for BroadcastingProducer {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.call_later(Duration::from_secs(1), |this: &mut Self, cx| {
            this.left -= 1;
            cx.write(&[7; 100 * 1024]);
        });
    }
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        for other in std::mem::take(&mut self.others) {
            cx.reactor().write_to(other, b"!");
        }
        if self.left > 0 {
            self.left -= 1;
            cx.write(&[7; 100 * 1024]);
        }
    }
}

#[test]
fn a_connection_left_dirty_after_the_last_settle_round_is_settled_on_the_next_turn() {
    let mut test = TestReactor::new();
    let others: Vec<_> = (0..10)
        .map(|_| {
            test.connect(NotingEcho {
                queued_on_arrival: Rc::default(),
            })
        })
        .collect();
    let producer = test.connect(BroadcastingProducer {
        left: 100,
        others: others.iter().map(|c| c.id()).collect(),
    });
    test.advance(Duration::from_secs(1));
    for other in &others {
        assert_eq!(other.take_written(), b"!");
    }
    assert_eq!(
        producer.take_written().len(),
        100 * 100 * 1024,
        "everything produced is written, over as many turns as it takes"
    );
}
