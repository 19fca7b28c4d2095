//! Hidden files (a segment starting with `.`) and listings switched off.

use std::fs;

use http::StatusCode;

use super::*;

/// The tree with `.git/config`, `.env`, `sub/.hidden/b.txt` and a plain-named symlink to
/// `.env`.
fn with_dotfiles() -> Tree {
    let tree = Tree::new();
    let root = tree.files.root().to_path_buf();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::create_dir_all(root.join("sub/.hidden")).unwrap();
    fs::write(root.join(".git/config"), SECRET).unwrap();
    fs::write(root.join(".env"), SECRET).unwrap();
    fs::write(root.join("sub/.hidden/b.txt"), SECRET).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(".env", root.join("plain_name")).unwrap();
    tree
}

const HIDDEN_TARGETS: &[&str] = &[
    "/.git/config",
    "/.git/",
    "/.git",
    "/.env",
    "/%2eenv",
    "/%2Egit/config",
    "/sub/.hidden/b.txt",
    "/sub/.hidden/",
    "/sub/%2ehidden/b.txt",
    "/./.env",
    "/.nothing-there",
];

#[test]
fn hidden_paths_are_404_whether_or_not_they_exist() {
    let tree = with_dotfiles();
    for target in HIDDEN_TARGETS {
        assert_eq!(kind(&tree.files.resolve(target)), "404", "{target}");
        let mut response = tree.get(target);
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{target}");
        assert_eq!(body(&mut response), b"404 Not Found\n", "{target}");
    }
}

#[cfg(unix)]
#[test]
fn a_plain_named_symlink_to_a_hidden_file_is_404_too() {
    let tree = with_dotfiles();
    assert_eq!(kind(&tree.files.resolve("/plain_name")), "404");
    let files = tree.files.clone().with_dotfiles(true);
    assert_eq!(kind(&files.resolve("/plain_name")), "file");
}

#[test]
fn traversal_stays_403_even_through_a_dot() {
    let tree = with_dotfiles();
    for target in ["/.%2e/secret.txt", "/%2e%2e/secret.txt", "/../secret.txt"] {
        assert_eq!(kind(&tree.files.resolve(target)), "403", "{target}");
    }
}

#[test]
fn listings_leave_hidden_entries_out() {
    let tree = with_dotfiles();
    for target in ["/", "/sub/"] {
        let mut response = tree.get(target);
        assert_eq!(response.status, StatusCode::OK);
        let html = String::from_utf8(body(&mut response)).unwrap();
        assert!(!html.contains(".git"), "{html}");
        assert!(!html.contains(".env"), "{html}");
        assert!(!html.contains(".hidden"), "{html}");
        assert!(
            html.contains("hello.txt") || html.contains("a.txt"),
            "{html}"
        );
    }
}

#[test]
fn dotfiles_opted_in_are_served_and_listed() {
    let tree = with_dotfiles();
    let files = tree.files.clone().with_dotfiles(true);
    assert!(files.serves_dotfiles() && !tree.files.serves_dotfiles());
    for target in ["/.git/config", "/.env", "/sub/.hidden/b.txt", "/%2eenv"] {
        let mut response = files.respond(&Method::GET, &target.parse().unwrap(), &HeaderMap::new());
        assert_eq!(response.status, StatusCode::OK, "{target}");
        assert_eq!(body(&mut response), SECRET, "{target}");
    }
    let uri = "/".parse().unwrap();
    let mut response = files.respond(&Method::GET, &uri, &HeaderMap::new());
    let html = String::from_utf8(body(&mut response)).unwrap();
    assert!(html.contains("<a href=\".git/\">.git/</a>"), "{html}");
    assert!(html.contains("<a href=\".env\">.env</a>"), "{html}");
}

#[test]
fn with_listing_off_a_directory_without_index_is_403_and_one_with_index_is_served() {
    let tree = Tree::new();
    let files = tree.files.clone().with_listing(false);
    assert!(!files.lists_directories() && tree.files.lists_directories());
    let get =
        |target: &str| files.respond(&Method::GET, &target.parse().unwrap(), &HeaderMap::new());
    for target in ["/", "/sub/", "/sub/inner/"] {
        let mut response = get(target);
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{target}");
        assert_eq!(body(&mut response), b"403 Forbidden\n");
    }
    let mut response = get("/site/");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(body(&mut response), b"<h1>index</h1>");
    assert_eq!(get("/sub").status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(get("/hello.txt").status, StatusCode::OK);
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let tree = Tree::new();
    let fifo = tree.files.root().join("pipe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !status.is_ok_and(|s| s.success()) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "mkfifo is missing"
        );
        eprintln!("skipped: mkfifo is missing");
        return;
    }
    assert_eq!(tree.get("/pipe").status, StatusCode::FORBIDDEN);
}
