//! The PROXY protocol header (HAProxy's `doc/proxy-protocol.txt`), versions 1 and 2, parsed
//! sans-I/O: bytes in, a header and the bytes it took out, or "not yet", or an error.
//!
//! The parser is strict: a header that is not exactly what the specification allows is an
//! error, never guessed at, since a proxy that sends garbage is misconfigured and the
//! address it claims cannot be trusted.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A version 1 header is at most 107 bytes, its CRLF included (§2.1).
pub const V1_MAX_LENGTH: usize = 107;

/// A version 2 header is 16 bytes, then at most 65535 bytes of addresses and TLVs (§2.2).
pub const V2_MAX_LENGTH: usize = 16 + u16::MAX as usize;

/// The longest header either version allows: what a reader may have to buffer.
pub const MAX_HEADER_LENGTH: usize = V2_MAX_LENGTH;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a PROXY header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The proxy relays a TCP connection from `source` (the original client) to
    /// `destination` (the address the client connected to).
    Proxied {
        /// The original client's address.
        source: SocketAddr,
        /// The address the client reached on the proxy.
        destination: SocketAddr,
    },
    /// The connection's own addresses stand: version 1's `UNKNOWN`, version 2's `LOCAL`
    /// command (the proxy's own health check), or a version 2 `PROXY` whose addresses are
    /// unspecified or of a UNIX socket.
    Local,
}

/// The outcome of [`parse`] on input that is not (yet) an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header, and how many bytes of the input it took; the rest is the
    /// connection's own data.
    Complete(ProxyHeader, usize),
    /// The input is a valid start of a header: read more.
    Partial,
}

/// Why a header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeaderError {
    /// The input starts with neither `PROXY ` nor the version 2 signature.
    NotProxy,
    /// A version 1 header without its CRLF within 107 bytes.
    V1TooLong,
    /// A version 1 header that breaks the grammar; says which part.
    V1Malformed(&'static str),
    /// A version 2 header whose version nibble is not 2.
    V2Version(u8),
    /// A version 2 header with a command other than `LOCAL` (0) or `PROXY` (1).
    V2Command(u8),
    /// A version 2 header with an unknown address family or transport, or a datagram one
    /// (this is a stream server).
    V2Family(u8),
    /// A version 2 header whose length is too short for its addresses.
    V2Length(u16),
}

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyHeaderError::NotProxy => write!(f, "no PROXY protocol header"),
            ProxyHeaderError::V1TooLong => {
                write!(f, "PROXY v1 header without CRLF in {V1_MAX_LENGTH} bytes")
            }
            ProxyHeaderError::V1Malformed(what) => write!(f, "PROXY v1 header: bad {what}"),
            ProxyHeaderError::V2Version(v) => write!(f, "PROXY v2 header: version {v}"),
            ProxyHeaderError::V2Command(c) => write!(f, "PROXY v2 header: command {c}"),
            ProxyHeaderError::V2Family(b) => {
                write!(f, "PROXY v2 header: address family and transport {b:#04x}")
            }
            ProxyHeaderError::V2Length(n) => {
                write!(f, "PROXY v2 header: length {n} too short for its addresses")
            }
        }
    }
}

impl std::error::Error for ProxyHeaderError {}

/// Parses the PROXY header at the start of `input` (either version, told apart by their
/// first bytes). Short input that could still become a header is [`Parsed::Partial`].
pub fn parse(input: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if starts_like(input, V2_SIGNATURE) {
        return if input.len() < V2_SIGNATURE.len() {
            Ok(Parsed::Partial)
        } else {
            parse_v2(input)
        };
    }
    if starts_like(input, V1_PREFIX) {
        return parse_v1(input);
    }
    Err(ProxyHeaderError::NotProxy)
}

/// Whether `input` and `prefix` agree on their common length.
fn starts_like(input: &[u8], prefix: &[u8]) -> bool {
    let n = input.len().min(prefix.len());
    input[..n] == prefix[..n]
}

fn parse_v1(input: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let window = &input[..input.len().min(V1_MAX_LENGTH)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return match input.len() < V1_MAX_LENGTH {
            true => Ok(Parsed::Partial),
            false => Err(ProxyHeaderError::V1TooLong),
        };
    };
    match window.get(cr + 1) {
        None if cr + 1 < V1_MAX_LENGTH => return Ok(Parsed::Partial),
        None => return Err(ProxyHeaderError::V1TooLong),
        Some(b'\n') => {}
        Some(_) => return Err(ProxyHeaderError::V1Malformed("line end (CR without LF)")),
    }
    let line = std::str::from_utf8(&window[V1_PREFIX.len()..cr])
        .map_err(|_| ProxyHeaderError::V1Malformed("characters (not ASCII)"))?;
    Ok(Parsed::Complete(v1_line(line)?, cr + 2))
}

