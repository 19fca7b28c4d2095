//! Directory listings as HTML, in the shape of Python's `http.server`.

use std::fs;
use std::io;
use std::path::Path;

use super::Hidden;

/// The HTML listing of directory `dir`, titled with `url_path` (decoded, slash-terminated).
///
/// As Python's `http.server`: entries sorted case-insensitively, a directory's name followed
/// by `/`, a symlink's by `@`; names HTML-escaped in the text and percent-encoded in the
/// links. Entries whose names are not UTF-8 are left out (no URL could name them: such
/// targets get 400), and so are hidden ones (a name starting with `.`) unless `hidden` says
/// [`Hidden::Serve`].
pub fn listing_html(dir: &Path, url_path: &str, hidden: Hidden) -> io::Result<String> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if hidden.hides(&name) {
            continue;
        }
        let path = entry.path();
        let is_dir = fs::metadata(&path).is_ok_and(|meta| meta.is_dir());
        let is_link = fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink());
        entries.push((name, is_dir, is_link));
    }
    entries.sort_by(|a, b| {
        a.0.to_lowercase()
            .cmp(&b.0.to_lowercase())
            .then(a.0.cmp(&b.0))
    });
    let title = html_escape(url_path);
    let mut html = format!(
        "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Directory listing for {title}</title>\n</head>\n<body>\n\
         <h1>Directory listing for {title}</h1>\n<hr>\n<ul>\n"
    );
    for (name, is_dir, is_link) in entries {
        let (mut shown, mut link) = (name.clone(), percent_encode(&name));
        if is_dir {
            shown.push('/');
            link.push('/');
        }
        if is_link {
            shown.push('@');
        }
        html.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>\n",
            link,
            html_escape(&shown)
        ));
    }
    html.push_str("</ul>\n<hr>\n</body>\n</html>\n");
    Ok(html)
}

/// Escapes `&`, `<`, `>`, `"` and `'` (Python's `html.escape`).
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes every byte of `segment` but RFC 3986's unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`), so the result is one path segment whatever the name holds
/// (`/`, `?`, `#`, `%`, spaces, non-ASCII).
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
