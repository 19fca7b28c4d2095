//! The chat server's line protocol over real loopback sockets: the
//! `ChatServer` factory listens in-process, blocking std clients talk to it from threads, and
//! the reactor turns on the test thread until they finish.
//!
//! Each client reads the server's output line by line and checks that every line ends with
//! `\r\n`. "Nothing else arrived" is proved without sleeping: the client sends `/who`, whose
//! answer the server queues after anything it had already queued for that client, so the next
//! line read must be the `Users:` line.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use torsion::protocols::chat::room::GREETING;
use torsion::protocols::chat::ChatServer;
use torsion::Reactor;

/// Runs a chat server on the test thread until the client threads `start` spawns (given the
/// server's address) have finished; returns what they returned.
fn with_server<T>(start: impl FnOnce(SocketAddr) -> Vec<JoinHandle<T>>) -> Vec<T> {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .listen_tcp(any_loopback_port(), ChatServer::new())
        .unwrap();
    let clients = start(port.local_addr());
    run_until_joined(&mut reactor, clients)
}

/// Runs `script` on one client thread against a fresh chat server.
fn chat(script: impl FnOnce(SocketAddr) + Send + 'static) {
    with_server(|addr| vec![thread::spawn(move || script(addr))]);
}

/// One blocking chat client.
struct Member {
    reader: BufReader<TcpStream>,
}

impl Member {
    /// Connects and reads the greeting.
    fn connect(addr: SocketAddr) -> Member {
        let mut member = Member {
            reader: BufReader::new(connect(addr)),
        };
        member.expect(GREETING);
        member
    }

    /// Connects and takes `name`.
    fn join(addr: SocketAddr, name: &str) -> Member {
        let mut member = Member::connect(addr);
        member.say(name);
        member.expect(&format!("Welcome, {name}!"));
        member
    }

    /// Sends `line` ended by a bare `\n`.
    fn say(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// Sends raw bytes.
    fn send(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("client writes");
    }

    /// Reads one line, checks that it ends with `\r\n` and holds no other line break, and
    /// returns it without the `\r\n`.
    fn line(&mut self) -> String {
        let mut raw = Vec::new();
        self.reader
            .read_until(b'\n', &mut raw)
            .expect("client reads a line");
        let text = String::from_utf8(raw).expect("the server sends UTF-8");
        let line = text
            .strip_suffix("\r\n")
            .unwrap_or_else(|| panic!("a server line ends with \\r\\n: {text:?}"));
        assert!(!line.contains(['\r', '\n']), "one line: {text:?}");
        line.to_string()
    }

    /// Reads one line and checks it is `expected`.
    fn expect(&mut self, expected: &str) {
        assert_eq!(self.line(), expected);
    }

    /// Reads one line and checks it starts with `ERR`.
    fn expect_err(&mut self) {
        let line = self.line();
        assert!(
            line.starts_with("ERR"),
            "expected an ERR line, got {line:?}"
        );
    }

    /// Asks `/who` and checks the answer is the next line: nothing else was queued for us.
    fn expect_only_who(&mut self, users: &str) {
        self.say("/who");
        self.expect(&format!("Users: {users}"));
    }

    /// Checks that the server closes the connection, with nothing more sent before.
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut rest)
            .expect("the server closes cleanly");
        assert_eq!(n, 0, "nothing after the last line: {rest:?}");
    }
}

#[test]
fn a_new_connection_gets_exactly_one_greeting_line() {
    chat(|addr| {
        let mut alice = Member::connect(addr);
        // A name error is the next line: the greeting was one line.
        alice.say("bad name");
        alice.expect_err();
    });
}

#[test]
fn an_invalid_name_gets_err_and_the_server_waits_for_another() {
    chat(|addr| {
        let mut alice = Member::connect(addr);
        for bad in ["", "has space", &"x".repeat(33), "caf\u{e9}", "a/b", "a.b"] {
            alice.say(bad);
            alice.expect_err();
        }
        alice.say(&"x".repeat(32));
        alice.expect(&format!("Welcome, {}!", "x".repeat(32)));
    });
}

