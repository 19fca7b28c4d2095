//! Connections from async code over real loopback sockets: a scripted client as a
//! straight-line `async fn` (connect, write a line, read it back, time out on silence); lines
//! bounded; EOF; read backpressure (a fast sender costs bounded memory, and every byte still
//! arrives); write backpressure (megabytes to a slow reader through `write_all`); connect
//! failures; TLS and UNIX sockets; a listening port handing its connections to tasks; and
//! the futures of `call_in_thread` and `lookup_host`.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::thread;
use std::time::Duration;

use common::certs::TestCa;
use common::tls::{echo_server, localhost_server, tls_to};
use common::unix::TempDir;
use common::{any_loopback_port, closed_loopback_port, run_until, shared, Shared};
use torsion::task::{serve_tasks, AsyncConnection, Elapsed, JoinHandle, DEFAULT_READ_LIMIT};
use torsion::{
    ConnectError, ConnectOptions, Context, DisconnectReason, Protocol, Reactor, UnixAddress,
    UnixListenOptions,
};

/// Turns `reactor` until `handle`'s task has ended, and returns its output.
fn finish<T>(reactor: &mut Reactor, mut handle: JoinHandle<T>) -> T {
    run_until(reactor, "the task to end", || handle.is_finished());
    match Pin::new(&mut handle).poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(result) => result.expect("the task ran to its end"),
        Poll::Pending => panic!("finished but pending"),
    }
}

/// Echoes what it receives, and records whether (and how cleanly) it was lost.
struct Echo {
    lost: Shared<Option<bool>>,
}

impl Protocol for Echo {
    fn data_received(&mut self, cx: &mut Context<'_>, data: &[u8]) {
        cx.write(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, reason: &DisconnectReason) {
        *self.lost.borrow_mut() = Some(reason.is_clean());
    }
}

/// An echo server on loopback; its last connection's end is recorded in the returned cell.
fn echo_tcp(reactor: &mut Reactor) -> (SocketAddr, Shared<Option<bool>>) {
    let lost = shared(None);
    let l = lost.clone();
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Echo { lost: l.clone() })
        .unwrap();
    (port.local_addr(), lost)
}

/// Writes `greeting` once made, then (if `close`) closes, or half-closes (sends EOF) and
/// records what it receives after.
struct Greeter {
    greeting: &'static [u8],
    half_close: bool,
    received: Shared<Vec<u8>>,
    lost: Shared<bool>,
}

impl Protocol for Greeter {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        cx.write(self.greeting);
        match self.half_close {
            true => cx.shutdown_write(),
            false => cx.lose_connection(),
        }
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, data: &[u8]) {
        self.received.borrow_mut().extend_from_slice(data);
    }

    fn connection_lost(&mut self, _cx: &mut Context<'_>, _reason: &DisconnectReason) {
        *self.lost.borrow_mut() = true;
    }
}

fn greeter(
    reactor: &mut Reactor,
    greeting: &'static [u8],
    half_close: bool,
) -> (SocketAddr, Shared<Vec<u8>>, Shared<bool>) {
    let (received, lost) = (shared(Vec::new()), shared(false));
    let (r, l) = (received.clone(), lost.clone());
    let port = reactor
        .listen_tcp(any_loopback_port(), move || Greeter {
            greeting,
            half_close,
            received: r.clone(),
            lost: l.clone(),
        })
        .unwrap();
    (port.local_addr(), received, lost)
}

/// The byte at `offset` of the streams the backpressure tests send.
fn pattern(offset: usize) -> u8 {
    (offset % 251) as u8
}

fn pattern_chunk(start: usize, len: usize) -> Vec<u8> {
    (start..start + len).map(pattern).collect()
}

