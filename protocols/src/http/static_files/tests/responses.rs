//! Responses: content types, listings, validators, conditions, ranges, HEAD, chunks.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use http::{header, Method, StatusCode};

use super::*;

#[test]
fn content_types_by_extension() {
    let cases = [
        ("a.html", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.PNG", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.gif", "image/gif"),
        ("a.svg", "image/svg+xml"),
        ("a.ico", "image/vnd.microsoft.icon"),
        ("a.pdf", "application/pdf"),
        ("a.wasm", "application/wasm"),
        ("a.xml", "application/xml"),
        ("a.mp4", "video/mp4"),
        ("a.webp", "image/webp"),
        ("a.woff2", "font/woff2"),
        ("a.zip", "application/zip"),
        ("a.tar.gz", "application/gzip"),
        ("a.unknown", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        (".hidden", "application/octet-stream"),
    ];
    for (name, expected) in cases {
        assert_eq!(content_type(Path::new(name)), expected, "{name}");
    }
    let tree = Tree::new();
    assert_eq!(
        header(&tree.get("/logo.PNG"), header::CONTENT_TYPE),
        "image/png"
    );
    assert_eq!(
        header(&tree.get("/blob"), header::CONTENT_TYPE),
        "application/octet-stream"
    );
}

#[test]
fn a_file_has_validators_and_its_bytes() {
    let tree = Tree::new();
    let mut response = tree.get("/hello.txt");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.content_length, Some(HELLO.len() as u64));
    let etag = header(&response, header::ETAG);
    assert!(
        etag.starts_with(&format!("\"{:x}-", HELLO.len())) && etag.ends_with('"'),
        "{etag}"
    );
    let modified = header(&response, header::LAST_MODIFIED);
    assert_eq!(modified.len(), 29);
    assert!(modified.ends_with(" GMT"));
    assert!(parse_http_date(modified).is_some());
    assert_eq!(header(&response, header::ACCEPT_RANGES), "bytes");
    assert_eq!(body(&mut response), HELLO);
    let mut spaced = tree.get("/a%20b.txt");
    assert_eq!(body(&mut spaced), b"spaced");
    let mut empty = tree.get("/empty.txt");
    assert_eq!(
        (empty.status, empty.content_length),
        (StatusCode::OK, Some(0))
    );
    assert_eq!(body(&mut empty), b"");
}

#[test]
fn listing_is_sorted_escaped_and_encoded() {
    let tree = Tree::new();
    let mut response = tree.get("/");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        header(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let html = String::from_utf8(body(&mut response)).unwrap();
    assert!(
        html.contains("<title>Directory listing for /</title>"),
        "{html}"
    );
    assert!(
        html.contains("<li><a href=\"%3Cscript%3E%26.txt\">&lt;script&gt;&amp;.txt</a></li>"),
        "{html}"
    );
    assert!(!html.contains("<script>"));
    assert!(html.contains("<li><a href=\"a%20b.txt\">a b.txt</a></li>"));
    assert!(html.contains("<li><a href=\"sub/\">sub/</a></li>"));
    #[cfg(unix)]
    assert!(html.contains("<li><a href=\"link_in\">link_in@</a></li>"));
    let names: Vec<&str> = html.lines().filter(|l| l.starts_with("<li>")).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|line| line.to_lowercase());
    assert_eq!(names, sorted);
    let mut sub = tree.get("/sub/");
    let html = String::from_utf8(body(&mut sub)).unwrap();
    assert!(html.contains("Directory listing for /sub/"));
    assert!(html.contains("<a href=\"inner/\">inner/</a>"));
    assert_eq!(
        html_escape("<a href='x'>&\"</a>"),
        "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;&lt;/a&gt;"
    );
}

