//! HTTP/1.1, server side. [`codec`] is the sans-I/O core: a request decoder and a response
//! serializer over the [`http`] crate's types, so handlers interoperate with the ecosystem.
//! [`static_files`] serves a directory; `server` (feature `reactor`) runs handlers on
//! connections.

pub mod codec;
// Serving a directory: safe path resolution, listings, validators, ranges, chunked reads.
pub mod static_files;

pub use codec::{
    write_continue, BodyKind, HttpDate, HttpError, Limits, RequestDecoder, RequestEvent,
    RequestEvents, RequestHead, ResponseBody, ResponseHead,
};

#[cfg(feature = "reactor")]
pub mod server;

// The `http` crate's types handlers use, so applications need no direct dependency on it.
pub use ::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
