//! [`Request`]: what to send, built step by step.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};

use super::upload::{BodySource, RequestBody};

/// A request to send with [`HttpClient::send`](super::HttpClient::send): method, absolute
/// URL, headers and body. `Host` is added from the URL unless given; `Content-Length` (or
/// `Transfer-Encoding`) is the client's to write and is dropped if given.
///
/// ```
/// use torsion_protocols::http::client::Request;
/// use torsion_protocols::http::{header, HeaderValue};
///
/// let request = Request::post("http://127.0.0.1:8080/echo", "hello")
///     .header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
/// assert_eq!(request.method(), "POST");
/// ```
pub struct Request {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: RequestBody,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("streamed", &!self.body.is_replayable())
            .finish()
    }
}

impl Request {
    /// A `method` request to `url` with no headers and no body. The URL is checked when the
    /// request is sent (a bad one fails it with
    /// [`ClientError::InvalidUrl`](super::ClientError::InvalidUrl)).
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: RequestBody::Bytes(Bytes::new()),
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    /// A `HEAD` request.
    pub fn head(url: impl Into<String>) -> Self {
        Self::new(Method::HEAD, url)
    }

    /// A `POST` request with this body.
    pub fn post(url: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self::new(Method::POST, url).body(body)
    }

    /// Adds a header line (after any of the same name).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body, sent with its `Content-Length`. Bytes can be sent again, so a request
    /// with a body can follow a 307/308 redirect and be retried.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = RequestBody::Bytes(body.into());
        self
    }

    /// Streams the body from `source`, pulled as the connection can take it (framed by the
    /// source's [`length`](BodySource::length), else chunked). Such a request is never retried and
    /// does not follow 307/308 redirects (the body cannot be sent twice).
    pub fn body_stream(mut self, source: impl BodySource) -> Self {
        self.body = RequestBody::Stream(Some(Box::new(source)));
        self
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body, unless it is streamed.
    pub fn body_bytes(&self) -> Option<&Bytes> {
        match &self.body {
            RequestBody::Bytes(bytes) => Some(bytes),
            RequestBody::Stream(_) => None,
        }
    }

    pub(super) fn into_parts(self) -> (Method, String, HeaderMap, RequestBody) {
        (self.method, self.url, self.headers, self.body)
    }
}
