//! UNIX domain sockets' own parts: binding a listening socket (a stale socket file replaced,
//! a live one refused, the file's mode), the socket file a port removes when it stops, the
//! peer's credentials, and the addresses' conversion for `socket2`.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use log::{debug, info};
use mio::net::{UnixDatagram, UnixListener};
use rustix::fs::FlockOperation;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::listeners::LISTEN_BACKLOG;
use crate::UnixAddress;

/// How [`Reactor::listen_unix`](crate::Reactor::listen_unix) makes its socket.
///
/// ```
/// use torsion_reactor::UnixListenOptions;
///
/// let options = UnixListenOptions::new().mode(0o660); // owner and group may connect
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixListenOptions {
    /// The socket file's permission bits (connecting needs write permission on it), set
    /// before the socket starts listening. `None` (the default): what the process's umask
    /// leaves. Ignored for an abstract name, which has no file.
    pub mode: Option<u32>,
    /// Take an exclusive lock on `PATH.lock` (made if missing, `flock(2)`) before looking at
    /// the socket file, and hold it while the socket is open: a second server started at the
    /// same instant then fails with `AddrInUse` instead of racing to replace the file. The
    /// lock file stays behind (removing it would let a third server lock a new file while the
    /// second still holds the old one). Default: off. Ignored for an abstract name, which
    /// the kernel never lets two sockets bind.
    pub lock_file: bool,
}

impl UnixListenOptions {
    /// The defaults: the socket file's mode is left to the umask.
    pub fn new() -> Self {
        UnixListenOptions::default()
    }

    /// These options with the socket file's permission bits set to `mode` (e.g. `0o600`:
    /// only this user may connect; `0o660`: this user and the file's group).
    pub fn mode(self, mode: u32) -> Self {
        UnixListenOptions {
            mode: Some(mode),
            ..self
        }
    }

    /// These options with the lock file on or off (see
    /// [`lock_file`](UnixListenOptions::lock_file)).
    pub fn lock_file(self, lock_file: bool) -> Self {
        UnixListenOptions { lock_file, ..self }
    }
}

/// The credentials of the process at the other end of a UNIX socket, as the kernel
/// recorded them when the connection was made (`SO_PEERCRED`): they cannot be forged by the
/// peer, so a server can authorise by user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Credentials {
    /// The peer's process id (at `connect` or `listen` time; the process may have gone since).
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// The peer credentials of the UNIX socket `socket`.
pub(crate) fn peer_credentials(socket: impl AsFd) -> io::Result<Credentials> {
    let cred = rustix::net::sockopt::socket_peercred(socket)?;
    Ok(Credentials {
        pid: cred.pid.as_raw_pid(),
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
    })
}

impl UnixAddress {
    /// The address for `socket2`.
    pub(crate) fn to_sockaddr(&self) -> io::Result<SockAddr> {
        if let Some(path) = self.as_path() {
            return SockAddr::unix(path);
        }
        match self.as_abstract_name() {
            Some(name) => abstract_sockaddr(name),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an unnamed UNIX socket address cannot be bound or sent to",
            )),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_sockaddr(name: &[u8]) -> io::Result<SockAddr> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    // A leading NUL byte is how the kernel (and socket2) tell an abstract name from a path.
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name);
    SockAddr::unix(OsStr::from_bytes(&bytes))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_sockaddr(_name: &[u8]) -> io::Result<SockAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract UNIX socket names exist only on Linux",
    ))
}

/// A socket file this process bound: removed when dropped (the port stopped, or the reactor
/// went), but only while it is still the very file that was bound, so a successor's socket
/// at the same path is never removed; then its lock, if it took one, is released.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// The lock file, locked while it is open (closing it unlocks it).
    _lock: Option<File>,
}

impl SocketFile {
    fn of(path: &Path, lock: Option<File>) -> io::Result<SocketFile> {
        let meta = fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            _lock: lock,
        })
    }
}

/// Locks `PATH.lock` for the socket at `path`, or fails with `AddrInUse` if another process
/// (or another port of this one) holds it.
fn lock_beside(path: &Path) -> io::Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another server holds {}", lock_path.display()),
        )),
        Err(e) => Err(e.into()),
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let same = fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if same {
            if let Err(e) = fs::remove_file(&self.path) {
                debug!("removing socket file {}: {e}", self.path.display());
            }
        }
    }
}

