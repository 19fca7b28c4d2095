//! JSON bodies (feature `json`): [`Request::json`] reads one, [`Responder::respond_json`]
//! answers with one.

use std::fmt;

use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use torsion_reactor::Reactor;

use super::{Request, Responder};

/// Why a request's body was not read as JSON; [`status`](JsonError::status) is the answer to
/// give, [`respond`](JsonError::respond) gives it.
#[derive(Debug)]
#[non_exhaustive]
pub enum JsonError {
    /// The request's `Content-Type` is not `application/json` (nor `application/*+json`):
    /// 415 Unsupported Media Type.
    NotJson,
    /// The body is not JSON, or not JSON of the expected shape: 400 Bad Request. The cause
    /// says where (line and column) and what.
    Invalid(serde_json::Error),
}

impl JsonError {
    /// The status this error answers: 415 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            JsonError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonError::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Answers the request with [`status`](JsonError::status) and this error's message as a
    /// `text/plain` body.
    pub fn respond(self, responder: Responder, reactor: &mut Reactor) {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        responder.respond(reactor, self.status(), &headers, format!("{self}\n"));
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::NotJson => f.write_str("the body must be sent as application/json"),
            JsonError::Invalid(e) => write!(f, "the body is not valid JSON: {e}"),
        }
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JsonError::NotJson => None,
            JsonError::Invalid(e) => Some(e),
        }
    }
}

impl Request {
    /// The body (read whole) as JSON of type `T`, if the `Content-Type` says JSON
    /// (`application/json` or `application/*+json`, any parameters). Otherwise a
    /// [`JsonError`] to answer with ([`JsonError::respond`]): 415 or 400.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        if !is_json(self.head.headers.get(header::CONTENT_TYPE)) {
            return Err(JsonError::NotJson);
        }
        serde_json::from_slice(&self.body).map_err(JsonError::Invalid)
    }
}

/// Whether a `Content-Type` names JSON (RFC 8259 §11, and RFC 6839's `+json` suffix).
fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

impl Responder {
    /// Answers with `value` serialized as JSON (`Content-Type: application/json`). A value
    /// that cannot be serialized (a map with non-string keys, a failing `Serialize`) is
    /// answered `500 Internal Server Error`, logged.
    pub fn respond_json<T: Serialize + ?Sized>(
        self,
        reactor: &mut Reactor,
        status: StatusCode,
        value: &T,
    ) {
        match serde_json::to_vec(value) {
            Ok(body) => {
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                self.respond(reactor, status, &headers, body)
            }
            Err(error) => {
                log::warn!("respond_json: the value cannot be serialized ({error})");
                self.respond_status(reactor, StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::server::{HttpServer, Router};
    use torsion_reactor::testing::TestReactor;

    fn server() -> HttpServer<Router> {
        HttpServer::new(Router::new().post(
            "/add",
            |req: Request, res: Responder, r: &mut Reactor| match req.json::<Vec<i64>>() {
                Ok(numbers) => {
                    let sum: i64 = numbers.iter().sum();
                    res.respond_json(r, StatusCode::OK, &serde_json::json!({ "sum": sum }))
                }
                Err(e) => e.respond(res, r),
            },
        ))
    }

    fn post(content_type: &str, body: &str) -> String {
        let mut server = server();
        let mut test = TestReactor::new();
        let client = test.connect_from(&mut server).unwrap();
        let request = format!(
            "POST /add HTTP/1.1\r\nHost: a\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        test.feed(&client, request.as_bytes());
        client.take_text()
    }

    #[test]
    fn json_in_and_json_out() {
        let response = post("application/json; charset=utf-8", "[1, 2, 39]");
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("content-type: application/json\r\n"));
        assert!(response.ends_with("\r\n\r\n{\"sum\":42}"), "{response}");
        let vendor = post("Application/vnd.api+JSON", "[]");
        assert!(vendor.ends_with("{\"sum\":0}"), "{vendor}");
    }

    #[test]
    fn bad_json_is_400_with_where_it_went_wrong() {
        let response = post("application/json", "[1, 2,");
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{response}"
        );
        assert!(
            response.contains("the body is not valid JSON: "),
            "{response}"
        );
        assert!(response.contains("line 1 column"), "{response}");
        let shape = post("application/json", "{\"a\": 1}");
        assert!(shape.starts_with("HTTP/1.1 400 "), "{shape}");
    }

    #[test]
    fn another_content_type_is_415() {
        for content_type in [
            "text/plain",
            "application/jsonx",
            "json",
            "application/+json",
        ] {
            let response = post(content_type, "[1]");
            assert!(
                response.starts_with("HTTP/1.1 415 Unsupported Media Type\r\n"),
                "{content_type}: {response}"
            );
            assert!(response.ends_with("the body must be sent as application/json\n"));
        }
    }
}
