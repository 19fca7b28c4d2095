//! Waking connections over real sockets: from another thread through the handle while the
//! reactor sleeps in its poll, and before an outgoing connection is made (told right after
//! `connection_made`); and watching a connection's writes leave for a peer that reads late.

mod common;

use std::io::Read;
use std::sync::mpsc;
use std::thread;

use common::*;
use torsion::{
    Address, ConnectOptions, ConnectionId, Context, Factory, Protocol, Reactor, ReactorHandle,
    WriteProgress,
};

/// Sends its id to the test when made; writes "woken" whenever it is woken.
struct Wakeable {
    ids: mpsc::Sender<ConnectionId>,
}

impl Protocol for Wakeable {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let _ = self.ids.send(cx.id());
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn woken(&mut self, cx: &mut Context<'_>) {
        cx.write(b"woken\n");
    }
}

#[test]
fn another_thread_wakes_a_connection_while_the_reactor_waits_in_its_poll() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let (ids, id_received) = mpsc::channel();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Wakeable { ids: ids.clone() })
        .unwrap();
    let handle: ReactorHandle = reactor.handle();
    let addr = port.local_addr();
    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        let id = id_received.recv().expect("the connection's id");
        handle.wake(id).expect("the reactor is there");
        let mut line = [0; 6];
        stream
            .read_exact(&mut line)
            .expect("the woken protocol's line");
        assert_eq!(&line, b"woken\n");
        handle.stop().unwrap();
    });
    // `run` sleeps in its poll with nothing to do: only the wake can bring the line.
    reactor.run().unwrap();
    client.join().unwrap();
}

/// Notes the order of what it is told.
struct Notes(Shared<Vec<&'static str>>);

impl Protocol for Notes {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        self.0.borrow_mut().push("made");
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn woken(&mut self, _cx: &mut Context<'_>) {
        self.0.borrow_mut().push("woken");
    }
}

#[test]
fn a_connection_woken_while_it_connects_is_told_once_it_is_made() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor.listen_tcp(any_loopback_port(), || Echo).unwrap();
    let notes = shared(Vec::new());
    let factory = {
        let notes = notes.clone();
        move || Notes(notes.clone())
    };
    let connector = reactor.connect(port.local_addr(), factory, ConnectOptions::new());
    assert!(reactor.wake(connector.id()));
    assert!(reactor.wake(connector.id()));
    run_until(&mut reactor, "the connection to be made and woken", || {
        notes.borrow().len() == 2
    });
    assert_eq!(*notes.borrow(), ["made", "woken"]);
}

/// Writes 32 MiB at once and notes each report of their leaving.
struct Bulk(Shared<Vec<WriteProgress>>);

impl Protocol for Bulk {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.watch_writes(true);
        cx.write_bytes(vec![1; 32 << 20].into());
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn write_progress(&mut self, _cx: &mut Context<'_>, progress: WriteProgress) {
        self.0.borrow_mut().push(progress);
    }
}

/// Builds one `Bulk` sharing `reports`.
struct BulkFactory(Shared<Vec<WriteProgress>>);

impl Factory for BulkFactory {
    type Protocol = Bulk;

    fn build_protocol(&mut self, _peer: Address) -> Option<Bulk> {
        Some(Bulk(self.0.clone()))
    }
}

#[test]
fn the_writes_of_a_watched_connection_are_followed_out_to_a_late_reader() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let reports = shared(Vec::new());
    let port = reactor
        .listen_tcp(any_loopback_port(), BulkFactory(reports.clone()))
        .unwrap();
    let mut stream = connect(port.local_addr());
    // The kernel takes what fits in its buffers; the rest waits for the reader.
    run_until(&mut reactor, "a first report", || {
        !reports.borrow().is_empty()
    });
    assert!(
        !reports.borrow()[0].drained,
        "32 MiB do not fit in loopback buffers"
    );
    let reader = thread::spawn(move || {
        let mut received = 0;
        let mut buf = vec![0; 1 << 16];
        while received < 32 << 20 {
            received += stream.read(&mut buf).expect("read");
        }
        received
    });
    run_until(&mut reactor, "everything to have left", || {
        reports.borrow().last().is_some_and(|r| r.drained)
    });
    assert_eq!(reader.join().unwrap(), 32 << 20);
    let reports = reports.borrow();
    let sent: usize = reports.iter().map(|r| r.sent).sum();
    assert_eq!(sent, 32 << 20, "every byte reported once");
    assert!(reports.windows(2).all(|w| w[0].queued > w[1].queued));
    assert!(reports.iter().rev().skip(1).all(|r| !r.drained));
}