/// A non-blocking listening UNIX socket on `address`, and the file it made (for a path).
///
/// A socket file already at the path is tested with a connect: refused, it was left by a
/// server that is gone and is replaced; accepted (or the server's backlog is full), a live
/// server has it and the bind fails with `AddrInUse`. Anything at the path that is not a
/// socket is never removed. The mode is set between `bind` and `listen`: until `listen`
/// every connect is refused, so no client ever connects under the umask's mode.
pub(crate) fn bind_unix_listener(
    address: &UnixAddress,
    options: &UnixListenOptions,
) -> io::Result<(UnixListener, Option<SocketFile>)> {
    let (socket, file) = bind_unix(address, options, Type::STREAM)?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok((UnixListener::from_std(socket.into()), file))
}

/// A non-blocking UNIX datagram socket bound to `address` (none for an unnamed one), with
/// the same care for a socket file already there and for the mode as
/// [`bind_unix_listener`]. The mode is set just after `bind`: a datagram socket has no
/// `listen` to wait for, so datagrams sent within that instant may arrive under the
/// umask's mode; set a restrictive umask, or bind in a directory only the right users
/// reach, where that matters.
pub(crate) fn bind_unix_datagram(
    address: &UnixAddress,
    options: &UnixListenOptions,
) -> io::Result<(UnixDatagram, Option<SocketFile>)> {
    if address.is_unnamed() {
        let socket = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
        socket.set_nonblocking(true)?;
        return Ok((UnixDatagram::from_std(socket.into()), None));
    }
    let (socket, file) = bind_unix(address, options, Type::DGRAM)?;
    Ok((UnixDatagram::from_std(socket.into()), file))
}

/// A non-blocking UNIX socket of type `kind`, bound to `address` with its mode set.
fn bind_unix(
    address: &UnixAddress,
    options: &UnixListenOptions,
    kind: Type,
) -> io::Result<(Socket, Option<SocketFile>)> {
    let lock = match address.as_path() {
        Some(path) if options.lock_file => Some(lock_beside(path)?),
        _ => None,
    };
    if let Some(path) = address.as_path() {
        clear_stale_socket(path, kind)?;
    }
    let socket = Socket::new(Domain::UNIX, kind, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.to_sockaddr()?)?;
    let Some(path) = address.as_path() else {
        return Ok((socket, None));
    };
    let file = SocketFile::of(path, lock)?;
    if let Some(mode) = options.mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok((socket, Some(file)))
}

/// Removes the socket file at `path` if its server is gone; fails if a server answers on it
/// or if something else than a socket is there.
fn clear_stale_socket(path: &Path, kind: Type) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{} exists and is not a socket: not replacing it",
                path.display()
            ),
        ));
    }
    // A UNIX connect answers at once: refused if no socket is bound there any more,
    // accepted (or EAGAIN, a full backlog) if a server is.
    let probe = Socket::new(Domain::UNIX, kind, None)?;
    // Non-blocking: a blocking connect would wait while a live server's backlog is full.
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            info!("removing stale socket file {}", path.display());
            fs::remove_file(path)
        }
        // A socket of the other type (stream or datagram) is bound there: live too.
        Err(e) if e.raw_os_error() == Some(EPROTOTYPE) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("a socket of another type is bound to {}", path.display()),
        )),
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("a server is listening on {}", path.display()),
        )),
    }
}

/// Linux's errno for a connect to a socket of another type.
const EPROTOTYPE: i32 = 91;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_options_build_and_default_to_the_umask_without_a_lock() {
        assert_eq!(UnixListenOptions::new().mode, None);
        assert!(!UnixListenOptions::new().lock_file);
        let options = UnixListenOptions::new().mode(0o600).lock_file(true);
        assert_eq!(options.mode, Some(0o600));
        assert!(options.lock_file);
    }

    #[test]
    fn an_abstract_name_becomes_a_socket_address_with_a_leading_nul() {
        let addr = UnixAddress::abstract_name("torsion").to_sockaddr().unwrap();
        assert_eq!(addr.as_abstract_namespace(), Some(&b"torsion"[..]));
        let path = UnixAddress::path("/tmp/x").to_sockaddr().unwrap();
        assert_eq!(path.as_pathname(), Some(Path::new("/tmp/x")));
        assert!(UnixAddress::unnamed().to_sockaddr().is_err());
    }
}
