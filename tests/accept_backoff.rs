//! A listener survives running out of file descriptors (EMFILE): it stops accepting for a
//! moment instead of spinning, and accepts the waiting connection once descriptors are free,
//! without any new readiness event. Alone in its file because it exhausts the whole test
//! process's descriptor table.

use std::cell::Cell;
use std::fs::File;
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion::{Context, Protocol, Reactor};

struct CountMade(Rc<Cell<usize>>);

impl Protocol for CountMade {
    fn connection_made(&mut self, _cx: &mut Context<'_>) {
        self.0.set(self.0.get() + 1);
    }
    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}
}

/// Opens /dev/null until the process is out of descriptors.
fn exhaust_descriptors() -> Vec<File> {
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) if e.raw_os_error() == Some(24) => return files, // EMFILE
            Err(e) => panic!("unexpected error while exhausting descriptors: {e}"),
        }
        assert!(files.len() < 1_000_000, "no descriptor limit to hit");
    }
}

#[test]
fn accept_backs_off_on_emfile_and_resumes_by_itself() {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut reactor = Reactor::new().unwrap();
    let made = Rc::new(Cell::new(0));
    let counter = made.clone();
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), move || {
            CountMade(counter.clone())
        })
        .unwrap();

    let mut files = exhaust_descriptors();
    files.pop(); // exactly one descriptor free: for the client's socket
    let client = TcpStream::connect(port.local_addr()).expect("client connects into the backlog");

    // The server cannot accept (no descriptor left). iterate(None) returns only when
    // something happens: a spinning listener would return thousands of times here.
    let window = Instant::now();
    let mut turns = 0;
    while window.elapsed() < Duration::from_millis(300) {
        reactor.iterate(Some(Duration::from_millis(300))).unwrap();
        turns += 1;
    }
    assert_eq!(
        made.get(),
        0,
        "nothing can be accepted without a descriptor"
    );
    assert!(turns < 20, "the listener spun: {turns} turns in 300 ms");

    files.truncate(files.len().saturating_sub(16));
    let deadline = Instant::now() + Duration::from_secs(5);
    while made.get() == 0 && Instant::now() < deadline {
        reactor.iterate(Some(Duration::from_millis(50))).unwrap();
    }
    assert_eq!(
        made.get(),
        1,
        "the waiting connection is accepted once descriptors free up"
    );
    drop(client);
}
