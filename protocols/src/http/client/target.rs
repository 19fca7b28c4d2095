//! Where a request goes: an absolute URL parsed with the `http` crate's `Uri` into scheme,
//! host, port and the request target, and a redirect's `Location` resolved against it.

use http::uri::Scheme as UriScheme;
use http::Uri;

use super::ClientError;

/// The schemes the client knows. Only `Http` connects for now: `Https` is refused by the
/// connect step until the TLS stage exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The pool's key: connections are shared per scheme, host and port.
pub(super) type HostKey = (Scheme, String, u16);

/// A parsed absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) scheme: Scheme,
    /// The host to connect to, without the brackets of an IPv6 literal, lowercased.
    pub(super) host: String,
    pub(super) port: u16,
    /// `host[:port]` as in the URL: the `Host` header.
    pub(super) authority: String,
    /// The origin-form request target: `/path?query` (`/` for an empty path).
    pub(super) path: String,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL; a fragment is dropped.
    pub(super) fn parse(url: &str) -> Result<Target, ClientError> {
        let invalid = |reason| ClientError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let without_fragment = url.split('#').next().unwrap_or(url);
        let uri: Uri = without_fragment
            .parse()
            .map_err(|_| invalid("not a valid URL"))?;
        let scheme = match uri.scheme() {
            None => return Err(invalid("no scheme (expected http://host/...)")),
            Some(s) if *s == UriScheme::HTTP => Scheme::Http,
            Some(s) if *s == UriScheme::HTTPS => Scheme::Https,
            Some(s) => return Err(ClientError::UnsupportedScheme(s.as_str().to_string())),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let default_port = if scheme == Scheme::Http { 80 } else { 443 };
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_string(),
            Some(p) if p.starts_with('?') => format!("/{p}"),
            Some(p) => p.to_string(),
        };
        Ok(Target {
            scheme,
            host: host.to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
            authority: authority.as_str().to_string(),
            path,
        })
    }

    /// The pool's key for this target.
    pub(super) fn key(&self) -> HostKey {
        (self.scheme, self.host.clone(), self.port)
    }

    /// The URL again, normalised.
    pub(super) fn url(&self) -> String {
        format!("{}://{}{}", self.scheme.as_str(), self.authority, self.path)
    }

    /// Resolves a redirect's `Location` against this URL (RFC 9110 §10.2.2, RFC 3986 §5.2
    /// without removing dot segments: the server sees them as given).
    pub(super) fn join(&self, location: &str) -> Result<Target, ClientError> {
        let location = location.trim();
        let base = format!("{}://{}", self.scheme.as_str(), self.authority);
        let absolute = if location.contains("://") {
            location.to_string()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("{}://{rest}", self.scheme.as_str())
        } else if location.starts_with('/') {
            format!("{base}{location}")
        } else if location.starts_with('?') {
            let path = self.path.split('?').next().unwrap_or("/");
            format!("{base}{path}{location}")
        } else {
            let path = self.path.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{base}{dir}{location}")
        };
        Target::parse(&absolute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_target() {
        let t = Target::parse("http://Example.org:8080/a/b?c=d#frag").unwrap();
        assert_eq!(t.host, "example.org");
        assert_eq!(t.port, 8080);
        assert_eq!(t.authority, "Example.org:8080");
        assert_eq!(t.path, "/a/b?c=d");
        let t = Target::parse("http://[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 80, "/"));
        assert_eq!(Target::parse("https://a/").unwrap().port, 443);
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "",
            "example.org/a",
            "http://",
            "http://a b/",
            "http://u:p@host/",
        ] {
            assert!(
                matches!(Target::parse(url), Err(ClientError::InvalidUrl { .. })),
                "{url}"
            );
        }
        assert!(matches!(
            Target::parse("ftp://a/"),
            Err(ClientError::UnsupportedScheme(s)) if s == "ftp"
        ));
    }

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base = Target::parse("http://h:1/a/b?q").unwrap();
        let join = |l: &str| base.join(l).unwrap().url();
        assert_eq!(join("/x"), "http://h:1/x");
        assert_eq!(join("x?y"), "http://h:1/a/x?y");
        assert_eq!(join("?z"), "http://h:1/a/b?z");
        assert_eq!(join("//other/p"), "http://other/p");
        assert_eq!(join("http://third:2/"), "http://third:2/");
    }
}
