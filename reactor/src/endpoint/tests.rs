use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{ClientEndpoint, ParseEndpointError as E, ServerEndpoint};
use crate::connect::Target;
use crate::UnixAddress;

fn server(s: &str) -> ServerEndpoint {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn server_error(s: &str) -> E {
    match s.parse::<ServerEndpoint>() {
        Ok(endpoint) => panic!("{s:?} should not parse, got {endpoint:?}"),
        Err(e) => e,
    }
}

fn client(s: &str) -> ClientEndpoint {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn client_error(s: &str) -> E {
    match s.parse::<ClientEndpoint>() {
        Ok(endpoint) => panic!("{s:?} should not parse, got {endpoint:?}"),
        Err(e) => e,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn tcp(a: &str, backlog: Option<u32>) -> ServerEndpoint {
    ServerEndpoint::Tcp {
        addr: addr(a),
        backlog,
        reuse_port: false,
    }
}

#[test]
fn tcp_servers_listen_on_every_ipv4_interface_by_default() {
    assert_eq!(server("tcp:8000"), tcp("0.0.0.0:8000", None));
    assert_eq!(server("tcp:port=8000"), tcp("0.0.0.0:8000", None));
    assert_eq!(server("tcp:0"), tcp("0.0.0.0:0", None));
}

#[test]
fn tcp_servers_take_an_interface_and_a_backlog_in_any_order() {
    let expected = tcp("127.0.0.1:8000", Some(16));
    assert_eq!(server("tcp:8000:interface=127.0.0.1:backlog=16"), expected);
    assert_eq!(server("tcp:backlog=16:8000:interface=127.0.0.1"), expected);
    assert_eq!(server(r"tcp:8000:interface=\:\:1"), tcp("[::1]:8000", None));
    assert_eq!(server("tcp:8000:interface=[::1]"), tcp("[::1]:8000", None));
}

#[test]
fn tcp6_servers_default_to_every_ipv6_interface() {
    assert_eq!(server("tcp6:8000"), tcp("[::]:8000", None));
    assert_eq!(
        server(r"tcp6:8000:interface=\:\:1:backlog=0"),
        tcp("[::1]:8000", Some(0))
    );
}

#[test]
fn a_plain_ip_and_port_is_a_tcp_server() {
    assert_eq!(server("127.0.0.1:8000"), tcp("127.0.0.1:8000", None));
    assert_eq!(server("[::1]:8000"), tcp("[::1]:8000", None));
    assert_eq!(server("0.0.0.0:0"), tcp("0.0.0.0:0", None));
}

#[test]
fn tls_servers_name_their_key_and_certificate() {
    let expected = ServerEndpoint::Tls {
        addr: addr("127.0.0.1:8443"),
        backlog: None,
        cert_chain: PathBuf::from("/etc/cert.pem"),
        private_key: PathBuf::from("/etc/key.pem"),
    };
    let s = "tls:8443:certKey=/etc/cert.pem:privateKey=/etc/key.pem:interface=127.0.0.1";
    assert_eq!(server(s), expected);
}

#[test]
fn a_tls_servers_certificate_defaults_to_its_key_file() {
    let ServerEndpoint::Tls {
        addr: a,
        backlog,
        cert_chain,
        private_key,
    } = server("ssl:443:privateKey=both.pem:backlog=5")
    else {
        panic!("not TLS");
    };
    assert_eq!(a, addr("0.0.0.0:443"));
    assert_eq!(backlog, Some(5));
    assert_eq!(cert_chain, PathBuf::from("both.pem"));
    assert_eq!(private_key, PathBuf::from("both.pem"));
}

#[test]
fn unix_servers_take_a_path_and_a_mode() {
    let path = |p: &str| UnixAddress::path(p);
    let s = server("unix:/run/app.sock");
    assert_eq!(
        s,
        ServerEndpoint::Unix {
            name: path("/run/app.sock"),
            mode: None
        }
    );
    for mode in ["0660", "660", "0o660"] {
        let s = server(&format!("unix:/run/app.sock:mode={mode}"));
        assert_eq!(
            s,
            ServerEndpoint::Unix {
                name: path("/run/app.sock"),
                mode: Some(0o660)
            }
        );
    }
    let s = server(r"unix:address=/tmp/a\:b\=c");
    assert_eq!(
        s,
        ServerEndpoint::Unix {
            name: path("/tmp/a:b=c"),
            mode: None
        }
    );
}

#[test]
fn an_at_sign_names_an_abstract_unix_socket() {
    assert_eq!(
        server("unix:@torsion-test"),
        ServerEndpoint::Unix {
            name: UnixAddress::abstract_name("torsion-test"),
            mode: None
        }
    );
}

#[test]
fn tcp_clients_take_a_host_and_port() {
    let host = |h: &str, p| Target::Host(h.to_string(), p);
    assert_eq!(
        client("tcp:host=example.com:port=443"),
        ClientEndpoint::Tcp {
            target: host("example.com", 443),
            timeout: None
        }
    );
    assert_eq!(
        client("tcp:example.com:443:timeout=2.5"),
        ClientEndpoint::Tcp {
            target: host("example.com", 443),
            timeout: Some(Duration::from_millis(2500))
        }
    );
    assert_eq!(
        client("tcp:port=80:host=127.0.0.1"),
        ClientEndpoint::Tcp {
            target: Target::Address(addr("127.0.0.1:80")),
            timeout: None
        }
    );
    for s in [r"tcp:host=\:\:1:port=80", "tcp:host=[::1]:port=80"] {
        assert_eq!(
            client(s),
            ClientEndpoint::Tcp {
                target: Target::Address(addr("[::1]:80")),
                timeout: None
            }
        );
    }
}

#[test]
fn a_plain_host_and_port_is_a_tcp_client() {
    let plain = |s: &str| ClientEndpoint::Tcp {
        target: s.parse().unwrap(),
        timeout: None,
    };
    assert_eq!(client("127.0.0.1:8000"), plain("127.0.0.1:8000"));
    assert_eq!(client("[::1]:8000"), plain("[::1]:8000"));
    assert_eq!(client("localhost:8000"), plain("localhost:8000"));
    assert_eq!(
        client("localhost:8000"),
        ClientEndpoint::Tcp {
            target: Target::Host("localhost".into(), 8000),
            timeout: None
        }
    );
}

#[test]
fn tls_clients_take_a_host_port_and_roots() {
    assert_eq!(
        client("tls:host=localhost:port=8443:trustRoots=/tmp/ca.pem:timeout=3"),
        ClientEndpoint::Tls {
            target: Target::Host("localhost".into(), 8443),
            timeout: Some(Duration::from_secs(3)),
            trust_roots: Some(PathBuf::from("/tmp/ca.pem")),
        }
    );
    assert_eq!(
        client("tls:example.com:443"),
        ClientEndpoint::Tls {
            target: Target::Host("example.com".into(), 443),
            timeout: None,
            trust_roots: None,
        }
    );
}

#[test]
fn unix_clients_take_a_path_or_an_abstract_name() {
    assert_eq!(
        client("unix:path=/run/app.sock:timeout=1"),
        ClientEndpoint::Unix {
            name: UnixAddress::path("/run/app.sock"),
            timeout: Some(Duration::from_secs(1))
        }
    );
    assert_eq!(
        client("unix:/run/app.sock"),
        ClientEndpoint::Unix {
            name: UnixAddress::path("/run/app.sock"),
            timeout: None
        }
    );
    assert_eq!(
        client("unix:path=@name"),
        ClientEndpoint::Unix {
            name: UnixAddress::abstract_name("name"),
            timeout: None
        }
    );
}

#[test]
fn targets_parse_from_host_and_port() {
    let t = |s: &str| s.parse::<Target>().unwrap();
    assert_eq!(t("127.0.0.1:80"), Target::Address(addr("127.0.0.1:80")));
    assert_eq!(t("[::1]:80"), Target::Address(addr("[::1]:80")));
    assert_eq!(
        t("example.com:443"),
        Target::Host("example.com".into(), 443)
    );
    assert_eq!(
        Target::try_from("localhost:1").unwrap(),
        Target::Host("localhost".into(), 1)
    );
}

#[test]
fn bad_targets_say_what_is_wrong() {
    let e = |s: &str| s.parse::<Target>().unwrap_err().to_string();
    assert_eq!(e("example.com"), "HOST:PORT: missing the port (HOST:PORT)");
    assert_eq!(
        e("example.com:http"),
        r#"HOST:PORT: bad port "http": expected a port number 1-65535"#
    );
    assert_eq!(
        e("example.com:0"),
        r#"HOST:PORT: bad port "0": expected a port number 1-65535"#
    );
    assert_eq!(
        e("::1:80"),
        "HOST:PORT: an IPv6 address needs brackets: [ADDRESS]:PORT"
    );
    assert_eq!(
        e(":80"),
        r#"HOST:PORT: bad host "": expected a host name or an IP address"#
    );
    assert_eq!(
        e("a b:80"),
        r#"HOST:PORT: bad host "a b": expected a host name or an IP address"#
    );
}

/// Every way a server string can be wrong, with the message that names the bad part.
#[test]
fn bad_server_strings_name_the_bad_part() {
    let cases: &[(&str, E, &str)] = &[
        ("", E::Empty, "empty endpoint"),
        (
            "udp:53",
            E::UnknownKind {
                kind: "udp".into(),
                expected: "tcp, tcp6, tls, unix, systemd, haproxy, or IP:PORT",
            },
            r#"unknown endpoint type "udp" (expected tcp, tcp6, tls, unix, systemd, haproxy, or IP:PORT)"#,
        ),
        (
            "localhost:8000",
            E::UnknownKind {
                kind: "localhost".into(),
                expected: "tcp, tcp6, tls, unix, systemd, haproxy, or IP:PORT",
            },
            r#"unknown endpoint type "localhost" (expected tcp, tcp6, tls, unix, systemd, haproxy, or IP:PORT)"#,
        ),
        (
            "tcp",
            E::Missing {
                kind: "tcp",
                what: "the port (e.g. tcp:8000)",
            },
            "tcp: missing the port (e.g. tcp:8000)",
        ),
        (
            "tcp:",
            E::Missing {
                kind: "tcp",
                what: "the port (e.g. tcp:8000)",
            },
            "tcp: missing the port (e.g. tcp:8000)",
        ),
        (
            "tcp:http",
            E::BadValue {
                kind: "tcp",
                what: "port",
                value: "http".into(),
                expected: "a port number 0-65535",
            },
            r#"tcp: bad port "http": expected a port number 0-65535"#,
        ),
        (
            "tcp:65536",
            E::BadValue {
                kind: "tcp",
                what: "port",
                value: "65536".into(),
                expected: "a port number 0-65535",
            },
            r#"tcp: bad port "65536": expected a port number 0-65535"#,
        ),
        (
            "tcp:80:interface=localhost",
            E::BadValue {
                kind: "tcp",
                what: "interface",
                value: "localhost".into(),
                expected: "an IP address",
            },
            r#"tcp: bad interface "localhost": expected an IP address"#,
        ),
        (
            "tcp6:80:interface=127.0.0.1",
            E::BadValue {
                kind: "tcp6",
                what: "interface",
                value: "127.0.0.1".into(),
                expected: "an IPv6 address",
            },
            r#"tcp6: bad interface "127.0.0.1": expected an IPv6 address"#,
        ),
        (
            "tcp:80:backlog=-1",
            E::BadValue {
                kind: "tcp",
                what: "backlog",
                value: "-1".into(),
                expected: "a number of connections",
            },
            r#"tcp: bad backlog "-1": expected a number of connections"#,
        ),
        (
            "tcp:80:backlog=3000000000",
            E::BadValue {
                kind: "tcp",
                what: "backlog",
                value: "3000000000".into(),
                expected: "a number of connections",
            },
            r#"tcp: bad backlog "3000000000": expected a number of connections"#,
        ),
        (
            "tcp:80:bakclog=5",
            E::UnknownOption {
                kind: "tcp",
                key: "bakclog".into(),
                expected: "interface, backlog, reuseport",
            },
            r#"tcp: unknown option "bakclog" (expected interface, backlog, reuseport)"#,
        ),
        (
            "tcp:80:backlog=5:backlog=6",
            E::RepeatedOption {
                kind: "tcp",
                key: "backlog".into(),
            },
            r#"tcp: option "backlog" given twice"#,
        ),
        (
            "tcp:80:port=81",
            E::RepeatedOption {
                kind: "tcp",
                key: "port".into(),
            },
            r#"tcp: option "port" given twice"#,
        ),
        (
            "tcp:80:81",
            E::UnexpectedArgument {
                kind: "tcp",
                argument: "81".into(),
            },
            r#"tcp: unexpected argument "81""#,
        ),
        (
            "tcp:80:",
            E::UnexpectedArgument {
                kind: "tcp",
                argument: "".into(),
            },
            r#"tcp: unexpected argument """#,
        ),
        (
            r"tcp:80\",
            E::TrailingBackslash,
            "endpoint ends with a backslash that escapes nothing",
        ),
        (
            "tls:443",
            E::Missing {
                kind: "tls",
                what: "the private key (privateKey=PEM)",
            },
            "tls: missing the private key (privateKey=PEM)",
        ),
        (
            "tls:443:privateKey=k.pem:sslmethod=TLSv1_METHOD",
            E::UnknownOption {
                kind: "tls",
                key: "sslmethod".into(),
                expected: "privateKey, certKey, interface, backlog",
            },
            r#"tls: unknown option "sslmethod" (expected privateKey, certKey, interface, backlog)"#,
        ),
        (
            "unix:",
            E::Missing {
                kind: "unix",
                what: "the socket's path (e.g. unix:/run/app.sock)",
            },
            "unix: missing the socket's path (e.g. unix:/run/app.sock)",
        ),
        (
            "unix:/s:mode=0999",
            E::BadValue {
                kind: "unix",
                what: "mode",
                value: "0999".into(),
                expected: "permissions in octal, e.g. 0660",
            },
            r#"unix: bad mode "0999": expected permissions in octal, e.g. 0660"#,
        ),
        (
            "unix:/s:mode=17777",
            E::BadValue {
                kind: "unix",
                what: "mode",
                value: "17777".into(),
                expected: "permissions in octal, e.g. 0660",
            },
            r#"unix: bad mode "17777": expected permissions in octal, e.g. 0660"#,
        ),
        (
            "unix:@",
            E::BadValue {
                kind: "unix",
                what: "address",
                value: "@".into(),
                expected: "a name after @",
            },
            r#"unix: bad address "@": expected a name after @"#,
        ),
        (
            "unix:@name:mode=0600",
            E::Conflict {
                kind: "unix",
                why: "mode does not apply to an abstract socket (it has no file)",
            },
            "unix: mode does not apply to an abstract socket (it has no file)",
        ),
        (
            "unix:/s:backlog=5",
            E::UnknownOption {
                kind: "unix",
                key: "backlog".into(),
                expected: "mode",
            },
            r#"unix: unknown option "backlog" (expected mode)"#,
        ),
    ];
    for (input, error, message) in cases {
        let got = server_error(input);
        assert_eq!(&got, error, "for {input:?}");
        assert_eq!(got.to_string(), *message, "for {input:?}");
    }
}

/// Every way a client string can be wrong, with the message that names the bad part.
#[test]
fn bad_client_strings_name_the_bad_part() {
    let cases: &[(&str, &str)] = &[
        ("", "empty endpoint"),
        (
            "ftp:host=a:port=21",
            r#"unknown endpoint type "ftp" (expected tcp, tls, unix, or HOST:PORT)"#,
        ),
        (
            "example.com",
            r#"unknown endpoint type "example.com" (expected tcp, tls, unix, or HOST:PORT)"#,
        ),
        ("tcp:port=80", "tcp: missing the host (host=HOST)"),
        ("tcp:host=a", "tcp: missing the port (port=PORT)"),
        (
            "tcp:host=a:port=0",
            r#"tcp: bad port "0": expected a port number 1-65535"#,
        ),
        (
            "tcp:host=a:port=x",
            r#"tcp: bad port "x": expected a port number 1-65535"#,
        ),
        (
            "tcp:host=a b:port=1",
            r#"tcp: bad host "a b": expected a host name or an IP address"#,
        ),
        (
            "tcp:host=a:port=1:timeout=0",
            r#"tcp: bad timeout "0": expected a number of seconds above 0"#,
        ),
        (
            "tcp:host=a:port=1:timeout=soon",
            r#"tcp: bad timeout "soon": expected a number of seconds above 0"#,
        ),
        (
            "tcp:host=a:port=1:timeout=inf",
            r#"tcp: bad timeout "inf": expected a number of seconds above 0"#,
        ),
        (
            "tcp:host=a:port=1:bindAddress=x",
            r#"tcp: unknown option "bindAddress" (expected host, port, timeout)"#,
        ),
        ("tcp:a:1:2", r#"tcp: unexpected argument "2""#),
        ("tcp:a:host=b:port=1", r#"tcp: option "host" given twice"#),
        (
            "tls:host=a:port=1:certificate=c.pem",
            r#"tls: unknown option "certificate" (expected host, port, timeout, trustRoots)"#,
        ),
        ("unix:", "unix: missing the socket's path (unix:path=PATH)"),
        (
            "unix:path=@",
            r#"unix: bad path "@": expected a name after @"#,
        ),
        (
            "unix:path=/s:mode=0600",
            r#"unix: unknown option "mode" (expected path, timeout)"#,
        ),
        (
            "localhost:99999",
            r#"HOST:PORT: bad port "99999": expected a port number 1-65535"#,
        ),
    ];
    for (input, message) in cases {
        assert_eq!(client_error(input).to_string(), *message, "for {input:?}");
    }
}

#[test]
fn endpoints_convert_from_strings() {
    assert!(ServerEndpoint::try_from("tcp:0").is_ok());
    assert!(ServerEndpoint::try_from(String::from("tcp:x")).is_err());
    assert!(ClientEndpoint::try_from(&String::from("127.0.0.1:1")).is_ok());
}

#[test]
fn endpoints_display_what_they_are() {
    assert_eq!(
        server("tcp:80:interface=127.0.0.1").to_string(),
        "tcp 127.0.0.1:80"
    );
    assert_eq!(server("unix:@x").to_string(), "unix @x");
    assert_eq!(client("tls:h:1").to_string(), "tls h:1");
    assert_eq!(client("unix:/s").to_string(), "unix /s");
}

/// Every string of up to three characters from the grammar's alphabet, after every kind's
/// prefix: each parses or is refused with a message, and never panics.
#[test]
fn every_short_string_parses_or_is_refused_with_a_message() {
    const ALPHABET: &[char] = &[':', '=', '\\', '[', ']', '@', '0', '8', 'x', '.', '-', ' '];
    const PREFIXES: &[&str] = &[
        "",
        "tcp:",
        "tcp6:",
        "tls:",
        "ssl:",
        "unix:",
        "tcp:80:interface=",
        "tcp:host=",
        "tcp:host=a:port=",
        "tls:0:privateKey=k:",
        "unix:@",
        "a:",
    ];
    let mut suffixes = vec![String::new()];
    for _ in 0..3 {
        let longer: Vec<String> = suffixes
            .iter()
            .filter(|s| s.chars().count() == suffixes.last().unwrap().chars().count())
            .flat_map(|s| ALPHABET.iter().map(move |c| format!("{s}{c}")))
            .collect();
        suffixes.extend(longer);
    }
    for prefix in PREFIXES {
        for suffix in &suffixes {
            let text = format!("{prefix}{suffix}");
            match text.parse::<ServerEndpoint>() {
                Ok(endpoint) => assert!(!endpoint.to_string().is_empty()),
                Err(e) => assert!(!e.to_string().is_empty(), "{text:?}"),
            }
            match text.parse::<ClientEndpoint>() {
                Ok(endpoint) => assert!(!endpoint.to_string().is_empty()),
                Err(e) => assert!(!e.to_string().is_empty(), "{text:?}"),
            }
            let _ = text.parse::<Target>();
        }
    }
}

#[test]
fn haproxy_wraps_a_stream_endpoint() {
    let inner = tcp("127.0.0.1:8080", None);
    assert_eq!(
        server("haproxy:tcp:8080:interface=127.0.0.1"),
        ServerEndpoint::Haproxy(Box::new(inner))
    );
    assert_eq!(
        server("haproxy:unix:/run/app.sock"),
        ServerEndpoint::Haproxy(Box::new(ServerEndpoint::Unix {
            name: UnixAddress::path("/run/app.sock"),
            mode: None,
        }))
    );
    assert_eq!(
        server("haproxy:tcp:80").to_string(),
        "haproxy tcp 0.0.0.0:80"
    );
}

#[test]
fn haproxy_refuses_tls_a_second_haproxy_and_nothing_inside() {
    let tls = server_error("haproxy:tls:443:privateKey=k.pem");
    assert!(
        matches!(
            tls,
            E::Conflict {
                kind: "haproxy",
                ..
            }
        ),
        "{tls}"
    );
    let twice = server_error("haproxy:haproxy:tcp:80");
    assert!(
        matches!(
            twice,
            E::Conflict {
                kind: "haproxy",
                ..
            }
        ),
        "{twice}"
    );
    let empty = server_error("haproxy");
    assert!(
        matches!(
            empty,
            E::Missing {
                kind: "haproxy",
                ..
            }
        ),
        "{empty}"
    );
    // The inner endpoint's own error names its part.
    let bad = server_error("haproxy:tcp:http");
    assert!(matches!(bad, E::BadValue { what: "port", .. }), "{bad}");
}

#[test]
fn systemd_takes_a_domain_and_an_index_or_a_name() {
    use super::{SystemdDomain, SystemdSocket};
    assert_eq!(
        server("systemd:domain=INET:index=0"),
        ServerEndpoint::Systemd {
            domain: SystemdDomain::Inet,
            socket: SystemdSocket::Index(0),
        }
    );
    assert_eq!(
        server("systemd:domain=UNIX:name=web"),
        ServerEndpoint::Systemd {
            domain: SystemdDomain::Unix,
            socket: SystemdSocket::Name("web".into()),
        }
    );
    assert_eq!(
        server("systemd:domain=INET6:index=2").to_string(),
        "systemd INET6 index 2"
    );
}

#[test]
fn bad_systemd_strings_name_the_bad_part() {
    let cases = [
        ("systemd:index=0", "domain"),
        ("systemd:domain=INET", "index=N or name=NAME"),
        ("systemd:domain=IPX:index=0", "domain"),
        ("systemd:domain=INET:index=-1", "index"),
        ("systemd:domain=INET:index=0:name=a", "not both"),
        ("systemd:domain=INET:index=0:port=1", "port"),
    ];
    for (text, part) in cases {
        let error = server_error(text).to_string();
        assert!(error.contains(part), "{text}: {error}");
    }
}

#[test]
fn reuseport_yes_shares_the_port() {
    let shared = ServerEndpoint::Tcp {
        addr: addr("0.0.0.0:8000"),
        backlog: None,
        reuse_port: true,
    };
    assert_eq!(server("tcp:8000:reuseport=yes"), shared);
    assert_eq!(server("tcp:8000:reuseport=no"), tcp("0.0.0.0:8000", None));
    let bad = server_error("tcp:8000:reuseport=1");
    assert!(
        matches!(
            bad,
            E::BadValue {
                what: "reuseport",
                ..
            }
        ),
        "{bad}"
    );
    let tls = server_error("tls:8000:privateKey=k.pem:reuseport=yes");
    assert!(matches!(tls, E::UnknownOption { .. }), "{tls}");
}