#[test]
fn a_directory_with_index_html_serves_it() {
    let tree = Tree::new();
    let mut response = tree.get("/site/");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        header(&response, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert!(response.headers.contains_key(header::ETAG));
    assert_eq!(body(&mut response), b"<h1>index</h1>");
}

#[test]
fn a_directory_without_its_slash_is_redirected() {
    let tree = Tree::new();
    let response = tree.get("/sub");
    assert_eq!(response.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&response, header::LOCATION), "/sub/");
    let response = tree.get("/sub/inner?x=1&y");
    assert_eq!(header(&response, header::LOCATION), "/sub/inner/?x=1&y");
    // A doubled slash never becomes a protocol-relative Location (Python's CVE-2021-28861).
    let response = tree.get("//sub");
    assert_eq!(header(&response, header::LOCATION), "/sub/");
    assert_eq!(tree.get("/").status, StatusCode::OK);
}

#[test]
fn if_none_match_gives_304() {
    let tree = Tree::new();
    let etag = header(&tree.get("/hello.txt"), header::ETAG).to_owned();
    let weak = format!("W/{etag}");
    let list = format!("\"other\", {etag}");
    for value in [etag.as_str(), weak.as_str(), list.as_str(), "*"] {
        let mut response =
            tree.request(Method::GET, "/hello.txt", &[(header::IF_NONE_MATCH, value)]);
        assert_eq!(response.status, StatusCode::NOT_MODIFIED, "{value}");
        assert_eq!(header(&response, header::ETAG), etag);
        assert!(response.headers.contains_key(header::LAST_MODIFIED));
        assert_eq!(response.content_length, None);
        assert!(body(&mut response).is_empty());
    }
    for value in ["\"other\"", "W/\"other\", \"x\"", "garbage"] {
        let response = tree.request(Method::GET, "/hello.txt", &[(header::IF_NONE_MATCH, value)]);
        assert_eq!(response.status, StatusCode::OK, "{value}");
    }
}

#[test]
fn if_modified_since_not_older_gives_304() {
    let tree = Tree::new();
    let modified = header(&tree.get("/hello.txt"), header::LAST_MODIFIED).to_owned();
    let secs = parse_http_date(&modified).unwrap();
    let later = http_date(secs + 3600);
    let earlier = http_date(secs - 3600);
    for value in [modified.as_str(), later.as_str()] {
        let response = tree.request(
            Method::GET,
            "/hello.txt",
            &[(header::IF_MODIFIED_SINCE, value)],
        );
        assert_eq!(response.status, StatusCode::NOT_MODIFIED, "{value}");
    }
    for value in [earlier.as_str(), "not a date"] {
        let response = tree.request(
            Method::GET,
            "/hello.txt",
            &[(header::IF_MODIFIED_SINCE, value)],
        );
        assert_eq!(response.status, StatusCode::OK, "{value}");
    }
}

#[test]
fn if_none_match_wins_over_if_modified_since() {
    let tree = Tree::new();
    let first = tree.get("/hello.txt");
    let modified = header(&first, header::LAST_MODIFIED).to_owned();
    let etag = header(&first, header::ETAG).to_owned();
    // The date says "not modified", the tag says "changed": the tag decides.
    let response = tree.request(
        Method::GET,
        "/hello.txt",
        &[
            (header::IF_NONE_MATCH, "\"stale\""),
            (header::IF_MODIFIED_SINCE, &modified),
        ],
    );
    assert_eq!(response.status, StatusCode::OK);
    // The tag matches, the date is old: still 304.
    let old = http_date(0);
    let response = tree.request(
        Method::GET,
        "/hello.txt",
        &[
            (header::IF_NONE_MATCH, &etag),
            (header::IF_MODIFIED_SINCE, &old),
        ],
    );
    assert_eq!(response.status, StatusCode::NOT_MODIFIED);
}

#[test]
fn if_match_and_if_unmodified_since_give_412() {
    let tree = Tree::new();
    let first = tree.get("/hello.txt");
    let etag = header(&first, header::ETAG).to_owned();
    let failed = tree.request(
        Method::GET,
        "/hello.txt",
        &[(header::IF_MATCH, "\"other\"")],
    );
    assert_eq!(failed.status, StatusCode::PRECONDITION_FAILED);
    let weak = format!("W/{etag}");
    let failed = tree.request(Method::GET, "/hello.txt", &[(header::IF_MATCH, &weak)]);
    assert_eq!(failed.status, StatusCode::PRECONDITION_FAILED);
    let ok = tree.request(Method::GET, "/hello.txt", &[(header::IF_MATCH, &etag)]);
    assert_eq!(ok.status, StatusCode::OK);
    let old = http_date(0);
    let failed = tree.request(
        Method::GET,
        "/hello.txt",
        &[(header::IF_UNMODIFIED_SINCE, &old)],
    );
    assert_eq!(failed.status, StatusCode::PRECONDITION_FAILED);
}

