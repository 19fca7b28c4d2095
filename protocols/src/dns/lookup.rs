//! What a lookup asks for and what it gets: the address family, the result and its error,
//! and the join of the A and AAAA halves of a lookup for both families.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use torsion_reactor::Reactor;

use super::{NameError, Rcode};

/// Why a lookup failed. Cloneable: one answer goes to every lookup that waited for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ResolveError {
    /// The host is not a valid domain name (a local fault: nothing was asked).
    InvalidName(NameError),
    /// The name does not exist (NXDOMAIN).
    NotFound,
    /// The name exists but has no address of the family asked for.
    NoAddresses,
    /// No nameserver answered, after every attempt.
    TimedOut,
    /// The nameservers answered with an error (SERVFAIL, REFUSED, ...): this one, the last.
    ServerFailure(Rcode),
    /// The configuration names no nameserver.
    NoNameservers,
    /// A query could not be sent (no socket, no route, refused, a TCP failure); the last
    /// such error when every attempt failed.
    Io(Arc<io::Error>),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::InvalidName(e) => write!(f, "invalid host name: {e}"),
            ResolveError::NotFound => f.write_str("no such host (NXDOMAIN)"),
            ResolveError::NoAddresses => f.write_str("the host has no address of that family"),
            ResolveError::TimedOut => f.write_str("no nameserver answered in time"),
            ResolveError::ServerFailure(rcode) => write!(f, "the nameserver answered {rcode}"),
            ResolveError::NoNameservers => f.write_str("no nameserver configured"),
            ResolveError::Io(e) => write!(f, "cannot query the nameserver: {e}"),
        }
    }
}

impl Error for ResolveError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ResolveError::InvalidName(e) => Some(e),
            ResolveError::Io(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<ResolveError> for io::Error {
    /// An `io::Error` of the matching kind (`NotFound`, `TimedOut`, `InvalidInput`, ...)
    /// carrying the `ResolveError`, as [`ConnectError::Resolve`](torsion_reactor::ConnectError::Resolve) wants it.
    fn from(error: ResolveError) -> io::Error {
        let kind = match &error {
            ResolveError::InvalidName(_) => io::ErrorKind::InvalidInput,
            ResolveError::NotFound | ResolveError::NoAddresses => io::ErrorKind::NotFound,
            ResolveError::TimedOut => io::ErrorKind::TimedOut,
            ResolveError::Io(e) => e.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// What a lookup hands its callback: the addresses, or why there are none.
pub type LookupResult = Result<Vec<IpAddr>, ResolveError>;

/// Which addresses a lookup wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (A records) then IPv6 (AAAA records), both asked at once.
    Any,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl AddressFamily {
    pub(super) fn admits(self, address: &IpAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::Ipv4 => address.is_ipv4(),
            AddressFamily::Ipv6 => address.is_ipv6(),
        }
    }
}

/// A lookup's callback.
pub(super) type Callback = Box<dyn FnOnce(&mut Reactor, LookupResult)>;

/// The A and AAAA halves of an [`AddressFamily::Any`] lookup.
pub(super) struct Join {
    results: [Option<LookupResult>; 2],
    callback: Option<Callback>,
}

impl Join {
    pub(super) fn new(callback: Callback) -> Join {
        Join {
            results: [None, None],
            callback: Some(callback),
        }
    }

    /// Records half `i`; once both are in, the callback and the joined result.
    pub(super) fn complete(
        &mut self,
        i: usize,
        result: LookupResult,
    ) -> Option<(Callback, LookupResult)> {
        self.results[i] = Some(result);
        let [Some(a), Some(aaaa)] = &self.results else {
            return None;
        };
        let joined = join_results(a, aaaa);
        self.callback.take().map(|callback| (callback, joined))
    }
}

/// IPv4 addresses then IPv6 ones; with none, the more telling failure: a name that does not
/// exist, then a real failure, then "no address".
fn join_results(a: &LookupResult, aaaa: &LookupResult) -> LookupResult {
    let addresses: Vec<IpAddr> = [a, aaaa]
        .into_iter()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .copied()
        .collect();
    if !addresses.is_empty() {
        return Ok(addresses);
    }
    let errors = [a, aaaa].map(|r| r.as_ref().err());
    let pick = |f: fn(&ResolveError) -> bool| errors.iter().flatten().find(|e| f(e)).cloned();
    let error = pick(|e| matches!(e, ResolveError::NotFound))
        .or_else(|| pick(|e| !matches!(e, ResolveError::NoAddresses)))
        .cloned()
        .unwrap_or(ResolveError::NoAddresses);
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_lookups_prefer_addresses_then_the_telling_failure() {
        let v4: IpAddr = [192, 0, 2, 1].into();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let ok = |a| Ok(vec![a]);
        assert_eq!(join_results(&ok(v4), &ok(v6)).unwrap(), [v4, v6]);
        assert_eq!(
            join_results(&ok(v4), &Err(ResolveError::TimedOut)).unwrap(),
            [v4]
        );
        let nodata = Err(ResolveError::NoAddresses);
        assert!(matches!(
            join_results(&nodata, &Err(ResolveError::NotFound)),
            Err(ResolveError::NotFound)
        ));
        assert!(matches!(
            join_results(&nodata, &Err(ResolveError::TimedOut)),
            Err(ResolveError::TimedOut)
        ));
        assert!(matches!(
            join_results(&nodata, &nodata),
            Err(ResolveError::NoAddresses)
        ));
    }

    #[test]
    fn resolve_errors_become_io_errors_of_the_right_kind() {
        let e: io::Error = ResolveError::NotFound.into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.get_ref().unwrap().is::<ResolveError>());
        let e: io::Error = ResolveError::TimedOut.into();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
