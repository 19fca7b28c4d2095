//! HTTP/1.1, server and client. [`codec`] is the sans-I/O core: request and response decoders
//! and encoders over the [`http`] crate's types, so handlers interoperate with the
//! ecosystem. [`static_files`] serves a directory; `server` (feature `reactor`) runs handlers
//! on connections, and `client` sends requests over a keep-alive pool.

pub mod codec;
// Cookies: reading `Cookie`, writing `Set-Cookie`.
pub mod cookie;
// Query strings and form bodies: `application/x-www-form-urlencoded`, percent-decoding.
pub mod form;
// Serving a directory: safe path resolution, listings, validators, ranges, chunked reads.
pub mod static_files;

#[allow(deprecated, reason = "the former name stays re-exported for a while")]
pub use codec::StatusHead;
pub use codec::{
    write_continue, BodyEncoder, BodyKind, HttpDate, HttpError, Limits, RequestDecoder,
    RequestEncoder, RequestEvent, RequestEvents, RequestHead, ResponseDecoder, ResponseEncoder,
    ResponseEvent, ResponseEvents, ResponseFraming, ResponseHead,
};

#[cfg(feature = "reactor")]
pub mod client;
#[cfg(feature = "reactor")]
pub mod server;

// The `http` crate's types handlers use, so applications need no direct dependency on it.
pub use ::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