/// The words after `PROXY `: `UNKNOWN[ anything]`, or the protocol, two addresses and two
/// ports, separated by single spaces.
fn v1_line(line: &str) -> Result<ProxyHeader, ProxyHeaderError> {
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(ProxyHeader::Local);
    }
    let words: Vec<&str> = line.split(' ').collect();
    let [protocol, source, destination, source_port, destination_port] = words[..] else {
        return Err(ProxyHeaderError::V1Malformed("number of fields"));
    };
    let (source, destination) = match protocol {
        "TCP4" => (v1_ipv4(source)?, v1_ipv4(destination)?),
        "TCP6" => (v1_ipv6(source)?, v1_ipv6(destination)?),
        _ => {
            return Err(ProxyHeaderError::V1Malformed(
                "protocol (not TCP4, TCP6, UNKNOWN)",
            ))
        }
    };
    Ok(ProxyHeader::Proxied {
        source: SocketAddr::new(source, v1_port(source_port)?),
        destination: SocketAddr::new(destination, v1_port(destination_port)?),
    })
}

fn v1_ipv4(text: &str) -> Result<IpAddr, ProxyHeaderError> {
    text.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| ProxyHeaderError::V1Malformed("IPv4 address"))
}

fn v1_ipv6(text: &str) -> Result<IpAddr, ProxyHeaderError> {
    text.parse::<Ipv6Addr>()
        .map(IpAddr::V6)
        .map_err(|_| ProxyHeaderError::V1Malformed("IPv6 address"))
}

/// A port in decimal, 0-65535, without a sign or leading zeros (§2.1).
fn v1_port(text: &str) -> Result<u16, ProxyHeaderError> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    match text.parse::<u16>() {
        Ok(port) if digits_only && !leading_zero => Ok(port),
        _ => Err(ProxyHeaderError::V1Malformed("port")),
    }
}

fn parse_v2(input: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if input.len() < 16 {
        // The version and command are checked as soon as they arrive.
        if let Some(&version_command) = input.get(12) {
            v2_command(version_command)?;
        }
        return Ok(Parsed::Partial);
    }
    let proxied = v2_command(input[12])?;
    let family = input[13];
    let length = u16::from_be_bytes([input[14], input[15]]);
    let total = 16 + usize::from(length);
    if input.len() < total {
        return Ok(Parsed::Partial);
    }
    let body = &input[16..total];
    let header = match proxied {
        // §2.2: with LOCAL the receiver ignores the address block (it may hold anything).
        false => ProxyHeader::Local,
        true => v2_addresses(family, length, body)?,
    };
    Ok(Parsed::Complete(header, total))
}

/// Whether the command is `PROXY` (else `LOCAL`), after checking the version.
fn v2_command(version_command: u8) -> Result<bool, ProxyHeaderError> {
    match (version_command >> 4, version_command & 0x0f) {
        (2, 0) => Ok(false),
        (2, 1) => Ok(true),
        (2, command) => Err(ProxyHeaderError::V2Command(command)),
        (version, _) => Err(ProxyHeaderError::V2Version(version)),
    }
}

/// The addresses of a `PROXY` command; TLVs after them are skipped (§2.2.7).
fn v2_addresses(family: u8, length: u16, body: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    const UNSPEC: u8 = 0x00;
    const TCP4: u8 = 0x11;
    const TCP6: u8 = 0x21;
    const UNIX_STREAM: u8 = 0x31;
    let need = match family {
        UNSPEC | UNIX_STREAM => 0,
        TCP4 => 12,
        TCP6 => 36,
        _ => return Err(ProxyHeaderError::V2Family(family)),
    };
    if body.len() < need || (family == UNIX_STREAM && body.len() < 216) {
        return Err(ProxyHeaderError::V2Length(length));
    }
    let (source, destination, ports) = match family {
        TCP4 => (ipv4(&body[0..4]), ipv4(&body[4..8]), &body[8..12]),
        TCP6 => (ipv6(&body[0..16]), ipv6(&body[16..32]), &body[32..36]),
        _ => return Ok(ProxyHeader::Local),
    };
    Ok(ProxyHeader::Proxied {
        source: SocketAddr::new(source, u16::from_be_bytes([ports[0], ports[1]])),
        destination: SocketAddr::new(destination, u16::from_be_bytes([ports[2], ports[3]])),
    })
}

fn ipv4(bytes: &[u8]) -> IpAddr {
    let mut octets = [0; 4];
    octets.copy_from_slice(bytes);
    IpAddr::from(octets)
}

fn ipv6(bytes: &[u8]) -> IpAddr {
    let mut octets = [0; 16];
    octets.copy_from_slice(bytes);
    IpAddr::from(octets)
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
