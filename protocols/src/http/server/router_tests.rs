//! The router through the in-memory harness: patterns, parameters, 404/405/400, query
//! strings and form bodies as a client sees them.

use http::{HeaderMap, Method, StatusCode};
use torsion_reactor::Reactor;

use super::tests::connect;
use super::*;

/// Answers with the parameters it got, `name=value` joined by `;`.
fn echo_params(req: Request, res: Responder, reactor: &mut Reactor) {
    let body: Vec<String> = req.params().map(|(n, v)| format!("{n}={v}")).collect();
    res.respond(reactor, StatusCode::OK, &HeaderMap::new(), body.join(";"))
}

fn router() -> Router {
    Router::new()
        .get("/users/{id}", echo_params)
        .route(Method::DELETE, "/users/{id}", echo_params)
        .get(
            "/users/me",
            |_: Request, res: Responder, r: &mut Reactor| {
                res.respond(r, StatusCode::OK, &HeaderMap::new(), "me")
            },
        )
        .get("/files/{dir}/*", echo_params)
        .get(
            "/search",
            |req: Request, res: Responder, r: &mut Reactor| {
                let (status, body) = match req.query_param("q") {
                    Ok(Some(q)) => (StatusCode::OK, format!("q={q}")),
                    Ok(None) => (StatusCode::OK, "no q".to_string()),
                    Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
                };
                res.respond(r, status, &HeaderMap::new(), body)
            },
        )
        .post("/form", |req: Request, res: Responder, r: &mut Reactor| {
            let (status, body) = match req.form() {
                Ok(form) => {
                    let pairs: Vec<String> = form.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    (StatusCode::OK, pairs.join(";"))
                }
                Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
            };
            res.respond(r, status, &HeaderMap::new(), body)
        })
}

/// The response to one request `head` (and `body`) on a fresh connection.
fn ask(request: &str) -> String {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    test.feed(&client, request.as_bytes());
    client.take_text()
}

fn get(target: &str) -> String {
    ask(&format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n"))
}

fn assert_answer(response: &str, status: &str, body: &str) {
    assert!(
        response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
        "{response}"
    );
    assert!(response.ends_with(&format!("\r\n\r\n{body}")), "{response}");
}

#[test]
fn handlers_read_parameters_by_name_percent_decoded() {
    assert_answer(&get("/users/42"), "200 OK", "id=42");
    assert_answer(&get("/users/me"), "200 OK", "me");
    assert_answer(&get("/users/J%C3%BCrgen?x=1"), "200 OK", "id=Jürgen");
    assert_answer(&get("/users/a+b%20c"), "200 OK", "id=a+b c");
    assert_answer(
        &get("/files/docs/a/b%2Fc.txt"),
        "200 OK",
        "dir=docs;*=a/b/c.txt",
    );
    assert_answer(&get("/files/docs/"), "200 OK", "dir=docs;*=");
}

#[test]
fn a_parameter_that_is_not_utf8_or_a_bad_escape_is_400() {
    for target in ["/users/%FF", "/users/%C3", "/users/%zz", "/users/50%"] {
        let response = get(target);
        assert_answer(&response, "400 Bad Request", "Bad Request\n");
    }
}

#[test]
fn a_pattern_with_another_method_is_405_with_allow_and_an_unknown_path_404() {
    let response = ask("POST /users/42 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_answer(&response, "405 Method Not Allowed", "Method Not Allowed\n");
    assert!(
        response.contains("\r\nallow: GET, DELETE, HEAD\r\n"),
        "{response}"
    );
    let response = ask("DELETE /users/42 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_answer(&response, "200 OK", "id=42");
    for target in ["/users", "/users/", "/users/1/2", "/files/docs", "/nothing"] {
        let response = get(target);
        assert_answer(&response, "404 Not Found", "Not Found\n");
        assert!(!response.contains("allow:"), "{response}");
    }
}

#[test]
fn a_fallback_gets_what_no_pattern_matches() {
    let router = router().fallback(|req: Request, res: Responder, r: &mut Reactor| {
        let body = format!("fallback {} {}", req.method(), req.path());
        res.respond(r, StatusCode::OK, &HeaderMap::new(), body)
    });
    let mut server = HttpServer::new(router);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /users/ HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_answer(&client.take_text(), "200 OK", "fallback GET /users/");
    test.feed(&client, b"PUT /users/1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_answer(&client.take_text(), "200 OK", "fallback PUT /users/1");
    test.feed(&client, b"GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_answer(&client.take_text(), "200 OK", "id=1");
}

#[test]
fn query_parameters_are_decoded_and_malformed_ones_refused() {
    assert_answer(&get("/search?q=a+b%26c&q=2"), "200 OK", "q=a b&c");
    assert_answer(&get("/search?x=1"), "200 OK", "no q");
    assert_answer(&get("/search"), "200 OK", "no q");
    let response = get("/search?q=%G1");
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
}

#[test]
fn form_bodies_are_decoded_when_their_content_type_says_so() {
    let body = "name=J%C3%BCrgen&msg=hi+there";
    let form = |content_type: &str| {
        ask(&format!(
            "POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    };
    assert_answer(
        &form("application/x-www-form-urlencoded"),
        "200 OK",
        "name=Jürgen;msg=hi there",
    );
    let response = form("text/plain");
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(response.ends_with("not application/x-www-form-urlencoded"));
}

#[test]
fn head_follows_a_get_pattern_and_exact_routes_have_no_parameters() {
    let response = ask("HEAD /users/42 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("content-length: 5\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n"), "the head only: {response}");

    let router = Router::new().get("/plain", |req: Request, res: Responder, r: &mut Reactor| {
        let body = format!("{:?} {}", req.param("id"), req.params().count());
        res.respond(r, StatusCode::OK, &HeaderMap::new(), body)
    });
    let mut server = HttpServer::new(router);
    let (mut test, client) = connect(&mut server);
    test.feed(&client, b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_answer(&client.take_text(), "200 OK", "None 0");
}

#[test]
fn a_pattern_router_keeps_the_connection_after_404_405_and_400() {
    let mut server = HttpServer::new(router());
    let (mut test, client) = connect(&mut server);
    for (request, status) in [
        ("GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n", "404 Not Found"),
        (
            "PUT /users/1 HTTP/1.1\r\nHost: a\r\n\r\n",
            "405 Method Not Allowed",
        ),
        (
            "GET /users/%FF HTTP/1.1\r\nHost: a\r\n\r\n",
            "400 Bad Request",
        ),
        ("GET /users/1 HTTP/1.1\r\nHost: a\r\n\r\n", "200 OK"),
    ] {
        test.feed(&client, request.as_bytes());
        let response = client.take_text();
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{request}: {response}"
        );
        assert!(!client.is_closed() && !client.is_write_shut(), "{request}");
    }
}
