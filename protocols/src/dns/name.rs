//! Domain names: parsed from text, read from a message with compression pointers followed
//! (and every malformed pointer rejected), written uncompressed.

use std::error::Error;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::message::{MessageError, HEADER_LEN};

/// The longest name on the wire, length bytes and the root's zero included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// The longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Compression pointers one name may follow. A name has at most 127 labels, so a legitimate
/// name never needs more; a longer chain is an attack on the decoder's time.
const MAX_POINTERS: usize = 127;

/// A domain name, such as `www.example.com`. Compared and hashed ignoring ASCII case, as DNS
/// names are (RFC 4343); it keeps the case it was written in for display.
///
/// ```
/// use torsion_protocols::dns::Name;
///
/// let name: Name = "WWW.Example.com.".parse().unwrap();
/// assert_eq!(name, "www.example.COM".parse().unwrap());
/// assert_eq!(name.to_string(), "WWW.Example.com");
/// assert_eq!(name.as_wire(), b"\x03WWW\x07Example\x03com\x00");
/// ```
#[derive(Clone)]
pub struct Name {
    /// Uncompressed wire form: length-prefixed labels, then the root's zero. At most
    /// [`MAX_NAME_LEN`] bytes, every label 1 to 63 bytes.
    wire: Vec<u8>,
}

/// Why text is not a domain name (a local fault: nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The text is empty (the root is written `.`).
    Empty,
    /// Two dots in a row, or a leading dot: a label would be empty.
    EmptyLabel,
    /// A label is longer than 63 bytes.
    LabelTooLong {
        /// The label's length.
        length: usize,
    },
    /// The name is longer than 255 bytes on the wire.
    TooLong {
        /// Its length on the wire.
        length: usize,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("empty domain name"),
            NameError::EmptyLabel => f.write_str("domain name has an empty label"),
            NameError::LabelTooLong { length } => write!(
                f,
                "domain name label of {length} bytes, over the maximum {MAX_LABEL_LEN}"
            ),
            NameError::TooLong { length } => write!(
                f,
                "domain name of {length} bytes on the wire, over the maximum {MAX_NAME_LEN}"
            ),
        }
    }
}

impl Error for NameError {}

impl Name {
    /// The root, `.`.
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// Parses a dotted name; one trailing dot is allowed (`example.com.`), and `.` is the
    /// root. Any byte but the dot may appear in a label; no escapes are read.
    pub fn from_ascii(text: &str) -> Result<Name, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text == "." {
            return Ok(Name::root());
        }
        let text = text.strip_suffix('.').unwrap_or(text);
        let mut wire = Vec::with_capacity(text.len() + 2);
        for label in text.split('.') {
            let length = label.len();
            if length == 0 {
                return Err(NameError::EmptyLabel);
            }
            if length > MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong { length });
            }
            // The length fits a byte: it is at most 63.
            wire.push(length as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { length: wire.len() });
        }
        Ok(Name { wire })
    }

    /// The name in uncompressed wire form, ending with the root's zero byte.
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    /// The labels, leftmost first, without the root.
    pub fn labels(&self) -> Labels<'_> {
        Labels { rest: &self.wire }
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// Reads the name starting at `start` in `msg`, following compression pointers
    /// (RFC 1035 §4.1.4). Returns it and the offset just past its bytes in place (past the
    /// first pointer, if any).
    ///
    /// Every pointer must point backwards into the message body, never into the header, past
    /// the end, forwards, or back to a place this name already went through (a loop), and at
    /// most [`MAX_POINTERS`] are followed. Label length bytes with the reserved top bits
    /// `01` or `10` are rejected, and so is a name over 255 bytes.
    pub(crate) fn read(msg: &[u8], start: usize) -> Result<(Name, usize), MessageError> {
        let mut wire = Vec::new();
        let mut pos = start;
        let mut end = None;
        // Offsets of every label and pointer read so far: going back to one is a loop.
        let mut visited: Vec<usize> = Vec::new();
        let mut pointers = 0;
        loop {
            let byte = *msg.get(pos).ok_or(MessageError::Truncated { at: pos })?;
            match byte & 0xC0 {
                0x00 if byte == 0 => break,
                0x00 => {
                    let len = usize::from(byte);
                    let label = msg
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(MessageError::Truncated { at: msg.len() })?;
                    // The label, its length byte, and the root's zero still to come.
                    if wire.len() + 1 + len + 1 > MAX_NAME_LEN {
                        return Err(MessageError::NameTooLong { at: start });
                    }
                    visited.push(pos);
                    wire.push(byte);
                    wire.extend_from_slice(label);
                    pos += 1 + len;
                }
                0xC0 => {
                    let low = *msg
                        .get(pos + 1)
                        .ok_or(MessageError::Truncated { at: pos + 1 })?;
                    let target = usize::from(byte & 0x3F) << 8 | usize::from(low);
                    end.get_or_insert(pos + 2);
                    check_pointer(msg, pos, target, &visited)?;
                    pointers += 1;
                    if pointers > MAX_POINTERS {
                        return Err(MessageError::TooManyPointers { at: pos });
                    }
                    visited.push(pos);
                    pos = target;
                }
                _ => return Err(MessageError::BadLabelType { at: pos, byte }),
            }
        }
        wire.push(0);
        Ok((Name { wire }, end.unwrap_or(pos + 1)))
    }
}