#[test]
fn a_taken_name_gets_err_ignoring_case_and_a_free_one_is_welcomed() {
    chat(|addr| {
        let _alice = Member::join(addr, "alice");
        let mut second = Member::connect(addr);
        for taken in ["alice", "ALICE", "Alice"] {
            second.say(taken);
            second.expect_err();
        }
        second.say("alice_2");
        second.expect("Welcome, alice_2!");
    });
}

#[test]
fn joining_and_leaving_are_announced_to_the_others_only_for_named_members() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        drop(bob);
        alice.expect("* bob has left");
        drop(Member::connect(addr));
        alice.expect_only_who("alice");
    });
}

#[test]
fn a_line_goes_to_every_other_member_and_not_back_to_the_sender() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        let mut carol = Member::join(addr, "carol");
        alice.say("hello, all");
        bob.expect("* carol has joined");
        bob.expect("<alice> hello, all");
        carol.expect("<alice> hello, all");
        alice.expect("* bob has joined");
        alice.expect("* carol has joined");
        alice.expect_only_who("alice, bob, carol");
    });
}

#[test]
fn a_member_still_naming_itself_hears_nothing_from_the_room() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut nameless = Member::connect(addr);
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        bob.say("anyone?");
        alice.expect("<bob> anyone?");
        nameless.say("carol");
        nameless.expect("Welcome, carol!");
        nameless.expect_only_who("alice, bob, carol");
    });
}

#[test]
fn control_characters_reach_the_others_escaped_so_no_line_is_forged() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        // A CR inside the line is escaped; the CR of its CRLF terminator is not part of it.
        bob.send(b"bye\r* bob has left\r\n");
        alice.expect("<bob> bye^M* bob has left");
        bob.send("/me \x1b[2J\u{9b}H\x07\x7fwaves\n".as_bytes());
        alice.expect("* bob ^[[2J^[[H^G^?waves");
        alice.expect_only_who("alice, bob");
    });
}

#[test]
fn me_shows_an_action_to_the_others() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        alice.say("/me waves");
        bob.expect("* alice waves");
        alice.expect_only_who("alice, bob");
    });
}

#[test]
fn msg_reaches_only_its_target_and_an_unknown_target_gets_err() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        let mut carol = Member::join(addr, "carol");
        alice.say("/msg bob psst, bob");
        bob.expect("* carol has joined");
        bob.expect("*alice* psst, bob");
        carol.expect_only_who("alice, bob, carol");
        alice.say("/msg nobody hello?");
        alice.expect("* bob has joined");
        alice.expect("* carol has joined");
        alice.expect_err();
        bob.expect_only_who("alice, bob, carol");
    });
}

#[test]
fn who_lists_the_named_members_sorted_with_comma_and_space() {
    chat(|addr| {
        let _carol = Member::join(addr, "carol");
        let _alice = Member::join(addr, "alice");
        let _nameless = Member::connect(addr);
        let mut bob = Member::join(addr, "bob");
        bob.expect_only_who("alice, bob, carol");
    });
}

#[test]
fn nick_renames_tells_the_others_and_a_taken_or_invalid_nick_gets_err() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        bob.say("/nick robert");
        bob.expect("You are now robert");
        alice.expect("* bob is now robert");
        bob.say("/nick ALICE");
        bob.expect_err();
        bob.say("/nick no way");
        bob.expect_err();
        alice.expect_only_who("alice, robert");
        bob.say("hi");
        alice.expect("<robert> hi");
    });
}

#[test]
fn quit_says_bye_then_closes_and_the_others_hear_the_leave() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        bob.say("/quit");
        bob.expect("Bye");
        bob.expect_closed();
        alice.expect("* bob has left");
        alice.expect_only_who("alice");
    });
}

