//! Text from a peer made safe to show on a terminal.
//!
//! A terminal obeys the control characters in what it prints: a carriage return sends the
//! cursor back to overwrite the line (so a message can forge `* bob has left` over itself),
//! ESC and the C1 controls start sequences that move the cursor, clear the screen or set the
//! window title. Text relayed from one peer to another person's screen goes through
//! [`escape_controls`] first.
//!
//! The rule, in caret notation (as `cat -v` and terminals' own echo show controls):
//! - C0 controls U+0000–U+001F, tab included, become `^` and the character 0x40 above:
//!   `\r` → `^M`, `\n` → `^J`, ESC → `^[`, NUL → `^@`;
//! - DEL U+007F becomes `^?`;
//! - C1 controls U+0080–U+009F, which terminals read as ESC followed by the character 0x40
//!   below, become `^[` and that character: U+009B (CSI) → `^[[`.
//!
//! Everything else, other Unicode included, is kept. A caret already in the text is kept as
//! it is, so `^M` typed by hand and an escaped carriage return look the same: the escape is
//! for the eye, not to be reversed.

use std::borrow::Cow;

/// `text` with every C0 control, DEL and C1 control written in caret notation (see the
/// [module docs](self)); borrowed unchanged when it has none.
///
/// ```
/// use torsion_protocols::terminal::escape_controls;
/// assert_eq!(escape_controls("hi\r* bob has left"), "hi^M* bob has left");
/// assert_eq!(escape_controls("\x1b[2J"), "^[[2J");
/// assert_eq!(escape_controls("\u{9b}2J"), "^[[2J");
/// assert_eq!(escape_controls("café ☕"), "café ☕");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut escaped, c);
    }
    Cow::Owned(escaped)
}

fn push_escaped(out: &mut String, c: char) {
    match u32::from(c) {
        code @ 0x00..=0x1f => {
            out.push('^');
            out.push(char::from(code as u8 + 0x40));
        }
        0x7f => out.push_str("^?"),
        code @ 0x80..=0x9f => {
            out.push_str("^[");
            out.push(char::from(code as u8 - 0x40));
        }
        _ => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_is_escaped_and_nothing_else() {
        for code in 0..=0x10ffffu32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let escaped = escape_controls(c.encode_utf8(&mut [0; 4])).into_owned();
            if c.is_control() {
                assert!(escaped.starts_with('^'), "{code:#x} → {escaped:?}");
                assert!(!escaped.chars().any(char::is_control), "{code:#x}");
            } else {
                assert_eq!(escaped, c.to_string(), "{code:#x}");
            }
        }
    }

    #[test]
    fn caret_notation() {
        assert_eq!(escape_controls("\0\t\n\r\x1b\x7f"), "^@^I^J^M^[^?");
        assert_eq!(escape_controls("\u{80}\u{9b}\u{9f}"), "^[@^[[^[_");
    }

    #[test]
    fn text_without_controls_is_borrowed() {
        assert!(matches!(
            escape_controls("plain <text> ^M"),
            Cow::Borrowed(_)
        ));
    }
}
