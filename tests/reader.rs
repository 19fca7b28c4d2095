//! Watching a raw descriptor with `add_reader`: bytes written into a pipe reach the reader in
//! order, end of file is reported once and ends the watch, and `remove_reader` stops it.

mod common;

use std::cell::RefCell;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::thread;

use common::*;
use torsion::{FdReader, Reactor};

#[derive(Default)]
struct Seen {
    data: Vec<u8>,
    eof: usize,
}

struct Collect(Rc<RefCell<Seen>>);

impl FdReader for Collect {
    fn data_received(&mut self, _reactor: &mut Reactor, data: &[u8]) {
        self.0.borrow_mut().data.extend_from_slice(data);
    }
    fn eof_received(&mut self, _reactor: &mut Reactor) {
        self.0.borrow_mut().eof += 1;
    }
}

#[test]
fn a_pipe_is_read_in_order_until_eof() {
    let mut reactor = Reactor::new().unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let id = reactor
        .add_reader(OwnedFd::from(reader), Collect(seen.clone()))
        .unwrap();
    let block = pattern_block();
    let total = 4 << 20;
    let feeder = thread::spawn(move || write_pattern(&mut writer, &block, total).unwrap());
    run_until(&mut reactor, "end of file", || seen.borrow().eof == 1);
    feeder.join().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.data.len(), total);
    assert_eq!(check_pattern(&pattern_block(), 0, &seen.data), Ok(()));
    assert!(!reactor.remove_reader(id), "the watch ended at end of file");
}

#[test]
fn remove_reader_stops_delivery() {
    let mut reactor = Reactor::new().unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let id = reactor
        .add_reader(
            OwnedFd::from(reader),
            move |_: &mut Reactor, data: &[u8]| s.borrow_mut().extend_from_slice(data),
        )
        .unwrap();
    writer.write_all(b"first").unwrap();
    run_until(&mut reactor, "the first bytes", || seen.borrow().len() == 5);
    assert!(reactor.remove_reader(id));
    // The read end is closed now: the writer sees a broken pipe, and nothing more arrives.
    assert!(writer.write_all(b"second").is_err());
    reactor.iterate(std::time::Duration::ZERO).unwrap();
    assert_eq!(&*seen.borrow(), b"first");
}

#[test]
fn a_regular_file_cannot_be_watched() {
    let mut reactor = Reactor::new().unwrap();
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let refused = reactor.add_reader(OwnedFd::from(file), |_: &mut Reactor, _: &[u8]| {});
    assert!(refused.is_err());
}

#[test]
fn a_descriptor_is_blocking_again_once_the_reactor_is_dropped() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let original = OwnedFd::from(reader);
    let watched = original.try_clone().unwrap(); // shares the open file, and its flags
    let flags = socket2::SockRef::from(&original);
    assert!(!flags.nonblocking().unwrap());
    let mut reactor = Reactor::new().unwrap();
    reactor
        .add_reader(watched, |_: &mut Reactor, _: &[u8]| {})
        .unwrap();
    assert!(flags.nonblocking().unwrap(), "non-blocking while watched");
    drop(reactor);
    assert!(!flags.nonblocking().unwrap(), "blocking again, as it was");
}
