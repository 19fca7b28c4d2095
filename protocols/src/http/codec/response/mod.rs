//! The response: its head as parsed ([`ResponseHead`], framed by [`ResponseFraming`]),
//! decoded from the bytes a client receives ([`ResponseDecoder`]) and encoded into the bytes a
//! server sends ([`ResponseEncoder`], [`write_continue`]).

mod decode;
mod encode;
mod head;

pub use decode::{ResponseDecoder, ResponseEvent, ResponseEvents};
pub use encode::{write_continue, ResponseEncoder};
pub use head::{ResponseFraming, ResponseHead};
