//! The adapters over real loopback sockets: a reactor on the test's thread, blocking std
//! clients on spawned threads, reads split wherever the kernel splits them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use torsion_protocols::line::{LineContext, LineProtocol, LineReceiver};
use torsion_protocols::prefixed::{FrameContext, FrameProtocol, FrameReceiver, Prefix};
use torsion_protocols::PrefixedFramer;
use torsion_reactor::Reactor;

/// Answers `got LINE`; after `BODY n`, reads n raw bytes and answers `body BYTES`; `bye`
/// closes.
#[derive(Default)]
struct Server {
    body: Vec<u8>,
    body_left: usize,
}

impl LineReceiver for Server {
    fn line_received(&mut self, cx: &mut LineContext<'_, '_>, line: &[u8]) {
        cx.write(b"got ");
        cx.send_line(line);
        if let Some(n) = line.strip_prefix(b"BODY ") {
            self.body_left = std::str::from_utf8(n).unwrap().parse().unwrap();
            cx.set_raw_mode();
        } else if line == b"bye" {
            cx.lose_connection();
        }
    }

    fn raw_data_received(&mut self, cx: &mut LineContext<'_, '_>, data: &[u8]) {
        let used = data.len().min(self.body_left);
        self.body.extend_from_slice(&data[..used]);
        self.body_left -= used;
        if self.body_left == 0 {
            cx.write(b"body ");
            cx.send_line(&std::mem::take(&mut self.body));
            cx.set_line_mode_with_extra(data.len() - used);
        }
    }
}

/// Sends each frame back.
struct FrameEcho;

impl FrameReceiver for FrameEcho {
    fn frame_received(&mut self, cx: &mut FrameContext<'_, '_>, frame: &[u8]) {
        cx.send_frame(frame).unwrap();
    }
}

/// Runs the reactor until `client` (on its own thread) returns, and returns its result.
fn run_client<T: Send + 'static>(
    reactor: &mut Reactor,
    client: impl FnOnce() -> T + Send + 'static,
) -> T {
    let client = thread::spawn(client);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "the client did not finish");
        reactor.iterate(Duration::from_millis(10)).unwrap();
    }
    client.join().unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

#[test]
fn a_line_protocol_with_a_raw_body_over_loopback() {
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), || {
            LineProtocol::new(Server::default())
        })
        .unwrap();
    let addr = port.local_addr();
    let answer = run_client(&mut reactor, move || {
        let mut stream = connect(addr);
        for part in [
            &b"hel"[..],
            b"lo\r\nBODY 6\r\nab",
            b"\r\ncd",
            b"ef\r\n\r\nbye\r\n",
        ] {
            stream.write_all(part).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    });
    assert_eq!(
        answer,
        "got hello\r\ngot BODY 6\r\nbody ab\r\ncd\r\ngot ef\r\ngot \r\ngot bye\r\n"
    );
}

#[test]
fn length_prefixed_frames_round_trip_over_loopback() {
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), || {
            FrameProtocol::new(FrameEcho, Prefix::U32).with_max_frame_length(1 << 20)
        })
        .unwrap();
    let addr = port.local_addr();
    let frames: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i) * 997]).collect();
    let sent = frames.clone();
    let echoed = run_client(&mut reactor, move || {
        let mut stream = connect(addr);
        let mut wire = Vec::new();
        for frame in &sent {
            Prefix::U32.encode(frame, &mut wire).unwrap();
        }
        stream.write_all(&wire).unwrap();
        let mut framer = PrefixedFramer::new(Prefix::U32).with_max_frame_length(1 << 20);
        let mut echoed = Vec::new();
        let mut buf = vec![0; 4096];
        while echoed.len() < sent.len() {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed early");
            let mut cursor = framer.feed(&buf[..n]);
            while let Some(frame) = cursor.next() {
                echoed.push(frame.unwrap().to_vec());
            }
        }
        echoed
    });
    assert_eq!(echoed, frames);
}
