//! Mapping a request target to a path under the root, so that nothing outside the root can
//! ever be named. See the [module docs](super#path-resolution) for each refused form.

use std::fs::{self, Metadata};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::listing::percent_encode;

/// Where a request target leads under the root.
#[derive(Debug)]
#[non_exhaustive]
pub enum Resolved {
    /// A regular file inside the root.
    File {
        /// Its canonical path (no symlinks, no `.` or `..`), inside the root.
        path: PathBuf,
        /// Its metadata when it was resolved.
        metadata: Metadata,
    },
    /// A directory inside the root, named with a trailing slash.
    Directory {
        /// Its canonical path, inside the root.
        path: PathBuf,
        /// The decoded URL path that named it, normalized (`//` and `.` segments gone), with
        /// a leading and a trailing `/`: what a listing's title shows.
        url_path: String,
    },
    /// A directory named without its trailing slash: answer 301 to `location`, so relative
    /// links in its listing or `index.html` resolve (as Python's `http.server`).
    Redirect {
        /// The slash-terminated URL: the normalized path, re-encoded, so it always starts
        /// with exactly one `/` (a target `//evil.example` never becomes a
        /// protocol-relative `Location`), then the query if there was one.
        location: String,
    },
    /// Nothing there (404), or a file named with a trailing slash.
    NotFound,
    /// A traversal attempt, a symlink leaving the root, or a file that is not regular or
    /// not readable (403).
    Forbidden,
    /// A target that is not an absolute path, bad percent-encoding, non-UTF-8 or a NUL (400).
    BadRequest,
}

/// What becomes of a hidden path: one with a segment (a file or directory name) starting
/// with `.`, as `/.git/config`, `/.env` or `/a/.hidden/b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// Answered 404 and left out of listings (the default).
    Refuse,
    /// Served and listed like any other path.
    Serve,
}

impl Hidden {
    /// Whether `name` (one path segment) is left out.
    pub fn hides(self, name: &str) -> bool {
        self == Hidden::Refuse && name.starts_with('.')
    }
}

/// Resolves `target` (origin-form: `/a%20b/c?query`) under `root`, which must already be
/// canonical. Hidden segments are refused before the file system is asked anything, so
/// their answer cannot tell whether they exist.
pub(super) fn resolve(root: &Path, target: &str, hidden: Hidden) -> Resolved {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let segments = match segments(path) {
        Ok(segments) => segments,
        Err(refusal) => return refusal.into(),
    };
    if segments.iter().any(|segment| hidden.hides(segment)) {
        return Resolved::NotFound;
    }
    let mut candidate = root.to_path_buf();
    candidate.extend(&segments);
    let (path_buf, metadata) = match inside(root, &candidate, hidden) {
        Ok(found) => found,
        Err(refusal) => return refusal.into(),
    };
    let slash = path.ends_with('/');
    if metadata.is_dir() {
        return directory(path_buf, &segments, slash, query);
    }
    if !metadata.is_file() {
        // A FIFO would block the reactor's thread on open; a device is never content.
        return Resolved::Forbidden;
    }
    if slash {
        return Resolved::NotFound;
    }
    Resolved::File {
        path: path_buf,
        metadata,
    }
}

fn directory(path: PathBuf, segments: &[String], slash: bool, query: Option<&str>) -> Resolved {
    let mut url_path = String::from("/");
    for segment in segments {
        url_path.push_str(segment);
        url_path.push('/');
    }
    if slash {
        return Resolved::Directory { path, url_path };
    }
    let mut location = String::from("/");
    for segment in segments {
        location.push_str(&percent_encode(segment));
        location.push('/');
    }
    if let Some(query) = query {
        if !query.bytes().all(|b| b.is_ascii_graphic()) {
            return Resolved::BadRequest;
        }
        location.push('?');
        location.push_str(query);
    }
    Resolved::Redirect { location }
}

