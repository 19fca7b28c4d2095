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

/// `text` escaped as [`escape_controls`] does, then cut to at most `max_chars` characters,
/// the last of them `…` when it was cut: a peer's name or label shown on one line, which
/// neither controls the terminal nor floods it.
///
/// ```
/// use torsion_protocols::terminal::escape_bounded;
/// assert_eq!(escape_bounded("beta", 8), "beta");
/// assert_eq!(escape_bounded("a\x1b[2Jbcdef", 8), "a^[[2Jb…");
/// ```
pub fn escape_bounded(text: &str, max_chars: usize) -> String {
    let escaped = escape_controls(text);
    if escaped.chars().count() <= max_chars {
        return escaped.into_owned();
    }
    let mut cut: String = escaped.chars().take(max_chars.saturating_sub(1)).collect();
    if max_chars > 0 {
        cut.push('…');
    }
    cut
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
    fn bounded_text_is_cut_with_an_ellipsis_counting_characters_not_bytes() {
        assert_eq!(escape_bounded("", 3), "");
        assert_eq!(escape_bounded("abc", 3), "abc");
        assert_eq!(escape_bounded("abcd", 3), "ab…");
        assert_eq!(escape_bounded("ééééé", 4), "ééé…");
        assert_eq!(
            escape_bounded("\r\r", 3),
            "^M…",
            "the escape counts toward the bound"
        );
        assert_eq!(escape_bounded("abc", 0), "");
        let long = "x".repeat(10_000);
        assert_eq!(escape_bounded(&long, 64).chars().count(), 64);
    }

    #[test]
    fn text_without_controls_is_borrowed() {
        assert!(matches!(
            escape_controls("plain <text> ^M"),
            Cow::Borrowed(_)
        ));
    }
}
