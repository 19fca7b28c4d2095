//! `respond_cached` answers exactly as `respond` does, or not at all.

use http::{header, StatusCode};

use super::*;

/// Status, headers and body of a response.
fn parts(mut response: StaticResponse) -> (StatusCode, HeaderMap, Option<u64>, Vec<u8>) {
    let body = body(&mut response);
    (
        response.status,
        response.headers,
        response.content_length,
        body,
    )
}

/// A request: method, target, headers.
type Case<'a> = (Method, &'a str, &'a [(HeaderName, &'a str)]);

#[test]
fn a_plain_file_is_answered_without_waiting_and_as_respond_answers() {
    let tree = Tree::new();
    let etag = header(&tree.get("/hello.txt"), header::ETAG).to_string();
    let cases: &[Case<'_>] = &[
        (Method::GET, "/hello.txt", &[]),
        (Method::HEAD, "/hello.txt", &[]),
        (Method::GET, "/hello.txt?x=1", &[]),
        (Method::GET, "/sub/a.txt", &[]),
        (Method::GET, "/a%20b.txt", &[]),
        (Method::GET, "/hello.txt", &[(header::RANGE, "bytes=6-")]),
        (Method::GET, "/hello.txt", &[(header::RANGE, "bytes=100-")]),
        (Method::GET, "/hello.txt", &[(header::IF_NONE_MATCH, &etag)]),
        (Method::GET, "/empty.txt", &[]),
    ];
    for (method, target, headers) in cases {
        let cached = tree.files.respond_cached(
            method,
            &target.parse().unwrap(),
            &headers
                .iter()
                .map(|(n, v)| (n.clone(), HeaderValue::from_str(v).unwrap()))
                .collect(),
        );
        let cached = cached.unwrap_or_else(|| panic!("{method} {target}: not answered"));
        let slow = tree.request(method.clone(), target, headers);
        assert_eq!(parts(cached), parts(slow), "{method} {target}");
    }
}

#[test]
fn anything_but_a_plain_regular_file_is_left_to_respond() {
    let tree = Tree::new();
    let root = tree.files.root().to_path_buf();
    std::fs::write(root.join(".env"), SECRET).unwrap();
    for target in [
        "/",
        "/sub/",
        "/sub",
        "/missing",
        "/.env",
        "/%2eenv",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/link_in",
        "/link_out",
        "/link_in_dir/a.txt",
        "/hello.txt/",
        "/%zz",
    ] {
        let uri = target.parse().unwrap();
        let cached = tree
            .files
            .respond_cached(&Method::GET, &uri, &HeaderMap::new());
        assert!(cached.is_none(), "{target} must go the long way");
    }
    let uri = "/hello.txt".parse().unwrap();
    assert!(tree
        .files
        .respond_cached(&Method::POST, &uri, &HeaderMap::new())
        .is_none());
    let files = tree.files.clone().with_dotfiles(true);
    let uri = "/.env".parse().unwrap();
    let mut response = files
        .respond_cached(&Method::GET, &uri, &HeaderMap::new())
        .expect("served when opted in");
    assert_eq!(body(&mut response), SECRET);
}
