//! HTTP Basic authentication (RFC 7617) as a [`Middleware`]: the credentials parsed from
//! `Authorization`, checked in constant time, and the `WWW-Authenticate` challenge.

use http::{header, HeaderMap, HeaderValue, StatusCode};
use torsion_reactor::Reactor;

use super::middleware::Middleware;
use super::{Handler, Request, Responder};
use crate::cred::{constant_time_eq, Checker, Credentials};

/// Longest `Authorization` value read (base64 of about 750 bytes of `user:password`); a
/// longer one is refused like a wrong one.
const MAX_CREDENTIALS_LEN: usize = 1024;

/// Lets through only requests with `Authorization: Basic base64(user:password)` naming one
/// of its users with that user's password; every other request gets `401 Unauthorized` with
/// `WWW-Authenticate: Basic realm="REALM", charset="UTF-8"` (which makes a browser ask).
///
/// The comparison takes the same time whichever byte differs (no early exit), and every
/// user is compared, so the time to refuse says nothing about how close a guess was. The
/// passwords are held in memory as given: load them from a secret store, not the source.
/// Basic sends the password in clear on every request: serve it over HTTPS.
///
/// ```
/// use torsion_protocols::http::server::middleware::{BasicAuth, HandlerExt};
/// use torsion_protocols::http::server::{HttpServer, Request, Responder, Router};
/// use torsion_protocols::http::{HeaderMap, StatusCode};
/// use torsion_reactor::testing::TestReactor;
/// use torsion_reactor::Reactor;
///
/// let admin = Router::new()
///     .get("/admin", |_: Request, res: Responder, r: &mut Reactor| {
///         res.respond(r, StatusCode::OK, &HeaderMap::new(), "welcome")
///     })
///     .wrap(BasicAuth::new("admin area").user("Aladdin", "open sesame"));
/// let mut server = HttpServer::new(admin);
/// let mut test = TestReactor::new();
/// let client = test.connect_from(&mut server).unwrap();
/// test.feed(&client, b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n");
/// let refused = client.take_text();
/// assert!(refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
/// assert!(refused.contains("www-authenticate: Basic realm=\"admin area\", charset=\"UTF-8\"\r\n"));
/// // RFC 7617's example: base64("Aladdin:open sesame").
/// test.feed(&client, b"GET /admin HTTP/1.1\r\nHost: a\r\nAuthorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
/// assert!(client.take_text().ends_with("\r\n\r\nwelcome"));
/// ```
pub struct BasicAuth {
    challenge: HeaderValue,
    users: Vec<(Vec<u8>, Vec<u8>)>,
    /// Checks what the listed users do not match: a password file, say.
    checker: Option<Box<dyn Checker>>,
}

impl BasicAuth {
    /// Authentication for `realm` (shown by browsers; `"` and `\` in it are escaped, control
    /// characters dropped), with no users yet: everything is refused.
    pub fn new(realm: &str) -> Self {
        let mut quoted = String::with_capacity(realm.len());
        for c in realm.chars().filter(|c| !c.is_control()) {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        let challenge = format!("Basic realm=\"{quoted}\", charset=\"UTF-8\"");
        BasicAuth {
            // Without controls, every character is allowed in a header value (UTF-8 is
            // opaque bytes to `HeaderValue`).
            challenge: HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| HeaderValue::from_static("Basic charset=\"UTF-8\"")),
            users: Vec::new(),
            checker: None,
        }
    }

    /// Lets in `name` with `password` (UTF-8, as `charset="UTF-8"` announces).
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Also lets in whoever `checker` accepts (a [`PasswordFile`](crate::cred::PasswordFile)
    /// of Argon2id hashes, say), with the name and password of the header.
    pub fn checker(mut self, checker: impl Checker + 'static) -> Self {
        self.checker = Some(Box::new(checker));
        self
    }

    /// Whether `headers` carry the credentials of one of the users.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        let mut found = false;
        // Every user, with `|` not `||`: no early exit.
        for (name, secret) in &self.users {
            found |= constant_time_eq(name, &user) & constant_time_eq(secret, &password);
        }
        let checked = || {
            let (Ok(username), Ok(password)) =
                (String::from_utf8(user), String::from_utf8(password))
            else {
                return false;
            };
            let credentials = Credentials::Password { username, password };
            self.checker
                .as_ref()
                .is_some_and(|c| c.check(&credentials).is_some())
        };
        found | checked()
    }
}

