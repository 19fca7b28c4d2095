//! Which datagrams a service that answers every datagram (echo, chargen, daytime) must not
//! answer, sans-I/O.
//!
//! UDP carries no proof of its source address: anyone can send a datagram that claims to come
//! from somewhere else. An echo server that answers a datagram "from" its own address sends
//! the echo to itself, receives it, answers it again, forever: one spoofed datagram, one core
//! busy. The same happens between two such services (an echo "from" a chargen port), and a
//! reply to a multicast source goes to a whole group. inetd guards its built-in services the
//! same way, by the source's port.
//!
//! [`refusal`] is the rule. It refuses a datagram whose source
//! - has our own port (whatever its IP: with a wildcard bind every local address is ours, and
//!   a peer legitimately sending from this very port number is rare enough to refuse);
//! - has port 0 (no socket can receive there; only a forged datagram claims it);
//! - is a well-known port of a service that also answers every datagram: 7 echo, 13 daytime,
//!   17 qotd, 19 chargen, 37 time;
//! - has an unspecified, broadcast or multicast IP (not a real sender; a reply there reaches
//!   many hosts).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Well-known ports of UDP services that answer every datagram: a datagram from one of them
/// is (or would start) a loop between two such services.
pub const REFLECTING_PORTS: [u16; 5] = [7, 13, 17, 19, 37];

/// Why a datagram is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The source has our own port: answering might answer ourselves.
    OwnPort,
    /// The source port is 0, which no socket sends from.
    PortZero,
    /// The source is another service that answers every datagram.
    ReflectingPort(u16),
    /// The source IP is unspecified, broadcast or multicast.
    NotAUnicastSource,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::OwnPort => write!(f, "the source has our own port"),
            Refusal::PortZero => write!(f, "the source port is 0"),
            Refusal::ReflectingPort(port) => {
                write!(
                    f,
                    "the source port {port} is a service that answers every datagram"
                )
            }
            Refusal::NotAUnicastSource => write!(f, "the source is not a unicast address"),
        }
    }
}

/// Whether a service bound to `local` must leave a datagram from `from` unanswered, and why
/// (the rule is in the [module docs](self)). `None`: answering is safe.
///
/// ```
/// use torsion_protocols::reflection::{refusal, Refusal};
/// let local = "127.0.0.1:9000".parse().unwrap();
/// assert_eq!(refusal("127.0.0.1:9000".parse().unwrap(), local), Some(Refusal::OwnPort));
/// assert_eq!(refusal("127.0.0.1:45000".parse().unwrap(), local), None);
/// ```
pub fn refusal(from: SocketAddr, local: SocketAddr) -> Option<Refusal> {
    let port = from.port();
    if port == local.port() {
        return Some(Refusal::OwnPort);
    }
    if port == 0 {
        return Some(Refusal::PortZero);
    }
    if REFLECTING_PORTS.contains(&port) {
        return Some(Refusal::ReflectingPort(port));
    }
    if !is_unicast(from.ip()) {
        return Some(Refusal::NotAUnicastSource);
    }
    None
}

fn is_unicast(ip: IpAddr) -> bool {
    // An IPv4 source seen on an IPv6 socket arrives mapped (::ffff:a.b.c.d).
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(from: &str, local: &str) -> Option<Refusal> {
        refusal(from.parse().unwrap(), local.parse().unwrap())
    }

    #[test]
    fn our_own_address_and_port_are_refused_whatever_the_bind() {
        assert_eq!(
            check("127.0.0.1:9000", "127.0.0.1:9000"),
            Some(Refusal::OwnPort)
        );
        assert_eq!(
            check("127.0.0.1:9000", "0.0.0.0:9000"),
            Some(Refusal::OwnPort)
        );
        assert_eq!(
            check("10.1.2.3:9000", "0.0.0.0:9000"),
            Some(Refusal::OwnPort)
        );
        assert_eq!(
            check("[::ffff:127.0.0.1]:9000", "[::]:9000"),
            Some(Refusal::OwnPort)
        );
    }

    #[test]
    fn port_zero_and_the_reflecting_services_are_refused() {
        assert_eq!(
            check("192.0.2.1:0", "0.0.0.0:9000"),
            Some(Refusal::PortZero)
        );
        for port in [7, 13, 17, 19, 37] {
            let from = format!("192.0.2.1:{port}");
            assert_eq!(
                check(&from, "0.0.0.0:9000"),
                Some(Refusal::ReflectingPort(port))
            );
        }
    }

    #[test]
    fn sources_that_are_not_one_host_are_refused() {
        for from in [
            "0.0.0.0:5000",
            "255.255.255.255:5000",
            "224.0.0.1:5000",
            "[ff02::1]:5000",
            "[::ffff:239.1.2.3]:5000",
            "[::]:5000",
        ] {
            assert_eq!(
                check(from, "0.0.0.0:9000"),
                Some(Refusal::NotAUnicastSource),
                "{from}"
            );
        }
    }

    #[test]
    fn ordinary_clients_are_answered() {
        for from in [
            "127.0.0.1:45000",
            "192.0.2.1:53",
            "[::1]:45000",
            "[::ffff:10.0.0.1]:9001",
        ] {
            assert_eq!(check(from, "0.0.0.0:9000"), None, "{from}");
        }
    }
}
