//! The chat room's rules, sans-I/O: who is in the room under which name, and what each line a
//! member sends makes the room say to whom. No sockets, no framing: lines in, messages out,
//! so every rule is tested without a reactor.
//!
//! The protocol, exactly (people script it):
//! - On joining, a member gets one greeting line asking for a name.
//! - The first line is the name: 1 to 32 characters of `A-Z a-z 0-9 _ -`, unique in the room
//!   ignoring case. Invalid or taken: a line starting with `ERR`, and the room waits for
//!   another. Accepted: `Welcome, NAME!` to the member, `* NAME has joined` to the others.
//! - Every further line goes to the others as `<NAME> text` (not back to the sender), empty
//!   ones included.
//! - `/me action`: the others get `* NAME action`. `/msg OTHER text`: only OTHER gets
//!   `*NAME* text` (an unknown OTHER gets the sender an `ERR` line). `/who`: the sender gets
//!   `Users: a, b, c` (sorted). `/nick NEW`: `You are now NEW` to the sender, `* OLD is now NEW`
//!   to the others (`ERR` if invalid or taken). `/quit`: `Bye`, then the connection closes.
//!   Any other `/word`: an `ERR` line.
//! - When a named member leaves, for any reason, the others get `* NAME has left`.
//! - A line that is not UTF-8 gets an `ERR` line and changes nothing.
//! - Control characters in a line (its terminator is not part of it) never reach anyone's
//!   terminal: C0 controls, DEL and C1 controls are written in caret notation before the line
//!   is read (`\r` → `^M`, ESC → `^[`, U+009B → `^[[`; see [`crate::terminal`]), so a carriage
//!   return cannot forge a line such as `* bob has left` and an escape sequence cannot clear a
//!   screen. Names cannot hold them at all (a caret is not a name character).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::terminal::escape_controls;

/// The greeting sent to every new member.
pub const GREETING: &str = "Welcome to torsion chat! What is your name?";

/// Longest name accepted, in characters (all ASCII).
pub const MAX_NAME_LEN: usize = 32;

/// What the room says, one line each (without line ending), and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<Id> {
    /// A line for one member.
    To(Id, String),
    /// A line for every named member except `except`.
    Others {
        /// The member who caused it and does not get it.
        except: Id,
        /// The line.
        line: String,
    },
    /// Close this member's connection (after what was said to it).
    Close(Id),
}

enum Member {
    /// Connected, no name chosen yet.
    Naming,
    Named(String),
}

/// The room: members by connection id, names taken.
pub struct ChatRoom<Id> {
    members: HashMap<Id, Member>,
    /// Lower-cased name → the member holding it.
    names: BTreeMap<String, Id>,
}

impl<Id: Copy + Eq + Hash> Default for ChatRoom<Id> {
    fn default() -> Self {
        ChatRoom {
            members: HashMap::new(),
            names: BTreeMap::new(),
        }
    }
}

impl<Id: Copy + Eq + Hash> ChatRoom<Id> {
    /// An empty room.
    pub fn new() -> Self {
        ChatRoom::default()
    }

    /// A member connected: it is greeted and asked for a name.
    pub fn join(&mut self, id: Id) -> Vec<Output<Id>> {
        self.members.insert(id, Member::Naming);
        vec![Output::To(id, GREETING.to_string())]
    }

