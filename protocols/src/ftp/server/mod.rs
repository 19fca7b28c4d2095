//! An FTP server (RFC 959) on the reactor: [`FtpServer`] serves a directory to clients that
//! log in through a [`Portal`].
//!
//! - **Logging in.** `USER anonymous` (or `ftp`) with any password is always let in,
//!   read-only. Other users are checked by the portal, whose realm says what each may do
//!   ([`Access`]). A failed login is answered `530` after the portal's delay for that
//!   address, and the connection's next commands wait behind it.
//! - **Paths.** The client sees the served directory as `/`. `..` never climbs above it, and
//!   a symlink that leads outside it is refused (`550`), as the HTTP static files refuse it.
//! - **Data connections** are passive only (`PASV`, `EPSV`): a listener on the control
//!   connection's local address, port 0, that takes one connection, from the control
//!   connection's peer address only (others are refused and logged). `LIST`, `NLST`, `RETR`
//!   (after `REST`), `STOR` and `APPE` answer `150`, then `226` once the data connection has sent or
//!   received everything and closed (`426` if it broke), or `425` if no `PASV`/`EPSV` came
//!   first, or if the client does not connect within the data timeout.
//! - **Writing** (`STOR`, `APPE`, `DELE`, `MKD`, `RMD`, `RNFR`/`RNTO`) is for [`Access::ReadWrite`]
//!   users; others get `550`.
//! - Command lines are at most [`MAX_COMMAND_LINE`] bytes; a longer one is answered `500` and
//!   the connection closed.
//!
//! ```no_run
//! use torsion_protocols::cred::{Identity, InMemoryPasswords, Portal, Realm};
//! use torsion_protocols::ftp::server::{Access, FtpServer};
//!
//! /// Every known user may write.
//! struct Writers;
//!
//! impl Realm for Writers {
//!     type Avatar = Access;
//!     fn avatar(&self, _: &Identity) -> Option<Access> {
//!         Some(Access::ReadWrite)
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let portal = Portal::new(Writers).with_checker(InMemoryPasswords::new().user("alice", "s3cret"));
//! let mut reactor = torsion_reactor::Reactor::new()?;
//! reactor.listen_tcp("127.0.0.1:2121".parse().unwrap(), FtpServer::new("/srv/ftp", portal)?)?;
//! reactor.run()
//! # }
//! ```

mod control;
mod data;
mod files;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use std::{fmt, fs, io};

use torsion_reactor::{Address, Factory};

use crate::cred::{Portal, Realm};
use crate::line::LineProtocol;
pub use control::FtpSession;

/// The longest command line taken, in bytes (without its `\r\n`).
pub const MAX_COMMAND_LINE: usize = 4096;

/// How long a transfer waits for its data connection, unless
/// [`with_data_timeout`](FtpServer::with_data_timeout) says otherwise.
pub const DEFAULT_DATA_TIMEOUT: Duration = Duration::from_secs(30);

/// What a logged-in user may do: the avatar an FTP server's realm gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// List and download.
    ReadOnly,
    /// Upload, delete, make and remove directories and rename too.
    ReadWrite,
}

/// Serves a directory over FTP: a [`Factory`] for [`Reactor::listen_tcp`].
///
/// [`Reactor::listen_tcp`]: torsion_reactor::Reactor::listen_tcp
pub struct FtpServer<R: Realm<Avatar = Access>> {
    root: Rc<PathBuf>,
    data_timeout: Duration,
    portal: Rc<RefCell<Portal<R>>>,
}

impl<R: Realm<Avatar = Access>> fmt::Debug for FtpServer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpServer")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl<R: Realm<Avatar = Access> + 'static> FtpServer<R> {
    /// Serves `root` (which must be a directory) to the users `portal` lets in, and to
    /// anonymous users read-only.
    pub fn new(root: impl AsRef<Path>, portal: Portal<R>) -> io::Result<FtpServer<R>> {
        let root = fs::canonicalize(root)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(FtpServer {
            root: Rc::new(root),
            data_timeout: DEFAULT_DATA_TIMEOUT,
            portal: Rc::new(RefCell::new(portal)),
        })
    }

    /// How long a transfer command waits for its data connection before it is answered
    /// `425` and its listener closed (default [`DEFAULT_DATA_TIMEOUT`]).
    pub fn with_data_timeout(mut self, timeout: Duration) -> FtpServer<R> {
        self.data_timeout = timeout;
        self
    }
}

impl<R: Realm<Avatar = Access> + 'static> Factory for FtpServer<R> {
    type Protocol = LineProtocol<FtpSession<R>>;

    fn build_protocol(&mut self, _peer: Address) -> Option<Self::Protocol> {
        let control = FtpSession::new(self.root.clone(), self.data_timeout, self.portal.clone());
        Some(LineProtocol::new(control).with_max_line_length(MAX_COMMAND_LINE))
    }
}
