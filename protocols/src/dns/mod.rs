//! DNS: a sans-I/O message codec and, with the `reactor` feature, a stub resolver built on
//! the reactor's UDP (Twisted's `twisted.names.client`).
//!
//! # The codec
//! [`Message`] encodes queries and decodes responses: the header, the questions, and the
//! answer, authority and additional records, with A, AAAA, CNAME and SOA data parsed and other
//! types kept as bytes. Decoding is strict and never panics: compression pointers must point
//! backwards into the message (a loop, a forward pointer, one out of range is an error), label
//! lengths must be 1 to 63, names at most 255 bytes, the header's counts must match the
//! entries present, and nothing may follow them. Each fault is a [`MessageError`] saying where.
//! [`Message::addresses`] follows CNAMEs within the answer to the addresses of a question.
//!
//! ```
//! use torsion_protocols::dns::{Message, Name, RecordType};
//!
//! let query = Message::query(7, Name::from_ascii("example.com").unwrap(), RecordType::AAAA);
//! let wire = query.encode();
//! assert_eq!(&wire[..4], b"\x00\x07\x01\x00"); // id 7, recursion desired
//! assert_eq!(Message::decode(&wire).unwrap(), query);
//! ```
//!
//! # The resolver (feature `reactor`)
//! [`Resolver`] answers A and AAAA lookups: `/etc/hosts` first, then a cache kept for the
//! records' TTL on the reactor's clock, then the nameservers of `/etc/resolv.conf` (or given
//! ones) over UDP, from a fresh socket on a random port with a random query id for each query;
//! a reply counts only if it comes from the server asked and matches the id and the question,
//! anything else is dropped as forged. A server that does not answer in time is asked again,
//! then the next one; a truncated reply is asked again over TCP.
//! [`Resolver::connect`] resolves a host name with it, then connects.

mod message;
mod name;
mod record;

#[cfg(feature = "reactor")]
mod cache;
#[cfg(feature = "reactor")]
mod config;
#[cfg(feature = "reactor")]
mod connect;
#[cfg(feature = "reactor")]
mod lookup;
#[cfg(feature = "reactor")]
mod resolver;
#[cfg(feature = "reactor")]
mod transport;

#[cfg(feature = "reactor")]
pub use config::{
    Hosts, ResolverConfig, DEFAULT_ATTEMPTS, DEFAULT_CACHE_SIZE, DEFAULT_MAX_TTL, DEFAULT_TIMEOUT,
    MAX_NAMESERVERS,
};
#[cfg(feature = "reactor")]
pub use lookup::{AddressFamily, LookupResult, ResolveError};
pub use message::{
    AddressAnswer, Header, Message, MessageError, Section, HEADER_LEN, MAX_UDP_MESSAGE,
};
pub use name::{Labels, Name, NameError, MAX_LABEL_LEN, MAX_NAME_LEN};
pub use record::{Question, Rcode, Record, RecordClass, RecordData, RecordType, Soa};
#[cfg(feature = "reactor")]
pub use resolver::Resolver;
