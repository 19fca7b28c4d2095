//! Serving a directory over HTTP: the logic of a static-file resource, without the
//! connection. [`StaticFiles::respond`] takes a request's method, target and headers and
//! returns a [`StaticResponse`]: a status, headers and a [`Body`] the server sends, a large
//! file as [`FileChunks`] pulled chunk by chunk when the connection has room.
//!
//! ```no_run
//! use torsion_protocols::http::static_files::{Body, StaticFiles};
//! use http::{HeaderMap, Method, Uri};
//!
//! let files = StaticFiles::new("/srv/www")?;
//! let uri: Uri = "/docs/guide.html".parse().unwrap();
//! let mut response = files.respond(&Method::GET, &uri, &HeaderMap::new());
//! println!("{} {:?}", response.status, response.content_length);
//! if let Body::File(chunks) = &mut response.body {
//!     while let Some(chunk) = chunks.next_chunk()? {
//!         // write `chunk`; stop here while the connection's queue is full
//!         let _ = chunk;
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What it answers
//! - `GET` and `HEAD` (`HEAD`: the same status and headers, an empty body); any other
//!   method: 405 with `Allow: GET, HEAD`.
//! - A file: 200 with `Content-Type` (by extension, [`content_type`]), `ETag`,
//!   `Last-Modified`, `Accept-Ranges: bytes`, the body as [`Body::File`].
//! - A directory named with a trailing slash: its `index.html` if it has one (a regular file,
//!   inside the root), else an HTML listing ([`listing_html`], as Python's `http.server`), or
//!   403 when listings are off ([`StaticFiles::with_listing`]). Without the trailing slash:
//!   301 to the slash-terminated URL.
//! - A hidden path (a segment starting with `.`: `/.git/config`, `/.env`, `/a/.hidden/b`):
//!   404, whether or not it exists, unless [`StaticFiles::with_dotfiles`] opts in.
//! - Conditional requests ([`evaluate`]): 304 for a matching `If-None-Match`, or, when that
//!   is absent, an `If-Modified-Since` not older than the file; 412 for a failing `If-Match`
//!   or `If-Unmodified-Since`. The ETag is strong, `"<size hex>-<mtime ns hex>"`
//!   ([`Validators`]).
//! - A single `Range` on `GET` ([`RangeRequest`]): 206 with `Content-Range`, or 416 with
//!   `Content-Range: bytes */size`; a malformed Range or several ranges give the whole file
//!   (200: `multipart/byteranges` is not supported); `If-Range` that does not match the
//!   current validator gives the whole file too.
//! - 400, 403, 404 with a short `text/plain` body.
//!
//! # Path resolution
//! The target's path (the query is ignored, except kept in a redirect) is split on `/`, then
//! each segment percent-decoded once and checked on its own; the path built from the
//! surviving segments is canonicalized (every symlink followed) and must still lie under the
//! canonical root. So:
//!
//! | Attempt | Example | Stopped by | Answer |
//! |---|---|---|---|
//! | dot-dot, plain or encoded | `/../x`, `/%2e%2e/x`, `/%2E%2e/x`, `/.%2e/x` | a decoded segment equal to `..` | 403 |
//! | encoded slash | `/a%2f..%2fx`, `/..%2Fx` | a decoded segment holding `/` | 403 |
//! | backslash, literal or encoded | `/..\x`, `/..%5cx` | a decoded segment holding `\` | 403 |
//! | absolute path | `//etc/passwd`, `/%2fetc/passwd` | empty segments are skipped, so the path stays under the root (404), or the `/` rule (403) | 404 / 403 |
//! | Windows drive or root | `/C:%5cx`, `/C:` (on Windows) | each segment must be exactly one normal path component | 403 |
//! | NUL | `/x%00.html` | a decoded segment holding NUL | 400 |
//! | bad encoding, non-UTF-8 | `/%zz`, `/%4`, `/%ff` | the decoder | 400 |
//! | not origin-form | `*`, `x/y` | the path must start with `/` | 400 |
//! | double encoding | `/%252e%252e/x` | decoded once: a file named `%2e%2e` | 404 |
//! | symlink leaving the root | `link -> /etc` | the canonical path is not under the root (compared by components, so `/srv/www2` is not under `/srv/www`) | 403 |
//! | FIFO, socket, device | `mkfifo root/p` | only regular files and directories are served (opened without waiting, checked on the open file) | 403 |
//! | hidden path | `/.git/config`, `/%2eenv`, `link -> .env` | a decoded segment, or a component of the canonical path under the root, starting with `.` (unless [`with_dotfiles`](StaticFiles::with_dotfiles)) | 404 |
//!
//! Symlinks **inside** the root are followed (a symlink to another file or directory of the
//! root is served as its target), since sites are often assembled with them; the check is on
//! where the link leads, never on its name. Hidden files are neither served nor listed unless
//! opted in: their 404 is decided from the request alone, before the file system is asked, so
//! it tells nothing of what exists.
//!
//! One race remains: the check and the open are two system calls, so someone who can write
//! inside the root could swap a checked directory for a symlink between them. Closing it
//! needs `openat2(RESOLVE_BENEATH)` (Linux only); anyone with write access to the root can
//! already publish what they like there.
//!
//! [`StaticFiles::respond`] is blocking file-system I/O on the caller's thread: call it off a
//! reactor's thread. [`StaticFiles::respond_cached`] answers the common case (a plain path
//! to a regular file) only if it can without waiting for a disk, and is meant for the
//! reactor's thread. The server's handler (`impl Handler for StaticFiles`) tries the second
//! and falls back to the first in the reactor's thread pool; it sends a file's body a window
//! at a time (see `Responder::send_file`).