    /// A member's connection is gone: the others hear it left, if it had a name.
    pub fn leave(&mut self, id: Id) -> Vec<Output<Id>> {
        match self.members.remove(&id) {
            Some(Member::Named(name)) => {
                self.names.remove(&name.to_ascii_lowercase());
                vec![Output::Others {
                    except: id,
                    line: format!("* {name} has left"),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// The ids of the named members, who get [`Output::Others`] lines.
    pub fn named_members(&self) -> impl Iterator<Item = Id> + '_ {
        self.names.values().copied()
    }

    /// The name of a member, if it has chosen one.
    pub fn name_of(&self, id: Id) -> Option<&str> {
        match self.members.get(&id) {
            Some(Member::Named(name)) => Some(name),
            _ => None,
        }
    }

    /// A member sent a line (without its line ending).
    pub fn line(&mut self, id: Id, line: &[u8]) -> Vec<Output<Id>> {
        let Ok(line) = std::str::from_utf8(line) else {
            return err(id, "that line is not UTF-8");
        };
        // Escaped once, here: every output below that quotes the line (messages, actions,
        // private messages, errors naming what was typed) then quotes it escaped.
        let line = escape_controls(line);
        let line = line.as_ref();
        if line == "/quit" {
            return vec![Output::To(id, "Bye".to_string()), Output::Close(id)];
        }
        match self.members.get(&id) {
            None => Vec::new(),
            Some(Member::Naming) => self.choose_name(id, line),
            Some(Member::Named(name)) => {
                let name = name.clone();
                self.said(id, &name, line)
            }
        }
    }

    fn choose_name(&mut self, id: Id, name: &str) -> Vec<Output<Id>> {
        if let Err(why) = self.check_name(name) {
            return err(id, &why);
        }
        self.take_name(id, name);
        vec![
            Output::To(id, format!("Welcome, {name}!")),
            Output::Others {
                except: id,
                line: format!("* {name} has joined"),
            },
        ]
    }

    fn said(&mut self, id: Id, name: &str, line: &str) -> Vec<Output<Id>> {
        let Some(command) = line.strip_prefix('/') else {
            return others(id, format!("<{name}> {line}"));
        };
        let (word, rest) = command.split_once(' ').unwrap_or((command, ""));
        match word {
            "me" if !rest.is_empty() => others(id, format!("* {name} {rest}")),
            "me" => err(id, "usage: /me ACTION"),
            "msg" => self.private_message(id, name, rest),
            "who" => vec![Output::To(id, self.who())],
            "nick" => self.rename(id, name, rest),
            _ => err(id, &format!("unknown command /{word}")),
        }
    }

    fn private_message(&self, id: Id, name: &str, rest: &str) -> Vec<Output<Id>> {
        let Some((to, text)) = rest.split_once(' ').filter(|(_, text)| !text.is_empty()) else {
            return err(id, "usage: /msg NAME TEXT");
        };
        match self.names.get(&to.to_ascii_lowercase()) {
            Some(&other) => vec![Output::To(other, format!("*{name}* {text}"))],
            None => err(id, &format!("no user named {to}")),
        }
    }

    fn rename(&mut self, id: Id, old: &str, new: &str) -> Vec<Output<Id>> {
        if new == old {
            return err(id, &format!("you are already {old}"));
        }
        if new.eq_ignore_ascii_case(old) {
            // Only the case changes: the name stays this member's.
            self.names.remove(&old.to_ascii_lowercase());
        } else if let Err(why) = self.check_name(new) {
            return err(id, &why);
        } else {
            self.names.remove(&old.to_ascii_lowercase());
        }
        self.take_name(id, new);
        vec![
            Output::To(id, format!("You are now {new}")),
            Output::Others {
                except: id,
                line: format!("* {old} is now {new}"),
            },
        ]
    }

    fn take_name(&mut self, id: Id, name: &str) {
        self.names.insert(name.to_ascii_lowercase(), id);
        self.members.insert(id, Member::Named(name.to_string()));
    }

    fn check_name(&self, name: &str) -> Result<(), String> {
        let valid = (1..=MAX_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(format!(
                "a name is 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 _ -; try again"
            ));
        }
        if self.names.contains_key(&name.to_ascii_lowercase()) {
            return Err(format!("{name} is taken; try another"));
        }
        Ok(())
    }

    fn who(&self) -> String {
        let mut names: Vec<&str> = self
            .members
            .values()
            .filter_map(|m| match m {
                Member::Named(name) => Some(name.as_str()),
                Member::Naming => None,
            })
            .collect();
        names.sort_unstable();
        format!("Users: {}", names.join(", "))
    }
}

fn err<Id>(id: Id, why: &str) -> Vec<Output<Id>> {
    vec![Output::To(id, format!("ERR {why}"))]
}

fn others<Id>(id: Id, line: String) -> Vec<Output<Id>> {
    vec![Output::Others { except: id, line }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(id: u32, line: &str) -> Output<u32> {
        Output::To(id, line.to_string())
    }

    fn others(id: u32, line: &str) -> Output<u32> {
        Output::Others {
            except: id,
            line: line.to_string(),
        }
    }

    /// A room with alice (1) and bob (2) named.
    fn room() -> ChatRoom<u32> {
        let mut room = ChatRoom::new();
        room.join(1);
        room.line(1, b"alice");
        room.join(2);
        room.line(2, b"bob");
        room
    }

    #[test]
    fn joining_greets_and_naming_welcomes_and_announces() {
        let mut room = ChatRoom::new();
        assert_eq!(room.join(7), [to(7, GREETING)]);
        assert_eq!(
            room.line(7, b"carol"),
            [to(7, "Welcome, carol!"), others(7, "* carol has joined")]
        );
        assert_eq!(room.name_of(7), Some("carol"));
    }

    #[test]
    fn invalid_or_taken_names_get_err_and_the_room_waits() {
        let mut room = room();
        room.join(3);
        for bad in [
            &b""[..],
            b"has space",
            b"x".repeat(33).as_slice(),
            b"caf\xc3\xa9",
            b"a/b",
        ] {
            let out = room.line(3, bad);
            assert!(
                matches!(&out[..], [Output::To(3, l)] if l.starts_with("ERR")),
                "{bad:?}: {out:?}"
            );
        }
        let out = room.line(3, b"ALICE");
        assert!(
            matches!(&out[..], [Output::To(3, l)] if l.starts_with("ERR")),
            "names are unique ignoring case"
        );
        assert_eq!(
            room.line(3, &b"x".repeat(32)).len(),
            2,
            "32 characters is allowed"
        );
    }

    #[test]
    fn every_line_goes_to_the_others_even_an_empty_one() {
        let mut room = room();
        assert_eq!(room.line(1, b"hi all"), [others(1, "<alice> hi all")]);
        assert_eq!(room.line(1, b""), [others(1, "<alice> ")]);
    }

    #[test]
    fn commands() {
        let mut room = room();
        assert_eq!(room.line(1, b"/me waves"), [others(1, "* alice waves")]);
        assert_eq!(room.line(1, b"/msg bob psst"), [to(2, "*alice* psst")]);
        assert_eq!(
            room.line(1, b"/msg BOB psst too"),
            [to(2, "*alice* psst too")]
        );
        assert!(room.line(1, b"/msg carol hi")[0] == to(1, "ERR no user named carol"));
        assert_eq!(room.line(2, b"/who"), [to(2, "Users: alice, bob")]);
        assert_eq!(
            room.line(2, b"/nick zed"),
            [to(2, "You are now zed"), others(2, "* bob is now zed")]
        );
        assert_eq!(room.line(1, b"/who"), [to(1, "Users: alice, zed")]);
        assert_eq!(
            room.line(1, b"/nick alice"),
            [to(1, "ERR you are already alice")]
        );
        assert!(
            matches!(&room.line(1, b"/nick zed")[..], [Output::To(1, l)] if l.starts_with("ERR"))
        );
        assert!(
            matches!(&room.line(1, b"/nick b@d")[..], [Output::To(1, l)] if l.starts_with("ERR"))
        );
        assert!(matches!(&room.line(1, b"/dance")[..], [Output::To(1, l)] if l.starts_with("ERR")));
        assert!(matches!(&room.line(1, b"/me")[..], [Output::To(1, l)] if l.starts_with("ERR")));
        assert_eq!(room.line(1, b"/quit"), [to(1, "Bye"), Output::Close(1)]);
    }

    #[test]
    fn a_nick_can_change_only_its_case() {
        let mut room = room();
        assert_eq!(room.line(1, b"/nick Alice")[0], to(1, "You are now Alice"));
        assert_eq!(room.line(2, b"/who"), [to(2, "Users: Alice, bob")]);
    }

    #[test]
    fn leaving_is_announced_for_named_members_only_and_frees_the_name() {
        let mut room = room();
        room.join(3);
        assert_eq!(room.leave(3), []);
        assert_eq!(room.leave(1), [others(1, "* alice has left")]);
        room.join(4);
        assert_eq!(room.line(4, b"alice")[0], to(4, "Welcome, alice!"));
        assert_eq!(room.named_members().count(), 2);
    }

    #[test]
    fn non_utf8_gets_err_and_changes_nothing() {
        let mut room = room();
        assert_eq!(
            room.line(1, b"\xff\xfe"),
            [to(1, "ERR that line is not UTF-8")]
        );
        assert_eq!(room.name_of(1), Some("alice"));
    }

    #[test]
    fn control_characters_are_relayed_escaped_never_raw() {
        let mut room = room();
        assert_eq!(
            room.line(2, b"bye\r* bob has left"),
            [others(2, "<bob> bye^M* bob has left")]
        );
        assert_eq!(
            room.line(2, b"/me \x1b[2J\x1b[Hwaves"),
            [others(2, "* bob ^[[2J^[[Hwaves")]
        );
        assert_eq!(
            room.line(2, "/msg alice \u{9b}2J\x07\x7f".as_bytes()),
            [to(1, "*bob* ^[[2J^G^?")]
        );
        assert_eq!(
            room.line(2, b"/msg al\rice hi"),
            [to(2, "ERR no user named al^Mice")]
        );
        assert_eq!(room.line(2, b"tab\there"), [others(2, "<bob> tab^Ihere")]);
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        let mut room = room();
        room.join(3);
        for bad in [&b"car\rol"[..], b"carol\x1b", b"\x07"] {
            let out = room.line(3, bad);
            assert!(
                matches!(&out[..], [Output::To(3, l)] if l.starts_with("ERR")),
                "{bad:?}: {out:?}"
            );
        }
        let out = room.line(1, b"/nick ali\x1bce");
        assert!(matches!(&out[..], [Output::To(1, l)] if l.starts_with("ERR")));
    }

    #[test]
    fn quit_works_before_a_name_too() {
        let mut room = ChatRoom::new();
        room.join(1);
        assert_eq!(room.line(1, b"/quit"), [to(1, "Bye"), Output::Close(1)]);
    }
}
