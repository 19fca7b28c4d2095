//! Cookies (RFC 6265), sans-I/O: reading a request's `Cookie` header(s) ([`cookies`],
//! [`cookie`]) and writing a `Set-Cookie` header value ([`SetCookie`]).
//!
//! ```
//! use std::time::Duration;
//! use torsion_protocols::http::cookie::{cookie, SameSite, SetCookie};
//! use torsion_protocols::http::{header, HeaderMap, HeaderValue};
//!
//! let mut request = HeaderMap::new();
//! request.insert(header::COOKIE, HeaderValue::from_static("theme=dark; visits=3"));
//! assert_eq!(cookie(&request, "visits"), Some("3"));
//!
//! let set = SetCookie::new("visits", "4")
//!     .path("/")
//!     .max_age(Duration::from_secs(3600))
//!     .http_only()
//!     .same_site(SameSite::Lax);
//! assert_eq!(
//!     set.to_header_value().unwrap(),
//!     "visits=4; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
//! );
//! ```

use std::fmt;
use std::time::Duration;

use http::{header, HeaderMap, HeaderValue};

/// At most this many cookie pairs are read from one request, whatever its headers hold; the
/// rest are ignored (the head's size limit bounds them already; this bounds the work).
pub const MAX_COOKIES: usize = 128;

/// The `name=value` pairs of every `Cookie` header in `headers`, in order, at most
/// [`MAX_COOKIES`]. Lenient in what it accepts (RFC 6265 §5.4 is what user agents send;
/// servers meet older ones): spaces and tabs around pairs, names and values are trimmed,
/// a value in double quotes is unquoted, empty pieces (`a=1;;b=2`) and pieces without `=`
/// are skipped, and a header that is not UTF-8 is skipped whole.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(parse_pair)
        .take(MAX_COOKIES)
}

/// The value of the first cookie named `name` (case-sensitive, as names are) in `headers`.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    cookies(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

#[cfg(feature = "reactor")]
impl crate::http::server::Request {
    /// The value of the first cookie named `name` in the request's `Cookie` header(s)
    /// (see [`cookie`]).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        cookie(&self.head.headers, name)
    }
}

/// One `name=value` piece of a `Cookie` header, trimmed and unquoted.
fn parse_pair(piece: &str) -> Option<(&str, &str)> {
    let (name, value) = piece.split_once('=')?;
    let name = name.trim_matches(is_space);
    if name.is_empty() {
        return None;
    }
    let value = value.trim_matches(is_space);
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Some((name, value))
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A cookie's `SameSite` attribute: whether a browser sends it on requests from other sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Only on requests from this site.
    Strict,
    /// On requests from this site and on top-level navigations to it.
    Lax,
    /// On every request; browsers require `Secure` with it.
    None,
}

/// Why a [`SetCookie`] cannot be written as a header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    /// The name is empty or not an RFC 9110 token (`=`, `;`, spaces, controls...).
    InvalidName,
    /// The value has a character outside RFC 6265's cookie-octets (space, `"`, `,`, `;`,
    /// `\`, controls, non-ASCII).
    InvalidValue,
    /// The path has a control character or `;`.
    InvalidPath,
    /// `SameSite=None` without `Secure`, which browsers reject.
    SameSiteNoneWithoutSecure,
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CookieError::InvalidName => "a cookie name must be a non-empty token",
            CookieError::InvalidValue => "a cookie value has a character a header cannot carry",
            CookieError::InvalidPath => "a cookie path has a control character or ';'",
            CookieError::SameSiteNoneWithoutSecure => "SameSite=None needs Secure",
        })
    }
}

impl std::error::Error for CookieError {}

/// A `Set-Cookie` header value (RFC 6265 §4.1), built then checked when written by
/// [`to_header_value`](SetCookie::to_header_value): a name or value that would break the
/// header is refused, never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    name: String,
    value: String,
    path: Option<String>,
    max_age: Option<Duration>,
    http_only: bool,
    secure: bool,
    same_site: Option<SameSite>,
}

