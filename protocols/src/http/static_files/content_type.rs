//! Content types by file extension: a small built-in table, `application/octet-stream`
//! otherwise.

use std::path::Path;

/// The `Content-Type` for `path`, from its extension (compared case-insensitively). Text types
/// carry `; charset=utf-8`; an unknown or missing extension gives `application/octet-stream`
/// (as Python's `http.server` does), which browsers download rather than render.
pub fn content_type(path: &Path) -> &'static str {
    let Some(ext) = path.extension().and_then(|ext| ext.to_str()) else {
        return OCTET_STREAM;
    };
    TABLE
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(ext))
        .map_or(OCTET_STREAM, |(_, mime)| mime)
}

const OCTET_STREAM: &str = "application/octet-stream";

const TABLE: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "application/xml"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("ico", "image/vnd.microsoft.icon"),
    ("pdf", "application/pdf"),
    ("wasm", "application/wasm"),
    ("mp4", "video/mp4"),
    ("woff2", "font/woff2"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
];
