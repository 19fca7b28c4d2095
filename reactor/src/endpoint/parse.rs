//! The endpoint-string grammar (Twisted's `_tokenize` and `_parse`): the string is split on
//! `:` into parts; a part with an `=` is a `key=value` option (later `=`s belong to the
//! value), any other part is a positional argument; a backslash makes the next character
//! literal. The first part names the kind of endpoint. One addition to Twisted's grammar: a
//! value that opens with `[` keeps its colons up to the `]`, so an IPv6 address can be
//! written `[::1]` as in a URL, instead of `\:\:1`.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{ClientEndpoint, ParseEndpointError, ServerEndpoint, SystemdDomain, SystemdSocket};
use crate::connect::Target;
use crate::UnixAddress;

type Error = ParseEndpointError;

/// One `:`-separated part, unescaped.
#[derive(Debug, PartialEq, Eq)]
enum Part {
    Argument(String),
    Option(String, String),
}

/// Splits `description` into its parts, unescaping as it goes.
fn split(description: &str) -> Result<Vec<Part>, Error> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut key: Option<String> = None;
    // Inside a value that opens with `[` (an IPv6 address), colons are literal up to `]`.
    let mut bracketed = false;
    let mut chars = description.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next().ok_or(Error::TrailingBackslash)?),
            '[' if current.is_empty() => {
                bracketed = true;
                current.push(c);
            }
            ']' if bracketed => {
                bracketed = false;
                current.push(c);
            }
            ':' if bracketed => current.push(c),
            ':' => parts.push(part(key.take(), std::mem::take(&mut current))),
            '=' if key.is_none() => key = Some(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(part(key, current));
    Ok(parts)
}

fn part(key: Option<String>, value: String) -> Part {
    match key {
        Some(key) => Part::Option(key, value),
        None => Part::Argument(value),
    }
}

/// The parts after the kind, taken one by one by the kind's parser; what is left over is an
/// error.
struct Arguments {
    kind: &'static str,
    positional: VecDeque<String>,
    options: Vec<(String, String)>,
}

impl Arguments {
    fn new(kind: &'static str, parts: Vec<Part>) -> Result<Arguments, Error> {
        let mut arguments = Arguments {
            kind,
            positional: VecDeque::new(),
            options: Vec::new(),
        };
        for part in parts {
            match part {
                Part::Argument(value) => arguments.positional.push_back(value),
                Part::Option(key, _) if arguments.options.iter().any(|(k, _)| *k == key) => {
                    return Err(Error::RepeatedOption { kind, key });
                }
                Part::Option(key, value) => arguments.options.push((key, value)),
            }
        }
        Ok(arguments)
    }

    /// The option `key`, if given.
    fn option(&mut self, key: &str) -> Option<String> {
        let at = self.options.iter().position(|(k, _)| k == key)?;
        Some(self.options.remove(at).1)
    }

    /// The next positional argument, or else the option `key` (Twisted accepts either).
    fn argument_or_option(&mut self, key: &str) -> Result<Option<String>, Error> {
        let Some(value) = self.positional.pop_front() else {
            return Ok(self.option(key));
        };
        if self.option(key).is_some() {
            let key = key.to_string();
            return Err(Error::RepeatedOption {
                kind: self.kind,
                key,
            });
        }
        Ok(Some(value))
    }

    /// `what` is required: the argument, or the option `key`.
    fn required(&mut self, key: &str, what: &'static str) -> Result<String, Error> {
        match self.argument_or_option(key)? {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(Error::Missing {
                kind: self.kind,
                what,
            }),
        }
    }

    /// Nothing may be left: an argument or option left over is an error naming it.
    fn finish(mut self, expected: &'static str) -> Result<(), Error> {
        if let Some(argument) = self.positional.pop_front() {
            let kind = self.kind;
            return Err(Error::UnexpectedArgument { kind, argument });
        }
        match self.options.pop() {
            Some((key, _)) => Err(Error::UnknownOption {
                kind: self.kind,
                key,
                expected,
            }),
            None => Ok(()),
        }
    }

