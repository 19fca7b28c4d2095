//! `application/x-www-form-urlencoded`: query strings (`?a=1&b=x+y`) and form bodies, and
//! the percent-decoding under them. Pure functions over bytes, bounded by [`FormLimits`];
//! bad input is a [`FormError`], never a panic.
//!
//! ```
//! use torsion_protocols::http::form::Form;
//!
//! let form = Form::parse(b"name=J%C3%BCrgen&greeting=Gr%C3%BC%C3%9F+Gott&empty").unwrap();
//! assert_eq!(form.get("name"), Some("Jürgen"));
//! assert_eq!(form.get("greeting"), Some("Grüß Gott"));
//! assert_eq!(form.get("empty"), Some(""));
//! assert_eq!(form.get("missing"), None);
//! assert!(Form::parse(b"a=%E").is_err()); // a cut escape
//! ```

use std::borrow::Cow;
use std::fmt;

/// Why a form, a query string or a percent-encoded piece was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormError {
    /// A `%` not followed by two hex digits, at this byte offset of the piece decoded.
    BadEscape {
        /// Where the `%` is.
        at: usize,
    },
    /// A decoded name or value is not UTF-8.
    NotUtf8,
    /// More pairs than [`FormLimits::max_pairs`].
    TooManyPairs,
    /// Longer than [`FormLimits::max_len`] bytes.
    TooLong,
    /// A body whose `Content-Type` is not `application/x-www-form-urlencoded`.
    NotForm,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::BadEscape { at } => {
                write!(f, "a '%' not followed by two hex digits at byte {at}")
            }
            FormError::NotUtf8 => f.write_str("a decoded name or value is not UTF-8"),
            FormError::TooManyPairs => f.write_str("too many name=value pairs"),
            FormError::TooLong => f.write_str("form too long"),
            FormError::NotForm => f.write_str("the body is not application/x-www-form-urlencoded"),
        }
    }
}

impl std::error::Error for FormError {}

/// Bounds on what [`Form::parse_with`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FormLimits {
    /// The most `name=value` pairs (empty pieces between `&`s do not count). Default 1000.
    pub max_pairs: usize,
    /// The longest input, in bytes. Default 1 MiB.
    pub max_len: usize,
}

impl Default for FormLimits {
    fn default() -> Self {
        FormLimits {
            max_pairs: 1000,
            max_len: 1 << 20,
        }
    }
}

impl FormLimits {
    /// These limits with at most `max` pairs.
    pub fn with_max_pairs(self, max: usize) -> Self {
        FormLimits {
            max_pairs: max,
            ..self
        }
    }

    /// These limits with inputs of at most `max` bytes.
    pub fn with_max_len(self, max: usize) -> Self {
        FormLimits {
            max_len: max,
            ..self
        }
    }
}

/// The value of one hex digit.
fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes in `input` (and `+` as a space when `plus_is_space`, as forms and
/// query strings write it; a path keeps its `+`). Borrows `input` when there is nothing to
/// decode; a `%` without two hex digits after it is [`FormError::BadEscape`].
pub fn percent_decode(input: &[u8], plus_is_space: bool) -> Result<Cow<'_, [u8]>, FormError> {
    let special = |b: &u8| *b == b'%' || (plus_is_space && *b == b'+');
    let Some(first) = input.iter().position(special) else {
        return Ok(Cow::Borrowed(input));
    };
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&input[..first]);
    let mut at = first;
    while let Some(&byte) = input.get(at) {
        match byte {
            b'%' => {
                let digit = |i: usize| input.get(at + i).copied().and_then(hex);
                let (Some(high), Some(low)) = (digit(1), digit(2)) else {
                    return Err(FormError::BadEscape { at });
                };
                out.push(high << 4 | low);
                at += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                at += 1;
            }
            _ => {
                out.push(byte);
                at += 1;
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// [`percent_decode`], then the result as UTF-8 ([`FormError::NotUtf8`] if it is not).
pub fn percent_decode_str(input: &[u8], plus_is_space: bool) -> Result<Cow<'_, str>, FormError> {
    match percent_decode(input, plus_is_space)? {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| FormError::NotUtf8),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| FormError::NotUtf8),
    }
}

/// A decoded query string or form body: its `name=value` pairs in order, names and values
/// percent-decoded (`+` as a space) and UTF-8. A piece without `=` is a name with an empty
/// value; empty pieces (`a=1&&b=2`) are skipped; a name may repeat. Pieces with no escape
/// borrow from the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    /// Parses `input` within the default [`FormLimits`].
    pub fn parse(input: &'a [u8]) -> Result<Form<'a>, FormError> {
        Form::parse_with(input, FormLimits::default())
    }

    /// Parses `input` within `limits`.
    pub fn parse_with(input: &'a [u8], limits: FormLimits) -> Result<Form<'a>, FormError> {
        if input.len() > limits.max_len {
            return Err(FormError::TooLong);
        }
        let mut pairs = Vec::new();
        let mut offset = 0;
        for piece in input.split(|b| *b == b'&') {
            let start = offset;
            offset += piece.len() + 1;
            if piece.is_empty() {
                continue;
            }
            if pairs.len() == limits.max_pairs {
                return Err(FormError::TooManyPairs);
            }
            let (name, value, value_at) = match piece.iter().position(|b| *b == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..], eq + 1),
                None => (piece, &piece[piece.len()..], piece.len()),
            };
            // Escape offsets count from the start of the whole input.
            let shift = |base: usize| {
                move |e| match e {
                    FormError::BadEscape { at } => FormError::BadEscape { at: at + base },
                    other => other,
                }
            };
            let name = percent_decode_str(name, true).map_err(shift(start))?;
            let value = percent_decode_str(value, true).map_err(shift(start + value_at))?;
            pairs.push((name, value));
        }
        Ok(Form { pairs })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &**v)
    }

    /// Every value of `name`, in order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| &**v)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (&**n, &**v))
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl<'a> IntoIterator for Form<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Cow<'a, str>)>;

    /// The pairs, owned or borrowing from the input.
    fn into_iter(self) -> Self::IntoIter {
        self.pairs.into_iter()
    }
}

