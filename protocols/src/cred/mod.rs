//! Who a peer is, and what it may do: authentication and authorisation in the shape of
//! Twisted's `twisted.cred`, sans-I/O, usable by any protocol.
//!
//! - [`Credentials`] are what a peer presents: a user name and password, the certificate its
//!   TLS handshake verified, or (on a UNIX socket) its user id.
//! - A [`Checker`] turns credentials it knows into an [`Identity`]: [`PasswordFile`] (salted
//!   Argon2id hashes, made by [`hash_password`]), [`InMemoryPasswords`] (for tests),
//!   [`PeerUids`], [`Certificates`].
//! - A [`Portal`] asks its checkers, then its [`Realm`] for what the identity may do (the
//!   avatar: Twisted's word), and answers [`LoginFailed`], one message whatever failed. It
//!   counts failures per client address and says how long to wait before answering the next
//!   attempt from there ([`Login::answer_after`]): a growing delay that makes guessing slow.
//!
//! The portal does no I/O and reads no clock: the protocol passes the time in and waits
//! (`call_later`) before it answers.

mod checkers;
mod delays;
mod password;

use std::net::IpAddr;
use std::time::{Duration, Instant};
use std::{error, fmt};

pub use checkers::{Certificates, InMemoryPasswords, PeerUids};
pub use delays::FailureDelays;
pub use password::{hash_password, PasswordFile, PasswordFileError};

/// What a peer presents to prove who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and a password (FTP's `USER`/`PASS`, HTTP Basic authentication).
    Password {
        /// The name given.
        username: String,
        /// The password given.
        password: String,
    },
    /// The end-entity certificate (DER) that the TLS handshake verified against the server's
    /// trusted client roots.
    Certificate(Vec<u8>),
    /// The user id of the process at the other end of a UNIX socket, as the kernel says
    /// (`SO_PEERCRED`).
    PeerUid(u32),
}

impl fmt::Debug for Credentials {
    /// Never shows a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
            Credentials::Certificate(der) => write!(f, "Certificate({} bytes)", der.len()),
            Credentials::PeerUid(uid) => write!(f, "PeerUid({uid})"),
        }
    }
}

/// Who a peer proved to be: a user name, as the checker that accepted it knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity(pub String);

/// Checks credentials of the kinds it knows.
pub trait Checker {
    /// The identity `credentials` prove, or `None`: wrong, unknown, or not a kind this
    /// checker handles. Comparisons of secrets take the same time whatever differs.
    fn check(&self, credentials: &Credentials) -> Option<Identity>;
}

/// What an identity may do, from the application.
pub trait Realm {
    /// What a logged-in user gets: the application's handle on what it may do.
    type Avatar;

    /// The avatar of `identity`, or `None` if it may not log in here.
    fn avatar(&self, identity: &Identity) -> Option<Self::Avatar>;
}

/// A login attempt failed. One message, whatever failed (an unknown user, a wrong password,
/// a user the realm turns away): a peer learns nothing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailed;

impl fmt::Display for LoginFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("login incorrect")
    }
}

impl error::Error for LoginFailed {}

/// A login's outcome, and how long to wait before telling the peer.
#[derive(Debug)]
pub struct Login<A> {
    /// The avatar, or the failure.
    pub outcome: Result<A, LoginFailed>,
    /// How long to wait before answering: zero after a success or a first failure, growing
    /// with failures from the same address.
    pub answer_after: Duration,
}

/// The checkers and the realm, with the failure counts per address.
pub struct Portal<R: Realm> {
    checkers: Vec<Box<dyn Checker>>,
    realm: R,
    delays: FailureDelays,
}

impl<R: Realm> fmt::Debug for Portal<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portal")
            .field("checkers", &self.checkers.len())
            .finish_non_exhaustive()
    }
}

impl<R: Realm> Portal<R> {
    /// A portal into `realm`, with no checker yet (every login fails).
    pub fn new(realm: R) -> Portal<R> {
        Portal {
            checkers: Vec::new(),
            realm,
            delays: FailureDelays::default(),
        }
    }

    /// Adds a checker; checkers are asked in the order added, the first identity wins.
    pub fn with_checker(mut self, checker: impl Checker + 'static) -> Portal<R> {
        self.checkers.push(Box::new(checker));
        self
    }

    /// Replaces how failures are delayed.
    pub fn with_delays(mut self, delays: FailureDelays) -> Portal<R> {
        self.delays = delays;
        self
    }

    /// Tries `credentials` from `peer` at `now`.
    pub fn login(
        &mut self,
        credentials: &Credentials,
        peer: IpAddr,
        now: Instant,
    ) -> Login<R::Avatar> {
        let identity = self.checkers.iter().find_map(|c| c.check(credentials));
        let avatar = identity.as_ref().and_then(|i| self.realm.avatar(i));
        match avatar {
            Some(avatar) => {
                self.delays.succeeded(peer);
                Login {
                    outcome: Ok(avatar),
                    answer_after: Duration::ZERO,
                }
            }
            None => Login {
                outcome: Err(LoginFailed),
                answer_after: self.delays.failed(peer, now),
            },
        }
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only: every byte of
/// the longer is read, and the differences are combined without branching on them.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut differ = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        differ |= x ^ y;
    }
    std::hint::black_box(differ) == 0
}

#[cfg(test)]
mod tests;
