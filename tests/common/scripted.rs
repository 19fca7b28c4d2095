//! A scripted HTTP peer for the client's tests: a std `TcpListener` on a thread that reads
//! requests and writes canned bytes, so a test controls every byte of a response (and when the
//! connection closes), and counts the connections it accepted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use super::{any_loopback_port, CLIENT_TIMEOUT};

/// A scripted server: its address, the connections it accepted, and its thread.
pub struct Scripted {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// The script's thread; join it to surface its assertion failures.
    pub thread: JoinHandle<()>,
}

impl Scripted {
    /// Runs `script` on a thread with an accept function that counts connections.
    pub fn start(script: impl FnOnce(&mut dyn FnMut() -> TcpStream) + Send + 'static) -> Self {
        let listener = TcpListener::bind(any_loopback_port()).expect("bind");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let thread = thread::spawn(move || {
            let mut accept = move || {
                let (stream, _) = listener.accept().expect("accept");
                stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                stream
            };
            script(&mut accept);
        });
        Scripted {
            addr,
            accepted,
            thread,
        }
    }

    /// A server that answers each connection's first request with `response` and closes.
    pub fn once(response: &'static [u8]) -> Self {
        Self::start(move |accept| {
            let mut stream = accept();
            read_request(&mut stream);
            let _ = stream.write_all(response);
        })
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request (head, and a `Content-Length` body); `None` at EOF before a head.
pub fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let length = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some(text + &String::from_utf8_lossy(&body))
}