#[test]
fn a_scripted_client_connects_writes_a_line_reads_the_reply_and_times_out_on_silence() {
    let mut reactor = Reactor::new().unwrap();
    let (addr, lost) = echo_tcp(&mut reactor);
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await?;
        assert_eq!(conn.peer().as_tcp(), Some(addr));
        conn.write_all("hello\r\n").await?;
        let reply = conn.read_line(64).await?;
        let silence = local
            .timeout(Duration::from_millis(50), conn.read_line(64))
            .await;
        Ok::<_, Box<dyn std::error::Error>>((reply, silence.map(|_| ())))
    });
    let (reply, silence) = finish(&mut reactor, task).unwrap();
    assert_eq!(reply.as_deref(), Some("hello"));
    assert_eq!(silence, Err(Elapsed));
    run_until(&mut reactor, "the dropped handle to close", || {
        lost.borrow().is_some()
    });
    assert_eq!(*lost.borrow(), Some(true), "closed cleanly by the drop");
}

#[test]
fn an_over_long_line_is_an_error_and_its_bytes_stay_unread_until_eof() {
    let mut reactor = Reactor::new().unwrap();
    let greeting: &'static [u8] = b"short\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
    let (addr, _, _) = greeter(&mut reactor, greeting, false);
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await.unwrap();
        let short = conn.read_line(16).await.unwrap();
        let long = conn.read_line(16).await.unwrap_err();
        let rest = conn.read_to_end(1024).await.unwrap();
        let after = conn.read_line(16).await.unwrap();
        (short, long.kind(), rest, after)
    });
    let (short, long, rest, after) = finish(&mut reactor, task);
    assert_eq!(short.as_deref(), Some("short"));
    assert_eq!(long, io::ErrorKind::InvalidData);
    assert_eq!(
        &rest[..],
        &greeting[6..],
        "nothing of the long line was lost"
    );
    assert_eq!(after, None, "EOF");
}

#[test]
fn a_last_line_without_its_end_is_read_at_eof_and_read_exact_says_unexpected_eof() {
    let mut reactor = Reactor::new().unwrap();
    let (addr, _, _) = greeter(&mut reactor, b"one\r\ntwo", false);
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await.unwrap();
        let one = conn.read_line(16).await.unwrap();
        let short = conn.read_exact(10).await.unwrap_err().kind();
        let two = conn.read_line(16).await.unwrap();
        let end = conn.read().await.unwrap();
        (one, short, two, end)
    });
    let (one, short, two, end) = finish(&mut reactor, task);
    assert_eq!(one.as_deref(), Some("one"));
    assert_eq!(short, io::ErrorKind::UnexpectedEof);
    assert_eq!(
        two.as_deref(),
        Some("two"),
        "read_exact left the bytes unread"
    );
    assert_eq!(end, None);
}

#[test]
fn after_the_peers_eof_the_task_still_writes_then_closes() {
    let mut reactor = Reactor::new().unwrap();
    let (addr, received, lost) = greeter(&mut reactor, b"bye", true);
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await.unwrap();
        let all = conn.read_to_end(1024).await.unwrap();
        assert!(conn.is_closed_for_reading());
        conn.write_all("after eof\n").await.unwrap();
        conn.close();
        assert_eq!(
            conn.write("too late").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        conn.wait_closed().await.unwrap();
        all
    });
    assert_eq!(&finish(&mut reactor, task)[..], b"bye");
    run_until(&mut reactor, "the server to see the close", || {
        *lost.borrow()
    });
    assert_eq!(&received.borrow()[..], b"after eof\n");
}

#[test]
fn shutdown_write_sends_eof_and_the_task_reads_the_answer_to_the_end() {
    let mut reactor = Reactor::new().unwrap();
    // The echo server closes at EOF (a protocol's default), once it has echoed everything.
    let (addr, lost) = echo_tcp(&mut reactor);
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await.unwrap();
        conn.write("the whole request").unwrap();
        conn.shutdown_write();
        let refused = conn.write("more").unwrap_err().kind();
        let answer = conn.read_to_end(1024).await.unwrap();
        (refused, answer)
    });
    let (refused, answer) = finish(&mut reactor, task);
    assert_eq!(refused, io::ErrorKind::BrokenPipe);
    assert_eq!(&answer[..], b"the whole request");
    run_until(&mut reactor, "the server's close", || {
        lost.borrow().is_some()
    });
    assert_eq!(*lost.borrow(), Some(true));
}

