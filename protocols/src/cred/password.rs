//! Password hashes (Argon2id, from RustCrypto's `argon2`: not written here) and the file
//! of users that holds them.

use std::collections::HashMap;
use std::{fmt, fs, io, path::Path};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::{Checker, Credentials, Identity};

/// Hashes `password` with Argon2id and a fresh random salt, in the PHC string form
/// (`$argon2id$v=19$m=...,t=...,p=...$SALT$HASH`) that a [`PasswordFile`] line holds after
/// `NAME:`.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        // Only a salt or parameters out of range fail, and these are the defaults.
        .unwrap_or_else(|e| unreachable!("Argon2 with default parameters: {e}"))
}

/// Users and their password hashes, from a file of `NAME:HASH` lines (blank lines and lines
/// starting with `#` ignored), each hash made by [`hash_password`].
#[derive(Clone)]
pub struct PasswordFile {
    users: HashMap<String, String>,
    /// Verified when the user is unknown, so an unknown user takes as long as a known one.
    decoy: String,
}

impl fmt::Debug for PasswordFile {
    /// Never shows a hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// Why a password file was refused: the line and what is wrong with it, or the read error.
#[derive(Debug)]
pub enum PasswordFileError {
    /// The file could not be read.
    Io(io::Error),
    /// Line `line` (from 1) is not `NAME:HASH` with a valid hash, or repeats a name.
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for PasswordFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordFileError::Io(e) => write!(f, "cannot read the password file: {e}"),
            PasswordFileError::Line { line, reason } => {
                write!(f, "password file, line {line}: {reason}")
            }
        }
    }
}

impl std::error::Error for PasswordFileError {}

impl PasswordFile {
    /// Reads the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<PasswordFile, PasswordFileError> {
        let text = fs::read_to_string(path).map_err(PasswordFileError::Io)?;
        PasswordFile::parse(&text)
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<PasswordFile, PasswordFileError> {
        let mut users = HashMap::new();
        for (at, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| PasswordFileError::Line {
                line: at + 1,
                reason: reason.to_string(),
            };
            let (name, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("expected NAME:HASH"))?;
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(bad("the name is empty or has spaces"));
            }
            PasswordHash::new(hash).map_err(|e| bad(&format!("not a password hash: {e}")))?;
            if users.insert(name.to_string(), hash.to_string()).is_some() {
                return Err(bad(&format!("{name} is listed twice")));
            }
        }
        Ok(PasswordFile {
            users,
            decoy: hash_password("no user has this password"),
        })
    }

    /// Users listed.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is listed.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl Checker for PasswordFile {
    fn check(&self, credentials: &Credentials) -> Option<Identity> {
        let Credentials::Password { username, password } = credentials else {
            return None;
        };
        let known = self.users.get(username);
        let hash = PasswordHash::new(known.unwrap_or(&self.decoy)).ok()?;
        // argon2's verification compares in constant time.
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        (matches && known.is_some()).then(|| Identity(username.clone()))
    }
}