    fn bad(&self, what: &'static str, value: String, expected: &'static str) -> Error {
        Error::BadValue {
            kind: self.kind,
            what,
            value,
            expected,
        }
    }
}

/// The kind (the first part) and the rest.
fn kind_and_rest(description: &str) -> Result<(String, Vec<Part>), Error> {
    if description.is_empty() {
        return Err(Error::Empty);
    }
    let mut parts = split(description)?;
    let kind = match parts.remove(0) {
        Part::Argument(kind) => kind,
        Part::Option(key, value) => format!("{key}={value}"),
    };
    Ok((kind, parts))
}

const SERVER_KINDS: &str = "tcp, tcp6, tls, unix, systemd, haproxy, or IP:PORT";
const CLIENT_KINDS: &str = "tcp, tls, unix, or HOST:PORT";

impl FromStr for ServerEndpoint {
    type Err = ParseEndpointError;

    fn from_str(description: &str) -> Result<ServerEndpoint, Error> {
        if let Ok(addr) = description.parse::<SocketAddr>() {
            return Ok(ServerEndpoint::Tcp {
                addr,
                backlog: None,
                reuse_port: false,
            });
        }
        if let Some(inner) = description.strip_prefix("haproxy:") {
            return haproxy_server(inner);
        }
        let (kind, rest) = kind_and_rest(description)?;
        match kind.as_str() {
            "haproxy" => Err(Error::Missing {
                kind: "haproxy",
                what: "the endpoint behind the proxy (e.g. haproxy:tcp:8000)",
            }),
            "tcp" => tcp_server(Arguments::new("tcp", rest)?, false),
            "tcp6" => tcp_server(Arguments::new("tcp6", rest)?, true),
            "tls" => tls_server(Arguments::new("tls", rest)?),
            "ssl" => tls_server(Arguments::new("ssl", rest)?),
            "unix" => unix_server(Arguments::new("unix", rest)?),
            "systemd" => systemd_server(Arguments::new("systemd", rest)?),
            _ => Err(Error::UnknownKind {
                kind,
                expected: SERVER_KINDS,
            }),
        }
    }
}

/// `haproxy:ENDPOINT`: a plain stream endpoint behind a proxy. TLS is refused, since the
/// PROXY header comes before the TLS handshake and this wrapper reads it above TLS.
fn haproxy_server(inner: &str) -> Result<ServerEndpoint, Error> {
    let kind = "haproxy";
    match inner.parse::<ServerEndpoint>()? {
        ServerEndpoint::Tls { .. } => Err(Error::Conflict {
            kind,
            why: "TLS behind the PROXY protocol is not supported (terminate TLS in the proxy)",
        }),
        ServerEndpoint::Haproxy(_) => Err(Error::Conflict {
            kind,
            why: "one PROXY header per connection: haproxy: cannot wrap haproxy:",
        }),
        inner => Ok(ServerEndpoint::Haproxy(Box::new(inner))),
    }
}

/// `systemd:domain=DOMAIN:index=N` or `systemd:domain=DOMAIN:name=NAME` (Twisted's
/// `systemd:` endpoint, with `name` from `LISTEN_FDNAMES`).
fn systemd_server(mut args: Arguments) -> Result<ServerEndpoint, Error> {
    let domain = match args.option("domain").as_deref() {
        Some("INET") => SystemdDomain::Inet,
        Some("INET6") => SystemdDomain::Inet6,
        Some("UNIX") => SystemdDomain::Unix,
        Some(other) => return Err(args.bad("domain", other.to_string(), "INET, INET6 or UNIX")),
        None => {
            let what = "the socket's family (domain=INET, INET6 or UNIX)";
            return Err(Error::Missing {
                kind: args.kind,
                what,
            });
        }
    };
    let socket = match (args.option("index"), args.option("name")) {
        (Some(_), Some(_)) => {
            let why = "give index or name, not both";
            return Err(Error::Conflict {
                kind: args.kind,
                why,
            });
        }
        (Some(text), None) => match text.parse::<usize>() {
            Ok(index) => SystemdSocket::Index(index),
            Err(_) => return Err(args.bad("index", text, "a number from 0")),
        },
        (None, Some(name)) if !name.is_empty() => SystemdSocket::Name(name),
        _ => {
            let what = "which socket (index=N or name=NAME)";
            return Err(Error::Missing {
                kind: args.kind,
                what,
            });
        }
    };
    args.finish("domain, index, name")?;
    Ok(ServerEndpoint::Systemd { domain, socket })
}

