use super::*;

fn proxied(source: &str, destination: &str) -> ProxyHeader {
    ProxyHeader::Proxied {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

/// Every prefix of `input` shorter than `header_length` is `Partial`; the whole is `expected`.
fn check_every_prefix(input: &[u8], expected: Result<Parsed, ProxyHeaderError>) {
    let end = match expected {
        Ok(Parsed::Complete(_, n)) => n,
        _ => input.len(),
    };
    for n in 0..end {
        assert_eq!(
            parse(&input[..n]),
            Ok(Parsed::Partial),
            "prefix of {n} bytes"
        );
    }
    assert_eq!(parse(input), expected);
}

#[test]
fn v1_tcp4_is_parsed_and_the_data_after_it_left() {
    let input = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
    let header = proxied("192.0.2.1:56324", "198.51.100.2:443");
    check_every_prefix(input, Ok(Parsed::Complete(header, input.len() - 5)));
}

#[test]
fn v1_tcp6_is_parsed() {
    let input = b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    let header = proxied("[2001:db8::1]:65535", "[::1]:0");
    check_every_prefix(input, Ok(Parsed::Complete(header, input.len())));
}

#[test]
fn v1_unknown_keeps_the_connections_addresses() {
    for input in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ff:: 1.2.3.4 1 2\r\n",
    ] {
        check_every_prefix(input, Ok(Parsed::Complete(ProxyHeader::Local, input.len())));
    }
}

#[test]
fn v1_the_longest_header_fits_and_one_byte_more_does_not() {
    let longest = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(longest.len(), V1_MAX_LENGTH);
    assert!(matches!(
        parse(longest),
        Ok(Parsed::Complete(_, V1_MAX_LENGTH))
    ));
    let mut unknown = b"PROXY UNKNOWN ".to_vec();
    unknown.resize(V1_MAX_LENGTH - 1, b'x');
    assert_eq!(parse(&unknown), Ok(Parsed::Partial));
    unknown.push(b'\r');
    assert_eq!(parse(&unknown), Err(ProxyHeaderError::V1TooLong));
    unknown.push(b'\n');
    assert_eq!(parse(&unknown), Err(ProxyHeaderError::V1TooLong));
}

#[test]
fn v1_malformed_headers_are_refused() {
    let bad: &[&[u8]] = &[
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 7\r\n",
        b"PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n",
        b"PROXY TCP5 192.0.2.1 198.51.100.2 56324 443\r\n",
        b"PROXY tcp4 192.0.2.1 198.51.100.2 56324 443\r\n",
        b"PROXY TCP4 ::1 198.51.100.2 56324 443\r\n",
        b"PROXY TCP6 192.0.2.1 ::1 56324 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 \r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n\r\n",
        b"PROXY \xff\r\n",
        b"PROXY \r\n",
    ];
    for input in bad {
        let result = parse(input);
        assert!(
            matches!(result, Err(ProxyHeaderError::V1Malformed(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn other_input_is_not_a_header() {
    for input in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"PROXX",
        b"proxy ",
        b"\r\n\r\n\0\r\nQUIT\r",
    ] {
        assert_eq!(parse(input), Err(ProxyHeaderError::NotProxy), "{input:?}");
    }
    assert_eq!(parse(b""), Ok(Parsed::Partial));
    assert_eq!(parse(b"PROX"), Ok(Parsed::Partial));
}

fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.push(command);
    header.push(family);
    header.extend_from_slice(&(body.len() as u16).to_be_bytes());
    header.extend_from_slice(body);
    header
}

#[test]
fn v2_tcp4_is_parsed_and_tlvs_skipped() {
    let mut body = vec![192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb];
    body.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]); // a NOOP TLV
    let mut input = v2(0x21, 0x11, &body);
    let length = input.len();
    input.extend_from_slice(b"data");
    let header = proxied("192.0.2.1:56324", "198.51.100.2:443");
    check_every_prefix(&input, Ok(Parsed::Complete(header, length)));
}

#[test]
fn v2_tcp6_is_parsed() {
    let mut body = [0u8; 36];
    body[0] = 0x20;
    body[1] = 0x01;
    body[15] = 1;
    body[31] = 1;
    body[32..36].copy_from_slice(&[0, 80, 1, 0]);
    let input = v2(0x21, 0x21, &body);
    let header = proxied("[2001::1]:80", "[::1]:256");
    check_every_prefix(&input, Ok(Parsed::Complete(header, input.len())));
}

#[test]
fn v2_local_unspec_and_unix_keep_the_connections_addresses() {
    let cases = [
        v2(0x20, 0x00, &[]),
        v2(0x20, 0x11, &[1, 2, 3]), // LOCAL ignores its address block
        v2(0x21, 0x00, &[9, 9]),
        v2(0x21, 0x31, &[0; 216]),
    ];
    for input in cases {
        check_every_prefix(
            &input,
            Ok(Parsed::Complete(ProxyHeader::Local, input.len())),
        );
    }
}

#[test]
fn v2_bad_headers_are_refused() {
    let cases = [
        (v2(0x11, 0x11, &[0; 12]), ProxyHeaderError::V2Version(1)),
        (v2(0x22, 0x11, &[0; 12]), ProxyHeaderError::V2Command(2)),
        (v2(0x21, 0x12, &[0; 12]), ProxyHeaderError::V2Family(0x12)),
        (v2(0x21, 0x41, &[0; 12]), ProxyHeaderError::V2Family(0x41)),
        (v2(0x21, 0x11, &[0; 11]), ProxyHeaderError::V2Length(11)),
        (v2(0x21, 0x21, &[0; 35]), ProxyHeaderError::V2Length(35)),
        (v2(0x21, 0x31, &[0; 215]), ProxyHeaderError::V2Length(215)),
    ];
    for (input, error) in cases {
        assert_eq!(parse(&input), Err(error), "{input:?}");
    }
    // A bad version is refused as soon as its byte arrives, not after the length.
    assert_eq!(
        parse(&v2(0x31, 0x11, &[])[..13]),
        Err(ProxyHeaderError::V2Version(3))
    );
}

#[test]
fn v2_the_longest_header_is_partial_until_whole() {
    let input = v2(0x20, 0x00, &vec![0; u16::MAX as usize]);
    assert_eq!(input.len(), V2_MAX_LENGTH);
    assert_eq!(parse(&input[..V2_MAX_LENGTH - 1]), Ok(Parsed::Partial));
    assert_eq!(
        parse(&input),
        Ok(Parsed::Complete(ProxyHeader::Local, V2_MAX_LENGTH))
    );
}

/// Mutations of valid headers (a small deterministic generator, every byte position and
/// value class): never a panic; a `Complete` takes no more than the input; every prefix of
/// an input is `Partial` or gives the same outcome as the input once it is decided.
#[test]
fn mutated_headers_never_panic_and_prefixes_agree() {
    let mut seeds = vec![
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nrest".to_vec(),
        b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
        v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]),
        v2(0x21, 0x21, &[7; 36]),
        v2(0x20, 0x00, &[]),
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..3000 {
        let mut input = seeds[round % seeds.len()].clone();
        let at = next() as usize % input.len();
        match next() % 4 {
            0 => input[at] = next() as u8,
            1 => input[at] = b" :\r\n0\x00\xff"[next() as usize % 7],
            2 => drop(input.remove(at)),
            _ => input.insert(at, next() as u8),
        }
        let whole = parse(&input);
        if let Ok(Parsed::Complete(_, n)) = whole {
            assert!(n <= input.len());
        }
        for n in 0..input.len() {
            match parse(&input[..n]) {
                Ok(Parsed::Partial) => {}
                decided => {
                    assert_eq!(decided, whole, "{input:?} cut at {n}");
                    break;
                }
            }
        }
        if round % 500 == 0 && matches!(whole, Ok(Parsed::Complete(..))) {
            seeds.push(input);
        }
    }
}