/// Sends `total` bytes of the pattern as fast as its write queue allows, then closes.
struct Firehose {
    sent: usize,
    total: usize,
}

impl Firehose {
    fn send_more(&mut self, cx: &mut Context<'_>) {
        // Past the high watermark (64 KiB) at a time: the reactor then says `pause_writing`,
        // and `resume_writing` once the queue drains, which sends more.
        while self.sent < self.total && cx.queued_bytes() <= 64 * 1024 {
            let len = (self.total - self.sent).min(16 * 1024);
            cx.write(&pattern_chunk(self.sent, len));
            self.sent += len;
        }
        if self.sent == self.total {
            cx.lose_connection();
        }
    }
}

impl Protocol for Firehose {
    fn connection_made(&mut self, cx: &mut Context<'_>) {
        self.send_more(cx);
    }

    fn data_received(&mut self, _cx: &mut Context<'_>, _data: &[u8]) {}

    fn resume_writing(&mut self, cx: &mut Context<'_>) {
        self.send_more(cx);
    }
}

#[test]
fn a_task_that_does_not_read_holds_bounded_memory_and_then_reads_every_byte() {
    const TOTAL: usize = 8 << 20;
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), || Firehose {
            sent: 0,
            total: TOTAL,
        })
        .unwrap();
    let addr = port.local_addr();
    let local = reactor.local_handle();
    let slot: Shared<Option<AsyncConnection>> = shared(None);
    let s = slot.clone();
    let connect = reactor.spawn_task(async move {
        *s.borrow_mut() = Some(local.connect(addr, ConnectOptions::new()).await.unwrap());
    });
    finish(&mut reactor, connect);
    let paused = || slot.borrow().as_ref().unwrap().is_reading_paused();
    run_until(&mut reactor, "reading to pause", paused);
    // One read's worth past the limit at most; the sender's own queue stays at its mark.
    let bound = 2 * DEFAULT_READ_LIMIT;
    for _ in 0..50 {
        reactor.iterate(Duration::from_millis(2)).unwrap();
        let buffered = slot.borrow().as_ref().unwrap().buffered();
        assert!(buffered <= bound, "{buffered} bytes buffered, over {bound}");
        assert!(paused());
        let queued = reactor.metrics().bytes_queued;
        assert!(
            queued <= 2 * 64 * 1024,
            "{queued} bytes queued on the reactor"
        );
    }
    let mut conn = slot.borrow_mut().take().unwrap();
    let reader = reactor.spawn_task(async move {
        let (mut got, mut largest) = (0, 0);
        while let Some(chunk) = conn.read().await.unwrap() {
            assert_eq!(&chunk[..], &pattern_chunk(got, chunk.len())[..], "at {got}");
            got += chunk.len();
            largest = largest.max(chunk.len());
        }
        (got, largest)
    });
    let (got, largest) = finish(&mut reactor, reader);
    assert_eq!(got, TOTAL, "every byte arrived once the task read");
    assert!(largest <= bound, "a read gave {largest} bytes");
}

