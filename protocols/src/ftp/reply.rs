//! Writing FTP replies (RFC 959 §4.2): a three-digit code and text, on one line or several
//! (`CODE-first`, continuation lines, `CODE last`). Text never carries a line end of its
//! own: a file name with `\r` or `\n` cannot forge a reply.

use std::net::SocketAddrV4;

/// A reply: its code and its lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply. Codes are 100 to 599 (others become 500: a bug, not a peer's).
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code: if (100..600).contains(&code) {
                code
            } else {
                500
            },
            lines: vec![text.into()],
        }
    }

    /// A reply of several lines: the first and the last carry the code.
    pub fn multiline(code: u16, lines: impl IntoIterator<Item = String>) -> Reply {
        let mut reply = Reply::new(code, String::new());
        reply.lines = lines.into_iter().collect();
        if reply.lines.is_empty() {
            reply.lines.push(String::new());
        }
        reply
    }

    /// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).` (RFC 959 §4.1.2).
    pub fn passive(addr: SocketAddrV4) -> Reply {
        let [h1, h2, h3, h4] = addr.ip().octets();
        let [p1, p2] = addr.port().to_be_bytes();
        Reply::new(
            227,
            format!("Entering Passive Mode ({h1},{h2},{h3},{h4},{p1},{p2})."),
        )
    }

    /// `229 Entering Extended Passive Mode (|||port|)` (RFC 2428 §3).
    pub fn extended_passive(port: u16) -> Reply {
        Reply::new(229, format!("Entering Extended Passive Mode (|||{port}|)"))
    }

    /// The reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reply as it goes on the wire, `\r\n` after each line. A continuation line that
    /// starts with a digit is indented by a space, so it cannot look like the last line
    /// (RFC 959 §4.2); control characters in text are replaced by `?`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len() - 1;
        for (at, line) in self.lines.iter().enumerate() {
            let text = clean(line);
            if at == last {
                out.extend_from_slice(format!("{} {text}\r\n", self.code).as_bytes());
            } else if at == 0 {
                out.extend_from_slice(format!("{}-{text}\r\n", self.code).as_bytes());
            } else {
                let pad = if text.starts_with(|c: char| c.is_ascii_digit()) {
                    " "
                } else {
                    ""
                };
                out.extend_from_slice(format!("{pad}{text}\r\n").as_bytes());
            }
        }
        out
    }
}

/// `text` with its control characters (a CR or LF among them) replaced by `?`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn text(reply: &Reply) -> String {
        String::from_utf8(reply.to_bytes()).unwrap()
    }

    #[test]
    fn a_one_line_reply_is_code_space_text_crlf() {
        assert_eq!(
            text(&Reply::new(220, "torsion FTP ready")),
            "220 torsion FTP ready\r\n"
        );
    }

    #[test]
    fn a_multiline_reply_has_the_code_on_its_first_and_last_lines() {
        let features = ["Features:", "MDTM", "2389 is an RFC", "End"].map(String::from);
        assert_eq!(
            text(&Reply::multiline(211, features)),
            "211-Features:\r\nMDTM\r\n 2389 is an RFC\r\n211 End\r\n"
        );
    }

    #[test]
    fn text_cannot_carry_its_own_line_ends() {
        let forged = Reply::new(550, "no such file: a\r\n226 Transfer complete");
        assert_eq!(
            text(&forged),
            "550 no such file: a??226 Transfer complete\r\n"
        );
    }

    #[test]
    fn passive_replies_spell_the_address_as_the_rfcs_say() {
        let addr = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 1025);
        assert_eq!(
            text(&Reply::passive(addr)),
            "227 Entering Passive Mode (127,0,0,1,4,1).\r\n"
        );
        assert_eq!(
            text(&Reply::extended_passive(6446)),
            "229 Entering Extended Passive Mode (|||6446|)\r\n"
        );
        assert_eq!(Reply::new(42, "x").code(), 500);
    }
}