impl Middleware for BasicAuth {
    fn handle(
        &self,
        request: Request,
        responder: Responder,
        reactor: &mut Reactor,
        next: &dyn Handler,
    ) {
        if self.authorizes(&request.head.headers) {
            return next.handle(request, responder, reactor);
        }
        log::debug!(
            "{} {}: 401, no valid credentials",
            request.method(),
            request.path()
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::WWW_AUTHENTICATE, self.challenge.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        responder.respond(
            reactor,
            StatusCode::UNAUTHORIZED,
            &headers,
            "Unauthorized\n",
        );
    }
}

/// The user and password of an `Authorization: Basic ...` header (RFC 7617 §2: the scheme
/// case-insensitive, the user up to the first `:`), or `None` if there is none or it is
/// malformed.
pub(super) fn credentials(headers: &HeaderMap) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    if value.len() > MAX_CREDENTIALS_LEN {
        return None;
    }
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim_ascii())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Decodes standard base64 (RFC 4648 §4) with optional `=` padding; `None` on any other
/// character, a misplaced `=` or an impossible length.
pub(super) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let unpadded = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => rest,
        _ => text,
    };
    if text.len() != unpadded.len() && !text.len().is_multiple_of(4) || unpadded.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(unpadded.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for &c in unpadded {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(sextet);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    // RFC 4648 §3.5: the bits past the last byte must be zero, so that each byte string
    // has one encoding (and a changed last character is not the same credentials).
    (bits == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    }

    #[test]
    fn base64_decodes_rfc_4648_vectors_padded_or_not() {
        let vectors: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"Zg==", b"f"),
            (b"Zm8=", b"fo"),
            (b"Zm9v", b"foo"),
            (b"Zm9vYg==", b"foob"),
            (b"Zm9vYmE", b"fooba"),
            (b"Zm9vYmFy", b"foobar"),
        ];
        for (text, bytes) in vectors {
            assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text:?}");
        }
        for bad in [
            &b"Z"[..],
            b"Zm9=v",
            b"Zh==", // non-zero bits past the last byte
            b"Zm9=",
            b"Zm=",
            b"Zg=",
            b"Z===",
            b"Zm9v!",
            b"Zm 9v",
            b"=",
            b"\xff",
        ] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_parsed_from_the_basic_scheme() {
        let parsed = credentials(&authorization(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert_eq!(parsed, Some((b"Aladdin".to_vec(), b"open sesame".to_vec())));
        // The scheme is case-insensitive; the password may hold colons.
        let parsed = credentials(&authorization(b"bAsIc dTphOmI="));
        assert_eq!(parsed, Some((b"u".to_vec(), b"a:b".to_vec())));
        for bad in [
            &b"Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="[..],
            b"Basic",
            b"Basic !!!!",
            b"Basic dXNlcg==", // "user": no colon
            b"BasicQWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        ] {
            assert_eq!(credentials(&authorization(bad)), None, "{bad:?}");
        }
        assert_eq!(credentials(&HeaderMap::new()), None);
        let long = format!("Basic {}", "QUFB".repeat(400));
        assert_eq!(credentials(&authorization(long.as_bytes())), None);
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret\0"));
        assert!(!constant_time_eq(b"secret\0", b"secret"));
        assert!(!constant_time_eq(b"", b"\0"));
    }

    #[test]
    fn a_checker_lets_in_its_users_beside_the_listed_ones() {
        let file = format!("carol:{}\n", crate::cred::hash_password("hashed"));
        let auth = BasicAuth::new("r")
            .user("alice", "wonder")
            .checker(crate::cred::PasswordFile::parse(&file).unwrap());
        let basic = |user_pass: &str| {
            let encoded = encode(user_pass.as_bytes());
            authorization(format!("Basic {encoded}").as_bytes())
        };
        assert!(auth.authorizes(&basic("alice:wonder")));
        assert!(auth.authorizes(&basic("carol:hashed")));
        assert!(!auth.authorizes(&basic("carol:wonder")));
        assert!(!auth.authorizes(&basic("dave:hashed")));
    }

    #[test]
    fn only_a_users_own_password_authorizes() {
        let auth = BasicAuth::new("r")
            .user("alice", "wonder")
            .user("bob", "builder");
        let basic = |user_pass: &str| {
            let encoded = encode(user_pass.as_bytes());
            authorization(format!("Basic {encoded}").as_bytes())
        };
        assert!(auth.authorizes(&basic("alice:wonder")));
        assert!(auth.authorizes(&basic("bob:builder")));
        assert!(!auth.authorizes(&basic("alice:builder")));
        assert!(!auth.authorizes(&basic("alice:wonde")));
        assert!(!auth.authorizes(&basic("carol:wonder")));
        assert!(!auth.authorizes(&basic(":")));
        assert!(!auth.authorizes(&HeaderMap::new()));
        assert!(!BasicAuth::new("r").authorizes(&basic(":")));
    }

    #[test]
    fn the_realm_is_quoted_in_the_challenge() {
        let auth = BasicAuth::new("a \"b\" \\c\r\n");
        assert_eq!(
            auth.challenge,
            "Basic realm=\"a \\\"b\\\" \\\\c\", charset=\"UTF-8\""
        );
    }

    /// Standard base64 with padding, for the tests.
    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