/// Whether a `Content-Type` value names `application/x-www-form-urlencoded` (any case,
/// parameters such as `; charset=utf-8` allowed).
pub fn is_form_content_type(value: &[u8]) -> bool {
    let essence = value.split(|b| *b == b';').next().unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_plus_decode_and_plain_pieces_borrow() {
        assert_eq!(&*percent_decode(b"a%20b+c", true).unwrap(), b"a b c");
        assert_eq!(&*percent_decode(b"a%20b+c", false).unwrap(), b"a b+c");
        assert_eq!(
            &*percent_decode(b"%e2%82%AC", false).unwrap(),
            "€".as_bytes()
        );
        assert!(matches!(
            percent_decode(b"plain", true).unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(&*percent_decode(b"", true).unwrap(), b"");
    }

    #[test]
    fn malformed_escapes_are_errors_with_their_offset() {
        for (input, at) in [
            (&b"%"[..], 0),
            (b"ab%", 2),
            (b"ab%4", 2),
            (b"%4g", 0),
            (b"%%41", 0),
            (b"x%+1", 1),
            (b"ok%41%zz", 5),
        ] {
            assert_eq!(
                percent_decode(input, true),
                Err(FormError::BadEscape { at }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn decoded_bytes_that_are_not_utf8_are_refused() {
        assert_eq!(percent_decode_str(b"%FF", false), Err(FormError::NotUtf8));
        assert_eq!(percent_decode_str(b"%C3", false), Err(FormError::NotUtf8));
        assert_eq!(percent_decode_str(b"\xff", false), Err(FormError::NotUtf8));
        assert_eq!(percent_decode_str(b"%C3%BC", false).unwrap(), "ü");
    }

    #[test]
    fn pairs_keep_their_order_repeats_and_empty_values() {
        let form = Form::parse(b"a=1&&b=x+y&a=2&c&=v&d=").unwrap();
        let pairs: Vec<(&str, &str)> = form.iter().collect();
        assert_eq!(
            pairs,
            [
                ("a", "1"),
                ("b", "x y"),
                ("a", "2"),
                ("c", ""),
                ("", "v"),
                ("d", "")
            ]
        );
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(form.len(), 6);
        assert!(Form::parse(b"").unwrap().is_empty());
        assert!(Form::parse(b"&&&").unwrap().is_empty());
        // Only the first `=` splits; an escaped `&` or `=` is data.
        let form = Form::parse(b"k=a=b&e=%26%3D").unwrap();
        assert_eq!(form.get("k"), Some("a=b"));
        assert_eq!(form.get("e"), Some("&="));
    }

    #[test]
    fn an_error_names_the_offset_in_the_whole_input() {
        assert_eq!(
            Form::parse(b"a=1&bb=%zz"),
            Err(FormError::BadEscape { at: 7 })
        );
        assert_eq!(
            Form::parse(b"a=1&%x=1"),
            Err(FormError::BadEscape { at: 4 })
        );
        assert_eq!(Form::parse(b"a=%FF"), Err(FormError::NotUtf8));
    }

    #[test]
    fn limits_bound_pairs_and_length() {
        let limits = FormLimits::default().with_max_pairs(2).with_max_len(16);
        assert_eq!(Form::parse_with(b"a&b", limits).unwrap().len(), 2);
        assert_eq!(Form::parse_with(b"a&&b&", limits).unwrap().len(), 2);
        assert_eq!(
            Form::parse_with(b"a&b&c", limits),
            Err(FormError::TooManyPairs)
        );
        assert_eq!(
            Form::parse_with(&[b'a'; 17], limits),
            Err(FormError::TooLong)
        );
        assert_eq!(Form::parse_with(&[b'a'; 16], limits).unwrap().len(), 1);
    }

    #[test]
    fn the_form_content_type_is_recognised_with_parameters_and_any_case() {
        assert!(is_form_content_type(b"application/x-www-form-urlencoded"));
        assert!(is_form_content_type(
            b"Application/X-WWW-Form-URLEncoded ; charset=utf-8"
        ));
        assert!(!is_form_content_type(b"multipart/form-data; boundary=x"));
        assert!(!is_form_content_type(b"application/json"));
        assert!(!is_form_content_type(b""));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every short input over an alphabet rich in the special bytes.
        let alphabet = b"%&=+a0F\xc3\xbc\xff";
        let mut input = Vec::new();
        for n in 0..(alphabet.len().pow(4)) {
            input.clear();
            let mut k = n;
            for _ in 0..4 {
                input.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            let _ = Form::parse(&input);
            let _ = percent_decode_str(&input, false);
        }
    }
}
