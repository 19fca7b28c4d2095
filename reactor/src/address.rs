//! The addresses a factory, a protocol and a datagram socket see: [`Address`], a TCP/UDP
//! socket address or a [`UnixAddress`] (a filesystem path, a name in Linux's abstract
//! namespace, or an unnamed peer).

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::net::SocketAddr as StdUnixAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where a connection or a datagram comes from or goes to: an internet socket address (TCP
/// or UDP), or a UNIX domain socket's address.
///
/// TCP code keeps working with `SocketAddr`: `Address` converts from it
/// (`Address::from(addr)`, `addr.into()`) and gives it back with [`as_tcp`](Address::as_tcp).
///
/// ```
/// use torsion_reactor::{Address, UnixAddress};
///
/// let tcp: Address = "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap().into();
/// assert_eq!(tcp.as_tcp().map(|a| a.port()), Some(8080));
/// let unix = Address::from(UnixAddress::path("/run/app.sock"));
/// assert_eq!(unix.to_string(), "/run/app.sock");
/// assert!(unix.as_tcp().is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// An internet socket address (IPv4 or IPv6, and a port).
    Tcp(SocketAddr),
    /// A UNIX domain socket's address.
    Unix(UnixAddress),
}

impl Address {
    /// The internet socket address, if this is one.
    pub fn as_tcp(&self) -> Option<SocketAddr> {
        match self {
            Address::Tcp(addr) => Some(*addr),
            Address::Unix(_) => None,
        }
    }

    /// The UNIX domain socket address, if this is one.
    pub fn as_unix(&self) -> Option<&UnixAddress> {
        match self {
            Address::Unix(addr) => Some(addr),
            Address::Tcp(_) => None,
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address::Tcp(addr)
    }
}

impl From<&Address> for Address {
    /// A copy: so that `cx.send_to(data, &from)` answers a sender and keeps `from`.
    fn from(addr: &Address) -> Address {
        addr.clone()
    }
}

impl From<UnixAddress> for Address {
    fn from(addr: UnixAddress) -> Address {
        Address::Unix(addr)
    }
}

impl PartialEq<SocketAddr> for Address {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.as_tcp() == Some(*other)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(addr) => write!(f, "{addr}"),
        }
    }
}

/// A UNIX domain socket's address: a filesystem path, a name in Linux's abstract namespace
/// (no file; gone when the last socket bound to it closes), or unnamed (a client socket that
/// did not bind, as most do).
///
/// Parsed from a string, a leading `@` means an abstract name, and anything else is a path:
///
/// ```
/// use torsion_reactor::UnixAddress;
///
/// let path: UnixAddress = "/run/app.sock".parse().unwrap();
/// assert_eq!(path, UnixAddress::path("/run/app.sock"));
/// let name: UnixAddress = "@app".parse().unwrap();
/// assert_eq!(name, UnixAddress::abstract_name("app"));
/// assert_eq!(name.to_string(), "@app");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UnixAddress(Kind);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    Path(PathBuf),
    Abstract(Vec<u8>),
    Unnamed,
}

impl UnixAddress {
    /// A socket file at `path`.
    pub fn path(path: impl Into<PathBuf>) -> UnixAddress {
        UnixAddress(Kind::Path(path.into()))
    }

    /// `name` in Linux's abstract namespace (without the leading NUL byte the kernel uses).
    pub fn abstract_name(name: impl AsRef<[u8]>) -> UnixAddress {
        UnixAddress(Kind::Abstract(name.as_ref().to_vec()))
    }

    /// The address of a socket that has none (a client that did not bind).
    pub fn unnamed() -> UnixAddress {
        UnixAddress(Kind::Unnamed)
    }

    /// The filesystem path, if this address is one.
    pub fn as_path(&self) -> Option<&Path> {
        match &self.0 {
            Kind::Path(path) => Some(path),
            _ => None,
        }
    }