const TCP_SERVER_OPTIONS: &str = "interface, backlog, reuseport";

fn tcp_server(mut args: Arguments, ipv6: bool) -> Result<ServerEndpoint, Error> {
    let addr = listen_address(&mut args, ipv6)?;
    let backlog = backlog(&mut args)?;
    let reuse_port = match args.option("reuseport").as_deref() {
        None | Some("no") => false,
        Some("yes") => true,
        Some(other) => return Err(args.bad("reuseport", other.to_string(), "yes or no")),
    };
    args.finish(TCP_SERVER_OPTIONS)?;
    Ok(ServerEndpoint::Tcp {
        addr,
        backlog,
        reuse_port,
    })
}

const TLS_SERVER_OPTIONS: &str = "privateKey, certKey, interface, backlog";

fn tls_server(mut args: Arguments) -> Result<ServerEndpoint, Error> {
    let addr = listen_address(&mut args, false)?;
    let backlog = backlog(&mut args)?;
    let Some(private_key) = args.option("privateKey").filter(|v| !v.is_empty()) else {
        return Err(Error::Missing {
            kind: args.kind,
            what: "the private key (privateKey=PEM)",
        });
    };
    let cert_chain = args
        .option("certKey")
        .unwrap_or_else(|| private_key.clone());
    args.finish(TLS_SERVER_OPTIONS)?;
    Ok(ServerEndpoint::Tls {
        addr,
        backlog,
        cert_chain: PathBuf::from(cert_chain),
        private_key: PathBuf::from(private_key),
    })
}

/// The port (positional or `port=`) and the `interface` option, defaulting to every IPv4
/// interface, or every IPv6 one for `tcp6`.
fn listen_address(args: &mut Arguments, ipv6: bool) -> Result<SocketAddr, Error> {
    let port = args.required("port", "the port (e.g. tcp:8000)")?;
    let port = port
        .parse::<u16>()
        .map_err(|_| args.bad("port", port, "a port number 0-65535"))?;
    let ip = match args.option("interface") {
        None if ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) => match ip_literal(&text) {
            Some(ip @ IpAddr::V4(_)) if ipv6 => {
                return Err(args.bad("interface", ip.to_string(), "an IPv6 address"))
            }
            Some(ip) => ip,
            None => return Err(args.bad("interface", text, "an IP address")),
        },
    };
    Ok(SocketAddr::new(ip, port))
}

/// An IP address, IPv6 with or without brackets.
fn ip_literal(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok()
}

fn backlog(args: &mut Arguments) -> Result<Option<u32>, Error> {
    let Some(text) = args.option("backlog") else {
        return Ok(None);
    };
    match text.parse::<u32>() {
        Ok(n) if n <= i32::MAX as u32 => Ok(Some(n)),
        _ => Err(args.bad("backlog", text, "a number of connections")),
    }
}

fn unix_server(mut args: Arguments) -> Result<ServerEndpoint, Error> {
    let name = unix_name(
        &mut args,
        "address",
        "the socket's path (e.g. unix:/run/app.sock)",
    )?;
    let mode = match args.option("mode") {
        None => None,
        Some(text) => Some(
            octal_mode(&text)
                .ok_or_else(|| args.bad("mode", text, "permissions in octal, e.g. 0660"))?,
        ),
    };
    if mode.is_some() && name.as_abstract_name().is_some() {
        return Err(Error::Conflict {
            kind: args.kind,
            why: "mode does not apply to an abstract socket (it has no file)",
        });
    }
    args.finish("mode")?;
    Ok(ServerEndpoint::Unix { name, mode })
}