#[test]
fn an_unknown_command_gets_err_and_reaches_nobody() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        bob.say("/dance wildly");
        bob.expect_err();
        alice.expect("* bob has joined");
        alice.expect_only_who("alice, bob");
    });
}

#[test]
fn lf_and_crlf_both_end_a_line_and_every_server_line_ends_with_crlf() {
    chat(|addr| {
        let mut alice = Member::connect(addr);
        alice.send(b"alice\r\n");
        alice.expect("Welcome, alice!");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        bob.send(b"one\r\ntwo\nthree\r\n");
        let mut raw = vec![0; "<bob> one\r\n<bob> two\r\n<bob> three\r\n".len()];
        std::io::Read::read_exact(&mut alice.reader, &mut raw).unwrap();
        assert_eq!(raw, b"<bob> one\r\n<bob> two\r\n<bob> three\r\n");
    });
}

#[test]
fn bytes_that_are_not_utf8_get_err_and_the_connection_goes_on() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::connect(addr);
        bob.send(b"b\xffb\n");
        bob.expect_err();
        bob.say("bob");
        bob.expect("Welcome, bob!");
        bob.send(b"\xff\xfe text\r\n");
        bob.expect_err();
        bob.say("still here");
        alice.expect("* bob has joined");
        alice.expect("<bob> still here");
    });
}

#[test]
fn a_line_of_exactly_4096_bytes_is_delivered() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        let long = "y".repeat(4096);
        bob.say(&long);
        alice.expect(&format!("<bob> {long}"));
        bob.expect_only_who("alice, bob");
    });
}

#[test]
fn an_over_long_line_gets_err_then_a_close_and_the_others_hear_the_leave() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        bob.say(&"x".repeat(4097));
        bob.expect("ERR line too long");
        bob.expect_closed();
        alice.expect("* bob has left");
        alice.expect_only_who("alice");
    });
}

#[test]
fn an_over_long_line_is_refused_before_its_end_arrives() {
    chat(|addr| {
        let mut alice = Member::join(addr, "alice");
        let mut bob = Member::join(addr, "bob");
        alice.expect("* bob has joined");
        // Without a delimiter the framer decides at 4098 bytes: 4096 and a `\r` still waiting
        // for its `\n` would be a line of the maximum length.
        bob.send("x".repeat(4098).as_bytes());
        bob.expect("ERR line too long");
        bob.expect_closed();
        alice.expect("* bob has left");
    });
}

/// Longest a line may take from the sender to a listener in the slow-reader test: far more
/// than it takes (a few milliseconds), far less than the seconds a stalled fan-out would.
const PROMPT: Duration = Duration::from_secs(1);

/// Lines the slow-reader test's sender may be ahead of the slower listener: 128 KB, far
/// below 1 MiB. Without a window the sender floods at the speed of loopback and a listener
/// that loses its CPU for a few milliseconds (four busy threads share two cores) falls 1 MiB
/// behind and is rightly dropped too: that would test a flood, not one member not reading.
const WINDOW: usize = 32;

/// What the slow-reader test's threads tell each other.
#[derive(Default)]
struct Progress {
    /// Lines each listener has read, and whether one has heard the slow member leave.
    state: Mutex<([usize; 2], bool)>,
    changed: Condvar,
}

impl Progress {
    /// A listener read its `count`th line, or heard the leave.
    fn update(&self, listener: usize, count: usize, left: bool) {
        let mut state = self.state.lock().unwrap();
        state.0[listener] = count;
        state.1 |= left;
        self.changed.notify_all();
    }

    /// Waits until both listeners have read all but `WINDOW` of `sent` lines; returns whether
    /// the slow member has left.
    fn wait_for_listeners(&self, sent: usize) -> bool {
        let state = self.state.lock().unwrap();
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, CLIENT_TIMEOUT, |(counts, _)| {
                sent - counts[0].min(counts[1]) >= WINDOW
            })
            .unwrap();
        assert!(!timeout.timed_out(), "the listeners stopped reading");
        state.1
    }
}

