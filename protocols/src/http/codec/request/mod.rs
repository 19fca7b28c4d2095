//! The request: its head as parsed ([`RequestHead`]), decoded from the bytes a server
//! receives ([`RequestDecoder`]) and encoded into the bytes a client sends
//! ([`RequestEncoder`]).

mod decode;
mod encode;
mod head;

pub use decode::{RequestDecoder, RequestEvent, RequestEvents};
pub use encode::RequestEncoder;
pub use head::RequestHead;
