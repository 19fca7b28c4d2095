//! The chat room on connections: each member is a [`LineReceiver`] that feeds its lines to
//! the shared [`ChatRoom`] and carries out what the room says.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use log::{info, warn};
use torsion_reactor::{Address, Bytes, ConnectionId, DisconnectReason, Factory, Reactor};

use super::room::{ChatRoom, Output};
use crate::line::{Delimiter, LineContext, LineProtocol, LineReceiver};
use crate::websocket::{CloseCode, Message, WebSocketHandle};

/// Longest line a member may send, in bytes; longer gets `ERR line too long` and a close.
pub const MAX_LINE_LENGTH: usize = 4096;

/// Bytes queued for a member past which it is disconnected: a client that stopped reading
/// must not hold memory or slow the room down.
pub const MAX_QUEUED: usize = 1 << 20;

/// The room, shared by every member's protocol (the reactor is single-threaded).
pub type SharedRoom = Rc<RefCell<ChatRoom<ConnectionId>>>;

/// The members who came through the web page, by connection: their lines go out as
/// WebSocket text messages through these handles, not as bytes on the connection.
pub(crate) type Browsers = Rc<RefCell<HashMap<ConnectionId, WebSocketHandle>>>;

/// Says `line` to `member`: a WebSocket message to a browser, a `\r\n`-ended line to
/// anyone else.
pub(crate) fn say_to(browsers: &Browsers, reactor: &mut Reactor, member: ConnectionId, line: &str) {
    match browsers.borrow().get(&member) {
        Some(browser) => {
            browser.send(reactor, Message::Text(line.to_string()));
        }
        None => {
            reactor.write_to(member, format!("{line}\r\n").as_bytes());
        }
    }
}

/// Closes `member`'s connection once what it was told has left: a WebSocket close for a
/// browser.
pub(crate) fn close_member(browsers: &Browsers, reactor: &mut Reactor, member: ConnectionId) {
    match browsers.borrow().get(&member) {
        Some(browser) => {
            browser.close(reactor, CloseCode::NORMAL, "");
        }
        None => {
            reactor.lose_connection(member);
        }
    }
}

/// Says `line` to every named member but `except`: one shared buffer for the terminal
/// members' fan-out, a message for each browser.
pub(crate) fn say_to_others(
    room: &ChatRoom<ConnectionId>,
    browsers: &Browsers,
    reactor: &mut Reactor,
    except: ConnectionId,
    line: &str,
) {
    let framed = Bytes::from(format!("{line}\r\n"));
    let browsers = browsers.borrow();
    // Most rooms have no browser: then no lookup per member.
    let any_browser = !browsers.is_empty();
    for member in room.named_members().filter(|&m| m != except) {
        match any_browser.then(|| browsers.get(&member)).flatten() {
            Some(browser) => {
                browser.send(reactor, Message::Text(line.to_string()));
            }
            None => {
                reactor.write_bytes_to(member, framed.clone());
            }
        }
    }
}

/// Builds a [`ChatMember`] for each connection, all in one room.
#[derive(Default)]
pub struct ChatServer {
    room: SharedRoom,
    browsers: Browsers,
}

impl ChatServer {
    /// A server with an empty room.
    pub fn new() -> Self {
        ChatServer::default()
    }

    /// The room, to look at who is in it.
    pub fn room(&self) -> SharedRoom {
        self.room.clone()
    }

    /// The same room's door for browsers: a page and its WebSocket, to serve on an HTTP
    /// port (see [`ChatWeb`](super::web::ChatWeb)).
    pub fn web(&self) -> super::web::ChatWeb {
        super::web::ChatWeb::new(self.room.clone(), self.browsers.clone())
    }
}

impl Factory for ChatServer {
    type Protocol = LineProtocol<ChatMember>;

    fn build_protocol(&mut self, _peer: Address) -> Option<Self::Protocol> {
        let member = ChatMember {
            room: self.room.clone(),
            browsers: self.browsers.clone(),
            backed_up: false,
        };
        Some(
            LineProtocol::new(member)
                .with_delimiter(Delimiter::Newline)
                .with_max_line_length(MAX_LINE_LENGTH),
        )
    }
}

