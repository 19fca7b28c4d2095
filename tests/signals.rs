//! SIGTERM shuts the reactor down gracefully: everything queued reaches the peer, the
//! connection closes with a FIN, and `run` returns. Alone in its file: signals are
//! process-wide, and a second reactor in the same process would hear them too.

mod common;

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use common::*;
use rustix::process::{getpid, kill_process, Signal};
use torsion::{Context, DisconnectReason, Phase, Protocol, Reactor};

const SIZE: usize = 8 << 20;

/// Queues the whole test pattern as soon as the connection is made.
struct Blaster(Rc<RefCell<Vec<String>>>);

impl Protocol for Blaster {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        let block = pattern_block();
        let mut left = SIZE;
        while left > 0 {
            let n = left.min(block.len());
            cx.write(&block[..n]);
            left -= n;
        }
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        self.0
            .borrow_mut()
            .push(format!("lost {:?}", Reason::from(reason)));
    }
}

#[test]
fn sigterm_drains_queued_writes_then_closes_cleanly_and_run_returns() {
    let mut reactor = Reactor::new().unwrap();
    reactor.handle_signals().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Blaster(l.clone()))
        .unwrap();
    let l = log.clone();
    reactor.add_shutdown_trigger(Phase::After, move |_| l.borrow_mut().push("after".into()));
    let addr = port.local_addr();
    let client = thread::spawn(move || {
        let mut stream = connect(addr);
        // Read a little, so that most of the 8 MiB is still queued in the server, then ask
        // the process to terminate.
        let mut first = vec![0u8; 64 * 1024];
        stream.read_exact(&mut first).unwrap();
        kill_process(getpid(), Signal::TERM).unwrap();
        let (rest, end) = read_to_end(&mut stream);
        first.extend_from_slice(&rest);
        (first, end.map_err(|e| e.kind()))
    });
    let _watchdog = Watchdog::arm(Duration::from_secs(20), "the SIGTERM shutdown");
    reactor.run().unwrap();
    let (data, end) = client.join().unwrap();
    assert_eq!(end, Ok(()), "a clean EOF, not a reset");
    assert_eq!(data.len(), SIZE, "no queued byte was lost");
    assert_eq!(check_pattern(&pattern_block(), 0, &data), Ok(()));
    assert_eq!(*log.borrow(), ["lost Closed", "after"]);
}