impl SetCookie {
    /// A cookie `name=value`, with no attributes (a session cookie for the request's path).
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        SetCookie {
            name: name.into(),
            value: value.into(),
            path: None,
            max_age: None,
            http_only: false,
            secure: false,
            same_site: None,
        }
    }

    /// `Path=path`: the paths the browser sends it back for.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// `Max-Age=seconds`: how long the browser keeps it (whole seconds; zero removes it).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// `HttpOnly`: not readable from scripts.
    pub fn http_only(mut self) -> Self {
        self.http_only = true;
        self
    }

    /// `Secure`: sent over HTTPS only.
    pub fn secure(mut self) -> Self {
        self.secure = true;
        self
    }

    /// `SameSite=Strict|Lax|None`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// The header value, or why it cannot be written.
    pub fn to_header_value(&self) -> Result<HeaderValue, CookieError> {
        self.check()?;
        let mut out = format!("{}={}", self.name, self.value);
        if let Some(path) = &self.path {
            out.push_str("; Path=");
            out.push_str(path);
        }
        if let Some(age) = self.max_age {
            out.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            out.push_str(match same_site {
                SameSite::Strict => "; SameSite=Strict",
                SameSite::Lax => "; SameSite=Lax",
                SameSite::None => "; SameSite=None",
            });
        }
        // Every piece was checked to be visible ASCII or space: a valid header value.
        HeaderValue::from_str(&out).map_err(|_| CookieError::InvalidValue)
    }

    fn check(&self) -> Result<(), CookieError> {
        if self.name.is_empty() || !self.name.bytes().all(is_tchar) {
            return Err(CookieError::InvalidName);
        }
        let value = self.value.as_bytes();
        let bare = match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        };
        if !bare.iter().copied().all(is_cookie_octet) {
            return Err(CookieError::InvalidValue);
        }
        if let Some(path) = &self.path {
            if !path.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';') {
                return Err(CookieError::InvalidPath);
            }
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return Err(CookieError::SameSiteNoneWithoutSecure);
        }
        Ok(())
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 §4.1.1 `cookie-octet`: visible ASCII but `"`, `,`, `;` and `\`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(header::COOKIE, HeaderValue::from_bytes(line).unwrap());
        }
        headers
    }

    #[test]
    fn pairs_are_read_from_every_cookie_header_leniently() {
        let headers = request(&[b"a=1;b=2", b" c = \"3\" ;;\td=;noequals; =x ;e=a=b"]);
        let all: Vec<_> = cookies(&headers).collect();
        assert_eq!(
            all,
            [("a", "1"), ("b", "2"), ("c", "3"), ("d", ""), ("e", "a=b")]
        );
        assert_eq!(cookie(&headers, "c"), Some("3"));
        assert_eq!(cookie(&headers, "A"), None);
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn the_first_of_two_same_named_cookies_wins() {
        let headers = request(&[b"id=first; id=second"]);
        assert_eq!(cookie(&headers, "id"), Some("first"));
    }

    #[test]
    fn a_non_utf8_header_is_skipped_and_the_count_is_bounded() {
        let headers = request(&[b"x=\xff", b"y=2"]);
        assert_eq!(cookies(&headers).collect::<Vec<_>>(), [("y", "2")]);
        let many = "k=v;".repeat(MAX_COOKIES * 3);
        let headers = request(&[many.as_bytes()]);
        assert_eq!(cookies(&headers).count(), MAX_COOKIES);
    }

    #[test]
    fn garbage_never_panics() {
        for junk in [
            &b""[..],
            b";",
            b"=",
            b"==;=",
            b"\"",
            b"a=\"",
            b"a=\"\"",
            b" \t ",
        ] {
            let headers = request(&[junk]);
            let _ = cookies(&headers).count();
        }
        assert_eq!(cookie(&request(&[b"a=\""]), "a"), Some("\""));
        assert_eq!(cookie(&request(&[b"a=\"\""]), "a"), Some(""));
    }

    #[test]
    fn every_attribute_is_written_in_order() {
        let set = SetCookie::new("sid", "abc123")
            .path("/app")
            .max_age(Duration::from_secs(60))
            .http_only()
            .secure()
            .same_site(SameSite::None);
        assert_eq!(
            set.to_header_value().unwrap(),
            "sid=abc123; Path=/app; Max-Age=60; HttpOnly; Secure; SameSite=None"
        );
        let strict = SetCookie::new("a", "\"quoted\"").same_site(SameSite::Strict);
        assert_eq!(
            strict.to_header_value().unwrap(),
            "a=\"quoted\"; SameSite=Strict"
        );
        assert_eq!(SetCookie::new("a", "").to_header_value().unwrap(), "a=");
    }

    #[test]
    fn what_would_break_the_header_is_refused() {
        for name in ["", "a b", "a=b", "a;b", "a\r\nb", "é", "a\"b"] {
            let err = SetCookie::new(name, "v").to_header_value().unwrap_err();
            assert_eq!(err, CookieError::InvalidName, "{name:?}");
        }
        for value in [
            "a b", "a;b", "a,b", "a\\b", "a\"b", "\"", "a\nb", "é", "a\0",
        ] {
            let err = SetCookie::new("n", value).to_header_value().unwrap_err();
            assert_eq!(err, CookieError::InvalidValue, "{value:?}");
        }
        for path in ["/a;b", "/a\r\nSet-Cookie: x=y", "/\x7f"] {
            let err = SetCookie::new("n", "v").path(path).to_header_value();
            assert_eq!(err.unwrap_err(), CookieError::InvalidPath, "{path:?}");
        }
        let none = SetCookie::new("n", "v").same_site(SameSite::None);
        assert_eq!(
            none.to_header_value().unwrap_err(),
            CookieError::SameSiteNoneWithoutSecure
        );
    }
}
