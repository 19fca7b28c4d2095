//! The DNS message decoder. A message arrives whole (a datagram, or a TCP frame the
//! length-prefixed framer cut), so there is no chunking to vary; the bound on memory is
//! against the message's length, since a 2-byte compression pointer can stand for a 255-byte
//! name.

use torsion_protocols::dns::Message;

use super::Target;
use crate::alloc;

/// The DNS message decoder.
pub const TARGET: Target = Target {
    name: "dns",
    about: "Message::decode and decode_head, then encode and decode again",
    run,
    events: |input| match Message::decode(input) {
        Ok(message) => format!("{message:?}\n"),
        Err(error) => format!("error {error:?}: {error}\n"),
    },
    dictionary: &[
        b"\xc0\x0c",
        b"\xc0\x00",
        b"\xc0",
        b"\x00\x01\x00\x01",
        b"\x00\x05\x00\x01",
        b"\x00\x06\x00\x01",
        b"\x00\x1c\x00\x01",
        b"\x00\x29\x10\x00",
        b"\x00\x00\x0e\x10",
        b"\x3f",
        b"\x40",
        b"\x07example\x03com\x00",
        b"\x00\x01",
        b"\x00\x02",
        b"\xff\xff",
    ],
};

/// Per byte of message: a name of up to 255 bytes (two, for an SOA or a CNAME's target) and a
/// record's own fields, for a record that can be as short as 12 bytes with a pointer for its
/// name and 2 more for a pointer in its data.
fn bound(len: usize) -> usize {
    64 * len + 1024
}

fn run(input: &[u8]) {
    let (decoded, peak) = alloc::measure(|| Message::decode(input));
    assert!(
        peak <= bound(input.len()),
        "decoding {} bytes held {peak} heap bytes at the peak, over {}",
        input.len(),
        bound(input.len())
    );
    let head = Message::decode_head(input);
    let message = match decoded {
        Ok(message) => message,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let (header, questions) = head.expect("decode_head fails where decode succeeds");
    assert_eq!(header, message.header, "decode_head's header");
    assert_eq!(questions, message.questions, "decode_head's questions");
    for question in &message.questions {
        let _ = message.addresses(question);
    }
    let _ = message.negative_ttl();
    let wire = message.encode();
    let again = Message::decode(&wire)
        .unwrap_or_else(|e| panic!("{e:?} decoding the re-encoding \"{}\"", wire.escape_ascii()));
    assert_eq!(again, message, "re-encoded as \"{}\"", wire.escape_ascii());
}