mod cached;
mod chunks;
mod conditional;
mod content_type;
mod listing;
mod range;
mod resolve;

pub use chunks::FileChunks;
pub use conditional::{evaluate, if_range_holds, parse_http_date, Precondition, Validators};
pub use content_type::content_type;
pub use listing::{html_escape, listing_html, percent_encode};
pub use range::RangeRequest;
pub(crate) use resolve::{inside, Refusal};
pub use resolve::{Hidden, Resolved};

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri};

/// A directory served over HTTP. Cheap to clone (the settings are shared).
///
/// Safe by default: hidden files (any path segment starting with `.`, such as `/.git/config`
/// or `/a/.env`) are answered 404 and left out of listings unless
/// [`with_dotfiles`](StaticFiles::with_dotfiles) opts in; directory listings are on and
/// [`with_listing`](StaticFiles::with_listing) turns them off.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    settings: Arc<Settings>,
}

/// What a [`StaticFiles`] serves: its root and its options.
#[derive(Debug, Clone)]
struct Settings {
    root: PathBuf,
    /// The root opened as a directory, for lookups beneath it that must not wait
    /// ([`StaticFiles::respond_cached`]).
    root_fd: Option<Arc<std::os::fd::OwnedFd>>,
    dotfiles: bool,
    listing: bool,
}

/// What to send back: the server writes `status` and `headers`, frames the body with
/// `content_length`, and sends `body`.
#[derive(Debug)]
#[non_exhaustive]
pub struct StaticResponse {
    /// The status.
    pub status: StatusCode,
    /// Every header but the framing ones (`Content-Length`, `Transfer-Encoding`) and `Date`,
    /// which are the server's.
    pub headers: HeaderMap,
    /// The `Content-Length` to send: the body's length, or for `HEAD` the length `GET` would
    /// have sent. `None` for 304, which should carry no `Content-Length`.
    pub content_length: Option<u64>,
    /// The body (always [`Body::Empty`] for `HEAD`, 304 and 416).
    pub body: Body,
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// No bytes.
    Empty,
    /// Bytes in memory: listings and error pages.
    Bytes(Bytes),
    /// A file or a range of one, read on demand.
    File(FileChunks),
}