#[test]
fn a_read_dropped_before_it_completes_no_longer_holds_reading_open() {
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), || Firehose {
            sent: 0,
            total: 8 << 20,
        })
        .unwrap();
    let addr = port.local_addr();
    let local = reactor.local_handle();
    let slot: Shared<Option<AsyncConnection>> = shared(None);
    let s = slot.clone();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await.unwrap();
        {
            // Asks for up to 16 MiB (so reading may go on past the limit), then gives up, as
            // a timeout would.
            let mut read = Box::pin(conn.read_to_end(16 << 20));
            std::future::poll_fn(|cx| {
                let _ = read.as_mut().poll(cx);
                Poll::Ready(())
            })
            .await;
        }
        *s.borrow_mut() = Some(conn);
    });
    finish(&mut reactor, task);
    let conn = || slot.borrow();
    run_until(&mut reactor, "reading to pause", || {
        conn().as_ref().unwrap().is_reading_paused()
    });
    for _ in 0..20 {
        reactor.iterate(Duration::from_millis(2)).unwrap();
    }
    let buffered = conn().as_ref().unwrap().buffered();
    assert!(
        buffered <= 2 * DEFAULT_READ_LIMIT,
        "{buffered} bytes buffered"
    );
}

#[test]
fn a_reset_is_read_as_an_error_after_the_bytes_before_it_and_fails_writes() {
    let listener = TcpListener::bind(any_loopback_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"partial\n").unwrap();
        let mut ack = [0; 3];
        stream.read_exact(&mut ack).unwrap();
        // Linger 0: the close sends a reset.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await.unwrap();
        let line = conn.read_line(64).await.unwrap();
        conn.write_all("ok\n").await.unwrap();
        let reset = conn.read().await.unwrap_err().kind();
        let write = conn.write("more").unwrap_err().kind();
        (line, reset, write)
    });
    let (line, reset, write) = finish(&mut reactor, task);
    peer.join().unwrap();
    assert_eq!(line.as_deref(), Some("partial"));
    assert_eq!(reset, io::ErrorKind::ConnectionReset);
    assert_eq!(write, io::ErrorKind::ConnectionReset);
}

#[test]
fn dropping_a_connect_future_abandons_the_attempt() {
    let silent = common::SilentListener::new();
    let addr = silent.addr();
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let connect = local.connect(addr, ConnectOptions::new());
        local
            .timeout(Duration::from_millis(20), connect)
            .await
            .map(|_| ())
    });
    assert_eq!(finish(&mut reactor, task), Err(Elapsed));
    // The drop queued the stop: it runs on the next turn.
    for _ in 0..3 {
        reactor.iterate(Duration::ZERO).unwrap();
    }
    assert_eq!(reactor.metrics().connections_open, 0, "still connecting");
}

#[test]
fn write_all_sends_megabytes_to_a_slow_reader_holding_little() {
    const TOTAL: usize = 4 << 20;
    const CHUNK: usize = 64 * 1024;
    let listener = TcpListener::bind(any_loopback_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    // The slow reader: small reads, paced, checking the pattern, until EOF.
    let peer = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(common::CLIENT_TIMEOUT))
            .unwrap();
        let (mut got, mut buf) = (0, vec![0; 16 * 1024]);
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            assert_eq!(&buf[..n], &pattern_chunk(got, n)[..], "at {got}");
            got += n;
            thread::sleep(Duration::from_micros(500));
        }
    });
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, ConnectOptions::new()).await.unwrap();
        let id = conn.id();
        let mut most_queued = 0;
        for start in (0..TOTAL).step_by(CHUNK) {
            conn.write_all(pattern_chunk(start, CHUNK)).await.unwrap();
            let queued = local.call(move |r| r.queued_bytes(id)).await;
            most_queued = most_queued.max(queued);
        }
        conn.flush().await.unwrap();
        assert_eq!(local.call(move |r| r.queued_bytes(id)).await, 0);
        conn.close();
        conn.wait_closed().await.unwrap();
        most_queued
    });
    let most_queued = finish(&mut reactor, task);
    assert!(
        most_queued <= 64 * 1024 + CHUNK,
        "{most_queued} bytes were queued at once"
    );
    assert_eq!(peer.join().unwrap(), TOTAL);
}

