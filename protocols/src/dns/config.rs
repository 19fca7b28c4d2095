//! What the resolver asks and where: `/etc/resolv.conf` (nameservers, `options timeout:` and
//! `attempts:`) and `/etc/hosts`, each parsed from text so tests never read the real files.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use super::Name;

/// How long to wait for a server's reply before asking again: 5 s, glibc's `RES_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many rounds over the nameservers before giving up: 2, glibc's `RES_DFLRETRY`.
pub const DEFAULT_ATTEMPTS: u32 = 2;

/// Nameservers read from resolv.conf; later ones are ignored, as glibc's `MAXNS` does.
pub const MAX_NAMESERVERS: usize = 3;

/// Cached answers kept at most; past it expired entries go first, then the soonest to expire.
pub const DEFAULT_CACHE_SIZE: usize = 1024;

/// No answer is cached longer than a day, whatever TTL it claims.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// glibc's caps on `options timeout:` (`RES_MAXRETRANS`) and `attempts:` (`RES_MAXRETRY`).
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// The resolver's settings. [`system`](ResolverConfig::system) reads the machine's;
/// [`new`](ResolverConfig::new) names the servers directly (what tests do).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// The servers asked, in order, each on its own port (53 from resolv.conf).
    pub nameservers: Vec<SocketAddr>,
    /// How long one query waits for its reply before the next attempt.
    pub timeout: Duration,
    /// Rounds over the nameservers: a lookup sends at most `attempts × nameservers` queries
    /// before failing with [`ResolveError::TimedOut`](super::ResolveError::TimedOut).
    pub attempts: u32,
    /// Names answered without asking, looked up first.
    pub hosts: Hosts,
    /// The most answers cached.
    pub cache_size: usize,
    /// The longest an answer is cached.
    pub max_ttl: Duration,
}

impl ResolverConfig {
    /// Asks `nameservers`, with the default timeout and attempts and no hosts file.
    pub fn new(nameservers: Vec<SocketAddr>) -> ResolverConfig {
        ResolverConfig {
            nameservers,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            hosts: Hosts::default(),
            cache_size: DEFAULT_CACHE_SIZE,
            max_ttl: DEFAULT_MAX_TTL,
        }
    }

    /// The settings of a resolv.conf file's text: `nameserver` lines (at most three; an IPv6
    /// address may carry a numeric zone, `fe80::1%2`), and `options timeout:N attempts:N`
    /// (capped at 30 s and 5 as glibc does). Other keywords (`search`, `domain`, ...) and
    /// malformed lines are ignored. With no nameserver, `127.0.0.1:53`, as glibc.
    pub fn from_resolv_conf(text: &str) -> ResolverConfig {
        let mut config = ResolverConfig::new(Vec::new());
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    let server = words.next().and_then(parse_nameserver);
                    if let Some(server) = server {
                        if config.nameservers.len() < MAX_NAMESERVERS {
                            config.nameservers.push(server);
                        }
                    }
                }
                Some("options") => words.for_each(|option| config.apply_option(option)),
                _ => {}
            }
        }
        if config.nameservers.is_empty() {
            config
                .nameservers
                .push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        config
    }

    /// The machine's settings: `/etc/resolv.conf` (as
    /// [`from_resolv_conf`](ResolverConfig::from_resolv_conf); a missing file means the
    /// defaults) and `/etc/hosts` (a missing file means no hosts).
    pub fn system() -> io::Result<ResolverConfig> {
        let text = match fs::read_to_string("/etc/resolv.conf") {
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            other => other?,
        };
        let mut config = ResolverConfig::from_resolv_conf(&text);
        config.hosts = Hosts::system()?;
        Ok(config)
    }

    /// These settings with `hosts` answered first.
    pub fn with_hosts(mut self, hosts: Hosts) -> ResolverConfig {
        self.hosts = hosts;
        self
    }

    /// These settings with another per-query timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> ResolverConfig {
        self.timeout = timeout;
        self
    }

    /// These settings with another number of rounds over the servers (at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> ResolverConfig {
        self.attempts = attempts.max(1);
        self
    }

    fn apply_option(&mut self, option: &str) {
        if let Some(secs) = option.strip_prefix("timeout:") {
            if let Ok(secs) = secs.parse::<u64>() {
                self.timeout = Duration::from_secs(secs.clamp(1, MAX_TIMEOUT_SECS));
            }
        } else if let Some(n) = option.strip_prefix("attempts:") {
            if let Ok(n) = n.parse::<u32>() {
                self.attempts = n.clamp(1, MAX_ATTEMPTS);
            }
        }
    }
}

/// A `nameserver` address: IPv4, or IPv6 with an optional numeric zone; port 53.
fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    let (ip, zone) = text.split_once('%')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let zone: u32 = zone.parse().ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, zone)))
}

