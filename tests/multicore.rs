//! One reactor per thread serving one port: with `SO_REUSEPORT` (a socket per reactor) and
//! with one shared socket; graceful shutdown reaching every reactor; a failing setup.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use torsion::{Context, ListenOptions, Protocol, Reactors, SharedListener};

struct Echo;

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }
}

type Counts = Arc<Vec<AtomicUsize>>;

fn counts(n: usize) -> Counts {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

/// An echo factory that counts the connections reactor `index` accepted.
fn counting(counts: &Counts, index: usize) -> impl FnMut() -> Echo + 'static {
    let counts = counts.clone();
    move || {
        counts[index].fetch_add(1, Ordering::Relaxed);
        Echo
    }
}

/// Opens `n` connections (each from its own source port), each echoing one byte, all
/// held open until every one has been served.
fn serve_clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut streams: Vec<TcpStream> = (0..n).map(|_| common::connect(addr)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        let byte = [i as u8];
        stream.write_all(&byte).unwrap();
        let mut echoed = [0u8];
        stream.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, byte, "connection {i}");
    }
    streams
}

/// Two reactors, each listening with SO_REUSEPORT on the port the first bound.
fn start_reuse_port(counts: &Counts) -> (torsion::RunningReactors, SocketAddr) {
    let addr = Arc::new(Mutex::new(common::any_loopback_port()));
    let bound = addr.clone();
    let counts = counts.clone();
    let reactors = Reactors::new(2)
        .start(move |reactor, index| {
            let mut addr = bound.lock().unwrap();
            let options = ListenOptions::new().reuse_port(true);
            *addr = reactor
                .listen_tcp_with(*addr, options, counting(&counts, index))?
                .local_addr();
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    let addr = *addr.lock().unwrap();
    (reactors, addr)
}

#[test]
fn with_reuse_port_every_connection_is_served_and_both_reactors_accept() {
    let counts = counts(2);
    let (reactors, addr) = start_reuse_port(&counts);
    let streams = serve_clients(addr, 64);
    let accepted: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    assert_eq!(accepted.iter().sum::<usize>(), 64, "{accepted:?}");
    // The kernel hashes each connection's addresses: 64 distinct source ports all landing
    // on one of two sockets has a chance of 2^-63.
    assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
    drop(streams);
    reactors.shutdown();
    reactors.join().unwrap();
}

#[test]
fn with_a_shared_socket_every_connection_is_served() {
    let counts = counts(2);
    let shared: Arc<OnceLock<SharedListener>> = Arc::new(OnceLock::new());
    let from_setup = shared.clone();
    let factory_counts = counts.clone();
    let reactors = Reactors::new(2)
        .start(move |reactor, index| {
            let factory = counting(&factory_counts, index);
            match from_setup.get() {
                None => {
                    let port = reactor.listen("tcp:0:interface=127.0.0.1", factory)?;
                    let _ = from_setup.set(port.share(reactor)?);
                }
                Some(shared) => {
                    reactor.listen_shared(shared, factory)?;
                }
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .unwrap();
    let shared = shared.get().expect("reactor 0 shared its port");
    let addr = shared.local_addr().unwrap().expect("a TCP port");
    let streams = serve_clients(addr, 64);
    let accepted: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    // Which reactor wins each accept is a race: only the total is certain.
    assert_eq!(accepted.iter().sum::<usize>(), 64, "{accepted:?}");
    drop(streams);
    reactors.shutdown();
    reactors.join().unwrap();
}

#[test]
fn shutdown_closes_the_connections_of_every_reactor_and_join_returns() {
    let counts = counts(2);
    let (reactors, addr) = start_reuse_port(&counts);
    let mut streams = serve_clients(addr, 32);
    reactors.shutdown();
    for stream in &mut streams {
        let (rest, ended) = common::read_to_end(stream);
        assert!(
            rest.is_empty() && ended.is_ok(),
            "a clean end, nothing more"
        );
    }
    reactors.join().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "no reactor listens after the shutdown"
    );
}

#[test]
fn a_failing_setup_stops_the_reactors_started_before_it_and_is_returned() {
    let started = Arc::new(AtomicUsize::new(0));
    let counted = started.clone();
    let result = Reactors::new(3).start(move |_reactor, index| {
        counted.fetch_add(1, Ordering::Relaxed);
        if index == 1 {
            return Err(std::io::Error::other("no port for reactor 1"));
        }
        Ok(())
    });
    let error = result.expect_err("setup 1 failed");
    assert_eq!(error.to_string(), "no port for reactor 1");
    assert_eq!(started.load(Ordering::Relaxed), 2, "setup 2 never ran");
}