    /// The abstract name, if this address is one.
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        match &self.0 {
            Kind::Abstract(name) => Some(name),
            _ => None,
        }
    }

    /// Whether this is an unnamed socket's address.
    pub fn is_unnamed(&self) -> bool {
        self.0 == Kind::Unnamed
    }

    /// The address as the standard library's type, to bind or connect with.
    pub(crate) fn to_std(&self) -> std::io::Result<StdUnixAddr> {
        match &self.0 {
            Kind::Path(path) => StdUnixAddr::from_pathname(path),
            Kind::Abstract(name) => abstract_addr(name),
            Kind::Unnamed => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an unnamed UNIX socket address cannot be bound or connected to",
            )),
        }
    }

    /// The address the standard library reports.
    pub(crate) fn from_std(addr: &StdUnixAddr) -> UnixAddress {
        if let Some(path) = addr.as_pathname() {
            return UnixAddress::path(path);
        }
        match abstract_name_of(addr) {
            Some(name) => UnixAddress::abstract_name(name),
            None => UnixAddress::unnamed(),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> std::io::Result<StdUnixAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    StdUnixAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> std::io::Result<StdUnixAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract UNIX socket names exist only on Linux",
    ))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_name_of(addr: &StdUnixAddr) -> Option<&[u8]> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    addr.as_abstract_name()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_name_of(_addr: &StdUnixAddr) -> Option<&[u8]> {
    None
}

/// Why a string is not a [`UnixAddress`]: it is empty (neither a path nor a name).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseUnixAddressError;

impl fmt::Display for ParseUnixAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an empty UNIX socket address (give a path, or @name for an abstract name)")
    }
}

impl std::error::Error for ParseUnixAddressError {}

impl FromStr for UnixAddress {
    type Err = ParseUnixAddressError;

    /// `@name` is an abstract name; anything else non-empty is a path.
    fn from_str(s: &str) -> Result<UnixAddress, ParseUnixAddressError> {
        match s.strip_prefix('@') {
            _ if s.is_empty() => Err(ParseUnixAddressError),
            Some(name) => Ok(UnixAddress::abstract_name(name)),
            None => Ok(UnixAddress::path(s)),
        }
    }
}

impl fmt::Display for UnixAddress {
    /// A path as it is (lossily, if not UTF-8), an abstract name as `@name` (bytes that are
    /// not printable ASCII escaped), an unnamed socket as `(unnamed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Path(path) => write!(f, "{}", path.display()),
            Kind::Abstract(name) => write!(f, "@{}", name.escape_ascii()),
            Kind::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

impl fmt::Debug for UnixAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixAddress({self})")
    }
}

impl From<&Path> for UnixAddress {
    fn from(path: &Path) -> UnixAddress {
        UnixAddress::path(path)
    }
}

impl From<PathBuf> for UnixAddress {
    fn from(path: PathBuf) -> UnixAddress {
        UnixAddress::path(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_at_sign_means_an_abstract_name_and_anything_else_a_path() {
        let name: UnixAddress = "@torsion test".parse().unwrap();
        assert_eq!(name.as_abstract_name(), Some(&b"torsion test"[..]));
        let path: UnixAddress = "relative/app.sock".parse().unwrap();
        assert_eq!(path.as_path(), Some(Path::new("relative/app.sock")));
        assert_eq!("".parse::<UnixAddress>(), Err(ParseUnixAddressError));
        // A lone `@` is the empty abstract name, which Linux accepts.
        assert_eq!(
            "@".parse::<UnixAddress>(),
            Ok(UnixAddress::abstract_name(""))
        );
    }

    #[test]
    fn addresses_display_as_they_are_written() {
        assert_eq!(UnixAddress::path("/tmp/a.sock").to_string(), "/tmp/a.sock");
        assert_eq!(UnixAddress::abstract_name(b"a\0b").to_string(), "@a\\x00b");
        assert_eq!(UnixAddress::unnamed().to_string(), "(unnamed)");
        let tcp = Address::from(SocketAddr::from(([127, 0, 0, 1], 80)));
        assert_eq!(tcp.to_string(), "127.0.0.1:80");
    }

    #[test]
    fn a_tcp_address_compares_with_its_socket_address() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 80));
        assert_eq!(Address::from(addr), addr);
        assert_ne!(Address::from(UnixAddress::path("/x")), addr);
        assert_eq!(Address::from(addr).as_unix(), None);
    }

    #[test]
    fn the_standard_librarys_addresses_convert_both_ways() {
        for addr in [
            UnixAddress::path("/tmp/x.sock"),
            UnixAddress::abstract_name("torsion-x"),
        ] {
            assert_eq!(UnixAddress::from_std(&addr.to_std().unwrap()), addr);
        }
        assert!(UnixAddress::unnamed().to_std().is_err());
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let unnamed = UnixAddress::from_std(&a.local_addr().unwrap());
        assert!(unnamed.is_unnamed());
    }

    #[test]
    fn a_path_too_long_for_the_kernel_is_an_error_not_a_truncation() {
        let long = UnixAddress::path("/".repeat(200));
        assert!(long.to_std().is_err());
    }
}