/// Rejects a compression pointer at `at` to `target` unless it points strictly backwards into
/// the message body, to a place the name being read has not been through.
fn check_pointer(
    msg: &[u8],
    at: usize,
    target: usize,
    visited: &[usize],
) -> Result<(), MessageError> {
    if target < HEADER_LEN || target >= msg.len() {
        return Err(MessageError::PointerOutOfRange { at, target });
    }
    if target == at || visited.contains(&target) {
        return Err(MessageError::PointerLoop { at, target });
    }
    if target > at {
        return Err(MessageError::PointerForward { at, target });
    }
    Ok(())
}

/// The labels of a [`Name`], leftmost first.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.rest.split_first()?;
        let label = rest.get(..usize::from(len)).filter(|l| !l.is_empty())?;
        self.rest = &rest[label.len()..];
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for byte in &self.wire {
            state.write_u8(byte.to_ascii_lowercase());
        }
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(text: &str) -> Result<Name, NameError> {
        Name::from_ascii(text)
    }
}

impl fmt::Display for Name {
    /// Dotted, without the trailing dot (the root is `.`). A dot or backslash inside a label
    /// is escaped with a backslash, any other byte outside printable ASCII as `\DDD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &byte in label {
                match byte {
                    b'.' | b'\\' => write!(f, "\\{}", char::from(byte))?,
                    0x21..=0x7E => write!(f, "{}", char::from(byte))?,
                    _ => write!(f, "\\{byte:03}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_parse_with_or_without_the_trailing_dot() {
        let name = Name::from_ascii("www.example.com").unwrap();
        assert_eq!(name.as_wire(), b"\x03www\x07example\x03com\x00");
        assert_eq!(Name::from_ascii("www.example.com.").unwrap(), name);
        assert_eq!(name.labels().count(), 3);
        assert!(Name::from_ascii(".").unwrap().is_root());
        assert_eq!(Name::root().to_string(), ".");
    }

    #[test]
    fn name_errors_say_what_is_wrong() {
        let long_label = "a".repeat(64);
        let long_name = vec!["a".repeat(63); 5].join(".");
        for (text, message) in [
            ("", "empty domain name"),
            ("a..b", "domain name has an empty label"),
            (
                long_label.as_str(),
                "domain name label of 64 bytes, over the maximum 63",
            ),
            (
                long_name.as_str(),
                "domain name of 321 bytes on the wire, over the maximum 255",
            ),
        ] {
            let error = Name::from_ascii(text).unwrap_err();
            assert_eq!(error.to_string(), message, "{text:?}");
        }
    }

    #[test]
    fn names_hash_alike_when_equal_ignoring_case_and_apart_otherwise() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = |text: &str| {
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(Name::from_ascii(text).unwrap())
        };
        assert_eq!(hash("WWW.Example.COM"), hash("www.example.com"));
        assert_ne!(hash("a.example.com"), hash("b.example.com"));
    }

    #[test]
    fn bad_text_names_are_refused() {
        assert_eq!(Name::from_ascii(""), Err(NameError::Empty));
        assert_eq!(Name::from_ascii("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(Name::from_ascii(".a"), Err(NameError::EmptyLabel));
        assert_eq!(Name::from_ascii("a.."), Err(NameError::EmptyLabel));
        let long_label = "a".repeat(64);
        assert_eq!(
            Name::from_ascii(&long_label),
            Err(NameError::LabelTooLong { length: 64 })
        );
        // 4 labels of 63 bytes: 4 * 64 + 1 = 257 bytes on the wire.
        let long = vec!["b".repeat(63); 4].join(".");
        assert_eq!(
            Name::from_ascii(&long),
            Err(NameError::TooLong { length: 257 })
        );
        // 3 labels of 63 and one of 61: exactly 255.
        let longest = format!("{}.{}", vec!["b".repeat(63); 3].join("."), "c".repeat(61));
        assert_eq!(Name::from_ascii(&longest).unwrap().as_wire().len(), 255);
    }

    #[test]
    fn names_compare_and_hash_ignoring_case() {
        use std::collections::HashSet;
        let a = Name::from_ascii("Example.COM").unwrap();
        let b = Name::from_ascii("example.com").unwrap();
        assert_eq!(a, b);
        let set: HashSet<Name> = [a].into_iter().collect();
        assert!(set.contains(&b));
        assert_ne!(b, Name::from_ascii("example.org").unwrap());
    }

    #[test]
    fn odd_bytes_are_escaped_for_display() {
        let name = Name {
            wire: b"\x04a.b\\\x02\x00z\x00".to_vec(),
        };
        assert_eq!(name.to_string(), "a\\.b\\\\.\\000z");
        assert_eq!(format!("{name:?}"), "Name(a\\.b\\\\.\\000z)");
    }
}