#[test]
fn a_refused_connect_is_a_connect_error() {
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let addr = closed_loopback_port();
    let task = reactor.spawn_task(async move { local.connect(addr, ConnectOptions::new()).await });
    match finish(&mut reactor, task) {
        Err(ConnectError::Refused(_)) => {}
        other => panic!("expected refused, got {other:?}"),
    }
}

#[test]
fn a_bad_endpoint_fails_at_once_and_a_good_one_connects() {
    let mut reactor = Reactor::new().unwrap();
    let (addr, _) = echo_tcp(&mut reactor);
    let local = reactor.local_handle();
    assert!(local
        .connect_endpoint("nonsense:what", ConnectOptions::new())
        .is_err());
    let endpoint = format!("tcp:host=127.0.0.1:port={}", addr.port());
    let connect = local
        .connect_endpoint(&endpoint, ConnectOptions::new())
        .unwrap();
    let task = reactor.spawn_task(async move {
        let mut conn = connect.await.unwrap();
        conn.write("ping\n").unwrap();
        conn.read_line(16).await.unwrap()
    });
    assert_eq!(finish(&mut reactor, task).as_deref(), Some("ping"));
}

#[test]
fn a_tls_connect_reaches_a_tls_echo_server() {
    let mut reactor = Reactor::new().unwrap();
    let ca = TestCa::new("async connection test CA");
    let (addr, _) = echo_server(&mut reactor, localhost_server(&ca));
    let local = reactor.local_handle();
    let options = tls_to("localhost", &ca);
    let task = reactor.spawn_task(async move {
        let mut conn = local.connect(addr, options).await.unwrap();
        conn.write_all("over tls\n").await.unwrap();
        conn.read_line(64).await.unwrap()
    });
    assert_eq!(finish(&mut reactor, task).as_deref(), Some("over tls"));
}

#[test]
fn a_unix_socket_port_hands_each_connection_to_a_task() {
    let dir = TempDir::new("async-connection");
    let address = UnixAddress::path(dir.path("upper.sock"));
    let mut reactor = Reactor::new().unwrap();
    let served = Rc::new(RefCell::new(0));
    let s = served.clone();
    reactor
        .listen_unix(
            address.clone(),
            UnixListenOptions::new(),
            serve_tasks(move |mut conn| {
                *s.borrow_mut() += 1;
                async move {
                    while let Ok(Some(line)) = conn.read_line(1024).await {
                        let reply = format!("{}\n", line.to_uppercase());
                        if conn.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            }),
        )
        .unwrap();
    let local = reactor.local_handle();
    let task = reactor.spawn_task(async move {
        let mut replies = Vec::new();
        for word in ["first", "second"] {
            let mut conn = local
                .connect(address.clone(), ConnectOptions::new())
                .await
                .unwrap();
            conn.write_all(format!("{word}\n")).await.unwrap();
            replies.push(conn.read_line(64).await.unwrap().unwrap());
        }
        replies
    });
    assert_eq!(finish(&mut reactor, task), ["FIRST", "SECOND"]);
    assert_eq!(*served.borrow(), 2);
}

#[test]
fn call_in_thread_and_lookup_host_resolve_off_the_reactor_thread() {
    let mut reactor = Reactor::new().unwrap();
    let local = reactor.local_handle();
    let reactor_thread = thread::current().id();
    let task = reactor.spawn_task(async move {
        let elsewhere = local.call_in_thread(|| thread::current().id()).await;
        let panicked = local
            .call_in_thread(|| -> u8 { panic!("work failed") })
            .await
            .unwrap_err();
        let localhost = local.lookup_host("localhost", 8080).await;
        (elsewhere, panicked.to_string(), localhost)
    });
    let (elsewhere, panicked, localhost) = finish(&mut reactor, task);
    assert_ne!(elsewhere.unwrap(), reactor_thread);
    assert!(panicked.contains("work failed"), "{panicked}");
    let addrs = localhost.unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080),
        "{addrs:?}"
    );
}