/// A path, or `@NAME` for the abstract namespace.
fn unix_name(args: &mut Arguments, key: &str, what: &'static str) -> Result<UnixAddress, Error> {
    let text = args.required(key, what)?;
    match text.strip_prefix('@') {
        Some("") => Err(args.bad(key_name(key), text, "a name after @")),
        Some(name) => Ok(UnixAddress::abstract_name(name)),
        None => Ok(UnixAddress::path(text)),
    }
}

fn key_name(key: &str) -> &'static str {
    match key {
        "path" => "path",
        _ => "address",
    }
}

/// Permission bits in octal (`660`, `0660` or `0o660`), at most `7777`.
fn octal_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = u32::from_str_radix(digits, 8).ok()?;
    (!digits.starts_with('+') && mode <= 0o7777).then_some(mode)
}

impl FromStr for ClientEndpoint {
    type Err = ParseEndpointError;

    fn from_str(description: &str) -> Result<ClientEndpoint, Error> {
        let (kind, rest) = kind_and_rest(description)?;
        match kind.as_str() {
            "tcp" => tcp_client(Arguments::new("tcp", rest)?),
            "tls" => tls_client(Arguments::new("tls", rest)?),
            "unix" => unix_client(Arguments::new("unix", rest)?),
            _ if looks_like_host_and_port(description) => Ok(ClientEndpoint::Tcp {
                target: description.parse()?,
                timeout: None,
            }),
            _ => Err(Error::UnknownKind {
                kind,
                expected: CLIENT_KINDS,
            }),
        }
    }
}

/// Whether `description` ends with `:` and digits (a plain `HOST:PORT`, not a typo in the
/// kind of endpoint).
fn looks_like_host_and_port(description: &str) -> bool {
    description
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

fn tcp_client(mut args: Arguments) -> Result<ClientEndpoint, Error> {
    let target = host_and_port(&mut args)?;
    let timeout = timeout(&mut args)?;
    args.finish("host, port, timeout")?;
    Ok(ClientEndpoint::Tcp { target, timeout })
}

fn tls_client(mut args: Arguments) -> Result<ClientEndpoint, Error> {
    let target = host_and_port(&mut args)?;
    let timeout = timeout(&mut args)?;
    let trust_roots = args.option("trustRoots").map(PathBuf::from);
    args.finish("host, port, timeout, trustRoots")?;
    Ok(ClientEndpoint::Tls {
        target,
        timeout,
        trust_roots,
    })
}

fn unix_client(mut args: Arguments) -> Result<ClientEndpoint, Error> {
    let name = unix_name(&mut args, "path", "the socket's path (unix:path=PATH)")?;
    let timeout = timeout(&mut args)?;
    args.finish("path, timeout")?;
    Ok(ClientEndpoint::Unix { name, timeout })
}

/// `host` and `port`, positional or as options: an IP address (IPv6 with or without
/// brackets) or a host name to resolve.
fn host_and_port(args: &mut Arguments) -> Result<Target, Error> {
    let host = args.required("host", "the host (host=HOST)")?;
    let port = args.required("port", "the port (port=PORT)")?;
    let port = connect_port(args.kind, port)?;
    if let Some(ip) = ip_literal(&host) {
        return Ok(Target::Address(SocketAddr::new(ip, port)));
    }
    if !is_host_name(&host) {
        return Err(args.bad("host", host, "a host name or an IP address"));
    }
    Ok(Target::Host(host, port))
}

/// A port to connect to: 0 is not one.
fn connect_port(kind: &'static str, text: String) -> Result<u16, Error> {
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(Error::BadValue {
            kind,
            what: "port",
            value: text,
            expected: "a port number 1-65535",
        }),
    }
}

/// Plausibly a DNS name: not empty, no white space, no `:`, `/` or brackets (the resolver
/// has the last word).
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, ':' | '/' | '[' | ']'))
}

fn timeout(args: &mut Arguments) -> Result<Option<Duration>, Error> {
    let Some(text) = args.option("timeout") else {
        return Ok(None);
    };
    let seconds = text.parse::<f64>().ok().filter(|s| *s > 0.0);
    match seconds.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
        Some(timeout) => Ok(Some(timeout)),
        None => Err(args.bad("timeout", text, "a number of seconds above 0")),
    }
}

