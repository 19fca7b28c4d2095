use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, Uri};

use super::*;

mod cached;
mod hidden;
mod paths;
mod responses;

/// A temporary tree, removed on drop:
/// ```text
/// base/
///   root/   hello.txt page.html style.css app.js data.json logo.PNG photo.jpeg blob noext.
///           "<script>&.txt" "a b.txt"  sub/{a.txt, inner/}  site/index.html  empty.txt
///           link_in -> hello.txt   link_in_dir -> sub   link_out -> ../secret.txt
///           link_out_dir -> ../outside   link_sibling -> ../root2
///           escape_index/index.html -> ../../secret.txt
///   secret.txt  outside/secret.txt  root2/secret.txt
/// ```
pub(super) struct Tree {
    pub(super) base: PathBuf,
    pub(super) files: StaticFiles,
}

pub(super) const HELLO: &[u8] = b"Hello, static world!\n";
pub(super) const SECRET: &[u8] = b"top secret";

impl Tree {
    pub(super) fn new() -> Tree {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!(
            "torsion-static-files-{}-{unique}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        for dir in [
            "root/sub/inner",
            "root/site",
            "root/escape_index",
            "outside",
            "root2",
        ] {
            fs::create_dir_all(base.join(dir)).unwrap();
        }
        for (path, body) in [
            ("secret.txt", SECRET),
            ("outside/secret.txt", SECRET),
            ("root2/secret.txt", SECRET),
            ("root/hello.txt", HELLO),
            ("root/page.html", b"<p>hi</p>"),
            ("root/style.css", b"p{}"),
            ("root/app.js", b"1"),
            ("root/data.json", b"{}"),
            ("root/logo.PNG", b"png"),
            ("root/photo.jpeg", b"jpg"),
            ("root/blob", b"?"),
            ("root/empty.txt", b""),
            ("root/<script>&.txt", b"x"),
            ("root/a b.txt", b"spaced"),
            ("root/sub/a.txt", b"a"),
            ("root/site/index.html", b"<h1>index</h1>"),
        ] {
            fs::write(base.join(path), body).unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink("hello.txt", root.join("link_in")).unwrap();
            symlink("sub", root.join("link_in_dir")).unwrap();
            symlink("../secret.txt", root.join("link_out")).unwrap();
            symlink(base.join("outside"), root.join("link_out_dir")).unwrap();
            symlink("../root2", root.join("link_sibling")).unwrap();
            symlink("../../secret.txt", root.join("escape_index/index.html")).unwrap();
        }
        let files = StaticFiles::new(&root).unwrap();
        Tree { base, files }
    }

    pub(super) fn get(&self, target: &str) -> StaticResponse {
        self.request(Method::GET, target, &[])
    }

    pub(super) fn request(
        &self,
        method: Method,
        target: &str,
        headers: &[(HeaderName, &str)],
    ) -> StaticResponse {
        let uri: Uri = target.parse().unwrap();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        self.files.respond(&method, &uri, &map)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// The whole body, read chunk by chunk.
pub(super) fn body(response: &mut StaticResponse) -> Vec<u8> {
    match &mut response.body {
        Body::Empty => Vec::new(),
        Body::Bytes(bytes) => bytes.to_vec(),
        Body::File(chunks) => {
            let mut out = Vec::new();
            while let Some(chunk) = chunks.next_chunk().unwrap() {
                out.extend_from_slice(&chunk);
            }
            out
        }
    }
}

pub(super) fn header(response: &StaticResponse, name: HeaderName) -> &str {
    response
        .headers
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

pub(super) fn kind(resolved: &Resolved) -> &'static str {
    match resolved {
        Resolved::File { .. } => "file",
        Resolved::Directory { .. } => "dir",
        Resolved::Redirect { .. } => "redirect",
        Resolved::NotFound => "404",
        Resolved::Forbidden => "403",
        Resolved::BadRequest => "400",
    }
}
