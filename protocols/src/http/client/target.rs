//! Where a request goes: an absolute URL parsed with the `http` crate's `Uri` into scheme,
//! host, port and the request target, and a redirect's `Location` resolved against it.

use http::uri::Scheme as UriScheme;
use http::Uri;

use super::ClientError;

/// The schemes the client knows: `Https` connects through the reactor's TLS stage.
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
        // The `http` crate reads a port past 65535 as no port at all: only a URL that really
        // has none may take the default, or `:99999` would quietly connect to port 80.
        let port = match authority.port_u16() {
            Some(port) => port,
            None if has_port(authority.as_str()) => {
                return Err(invalid("the port is not a number from 0 to 65535"))
            }
            None => default_port,
        };
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") => "/".to_string(),
            Some(p) if p.starts_with('?') => format!("/{p}"),
            Some(p) => p.to_string(),
        };
        Ok(Target {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
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

    /// Resolves a redirect's `Location` against this URL (RFC 9110 §10.2.2, RFC 3986 §5.2),
    /// dot segments removed (§5.2.4: `/a/b/../c` is `/a/c`), as browsers and curl do.
    pub(super) fn join(&self, location: &str) -> Result<Target, ClientError> {
        let location = location.trim();
        let base = format!("{}://{}", self.scheme.as_str(), self.authority);
        let absolute = if has_scheme(location) {
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
        let mut target = Target::parse(&absolute)?;
        let (path, query) = match target.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target.path.as_str(), None),
        };
        let mut resolved = remove_dot_segments(path);
        if let Some(query) = query {
            resolved.push('?');
            resolved.push_str(query);
        }
        target.path = resolved;
        Ok(target)
    }
}

/// RFC 3986 §5.2.4 on an absolute path: `.` segments dropped, each `..` taking the segment
/// before it (never past the root); a path ending in `.` or `..` keeps its trailing slash.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            segment => kept.push(segment),
        }
    }
    let mut out = format!("/{}", kept.join("/"));
    if (path.ends_with("/.") || path.ends_with("/..")) && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Whether an authority (`host`, `host:port`, `[v6]:port`) has a non-empty port after its
/// host (RFC 3986 §3.2.3: an empty one means the scheme's default).
fn has_port(authority: &str) -> bool {
    let host_end = authority.rfind(']').unwrap_or(0);
    authority[host_end..]
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty())
}

/// Whether `reference` starts with a scheme (RFC 3986 §3.1: a letter, then letters, digits,
/// `+`, `-` or `.`, then `:`), so is absolute; a `://` later in a relative reference's query
/// (`/login?next=http://a/`) does not count.
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
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
        assert_eq!(Target::parse("http://a:65535/").unwrap().port, 65535);
        assert_eq!(Target::parse("http://a:/").unwrap().port, 80);
        assert_eq!(Target::parse("http://[::1]:8080/").unwrap().port, 8080);
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in [
            "",
            "example.org/a",
            "http://",
            "http://a b/",
            "http://u:p@host/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:65536/",
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
        assert_eq!(join("HTTPS://fourth/"), "https://fourth/");
        // A URL in a relative reference's query does not make it absolute.
        assert_eq!(
            join("/login?next=http://example.com/"),
            "http://h:1/login?next=http://example.com/"
        );
        assert_eq!(join("next?u=a://b"), "http://h:1/a/next?u=a://b");
        // Dot segments are removed (RFC 3986 §5.2.4), never past the root; a query keeps its own.
        assert_eq!(join("../c"), "http://h:1/c");
        assert_eq!(join("./c/./d?x=/../y"), "http://h:1/a/c/d?x=/../y");
        assert_eq!(join("/a/b/.."), "http://h:1/a/");
        assert_eq!(join("../../../../x"), "http://h:1/x");
        assert_eq!(join("."), "http://h:1/a/");
        assert_eq!(join("/p/q/"), "http://h:1/p/q/");
    }
}