fn http_date(secs: u64) -> String {
    String::from_utf8(
        crate::http::codec::HttpDate::from_unix_secs(secs)
            .as_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[test]

fn http_dates_in_all_three_formats() {
    let expected = Some(784_111_777);
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
    assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
    assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), expected);
    for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
        assert_eq!(parse_http_date(&http_date(secs)), Some(secs));
    }
    for bad in [
        "",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 8:49:37 GMT x",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad}");
    }
}

fn range(tree: &Tree, value: &str) -> StaticResponse {
    tree.request(Method::GET, "/hello.txt", &[(header::RANGE, value)])
}

#[test]
fn single_ranges_give_206_with_the_bytes() {
    let tree = Tree::new();
    let size = HELLO.len();
    let cases = [
        ("bytes=0-4", 0, 4),
        ("bytes=7-", 7, size - 1),
        ("bytes=-7", size - 7, size - 1),
        ("bytes=3-3", 3, 3),
        ("bytes=5-999", 5, size - 1),
        ("bytes=-999", 0, size - 1),
        ("BYTES = 1-2", 1, 2),
    ];
    for (value, start, end) in cases {
        let mut response = range(&tree, value);
        assert_eq!(response.status, StatusCode::PARTIAL_CONTENT, "{value}");
        let content_range = format!("bytes {start}-{end}/{size}");
        assert_eq!(
            header(&response, header::CONTENT_RANGE),
            content_range,
            "{value}"
        );
        assert_eq!(response.content_length, Some((end - start + 1) as u64));
        assert_eq!(body(&mut response), &HELLO[start..=end], "{value}");
    }
}

#[test]
fn unsatisfiable_ranges_give_416() {
    let tree = Tree::new();
    let size = HELLO.len();
    for value in [
        format!("bytes={size}-"),
        format!("bytes={}-{}", size + 5, size + 9),
        "bytes=-0".into(),
    ] {
        let mut response = range(&tree, &value);
        assert_eq!(
            response.status,
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{value}"
        );
        assert_eq!(
            header(&response, header::CONTENT_RANGE),
            format!("bytes */{size}")
        );
        assert!(body(&mut response).is_empty());
    }
    let empty = tree.request(Method::GET, "/empty.txt", &[(header::RANGE, "bytes=0-")]);
    assert_eq!(empty.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&empty, header::CONTENT_RANGE), "bytes */0");
}

#[test]
fn multiple_or_malformed_ranges_give_the_whole_file() {
    let tree = Tree::new();
    for value in [
        "bytes=0-1,4-5",
        "bytes=0-1, -2",
        "bytes=5-2",
        "bytes=abc",
        "bytes=",
        "bytes=-",
        "items=0-1",
        "0-1",
        "bytes=1-2-3",
        "bytes=+1-2",
    ] {
        let mut response = range(&tree, value);
        assert_eq!(response.status, StatusCode::OK, "{value}");
        assert!(!response.headers.contains_key(header::CONTENT_RANGE));
        assert_eq!(body(&mut response), HELLO, "{value}");
    }
}

#[test]
fn if_range_decides_whether_the_range_applies() {
    let tree = Tree::new();
    let first = tree.get("/hello.txt");
    let etag = header(&first, header::ETAG).to_owned();
    let modified = header(&first, header::LAST_MODIFIED).to_owned();
    let with = |if_range: &str| {
        tree.request(
            Method::GET,
            "/hello.txt",
            &[(header::RANGE, "bytes=0-1"), (header::IF_RANGE, if_range)],
        )
        .status
    };
    assert_eq!(with(&etag), StatusCode::PARTIAL_CONTENT);
    assert_eq!(with(&modified), StatusCode::PARTIAL_CONTENT);
    assert_eq!(with("\"stale\""), StatusCode::OK);
    assert_eq!(with(&format!("W/{etag}")), StatusCode::OK);
    assert_eq!(with(&http_date(0)), StatusCode::OK);
    assert_eq!(with("nonsense"), StatusCode::OK);
}

