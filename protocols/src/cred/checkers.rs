//! The checkers that need no file: passwords in memory (for tests and examples), peer user
//! ids, client certificates.

use std::collections::HashMap;

use super::{constant_time_eq, Checker, Credentials, Identity};

/// Users and their passwords in memory, in clear: for tests and examples, not for
/// production (use a [`PasswordFile`](super::PasswordFile)).
#[derive(Debug, Default, Clone)]
pub struct InMemoryPasswords {
    users: HashMap<String, String>,
}

impl InMemoryPasswords {
    /// No user.
    pub fn new() -> InMemoryPasswords {
        InMemoryPasswords::default()
    }

    /// Adds (or replaces) `user` with `password`.
    pub fn user(mut self, user: &str, password: &str) -> InMemoryPasswords {
        self.users.insert(user.to_string(), password.to_string());
        self
    }
}

impl Checker for InMemoryPasswords {
    fn check(&self, credentials: &Credentials) -> Option<Identity> {
        let Credentials::Password { username, password } = credentials else {
            return None;
        };
        // An unknown user is compared too (with an empty password), so the time taken
        // does not say whether the user exists.
        let known = self.users.get(username);
        let expected = known.map_or("", String::as_str);
        let matches = constant_time_eq(expected.as_bytes(), password.as_bytes());
        (matches && known.is_some()).then(|| Identity(username.clone()))
    }
}

/// UNIX peers by user id: the uids allowed, each with the user name it logs in as.
#[derive(Debug, Default, Clone)]
pub struct PeerUids {
    users: HashMap<u32, String>,
}

impl PeerUids {
    /// No uid.
    pub fn new() -> PeerUids {
        PeerUids::default()
    }

    /// A peer running as `uid` is `user`.
    pub fn uid(mut self, uid: u32, user: &str) -> PeerUids {
        self.users.insert(uid, user.to_string());
        self
    }
}

impl Checker for PeerUids {
    fn check(&self, credentials: &Credentials) -> Option<Identity> {
        let Credentials::PeerUid(uid) = credentials else {
            return None;
        };
        self.users.get(uid).map(|user| Identity(user.clone()))
    }
}

/// Client certificates (verified by the TLS handshake against the server's client roots)
/// by their DER bytes, each with the user name it logs in as.
#[derive(Debug, Default, Clone)]
pub struct Certificates {
    users: Vec<(Vec<u8>, String)>,
}

impl Certificates {
    /// No certificate.
    pub fn new() -> Certificates {
        Certificates::default()
    }

    /// The certificate `der` is `user`.
    pub fn certificate(mut self, der: Vec<u8>, user: &str) -> Certificates {
        self.users.push((der, user.to_string()));
        self
    }
}

impl Checker for Certificates {
    fn check(&self, credentials: &Credentials) -> Option<Identity> {
        let Credentials::Certificate(presented) = credentials else {
            return None;
        };
        // Every entry compared: the time does not say which (if any) matched.
        let mut found = None;
        for (der, user) in &self.users {
            if constant_time_eq(der, presented) {
                found = Some(user);
            }
        }
        found.map(|user| Identity(user.clone()))
    }
}
