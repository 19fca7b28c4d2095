//! What a test needs from the machine beyond IPv4 loopback TCP: external programs to talk to
//! (curl, openssl, python3), IPv6 loopback, and loopback broadcast and multicast. When something is missing a
//! test skips, saying why, except under CI (`CI=true`), where it fails: a CI run that skipped
//! a test has not proved what that test claims.
//!
//! The broadcast and multicast probes use plain std and socket2 sockets, not torsion: when
//! they can exchange a datagram the machine carries it, and torsion failing to is a bug.

use std::fmt::Display;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use socket2::SockRef;

/// Whether the tests run under CI: exactly `CI=true` (as CI runs `.ci/run`); `CI=false`, an
/// empty `CI` or any other value is not CI.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| value == "true")
}

/// Reports that a test cannot run here because of `reason`: under CI the test fails with it,
/// elsewhere it prints `skipped: {reason}` and the caller returns.
pub fn skip_or_fail(reason: impl Display) {
    assert!(
        !under_ci(),
        "{reason}: under CI=true this fails the test instead of skipping it"
    );
    eprintln!("skipped: {reason}");
}

/// Runs `program version_arg` (e.g. `curl --version`, `openssl version`) and returns what it
/// printed, or `None` when it cannot run, after [`skip_or_fail`]: the test returns then.
pub fn require_tool(program: &str, version_arg: &str) -> Option<String> {
    let outcome = Command::new(program).arg(version_arg).output();
    match outcome {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => {
            skip_or_fail(format!("`{program} {version_arg}` failed: {}", out.status));
            None
        }
        Err(e) => {
            skip_or_fail(format!("{program} is not installed ({e})"));
            None
        }
    }
}

/// Whether plain sockets connect over IPv6 loopback (`::1`): a listener bound there accepts
/// a connect. `Err` says what failed (IPv6 disabled, no `::1` on lo, typically).
pub fn probe_ipv6_loopback() -> Result<(), String> {
    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind [::1]: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    TcpStream::connect_timeout(&addr, PROBE_WAIT)
        .map(drop)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))
}

/// True if IPv6 loopback works; otherwise [`skip_or_fail`] and false (the test returns).
pub fn require_ipv6_loopback() -> bool {
    match probe_ipv6_loopback() {
        Ok(()) => true,
        Err(why) => {
            skip_or_fail(format!("no IPv6 loopback: {why}"));
            false
        }
    }
}

/// The loopback network's broadcast address.
pub const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

/// How long a probe waits for its own datagram: on loopback it arrives at once or never.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// Whether plain sockets exchange a broadcast on loopback: a receiver bound to
/// [`LOOPBACK_BROADCAST`] hears a datagram sent there with `SO_BROADCAST`. `Err` says what
/// failed.
pub fn probe_loopback_broadcast() -> Result<(), String> {
    let receiver = bind_receiver(LOOPBACK_BROADCAST)?;
    let sender = bind_sender()?;
    sender
        .set_broadcast(true)
        .map_err(|e| format!("SO_BROADCAST: {e}"))?;
    exchange(&sender, &receiver, "broadcast")
}

/// Whether plain sockets exchange a multicast on loopback: a receiver bound to `group` that
/// joined it on 127.0.0.1 hears a datagram sent to the group from 127.0.0.1 with multicast
/// loop on. `Err` says what failed (no multicast route on lo, typically).
pub fn probe_loopback_multicast(group: Ipv4Addr) -> Result<(), String> {
    let receiver = bind_receiver(group)?;
    receiver
        .join_multicast_v4(&group, &Ipv4Addr::LOCALHOST)
        .map_err(|e| format!("cannot join {group} on 127.0.0.1: {e}"))?;
    let sender = bind_sender()?;
    let options = SockRef::from(&sender);
    options
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .and_then(|()| options.set_multicast_loop_v4(true))
        .map_err(|e| format!("multicast options: {e}"))?;
    exchange(&sender, &receiver, "multicast")
}

fn bind_receiver(addr: Ipv4Addr) -> Result<UdpSocket, String> {
    let socket = UdpSocket::bind((addr, 0)).map_err(|e| format!("cannot bind {addr}: {e}"))?;
    socket
        .set_read_timeout(Some(PROBE_WAIT))
        .map_err(|e| format!("read timeout: {e}"))?;
    Ok(socket)
}

fn bind_sender() -> Result<UdpSocket, String> {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("cannot bind 127.0.0.1: {e}"))
}

/// Sends one datagram from `sender` to `receiver`'s address and waits for it.
fn exchange(sender: &UdpSocket, receiver: &UdpSocket, what: &str) -> Result<(), String> {
    let to: SocketAddr = receiver.local_addr().map_err(|e| e.to_string())?;
    let probe = b"torsion test probe";
    sender
        .send_to(probe, to)
        .map_err(|e| format!("cannot send a {what} to {to}: {e}"))?;
    let mut buf = [0u8; 64];
    match receiver.recv(&mut buf) {
        Ok(n) if buf[..n] == probe[..] => Ok(()),
        Ok(n) => Err(format!("a stray datagram arrived at {to}: {:?}", &buf[..n])),
        Err(e) => Err(format!("a {what} to {to} did not arrive ({e})")),
    }
}
