//! Every input in every chunk size from 1 byte up, and with a consumer that stops after each
//! frame (as a paused protocol does): the same frames and the same error, at the same place.

use super::*;
use crate::framer;

/// The frames `make()` decodes from `input` are `frames` then `error`, however it is fed
/// ([`check`](crate::framer::tests::check)).
fn check(
    make: impl Fn() -> PrefixedFramer,
    input: &[u8],
    frames: &[&[u8]],
    error: Option<FrameError>,
) {
    framer::tests::check(make, PrefixedFramer::has_failed, input, frames, error);
}

/// `frames`, each after its `prefix`, in one stream.
pub(super) fn wire(prefix: Prefix, frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        prefix.encode(frame, &mut out).unwrap();
    }
    out
}

#[test]
fn frames_of_every_prefix_in_every_chunk_size() {
    let frames: &[&[u8]] = &[b"hello", b"", b"\0\0\0\x05", b"x"];
    for prefix in [Prefix::U8, Prefix::U16, Prefix::U32] {
        check(
            || PrefixedFramer::new(prefix),
            &wire(prefix, frames),
            frames,
            None,
        );
    }
}

#[test]
fn the_prefix_is_big_endian() {
    assert_eq!(Prefix::U8.encode_to_vec(b"ab").unwrap(), b"\x02ab");
    assert_eq!(Prefix::U16.encode_to_vec(&[7; 258]).unwrap()[..2], [1, 2]);
    assert_eq!(Prefix::U32.encode_to_vec(b"").unwrap(), [0, 0, 0, 0]);
    let mut framer = PrefixedFramer::new(Prefix::U32);
    let mut frames = framer.feed(b"\0\0\x01\x00");
    assert_eq!(frames.next(), None);
    drop(frames);
    assert_eq!(framer.feed(&[1; 256]).next(), Some(Ok(&[1; 256][..])));
}

#[test]
fn empty_input_and_empty_frames() {
    check(|| PrefixedFramer::new(Prefix::U16), b"", &[], None);
    check(
        || PrefixedFramer::new(Prefix::U16),
        b"\0\0\0\0",
        &[b"", b""],
        None,
    );
}

#[test]
fn frames_inside_one_read_are_lent_from_it() {
    let chunk = wire(Prefix::U16, &[b"abc", b"defg"]);
    let mut framer = PrefixedFramer::new(Prefix::U16);
    let mut frames = framer.feed(&chunk);
    let mut count = 0;
    while let Some(frame) = frames.next() {
        assert!(chunk.as_ptr_range().contains(&frame.unwrap().as_ptr()));
        count += 1;
    }
    drop(frames);
    assert_eq!(count, 2);
    assert_eq!(framer.backlog.copied, 0);
}

#[test]
fn a_frame_at_the_maximum_passes_and_one_over_is_refused_before_its_body() {
    let make = || PrefixedFramer::new(Prefix::U16).with_max_frame_length(4);
    assert_eq!(
        (make().prefix(), make().max_frame_length()),
        (Prefix::U16, 4)
    );
    let default = PrefixedFramer::new(Prefix::U8).max_frame_length();
    assert_eq!(default, DEFAULT_MAX_FRAME_LENGTH);
    check(make, &wire(Prefix::U16, &[b"1234"]), &[b"1234"], None);
    check(
        make,
        &wire(Prefix::U16, &[b"ok", b"12345", b"never"]),
        &[b"ok"],
        Some(FrameError::TooLong { length: 5, max: 4 }),
    );
    // Refused on the prefix alone: none of the 4 GiB body is awaited or buffered.
    let mut framer = PrefixedFramer::new(Prefix::U32);
    let mut frames = framer.feed(b"\xff\xff\xff\xffabc");
    assert_eq!(
        frames.next(),
        Some(Err(FrameError::TooLong {
            length: 0xffff_ffff,
            max: DEFAULT_MAX_FRAME_LENGTH
        }))
    );
    assert_eq!(frames.next(), None);
    drop(frames);
    assert!(framer.has_failed());
    assert_eq!(framer.backlog.raw(), b"", "a failed framer keeps nothing");
    assert_eq!(framer.feed(b"\0\0\0\0").next(), None);
}

#[test]
fn encoding_refuses_what_the_prefix_cannot_announce() {
    let mut out = b"kept".to_vec();
    assert_eq!(
        Prefix::U8.encode(&[0; 256], &mut out),
        Err(FrameError::Unencodable {
            length: 256,
            prefix: Prefix::U8
        })
    );
    assert_eq!(out, b"kept");
    assert!(Prefix::U8.encode(&[0; 255], &mut out).is_ok());
    assert!(Prefix::U16.encode_to_vec(&vec![0; 65_536]).is_err());
}

#[test]
fn errors_say_what_was_wrong() {
    assert_eq!(
        FrameError::TooLong { length: 5, max: 4 }.to_string(),
        "peer announced a frame of 5 bytes, over the maximum 4"
    );
    assert_eq!(
        FrameError::Unencodable {
            length: 256,
            prefix: Prefix::U8
        }
        .to_string(),
        "a frame of 256 bytes is too long for a 1-byte length prefix (at most 255)"
    );
}

#[test]
fn a_large_frame_fed_byte_by_byte_is_copied_once() {
    const SIZE: usize = 1 << 20;
    let input = Prefix::U32.encode_to_vec(&vec![b'z'; SIZE]).unwrap();
    let mut framer = PrefixedFramer::new(Prefix::U32).with_max_frame_length(SIZE);
    let mut got = 0;
    for byte in &input {
        if let Some(frame) = framer.feed(std::slice::from_ref(byte)).next() {
            got = frame.unwrap().len();
        }
    }
    assert_eq!(got, SIZE);
    assert!(framer.backlog.copied <= SIZE + 4);
}