#[test]
fn head_has_the_headers_and_no_body() {
    let tree = Tree::new();
    let get = tree.get("/hello.txt");
    let mut head = tree.request(Method::HEAD, "/hello.txt", &[]);
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers, get.headers);
    assert_eq!(head.content_length, Some(HELLO.len() as u64));
    assert!(matches!(head.body, Body::Empty));
    assert!(body(&mut head).is_empty());
    // Range is defined for GET only.
    let head_range = tree.request(Method::HEAD, "/hello.txt", &[(header::RANGE, "bytes=0-1")]);
    assert_eq!(head_range.status, StatusCode::OK);
    let listing = tree.request(Method::HEAD, "/", &[]);
    assert!(matches!(listing.body, Body::Empty));
    assert!(listing.content_length.unwrap() > 0);
}

#[test]
fn other_methods_get_405_with_allow() {
    let tree = Tree::new();
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let response = tree.request(method.clone(), "/hello.txt", &[]);
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(header(&response, header::ALLOW), "GET, HEAD");
    }
}

#[test]
fn a_large_file_comes_in_bounded_chunks() {
    let tree = Tree::new();
    let data: Vec<u8> = (0..5 * 1024 * 1024 + 123)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    fs::write(tree.files.root().join("large.bin"), &data).unwrap();
    let mut response = tree.get("/large.bin");
    assert_eq!(response.content_length, Some(data.len() as u64));
    let Body::File(chunks) = &mut response.body else {
        panic!("a file body");
    };
    let mut joined = Vec::new();
    let mut count = 0;
    while let Some(chunk) = chunks.next_chunk().unwrap() {
        assert!(!chunk.is_empty() && chunk.len() <= FileChunks::DEFAULT_CHUNK_SIZE);
        joined.extend_from_slice(&chunk);
        count += 1;
    }
    assert_eq!(count, data.len().div_ceil(FileChunks::DEFAULT_CHUNK_SIZE));
    assert!(joined == data);
    assert_eq!(chunks.next_chunk().unwrap(), None::<Bytes>);
    // A range of it, in small chunks.
    let mut ranged = tree.request(
        Method::GET,
        "/large.bin",
        &[(header::RANGE, "bytes=1000000-1999999")],
    );
    let Body::File(chunks) = std::mem::replace(&mut ranged.body, Body::Empty) else {
        panic!("a file body");
    };
    let mut chunks = chunks.with_chunk_size(4096);
    let mut joined = Vec::new();
    while let Some(chunk) = chunks.next_chunk().unwrap() {
        assert!(chunk.len() <= 4096);
        joined.extend_from_slice(&chunk);
    }
    assert!(joined == data[1_000_000..2_000_000]);
}

#[test]
fn a_file_that_shrinks_is_an_error_not_a_short_body() {
    let tree = Tree::new();
    let path = tree.files.root().join("shrinks.txt");
    fs::write(&path, vec![b'x'; 100]).unwrap();
    let file = fs::File::open(&path).unwrap();
    let mut chunks = FileChunks::new(file, 0, 200);
    let error = chunks.next_chunk().unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn range_parsing() {
    use RangeRequest::*;
    assert_eq!(
        RangeRequest::parse("bytes=0-0", 1),
        Bytes { start: 0, end: 0 }
    );
    assert_eq!(
        RangeRequest::parse("bytes=0-99999999999999999999999", 10),
        Bytes { start: 0, end: 9 }
    );
    assert_eq!(
        RangeRequest::parse("bytes=99999999999999999999999-", 10),
        Unsatisfiable
    );
    assert_eq!(
        RangeRequest::parse("bytes=-5", 3),
        Bytes { start: 0, end: 2 }
    );
    assert_eq!(RangeRequest::parse("bytes=-1", 0), Unsatisfiable);
    assert_eq!(RangeRequest::parse("bytes=0-1,2-3", 10), Whole);
}
