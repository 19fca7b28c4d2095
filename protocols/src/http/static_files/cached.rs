//! Answering without waiting for a disk: the common case (a plain path to a regular file,
//! everything it needs in the kernel's caches) answered with system calls that fail rather
//! than wait, so that a server can try it on its event loop's thread and hand only the rest
//! to a thread pool.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use http::{HeaderMap, Method, Uri};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::resolve::segments;
use super::{serve_open_file, StaticFiles, StaticResponse};

/// Opens the root as a directory to resolve paths beneath (`None` where it cannot be: then
/// nothing is answered without waiting).
pub(super) fn open_root(root: &Path) -> Option<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(root, flags, Mode::empty()).ok()
}

impl StaticFiles {
    /// The response to a `GET` or `HEAD` of a regular file named by a plain path (no
    /// symlink, no hidden segment, no trailing slash), if it can be made without waiting for
    /// a disk; `None` for anything else, which [`respond`](StaticFiles::respond) answers
    /// (off the event loop's thread). When it answers, it answers as `respond` would.
    ///
    /// The path is looked up with `openat2(RESOLVE_CACHED)`, which fails instead of reading
    /// a directory or an inode from the disk (and `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`:
    /// a path with a symlink goes the long way, through its checks); the file is opened
    /// `O_NONBLOCK` and asked its type and validators with `fstat`, which reads nothing. The
    /// body is left unread ([`Body::File`](super::Body::File)): reading it without waiting is
    /// the caller's business (`preadv2(RWF_NOWAIT)`, or a file segment's cache probes).
    pub fn respond_cached(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<StaticResponse> {
        if *method != Method::GET && *method != Method::HEAD {
            return None;
        }
        let root_fd = self.settings.root_fd.as_deref()?;
        let path = uri.path();
        if path.ends_with('/') {
            return None;
        }
        let segments = segments(path).ok()?;
        if segments.is_empty() || segments.iter().any(|s| self.hidden().hides(s)) {
            return None;
        }
        let relative: PathBuf = segments.iter().collect();
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let resolve = ResolveFlags::CACHED | ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
        let fd = rustix::fs::openat2(root_fd, &relative, flags, Mode::empty(), resolve).ok()?;
        let file = File::from(fd);
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() {
            return None;
        }
        let mut response = serve_open_file(&relative, file, &metadata, method, headers);
        if *method == Method::HEAD {
            response.body = super::Body::Empty;
        }
        Some(response)
    }
}