/// The decoded path segments, each one plain file name, or why the path is refused.
pub(super) fn segments(path: &str) -> Result<Vec<String>, Refusal> {
    let Some(rest) = path.strip_prefix('/') else {
        // `*`, authority-form, or a relative path: nothing to serve.
        return Err(Refusal::BadRequest);
    };
    let mut segments = Vec::new();
    for raw in rest.split('/') {
        let decoded = percent_decode(raw).ok_or(Refusal::BadRequest)?;
        let segment = String::from_utf8(decoded).map_err(|_| Refusal::BadRequest)?;
        if segment.contains('\0') {
            return Err(Refusal::BadRequest);
        }
        // Raw text was split on `/`, so a `/` here came from `%2f`: a name cannot hold one.
        // A backslash, literal or `%5c`, is a separator on Windows and never a name here.
        if segment.contains(['/', '\\']) || segment == ".." {
            return Err(Refusal::Forbidden);
        }
        if segment.is_empty() || segment == "." {
            continue;
        }
        // Exactly one normal component: no root, drive prefix (`C:` on Windows) or `..`.
        let mut components = Path::new(&segment).components();
        let single =
            matches!(components.next(), Some(Component::Normal(name)) if name == segment.as_str());
        if !single || components.next().is_some() {
            return Err(Refusal::Forbidden);
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits.
fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

/// Canonicalizes `candidate` (following every symlink) and checks that the result is still
/// under `root`, component by component (`/srv/www2` is not under `/srv/www`), and, unless
/// hidden files are served, that no component under the root is hidden: a symlink with a
/// plain name leading to `.git/config` is refused as that path would be (404).
pub(crate) fn inside(
    root: &Path,
    candidate: &Path,
    hidden: Hidden,
) -> Result<(PathBuf, Metadata), Refusal> {
    if let Some(found) = plain_inside(root, candidate, hidden)? {
        return Ok(found);
    }
    let canonical = fs::canonicalize(candidate).map_err(refusal)?;
    let Ok(under_root) = canonical.strip_prefix(root) else {
        return Err(Refusal::Forbidden);
    };
    let hides = |component: Component<'_>| match component {
        Component::Normal(name) => name.to_str().is_none_or(|name| hidden.hides(name)),
        _ => false,
    };
    if hidden == Hidden::Refuse && under_root.components().any(hides) {
        return Err(Refusal::NotFound);
    }
    let metadata = fs::metadata(&canonical).map_err(refusal)?;
    Ok((canonical, metadata))
}

/// The common case, cheaply: `candidate` is the canonical `root` and plain names, none of
/// them a symlink (one `lstat` per name under the root, where `canonicalize` reads every
/// component of the whole path as a link and `metadata` asks again). Then it is its own
/// canonical path, under the root. `None` if a name is a symlink: the caller canonicalizes.
fn plain_inside(
    root: &Path,
    candidate: &Path,
    hidden: Hidden,
) -> Result<Option<(PathBuf, Metadata)>, Refusal> {
    let Ok(relative) = candidate.strip_prefix(root) else {
        return Ok(None);
    };
    let mut path = root.to_path_buf();
    let mut metadata = None;
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Ok(None);
        };
        if name.to_str().is_none_or(|name| hidden.hides(name)) {
            return Err(Refusal::NotFound);
        }
        path.push(name);
        let found = fs::symlink_metadata(&path).map_err(refusal)?;
        if found.file_type().is_symlink() {
            return Ok(None);
        }
        metadata = Some(found);
    }
    match metadata {
        Some(metadata) => Ok(Some((path, metadata))),
        None => Ok(None), // the root itself: canonicalized as before
    }
}

fn refusal(error: io::Error) -> Refusal {
    match error.kind() {
        io::ErrorKind::PermissionDenied => Refusal::Forbidden,
        _ => Refusal::NotFound,
    }
}

/// Why a target resolves to nothing: the small error of the helpers, so a `Result` does not
/// carry a whole [`Resolved`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotFound,
    Forbidden,
    BadRequest,
}

impl From<Refusal> for Resolved {
    fn from(refusal: Refusal) -> Resolved {
        match refusal {
            Refusal::NotFound => Resolved::NotFound,
            Refusal::Forbidden => Resolved::Forbidden,
            Refusal::BadRequest => Resolved::BadRequest,
        }
    }
}