/// One member's connection: lines in, the room's answers out.
pub struct ChatMember {
    room: SharedRoom,
    /// Members who came through the web page: lines for them are WebSocket messages.
    browsers: Browsers,
    /// More than `MAX_QUEUED` was waiting for this member at the end of a turn's writes and
    /// it has not drained since.
    backed_up: bool,
}

impl ChatMember {
    /// Carries out what the room said: lines to this member, to another, to all the others
    /// (one shared buffer for the whole fan-out), and closes.
    fn carry_out(&self, cx: &mut LineContext<'_, '_>, outputs: Vec<Output<ConnectionId>>) {
        let me = cx.transport().id();
        for output in outputs {
            match output {
                Output::To(id, line) if id == me => cx.send_line(line.as_bytes()),
                Output::To(id, line) => {
                    say_to(&self.browsers, cx.transport().reactor(), id, &line);
                }
                Output::Others { except, line } => {
                    let room = self.room.borrow();
                    let reactor = cx.transport().reactor();
                    say_to_others(&room, &self.browsers, reactor, except, &line);
                }
                Output::Close(id) if id == me => cx.lose_connection(),
                Output::Close(id) => close_member(&self.browsers, cx.transport().reactor(), id),
            }
        }
    }
}

impl LineReceiver for ChatMember {
    fn connection_made(&mut self, cx: &mut LineContext<'_, '_>) {
        // pause_writing then means "more than MAX_QUEUED waiting for this member".
        cx.transport()
            .set_write_buffer_limits(MAX_QUEUED, MAX_QUEUED / 2);
        let id = cx.transport().id();
        let outputs = self.room.borrow_mut().join(id);
        self.carry_out(cx, outputs);
    }

    fn line_received(&mut self, cx: &mut LineContext<'_, '_>, line: &[u8]) {
        let id = cx.transport().id();
        let outputs = self.room.borrow_mut().line(id, line);
        self.carry_out(cx, outputs);
    }

    fn line_length_exceeded(&mut self, cx: &mut LineContext<'_, '_>, _buffered: &[u8]) {
        warn!(
            "chat: {} sent a line over {MAX_LINE_LENGTH} bytes",
            cx.transport().id()
        );
        cx.send_line(b"ERR line too long");
        cx.lose_connection();
    }

    fn connection_lost(&mut self, cx: &mut LineContext<'_, '_>, reason: &DisconnectReason) {
        let id = cx.transport().id();
        if let Some(name) = self.room.borrow().name_of(id) {
            info!("chat: {name} left ({reason})");
        }
        let outputs = self.room.borrow_mut().leave(id);
        self.carry_out(cx, outputs);
    }

    /// Past `MAX_QUEUED` for this member. The reactor says so before the turn's flush, so a
    /// member that reads fine but just got a burst bigger than that hears `resume_writing`
    /// right after; judge on the next turn, once the kernel has taken what it would.
    fn pause_writing(&mut self, cx: &mut LineContext<'_, '_>) {
        self.backed_up = true;
        cx.call_later(Duration::ZERO, |this: &mut ChatMember, cx| {
            let queued = cx.transport().queued_bytes();
            if this.backed_up && queued > MAX_QUEUED {
                warn!(
                    "chat: {} stopped reading ({queued} bytes queued); disconnecting it",
                    cx.transport().id()
                );
                cx.transport().abort_connection();
            }
        });
    }

    fn resume_writing(&mut self, _cx: &mut LineContext<'_, '_>) {
        self.backed_up = false;
    }
}

#[cfg(test)]
mod tests {
    use torsion_reactor::testing::{TestConnection, TestReactor};

    use super::*;

    /// A server in a test reactor, with members joining by name.
    struct Room {
        test: TestReactor,
        server: ChatServer,
    }

    impl Room {
        fn new() -> Room {
            Room {
                test: TestReactor::new(),
                server: ChatServer::new(),
            }
        }

        fn connect(&mut self) -> TestConnection {
            let member = self.test.connect_from(&mut self.server).unwrap();
            assert_eq!(
                member.take_text(),
                format!("{}\r\n", crate::chat::room::GREETING)
            );
            member
        }

