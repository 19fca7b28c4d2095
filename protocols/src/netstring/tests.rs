//! Every input in every chunk size from 1 byte up, and with a consumer that stops after each
//! string (as a paused protocol does): the same strings and the same error, at the same place.

use super::*;
use crate::framer;

/// The strings `make()` decodes from `input` are `strings` then `error`, however it is fed
/// ([`check`](crate::framer::tests::check)).
fn check_with(
    make: impl Fn() -> NetstringFramer,
    input: &[u8],
    strings: &[&str],
    error: Option<NetstringError>,
) {
    let strings: Vec<&[u8]> = strings.iter().map(|s| s.as_bytes()).collect();
    framer::tests::check(make, NetstringFramer::has_failed, input, &strings, error);
}

fn check(input: &str, strings: &[&str], error: Option<NetstringError>) {
    check_with(NetstringFramer::new, input.as_bytes(), strings, error);
}

#[test]
fn strings_in_every_chunk_size() {
    check(
        "5:hello,6:world!,11:with,commas,",
        &["hello", "world!", "with,commas"],
        None,
    );
}

#[test]
fn empty_strings_and_empty_input() {
    check("0:,0:,1:x,", &["", "", "x"], None);
    check("", &[], None);
}

#[test]
fn a_partial_string_waits_for_the_rest() {
    let mut framer = NetstringFramer::new();
    assert_eq!(framer.feed(b"11:hello").next(), None);
    let mut strings = framer.feed(b" world,3:");
    assert_eq!(strings.next(), Some(Ok(&b"hello world"[..])));
    assert_eq!(strings.next(), None);
}

#[test]
fn strings_inside_one_read_are_lent_from_it() {
    let chunk = b"3:abc,3:def,";
    let mut framer = NetstringFramer::new();
    let mut strings = framer.feed(chunk);
    while let Some(s) = strings.next() {
        assert!(chunk.as_ptr_range().contains(&s.unwrap().as_ptr()));
    }
    drop(strings);
    assert_eq!(framer.backlog.copied, 0);
}

#[test]
fn a_non_digit_in_the_length_is_an_error() {
    check(
        "3:abc,x:",
        &["abc"],
        Some(NetstringError::BadLengthByte(b'x')),
    );
    check("1a:", &[], Some(NetstringError::BadLengthByte(b'a')));
    check(" 1:a,", &[], Some(NetstringError::BadLengthByte(b' ')));
    check("-1:", &[], Some(NetstringError::BadLengthByte(b'-')));
}

#[test]
fn an_empty_length_is_an_error() {
    check(":,", &[], Some(NetstringError::EmptyLength));
}

#[test]
fn leading_zeros_are_refused_except_for_the_empty_string() {
    check("0:,", &[""], None);
    check("01:a,", &[], Some(NetstringError::LeadingZero));
    check("00:,", &[], Some(NetstringError::LeadingZero));
}

#[test]
fn a_missing_comma_is_an_error_and_nothing_after_it_is_read() {
    check(
        "3:abc;3:def,",
        &[],
        Some(NetstringError::MissingComma { found: b';' }),
    );
    check(
        "2:ab,1:xy,",
        &["ab"],
        Some(NetstringError::MissingComma { found: b'y' }),
    );
}

#[test]
fn a_length_over_the_maximum_is_refused_before_buffering() {
    let make = || NetstringFramer::new().with_max_length(10);
    assert_eq!(make().max_length(), 10);
    assert_eq!(NetstringFramer::new().max_length(), DEFAULT_MAX_LENGTH);
    check_with(make, b"10:0123456789,", &["0123456789"], None);
    check_with(
        make,
        b"11:01234567890,",
        &[],
        Some(NetstringError::TooLong {
            length: 11,
            max: 10,
        }),
    );
    // Refused at the digit that passes the maximum: the rest is never read.
    let mut framer = NetstringFramer::new();
    let mut strings = framer.feed(b"100000000000");
    assert_eq!(
        strings.next(),
        Some(Err(NetstringError::TooLong {
            length: 100_000,
            max: DEFAULT_MAX_LENGTH
        }))
    );
    drop(strings);
    assert_eq!(framer.backlog.copied, 0);
}

#[test]
fn a_length_overflowing_usize_is_an_error() {
    let make = || NetstringFramer::new().with_max_length(usize::MAX);
    let input = format!("{}0:", usize::MAX);
    check_with(
        make,
        input.as_bytes(),
        &[],
        Some(NetstringError::LengthOverflow),
    );
    let mut framer = make();
    let input = format!("{}:", usize::MAX);
    assert_eq!(
        framer.feed(input.as_bytes()).next(),
        Some(Err(NetstringError::LengthOverflow))
    );
}

#[test]
fn errors_say_what_was_wrong() {
    assert_eq!(
        NetstringError::BadLengthByte(b'x').to_string(),
        "bad netstring: expected a digit or ':' in the length, got 'x'"
    );
    assert_eq!(
        NetstringError::MissingComma { found: b';' }.to_string(),
        "bad netstring: expected ',' after the string, got ';'"
    );
    assert_eq!(
        NetstringError::TooLong {
            length: 11,
            max: 10
        }
        .to_string(),
        "bad netstring: declared length 11 or more is over the maximum 10"
    );
}

#[test]
fn encoding_round_trips() {
    let mut out = Vec::new();
    for s in [&b""[..], b"a", b"hello, world", &[0u8; 300]] {
        encode(s, &mut out);
    }
    assert!(out.starts_with(b"0:,1:a,12:hello, world,300:\0"));
    let mut framer = NetstringFramer::new();
    let mut strings = framer.feed(&out);
    let mut lengths = Vec::new();
    while let Some(s) = strings.next() {
        lengths.push(s.unwrap().len());
    }
    assert_eq!(lengths, [0, 1, 12, 300]);
}

#[test]
fn a_large_string_fed_byte_by_byte_is_copied_once() {
    const SIZE: usize = 1 << 20;
    let input = encode_to_vec(&vec![b'z'; SIZE]);
    let mut framer = NetstringFramer::new().with_max_length(SIZE);
    let mut got = 0;
    for byte in &input {
        if let Some(s) = framer.feed(std::slice::from_ref(byte)).next() {
            got = s.unwrap().len();
        }
    }
    assert_eq!(got, SIZE);
    assert!(framer.backlog.copied <= SIZE + 1);
}
