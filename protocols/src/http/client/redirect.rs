//! Following redirects (RFC 9110 §15.4): which statuses, which method and body the next
//! request has, and which headers do not follow it to another host.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};

use super::exchange::Exchange;
use super::upload::RequestBody;
use super::ClientError;

/// Whether `exchange` follows a `status` response: 301, 302, 303, 307 and 308 (300 and 305
/// need a choice or a proxy), except 307 and 308 for a streamed body, which cannot be sent
/// again (the redirect is then the response).
pub(super) fn is_followed(exchange: &Exchange, status: StatusCode) -> bool {
    match status.as_u16() {
        301..=303 => true,
        307 | 308 => exchange.body.is_replayable(),
        _ => false,
    }
}

/// The request that follows `exchange`'s `status` response with this `Location`:
/// - 301, 302, 303: `GET` without a body (what browsers and curl do for 301 and 302 after
///   `POST`, and what §15.4.4 asks for 303), except that `HEAD` stays `HEAD`;
/// - 307, 308: the same method and body;
/// - `Authorization`, `Cookie` and `Proxy-Authorization` are dropped when the host or port
///   changes, and `Host` always (it is the new URL's).
pub(super) fn follow(
    exchange: &Exchange,
    status: StatusCode,
    location: &HeaderValue,
) -> Result<Exchange, ClientError> {
    let location = location.to_str().map_err(|_| ClientError::InvalidUrl {
        url: String::from_utf8_lossy(location.as_bytes()).into_owned(),
        reason: "a redirect's Location is not visible ASCII",
    })?;
    let target = exchange.target.join(location)?;
    let mut headers = exchange.headers.clone();
    headers.remove(header::HOST);
    if target.key() != exchange.target.key() {
        for name in [
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ] {
            headers.remove(name);
        }
    }
    let keeps_method = matches!(status.as_u16(), 307 | 308) || exchange.method == Method::HEAD;
    let (method, body) = if keeps_method {
        let body = match &exchange.body {
            RequestBody::Bytes(bytes) => bytes.clone(),
            RequestBody::Stream(_) => Bytes::new(),
        };
        (exchange.method.clone(), body)
    } else {
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::CONTENT_LANGUAGE,
        ] {
            headers.remove(name);
        }
        (Method::GET, Bytes::new())
    };
    Ok(Exchange {
        method,
        target,
        headers,
        body: RequestBody::Bytes(body),
        slot: exchange.slot.clone(),
        redirects: exchange.redirects + 1,
        retried: false,
    })
}
