//! `http_server`'s `GET /counter` over a real socket: it answers `visits: N` and sets the
//! cookie `visits=N` (`Path=/`, `HttpOnly`, `SameSite=Lax`), counting from the `visits`
//! cookie the client sends back. The binary is found, or the test skipped outside CI, as in
//! `common/examples.rs`.

mod common;

use std::io::Write;

use common::{connect, read_to_end, servers};

/// The response to `GET /counter` with these extra header lines, on a connection of its own.
fn get_counter(addr: std::net::SocketAddr, extra: &str) -> String {
    let mut stream = connect(addr);
    let request = format!("GET /counter HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let (response, end) = read_to_end(&mut stream);
    end.unwrap();
    String::from_utf8(response).unwrap()
}

#[test]
fn http_server_counts_visits_in_a_cookie() {
    let dir = std::env::temp_dir().display().to_string();
    let Some((mut server, printed)) =
        servers::start_server("http_server", &["127.0.0.1:0", &dir], None)
    else {
        return;
    };
    let addr = printed.parse().expect("an address");

    let first = get_counter(addr, "");
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.contains("content-type: text/plain\r\n"), "{first}");
    assert!(
        first.contains("set-cookie: visits=1; Path=/; HttpOnly; SameSite=Lax\r\n"),
        "{first}"
    );
    assert!(first.ends_with("\r\n\r\nvisits: 1"), "{first}");

    let again = get_counter(addr, "Cookie: theme=dark; visits=41\r\n");
    assert!(again.contains("set-cookie: visits=42; "), "{again}");
    assert!(again.ends_with("\r\n\r\nvisits: 42"), "{again}");

    for garbage in ["visits=forty-one", "visits=", "visits=-3", "other=41"] {
        let response = get_counter(addr, &format!("Cookie: {garbage}\r\n"));
        assert!(
            response.contains("set-cookie: visits=1; "),
            "{garbage}: {response}"
        );
        assert!(response.ends_with("visits: 1"), "{garbage}: {response}");
    }
    assert!(server.terminate("http_server").success());
}