/// A hosts file: names and the addresses they stand for, answered before any query.
///
/// ```
/// use torsion_protocols::dns::{Hosts, Name};
///
/// let hosts = Hosts::parse("127.0.0.1 localhost\n::1 localhost ip6-localhost # loopback\n");
/// let localhost = Name::from_ascii("LOCALHOST").unwrap();
/// assert_eq!(hosts.lookup(&localhost).len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    entries: HashMap<Name, Vec<IpAddr>>,
}

impl Hosts {
    /// Parses the text of a hosts file: on each line an address, then the names for it
    /// (canonical name and aliases), `#` starting a comment. Lines whose address does not
    /// parse (or carries an interface zone) are skipped, and so are names that are not valid
    /// domain names. A name on several lines gets all their addresses, in file order.
    pub fn parse(text: &str) -> Hosts {
        let mut hosts = Hosts::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(Ok(address)) = words.next().map(str::parse::<IpAddr>) else {
                continue;
            };
            for name in words.filter_map(|w| Name::from_ascii(w).ok()) {
                hosts.insert(name, address);
            }
        }
        hosts
    }

    /// Reads `/etc/hosts`; a missing file is an empty one.
    pub fn system() -> io::Result<Hosts> {
        match fs::read_to_string("/etc/hosts") {
            Ok(text) => Ok(Hosts::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Hosts::default()),
            Err(e) => Err(e),
        }
    }

    /// Adds `address` to `name`'s (once).
    pub fn insert(&mut self, name: Name, address: IpAddr) {
        let addresses = self.entries.entry(name).or_default();
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }

    /// The addresses of `name` (ignoring case), in file order; empty if it has none.
    pub fn lookup(&self, name: &Name) -> &[IpAddr] {
        self.entries.get(name).map_or(&[], Vec::as_slice)
    }

    /// How many names have addresses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no name has an address.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_gives_servers_timeout_and_attempts() {
        let config = ResolverConfig::from_resolv_conf(
            "# generated\n\
             ; also a comment\n\
             search example.com corp.example\n\
             nameserver 192.0.2.53\n\
             nameserver   2001:db8::53  \n\
             nameserver fe80::1%2\n\
             nameserver 192.0.2.54\n\
             options ndots:2 timeout:3 rotate attempts:4\n",
        );
        let expected: Vec<SocketAddr> = vec![
            "192.0.2.53:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 2)),
        ];
        assert_eq!(config.nameservers, expected);
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.attempts, 4);
    }

    #[test]
    fn resolv_conf_defaults_and_caps_as_glibc() {
        let config = ResolverConfig::from_resolv_conf("nameserver not-an-address\nnameserver\n");
        assert_eq!(config.nameservers, ["127.0.0.1:53".parse().unwrap()]);
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.attempts, DEFAULT_ATTEMPTS);
        let config = ResolverConfig::from_resolv_conf("options timeout:99 attempts:0\n");
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.attempts, 1);
        let config = ResolverConfig::from_resolv_conf("options timeout:x attempts:-1");
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.attempts, DEFAULT_ATTEMPTS);
    }

    #[test]
    fn hosts_lines_give_every_name_its_addresses() {
        let hosts = Hosts::parse(
            "127.0.0.1\tlocalhost\n\
             127.0.1.1 box.example.org box\n\
             # 10.0.0.1 commented.example\n\
             ::1 localhost ip6-localhost ip6-loopback # trailing comment\n\
             fe80::1%eth0 zoned\n\
             not-an-ip bogus\n\
             10.0.0.2 db.example.org bad..name\n\
             10.0.0.3 DB.Example.org\n\
             \n\
             192.0.2.9\n",
        );
        let name = |n| Name::from_ascii(n).unwrap();
        let ips =
            |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|a| a.parse().unwrap()).collect() };
        assert_eq!(hosts.lookup(&name("localhost")), ips(&["127.0.0.1", "::1"]));
        assert_eq!(hosts.lookup(&name("box")), ips(&["127.0.1.1"]));
        assert_eq!(hosts.lookup(&name("box.example.org")), ips(&["127.0.1.1"]));
        assert_eq!(hosts.lookup(&name("ip6-loopback")), ips(&["::1"]));
        assert_eq!(
            hosts.lookup(&name("db.example.org")),
            ips(&["10.0.0.2", "10.0.0.3"])
        );
        assert!(hosts.lookup(&name("commented.example")).is_empty());
        assert!(hosts.lookup(&name("zoned")).is_empty());
        assert!(hosts.lookup(&name("bogus")).is_empty());
        assert_eq!(hosts.len(), 6);
    }
}