impl StaticFiles {
    /// Serves the directory `root` (canonicalized now, so later symlink checks compare
    /// against its real path). Fails if it does not exist or is not a directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        let root = std::fs::canonicalize(root)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root of static files is not a directory",
            ));
        }
        let settings = Settings {
            root_fd: cached::open_root(&root).map(Arc::new),
            root,
            dotfiles: false,
            listing: true,
        };
        Ok(StaticFiles {
            settings: Arc::new(settings),
        })
    }

    /// Serves hidden files too (`true`): paths with a segment starting with `.` are then
    /// served and listed like any other. Off by default, so that serving a checkout or a
    /// home directory does not publish `.git/`, `.env` or `.ssh/`: such paths are answered
    /// 404 (not 403, which would tell that they exist) and left out of listings.
    pub fn with_dotfiles(mut self, serve: bool) -> StaticFiles {
        Arc::make_mut(&mut self.settings).dotfiles = serve;
        self
    }

    /// Lists directories that have no `index.html` (`true`, the default), or answers them
    /// 403 Forbidden (`false`), as nginx does with `autoindex off`: the directory exists (its
    /// 301 to the trailing slash already tells), its contents are not shown.
    pub fn with_listing(mut self, list: bool) -> StaticFiles {
        Arc::make_mut(&mut self.settings).listing = list;
        self
    }

    /// Whether hidden files are served ([`with_dotfiles`](StaticFiles::with_dotfiles)).
    pub fn serves_dotfiles(&self) -> bool {
        self.settings.dotfiles
    }

    /// Whether directories are listed ([`with_listing`](StaticFiles::with_listing)).
    pub fn lists_directories(&self) -> bool {
        self.settings.listing
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.settings.root
    }

    /// Where `target` (origin-form, percent-encoded, perhaps with a query) leads under the
    /// root; see [path resolution](self#path-resolution).
    pub fn resolve(&self, target: &str) -> Resolved {
        resolve::resolve(self.root(), target, self.hidden())
    }

    /// What becomes of hidden paths.
    fn hidden(&self) -> Hidden {
        if self.settings.dotfiles {
            Hidden::Serve
        } else {
            Hidden::Refuse
        }
    }

    /// The response to a request; see [what it answers](self#what-it-answers).
    pub fn respond(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> StaticResponse {
        let head = *method == Method::HEAD;
        if *method != Method::GET && !head {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED);
            response
                .headers
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut response = match self.resolve(target) {
            Resolved::File { path, .. } => serve_file(&path, method, headers),
            Resolved::Directory { path, url_path } => {
                self.serve_directory(&path, &url_path, method, headers)
            }
            Resolved::Redirect { location } => redirect(&location),
            Resolved::NotFound => plain(StatusCode::NOT_FOUND),
            Resolved::Forbidden => plain(StatusCode::FORBIDDEN),
            Resolved::BadRequest => plain(StatusCode::BAD_REQUEST),
        };
        if head {
            response.body = Body::Empty;
        }
        response
    }

    fn serve_directory(
        &self,
        dir: &Path,
        url_path: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> StaticResponse {
        let index = dir.join("index.html");
        match resolve::inside(self.root(), &index, self.hidden()) {
            Ok((index, metadata)) if metadata.is_file() => {
                return serve_file(&index, method, headers)
            }
            Ok(_) | Err(resolve::Refusal::NotFound) => {}
            Err(_) => return plain(StatusCode::FORBIDDEN),
        }
        if !self.settings.listing {
            return plain(StatusCode::FORBIDDEN);
        }
        match listing_html(dir, url_path, self.hidden()) {
            Ok(html) => bytes_response(StatusCode::OK, "text/html; charset=utf-8", html.into()),
            Err(error) => plain(io_status(&error)),
        }
    }
}

/// A file: validators, preconditions, then the whole file or one range.
fn serve_file(path: &Path, method: &Method, request: &HeaderMap) -> StaticResponse {
    // Validators and length come from the open file, so they describe the bytes sent; its
    // type too, so a file swapped for a FIFO since it was resolved is refused, not read.
    let opened = open_nonblocking(path).and_then(|file| Ok((file.metadata()?, file)));
    match opened {
        Ok((metadata, file)) if metadata.is_file() => {
            serve_open_file(path, file, &metadata, method, request)
        }
        Ok(_) => plain(StatusCode::FORBIDDEN),
        Err(error) => plain(io_status(&error)),
    }
}

/// A regular file already open (`metadata` from the open file): validators, preconditions,
/// then the whole file or one range. `path` gives only the content type.
fn serve_open_file(
    path: &Path,
    file: File,
    metadata: &std::fs::Metadata,
    method: &Method,
    request: &HeaderMap,
) -> StaticResponse {
    let validators = Validators::of(metadata);
    let mut headers = HeaderMap::new();
    validators.write(&mut headers);
    match evaluate(request, &validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => return empty(StatusCode::NOT_MODIFIED, headers, None),
        Precondition::Failed => return empty(StatusCode::PRECONDITION_FAILED, headers, Some(0)),
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let size = metadata.len();
    let (status, start, len) = match range_of(method, request, &validators, size) {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Bytes { start, end } => {
            insert_str(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{size}"),
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            insert_str(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return empty(StatusCode::RANGE_NOT_SATISFIABLE, headers, Some(0));
        }
    };
    StaticResponse {
        status,
        headers,
        content_length: Some(len),
        body: Body::File(FileChunks::new(file, start, len)),
    }
}

/// The range to send: only `GET` has ranges (RFC 9110 §14.2), one `Range` line, and only if
/// `If-Range` holds.
fn range_of(
    method: &Method,
    request: &HeaderMap,
    validators: &Validators,
    size: u64,
) -> RangeRequest {
    let mut values = request.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return RangeRequest::Whole;
    };
    let Ok(value) = value.to_str() else {
        return RangeRequest::Whole;
    };
    if *method != Method::GET || !if_range_holds(request, validators) {
        return RangeRequest::Whole;
    }
    RangeRequest::parse(value, size)
}

fn redirect(location: &str) -> StaticResponse {
    let Ok(value) = HeaderValue::from_str(location) else {
        return plain(StatusCode::BAD_REQUEST);
    };
    let mut response = plain(StatusCode::MOVED_PERMANENTLY);
    response.headers.insert(header::LOCATION, value);
    response
}

/// A short `text/plain` page: the status line's text.
pub(crate) fn plain(status: StatusCode) -> StaticResponse {
    let text = format!(
        "{} {}\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    bytes_response(status, "text/plain; charset=utf-8", Bytes::from(text))
}

fn bytes_response(status: StatusCode, content_type: &'static str, body: Bytes) -> StaticResponse {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    StaticResponse {
        status,
        headers,
        content_length: Some(body.len() as u64),
        body: Body::Bytes(body),
    }
}

fn empty(status: StatusCode, headers: HeaderMap, content_length: Option<u64>) -> StaticResponse {
    StaticResponse {
        status,
        headers,
        content_length,
        body: Body::Empty,
    }
}

fn insert_str(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Opens `path` for reading without waiting: a FIFO opens at once (no writer needed) and is
/// then refused for its type, where a plain open would wait for a writer. `O_NONBLOCK` means
/// nothing to a regular file's reads.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    options.open(path)
}

/// The status for a failed file operation: 404, 403, or 500.
pub(crate) fn io_status(error: &io::Error) -> StatusCode {
    match error.kind() {
        io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests;