        fn join(&mut self, name: &str) -> TestConnection {
            let member = self.connect();
            self.say(&member, name);
            assert_eq!(member.take_text(), format!("Welcome, {name}!\r\n"));
            member
        }

        fn say(&mut self, member: &TestConnection, line: &str) {
            self.test.feed(member, format!("{line}\n").as_bytes());
        }
    }

    #[test]
    fn members_hear_each_other_and_not_themselves() {
        let mut room = Room::new();
        let alice = room.join("alice");
        let bob = room.join("bob");
        assert_eq!(alice.take_text(), "* bob has joined\r\n");
        room.say(&alice, "hi bob");
        assert_eq!(bob.take_text(), "<alice> hi bob\r\n");
        assert_eq!(alice.take_text(), "");
    }

    #[test]
    fn crlf_and_bare_lf_both_end_lines_and_replies_end_in_crlf() {
        let mut room = Room::new();
        let alice = room.join("alice");
        let bob = room.join("bob");
        alice.take_text();
        room.test.feed(&bob, b"one\r\ntwo\n");
        assert_eq!(alice.take_text(), "<bob> one\r\n<bob> two\r\n");
    }

    #[test]
    fn an_over_long_line_gets_err_and_a_close_and_the_room_hears_the_leave() {
        let mut room = Room::new();
        let alice = room.join("alice");
        let bob = room.join("bob");
        alice.take_text();
        room.say(&bob, &"x".repeat(MAX_LINE_LENGTH + 1));
        assert_eq!(bob.take_text(), "ERR line too long\r\n");
        assert!(bob.is_closed());
        assert_eq!(alice.take_text(), "* bob has left\r\n");
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_fine() {
        let mut room = Room::new();
        let alice = room.join("alice");
        let bob = room.join("bob");
        alice.take_text();
        let long = "y".repeat(MAX_LINE_LENGTH);
        room.say(&bob, &long);
        assert_eq!(alice.take_text(), format!("<bob> {long}\r\n"));
        assert!(!bob.is_closed());
    }

    #[test]
    fn quit_says_bye_and_closes_cleanly() {
        let mut room = Room::new();
        let alice = room.join("alice");
        room.say(&alice, "/quit");
        assert_eq!(alice.take_text(), "Bye\r\n");
        assert!(alice.is_closed());
        assert!(alice.close_reason().unwrap().is_clean());
    }

    #[test]
    fn a_member_that_stops_reading_is_dropped_past_one_mib_and_the_others_go_on() {
        let mut room = Room::new();
        let slow = room.join("slow");
        let fast = room.join("fast");
        slow.take_text();
        slow.set_write_room(Some(0));
        let line = "z".repeat(4000);
        let mut sent = 0;
        while !slow.is_closed() {
            room.say(&fast, &line);
            sent += 1;
            assert!(sent < 1000, "the slow member was never dropped");
        }
        assert!(sent >= MAX_QUEUED / 4000, "dropped after only {sent} lines");
        assert!(matches!(
            *slow.close_reason().unwrap(),
            DisconnectReason::Aborted
        ));
        assert_eq!(fast.take_text(), "* slow has left\r\n");
        room.say(&fast, "/who");
        assert_eq!(fast.take_text(), "Users: fast\r\n");
    }

    #[test]
    fn a_member_reading_fine_survives_a_burst_larger_than_one_mib() {
        let mut room = Room::new();
        let reader = room.join("reader");
        let flooder = room.join("flooder");
        reader.take_text();
        // One read of short lines: each becomes a longer line for every other member, over
        // 1 MiB for the reader in one turn, which its peer takes whole.
        let burst = "x\n".repeat(60_000);
        room.test.feed(&flooder, burst.as_bytes());
        assert!(!reader.is_closed(), "a member that reads is never dropped");
        assert_eq!(
            reader.take_text().matches("<flooder> x\r\n").count(),
            60_000
        );
    }

    #[test]
    fn non_utf8_gets_err_and_the_member_stays() {
        let mut room = Room::new();
        let alice = room.join("alice");
        room.test.feed(&alice, b"\xff\xfe\n");
        assert_eq!(alice.take_text(), "ERR that line is not UTF-8\r\n");
        assert!(!alice.is_closed());
    }
}
