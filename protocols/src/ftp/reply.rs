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

impl Reply {
    /// The reply's lines of text (without codes).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The address a `227` reply announces (`(h1,h2,h3,h4,p1,p2)` anywhere in its text, as
    /// RFC 1123 §4.1.2.6 tells clients to look for it), if it is one.
    pub fn passive_address(&self) -> Option<SocketAddrV4> {
        if self.code != 227 {
            return None;
        }
        let text = self.lines.last()?;
        let start = text.find(|c: char| c.is_ascii_digit())?;
        let numbers: Vec<u8> = text[start..]
            .split(|c: char| !c.is_ascii_digit())
            .take(6)
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        let [h1, h2, h3, h4, p1, p2] = numbers[..] else {
            return None;
        };
        let ip = std::net::Ipv4Addr::new(h1, h2, h3, h4);
        Some(SocketAddrV4::new(ip, u16::from_be_bytes([p1, p2])))
    }

    /// The port a `229` reply announces (`(|||port|)`, RFC 2428 §3), if it is one.
    pub fn extended_passive_port(&self) -> Option<u16> {
        if self.code != 229 {
            return None;
        }
        let text = self.lines.last()?;
        let inside = &text[text.find('(')? + 1..text.rfind(')')?];
        let delimiter = inside.chars().next()?;
        let fields: Vec<&str> = inside.split(delimiter).collect();
        match fields[..] {
            ["", "", "", port, ""] => port.parse().ok(),
            _ => None,
        }
    }
}

/// Assembles replies from the lines a server sends (without their line ends): a one-line
/// reply at once, a multi-line one at its last line (`CODE text` after `CODE-text`).
#[derive(Debug, Default)]
pub struct ReplyParser {
    /// A multi-line reply in progress: its code and lines so far.
    open: Option<Reply>,
    /// Lines held, to bound what a server that never ends its reply can make us keep.
    max_lines: usize,
}

/// A line that is not part of any reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError(pub String);

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an FTP reply: {}", self.0)
    }
}

impl std::error::Error for ReplyError {}

impl ReplyParser {
    /// A parser holding at most 1,000 lines of one reply.
    pub fn new() -> ReplyParser {
        ReplyParser {
            open: None,
            max_lines: 1000,
        }
    }

    /// Takes the next line: a complete reply, `None` while a multi-line reply goes on, or an
    /// error for a line that is no reply's (or a reply too long).
    pub fn line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let line = String::from_utf8_lossy(line);
        let code = reply_code(&line);
        if let Some(open) = &mut self.open {
            if code == Some(open.code) && line.as_bytes().get(3) == Some(&b' ') {
                open.lines.push(line[4..].to_string());
                return Ok(self.open.take());
            }
            if open.lines.len() >= self.max_lines.max(1) {
                return Err(ReplyError("a multi-line reply that does not end".into()));
            }
            open.lines.push(line.to_string());
            return Ok(None);
        }
        let Some(code) = code else {
            return Err(ReplyError(line.chars().take(80).collect()));
        };
        let text = line.get(4..).unwrap_or("").to_string();
        match line.as_bytes().get(3) {
            Some(b'-') => {
                self.open = Some(Reply {
                    code,
                    lines: vec![text],
                });
                Ok(None)
            }
            Some(b' ') | None => Ok(Some(Reply {
                code,
                lines: vec![text],
            })),
            Some(_) => Err(ReplyError(line.chars().take(80).collect())),
        }
    }
}

/// The three-digit code a line starts with (100 to 599), if it does.
fn reply_code(line: &str) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = digits.parse().ok()?;
    (100..600).contains(&code).then_some(code)
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
    fn the_parser_assembles_one_line_and_multi_line_replies() {
        let mut parser = ReplyParser::new();
        assert_eq!(
            parser.line(b"220 ready"),
            Ok(Some(Reply::new(220, "ready")))
        );
        assert_eq!(parser.line(b"211-Features:"), Ok(None));
        assert_eq!(parser.line(b" MDTM"), Ok(None));
        // A line starting with another code, or the same code and a dash, goes on.
        assert_eq!(parser.line(b"211-still going"), Ok(None));
        let done = parser.line(b"211 End").unwrap().unwrap();
        assert_eq!(done.code(), 211);
        assert_eq!(
            done.lines(),
            ["Features:", " MDTM", "211-still going", "End"]
        );
        assert!(parser.line(b"hello").is_err());
        assert!(parser.line(b"999 nine").is_err());
        assert_eq!(parser.line(b"200"), Ok(Some(Reply::new(200, ""))));
    }

    #[test]
    fn a_reply_that_never_ends_is_an_error_not_a_growing_buffer() {
        let mut parser = ReplyParser::new();
        assert_eq!(parser.line(b"211-start"), Ok(None));
        let mut error = None;
        for _ in 0..2000 {
            if let Err(e) = parser.line(b"more") {
                error = Some(e);
                break;
            }
        }
        assert!(error.is_some());
    }

    #[test]
    fn a_client_reads_the_passive_addresses_back() {
        let addr = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 50_000);
        assert_eq!(Reply::passive(addr).passive_address(), Some(addr));
        let lenient = Reply::new(227, "=10,1,2,3,195,80");
        assert_eq!(lenient.passive_address(), Some(addr));
        assert_eq!(Reply::new(227, "no numbers").passive_address(), None);
        assert_eq!(
            Reply::extended_passive(6446).extended_passive_port(),
            Some(6446)
        );
        assert_eq!(Reply::new(229, "(|||x|)").extended_passive_port(), None);
        assert_eq!(Reply::new(200, "(|||21|)").extended_passive_port(), None);
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