/// The slow-reader test's sender: numbered lines of about 4 KB until the slow member has
/// left. Each line carries its send time (µs since `start`) so the listeners
/// can measure delays. Returns how many numbered lines it sent.
fn send_until_left(fast: &mut Member, start: Instant, progress: &Progress) -> usize {
    let padding = "z".repeat(4000);
    let mut sent = 0;
    while !progress.wait_for_listeners(sent) {
        let micros = start.elapsed().as_micros();
        fast.say(&format!("{sent} {micros} {padding}"));
        sent += 1;
        // 64 MB: far past 1 MiB plus any kernel buffer.
        assert!(sent < 16_000, "the slow member was never disconnected");
    }
    sent
}

/// The slow-reader test's listener number `index`: reads every line of the sender, checking
/// the order, until `done`. Returns how many numbered lines it got and the longest time one
/// took to arrive.
fn listen_until_done(
    member: &mut Member,
    index: usize,
    start: Instant,
    progress: &Progress,
) -> (usize, Duration) {
    let (mut got, mut slowest) = (0, Duration::ZERO);
    loop {
        let line = member.line();
        if line == "* slow has left" {
            progress.update(index, got, true);
            continue;
        }
        if line == "<fast> done" {
            return (got, slowest);
        }
        let mut fields = line
            .strip_prefix("<fast> ")
            .expect("a line of fast")
            .split(' ');
        assert_eq!(fields.next(), Some(got.to_string().as_str()), "in order");
        let sent_at = Duration::from_micros(fields.next().unwrap().parse().unwrap());
        slowest = slowest.max(start.elapsed().saturating_sub(sent_at));
        got += 1;
        progress.update(index, got, false);
    }
}

#[test]
fn a_member_that_stops_reading_is_dropped_past_1_mib_and_the_others_get_every_line_promptly() {
    let results = with_server(|addr| vec![thread::spawn(move || slow_reader_room(addr))]);
    let (sent, listened) = &results[0];
    assert!(sent * 4000 > 1 << 20, "dropped after only {sent} lines");
    for &(got, slowest) in listened {
        assert_eq!(got, *sent, "a listener got every line");
        assert!(slowest < PROMPT, "a line took {slowest:?} to arrive");
    }
}

/// The slow-reader test's clients: two listeners, a member that never reads, and a sender
/// that talks until the listeners hear the slow one leave. Returns the lines sent and, per
/// listener, the lines it got and the longest delay of one.
fn slow_reader_room(addr: SocketAddr) -> (usize, Vec<(usize, Duration)>) {
    let mut listeners = [
        Member::join(addr, "listener_a"),
        Member::join(addr, "listener_b"),
    ];
    let mut slow = Member::join(addr, "slow");
    let mut fast = Member::join(addr, "fast");
    listeners[0].expect("* listener_b has joined");
    for listener in &mut listeners {
        listener.expect("* slow has joined");
        listener.expect("* fast has joined");
    }
    let start = Instant::now();
    let progress = Arc::new(Progress::default());
    let listening: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(index, mut listener)| {
            let progress = progress.clone();
            thread::spawn(move || listen_until_done(&mut listener, index, start, &progress))
        })
        .collect();
    let sent = send_until_left(&mut fast, start, &progress);
    fast.expect("* slow has left");
    fast.expect_only_who("fast, listener_a, listener_b");
    fast.say("done");
    let listened = listening.into_iter().map(|l| l.join().unwrap()).collect();
    // Only now does the slow member read: what was queued in the kernel, then the end.
    let (_, end) = read_to_end(slow.reader.get_mut());
    if let Err(e) = end {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    eprintln!(
        "slow reader dropped after {sent} lines; {:?} in {:?}",
        listened,
        start.elapsed()
    );
    (sent, listened)
}
