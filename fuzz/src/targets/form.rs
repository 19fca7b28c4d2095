//! `application/x-www-form-urlencoded` (query strings and form bodies) and the
//! percent-decoding under it. An input is parsed whole (it is never cut: a form is a whole
//! body or a whole query), so the invariants are no panic, memory bounded by the input and
//! the pair limit, errors that point at what is wrong, and parse(encode(pairs)) = pairs.

use torsion_protocols::http::form::{percent_decode, Form, FormError, FormLimits};

use super::Target;
use crate::alloc;

/// The form parser.
pub const TARGET: Target = Target {
    name: "form",
    about: "Form::parse_with (64 pairs, 1 KiB) and percent_decode, then encode and parse again",
    run,
    events: |input| match Form::parse_with(input, limits()) {
        Ok(form) => form
            .iter()
            .map(|(n, v)| format!("{n:?} = {v:?}\n"))
            .collect(),
        Err(error) => format!("error {error:?}: {error}\n"),
    },
    dictionary: &[
        b"%", b"%2", b"%C3%BC", b"%FF", b"%zz", b"+", b"&", b"=", b"&&", b"%26", b"%3D",
    ],
};

const MAX_PAIRS: usize = 64;
const MAX_LEN: usize = 1024;

fn limits() -> FormLimits {
    FormLimits::default()
        .with_max_pairs(MAX_PAIRS)
        .with_max_len(MAX_LEN)
}

/// The heap a parse may hold: the pair vector (two borrowed-or-owned strings a pair, its
/// capacity up to twice the pairs) and the decoded pieces (no longer than the input, each
/// allocated at its piece's length).
fn bound(len: usize) -> usize {
    2 * MAX_PAIRS * 2 * std::mem::size_of::<std::borrow::Cow<'static, str>>() + 2 * len + 256
}

fn run(input: &[u8]) {
    let (parsed, peak) = alloc::measure(|| Form::parse_with(input, limits()).map(|f| f.len()));
    assert!(
        peak <= bound(input.len()),
        "parsing {} bytes held {peak} heap bytes at the peak",
        input.len()
    );
    match parsed {
        Err(FormError::BadEscape { at }) => {
            assert_eq!(
                input.get(at),
                Some(&b'%'),
                "a bad escape at {at} is not a '%'"
            )
        }
        Err(FormError::TooLong) => assert!(input.len() > MAX_LEN),
        Err(FormError::TooManyPairs) => {
            let pieces = input.split(|b| *b == b'&').filter(|p| !p.is_empty());
            assert!(pieces.count() > MAX_PAIRS);
        }
        Err(FormError::NotUtf8) | Ok(_) => {}
        Err(other) => panic!("an error parsing cannot give: {other:?}"),
    }
    if let Ok(form) = Form::parse_with(input, limits()) {
        let pairs: Vec<(&str, &str)> = form.iter().collect();
        let mut wire = Vec::new();
        for (name, value) in &pairs {
            if !wire.is_empty() {
                wire.push(b'&');
            }
            encode(name.as_bytes(), &mut wire);
            wire.push(b'=');
            encode(value.as_bytes(), &mut wire);
        }
        let again = Form::parse_with(&wire, FormLimits::default()).expect("its own encoding");
        let again: Vec<(&str, &str)> = again.iter().collect();
        assert_eq!(again, pairs, "re-encoded as \"{}\"", wire.escape_ascii());
    }
    // A path segment's decoding: `+` kept, escapes point at a '%'.
    match percent_decode(input, false) {
        Ok(bytes) => {
            let escapes = input.iter().filter(|b| **b == b'%').count();
            assert_eq!(bytes.len(), input.len() - 2 * escapes);
        }
        Err(FormError::BadEscape { at }) => assert_eq!(input.get(at), Some(&b'%')),
        Err(other) => panic!("percent_decode cannot give: {other:?}"),
    }
}

/// Percent-encodes every byte but letters, digits and `-._~`; a space as `+`.
fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{byte:02X}").as_bytes()),
        }
    }
}
