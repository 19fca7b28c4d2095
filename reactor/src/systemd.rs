//! Listening sockets passed by systemd (socket activation, `sd_listen_fds(3)`): the service
//! manager binds them and starts the server with them open from descriptor 3 on, saying so
//! in `LISTEN_PID` (the process they are for), `LISTEN_FDS` (how many) and `LISTEN_FDNAMES`
//! (their names, `:`-separated, from `FileDescriptorName=`).
//!
//! Which descriptor an endpoint means is worked out from the environment purely
//! ([`passed_index`]); the descriptor itself is taken once per process, checked to be a
//! stream socket of the family asked for (the `listenfd` crate does the `unsafe` part, since
//! this crate forbids it).

use std::io;
use std::sync::{Mutex, OnceLock};

use listenfd::ListenFd;

use crate::endpoint::{SystemdDomain, SystemdSocket};
use crate::listeners::ListenSocket;

/// What the environment says, read once.
pub(crate) struct Passed<'a> {
    pub(crate) listen_pid: Option<&'a str>,
    pub(crate) listen_fds: Option<&'a str>,
    pub(crate) listen_fdnames: Option<&'a str>,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// The index (from descriptor 3) of `socket` among the sockets `passed` to process `pid`.
pub(crate) fn passed_index(passed: &Passed, pid: u32, socket: &SystemdSocket) -> io::Result<usize> {
    let Some(fds) = passed.listen_fds else {
        return Err(invalid(
            "LISTEN_FDS is not set: no sockets were passed (not socket-activated)".into(),
        ));
    };
    match passed.listen_pid {
        Some(text) if text.parse::<u32>().ok() == Some(pid) => {}
        Some(text) => {
            return Err(invalid(format!(
                "LISTEN_PID is {text:?}, not this process ({pid}): the sockets are another's"
            )))
        }
        None => return Err(invalid("LISTEN_PID is not set".into())),
    }
    let count = fds
        .parse::<usize>()
        .map_err(|_| invalid(format!("LISTEN_FDS is {fds:?}, not a number")))?;
    let index = match socket {
        SystemdSocket::Index(index) => *index,
        SystemdSocket::Name(name) => named_index(passed.listen_fdnames, name)?,
    };
    if index >= count {
        return Err(invalid(format!(
            "index {index}, but LISTEN_FDS={count} passes {count} socket(s)"
        )));
    }
    Ok(index)
}

fn named_index(names: Option<&str>, name: &str) -> io::Result<usize> {
    let Some(names) = names else {
        return Err(invalid(format!(
            "no socket named {name:?}: LISTEN_FDNAMES is not set"
        )));
    };
    names.split(':').position(|n| n == name).ok_or_else(|| {
        invalid(format!(
            "no socket named {name:?} in LISTEN_FDNAMES={names}"
        ))
    })
}

/// The descriptors passed to this process, each taken at most once.
fn passed_fds() -> &'static Mutex<ListenFd> {
    static PASSED: OnceLock<Mutex<ListenFd>> = OnceLock::new();
    PASSED.get_or_init(|| Mutex::new(ListenFd::from_env()))
}

/// Takes the listening socket `socket` of `domain` passed by systemd, non-blocking.
pub(crate) fn take(domain: SystemdDomain, socket: &SystemdSocket) -> io::Result<ListenSocket> {
    let (pid, fds, names) = (
        std::env::var("LISTEN_PID").ok(),
        std::env::var("LISTEN_FDS").ok(),
        std::env::var("LISTEN_FDNAMES").ok(),
    );
    let passed = Passed {
        listen_pid: pid.as_deref(),
        listen_fds: fds.as_deref(),
        listen_fdnames: names.as_deref(),
    };
    let index = passed_index(&passed, std::process::id(), socket)?;
    let mut fds = passed_fds().lock().unwrap_or_else(|e| e.into_inner());
    let taken = || invalid(format!("the socket at index {index} was taken already"));
    match domain {
        SystemdDomain::Inet | SystemdDomain::Inet6 => {
            let listener = fds.take_tcp_listener(index)?.ok_or_else(taken)?;
            let ipv6 = listener.local_addr()?.is_ipv6();
            if ipv6 != (domain == SystemdDomain::Inet6) {
                let family = if ipv6 { "IPv6" } else { "IPv4" };
                return Err(invalid(format!(
                    "the socket at index {index} is {family}, not domain={domain}"
                )));
            }
            listener.set_nonblocking(true)?;
            Ok(ListenSocket::Tcp(mio::net::TcpListener::from_std(listener)))
        }
        SystemdDomain::Unix => {
            let listener = fds.take_unix_listener(index)?.ok_or_else(taken)?;
            listener.set_nonblocking(true)?;
            Ok(ListenSocket::Unix(mio::net::UnixListener::from_std(
                listener,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(
        pid: Option<&str>,
        fds: Option<&str>,
        names: Option<&str>,
        socket: SystemdSocket,
    ) -> Result<usize, String> {
        let passed = Passed {
            listen_pid: pid,
            listen_fds: fds,
            listen_fdnames: names,
        };
        passed_index(&passed, 42, &socket).map_err(|e| e.to_string())
    }

    #[test]
    fn an_index_or_a_name_finds_the_socket_passed_to_this_process() {
        assert_eq!(
            index(Some("42"), Some("2"), None, SystemdSocket::Index(1)),
            Ok(1)
        );
        let names = Some("http:admin");
        let admin = SystemdSocket::Name("admin".into());
        assert_eq!(index(Some("42"), Some("2"), names, admin), Ok(1));
    }

    #[test]
    fn each_bad_part_is_named() {
        let zero = || SystemdSocket::Index(0);
        let cases = [
            (
                index(Some("42"), None, None, zero()),
                "LISTEN_FDS is not set",
            ),
            (
                index(Some("7"), Some("1"), None, zero()),
                "LISTEN_PID is \"7\"",
            ),
            (
                index(None, Some("1"), None, zero()),
                "LISTEN_PID is not set",
            ),
            (
                index(Some("42"), Some("x"), None, zero()),
                "LISTEN_FDS is \"x\"",
            ),
            (
                index(Some("42"), Some("1"), None, SystemdSocket::Index(1)),
                "index 1, but LISTEN_FDS=1",
            ),
            (
                index(Some("42"), Some("1"), None, SystemdSocket::Name("a".into())),
                "LISTEN_FDNAMES is not set",
            ),
            (
                index(
                    Some("42"),
                    Some("1"),
                    Some("b"),
                    SystemdSocket::Name("a".into()),
                ),
                "no socket named \"a\" in LISTEN_FDNAMES=b",
            ),
        ];
        for (result, expected) in cases {
            let error = result.unwrap_err();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }
}