impl FromStr for Target {
    type Err = ParseEndpointError;

    /// A plain `HOST:PORT`: `127.0.0.1:8000`, `[::1]:8000` (an address), or
    /// `example.com:443` (a host name, resolved when connecting).
    fn from_str(text: &str) -> Result<Target, Error> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Target::Address(addr));
        }
        const KIND: &str = "HOST:PORT";
        let Some((host, port)) = text.rsplit_once(':') else {
            let what = "the port (HOST:PORT)";
            return Err(Error::Missing { kind: KIND, what });
        };
        let port = connect_port(KIND, port.to_string())?;
        if host.contains(':') && !host.starts_with('[') {
            // `::1:80` could be an address without a port as well.
            let why = "an IPv6 address needs brackets: [ADDRESS]:PORT";
            return Err(Error::Conflict { kind: KIND, why });
        }
        if let Some(ip) = ip_literal(host) {
            return Ok(Target::Address(SocketAddr::new(ip, port)));
        }
        if !is_host_name(host) {
            let expected = "a host name or an IP address";
            return Err(Error::BadValue {
                kind: KIND,
                what: "host",
                value: host.to_string(),
                expected,
            });
        }
        Ok(Target::Host(host.to_string(), port))
    }
}

macro_rules! try_from_text {
    ($($t:ty),*) => {$(
        impl TryFrom<&str> for $t {
            type Error = ParseEndpointError;

            /// Parses the string (see [`FromStr`]).
            fn try_from(text: &str) -> Result<$t, Error> {
                text.parse()
            }
        }

        impl TryFrom<&String> for $t {
            type Error = ParseEndpointError;

            /// Parses the string (see [`FromStr`]).
            fn try_from(text: &String) -> Result<$t, Error> {
                text.parse()
            }
        }

        impl TryFrom<String> for $t {
            type Error = ParseEndpointError;

            /// Parses the string (see [`FromStr`]).
            fn try_from(text: String) -> Result<$t, Error> {
                text.parse()
            }
        }
    )*};
}

try_from_text!(ServerEndpoint, ClientEndpoint, Target);

#[cfg(test)]
mod split_tests {
    use super::*;

    fn arg(s: &str) -> Part {
        Part::Argument(s.to_string())
    }

    fn opt(k: &str, v: &str) -> Part {
        Part::Option(k.to_string(), v.to_string())
    }

    #[test]
    fn colons_separate_and_equals_make_options() {
        let parts = split("tcp:80:interface=127.0.0.1").unwrap();
        assert_eq!(
            parts,
            [arg("tcp"), arg("80"), opt("interface", "127.0.0.1")]
        );
    }

    #[test]
    fn a_backslash_escapes_the_next_character() {
        let parts = split(r"a\:b:k\=ey=v\:al\\ue").unwrap();
        assert_eq!(parts, [arg("a:b"), opt("k=ey", r"v:al\ue")]);
        assert_eq!(split(r"\:=hello").unwrap(), [opt(":", "hello")]);
    }

    #[test]
    fn later_equals_signs_belong_to_the_value() {
        assert_eq!(split("k=a=b").unwrap(), [opt("k", "a=b")]);
    }

    #[test]
    fn brackets_opening_a_value_keep_its_colons() {
        let parts = split("tcp:host=[::1]:port=1:[a:b]").unwrap();
        assert_eq!(
            parts,
            [
                arg("tcp"),
                opt("host", "[::1]"),
                opt("port", "1"),
                arg("[a:b]")
            ]
        );
        assert_eq!(split("a[:b]").unwrap(), [arg("a["), arg("b]")]);
    }

    #[test]
    fn empty_parts_are_kept() {
        assert_eq!(split("tcp:").unwrap(), [arg("tcp"), arg("")]);
        assert_eq!(split("").unwrap(), [arg("")]);
    }

    #[test]
    fn a_trailing_backslash_is_an_error() {
        assert_eq!(split(r"tcp:80\"), Err(Error::TrailingBackslash));
    }
}
