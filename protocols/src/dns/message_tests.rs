//! The codec against responses built byte by byte as a real server sends them (compressed),
//! against every malformation the decoder must refuse, and against random bytes.

use super::*;

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// A header: id, flags, then the four counts.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out
}

/// `www.example.com A` as a recursive server answers it: a CNAME to `example.com`, whose A
/// record follows, every name compressed, and an EDNS OPT record.
fn www_example_com_a() -> Vec<u8> {
    let mut m = header(0xBEEF, 0x8180, [1, 2, 0, 1]);
    // offset 12: the question.
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    // offset 33: www.example.com (-> 12) CNAME example.com (-> 16), TTL 3600.
    m.extend_from_slice(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x0e\x10\x00\x02\xc0\x10");
    // offset 47: example.com (-> 16) A 93.184.215.14, TTL 300.
    m.extend_from_slice(b"\xc0\x10\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\x5d\xb8\xd7\x0e");
    // offset 63: OPT, UDP size 1232, no options.
    m.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00");
    m
}

/// `ipv6.example.net AAAA`: two CNAMEs (the second's target compressed into the first's
/// RDATA), then two addresses.
fn ipv6_example_net_aaaa() -> Vec<u8> {
    let mut m = header(0x0102, 0x8180, [1, 4, 0, 0]);
    // offset 12: ipv6.example.net AAAA IN.
    m.extend_from_slice(b"\x04ipv6\x07example\x03net\x00\x00\x1c\x00\x01");
    // offset 34: ipv6.example.net (-> 12) CNAME edge.cdn.example.net: "edge" at 46, "cdn"
    // at 51, then -> 17 (example.net). TTL 60.
    m.extend_from_slice(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x0b");
    m.extend_from_slice(b"\x04edge\x03cdn\xc0\x11");
    // offset 57: edge.cdn.example.net (-> 46) CNAME cdn.example.net (-> 51). TTL 120.
    m.extend_from_slice(b"\xc0\x2e\x00\x05\x00\x01\x00\x00\x00\x78\x00\x02\xc0\x33");
    // offset 71 and 99: cdn.example.net (-> 51) AAAA 2001:db8::1 and 2001:db8::2, TTL 30, 90.
    for (last, ttl) in [(1u8, 30u8), (2, 90)] {
        m.extend_from_slice(b"\xc0\x33\x00\x1c\x00\x01\x00\x00\x00");
        m.push(ttl);
        m.extend_from_slice(b"\x00\x10\x20\x01\x0d\xb8");
        m.extend_from_slice(&[0; 11]);
        m.push(last);
    }
    m
}

/// `nowhere.example NXDOMAIN`, with the zone's SOA in the authority section.
fn nxdomain_with_soa() -> Vec<u8> {
    let mut m = header(0x4242, 0x8183, [1, 0, 1, 0]);
    // offset 12: nowhere.example A IN; "example" at 20.
    m.extend_from_slice(b"\x07nowhere\x07example\x00\x00\x01\x00\x01");
    // offset 33: example (-> 20) SOA, TTL 900.
    m.extend_from_slice(b"\xc0\x14\x00\x06\x00\x01\x00\x00\x03\x84");
    let mut rdata = b"\x02ns\xc0\x14\x0ahostmaster\xc0\x14".to_vec();
    for n in [2024010101u32, 7200, 3600, 1209600, 300] {
        rdata.extend_from_slice(&n.to_be_bytes());
    }
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(&rdata);
    m
}

#[test]
fn a_compressed_answer_with_a_cname_decodes() {
    let message = Message::decode(&www_example_com_a()).unwrap();
    assert_eq!(message.header.id, 0xBEEF);
    assert!(message.header.response && message.header.recursion_available);
    assert!(!message.header.truncated);
    assert_eq!(message.header.rcode, Rcode::NO_ERROR);
    assert_eq!(
        message.questions,
        [Question::new(name("www.example.com"), RecordType::A)]
    );
    assert_eq!(
        message.answers[0].data,
        RecordData::Cname(name("example.com"))
    );
    assert_eq!(message.answers[0].ttl, 3600);
    assert_eq!(message.answers[1].name, name("example.com"));
    assert_eq!(message.additional[0].rtype, RecordType::OPT);
    let answer = message.addresses(&message.questions[0]);
    assert_eq!(answer.addresses, [IpAddr::from([93, 184, 215, 14])]);
    assert_eq!(answer.canonical_name, name("example.com"));
    assert_eq!(answer.ttl, Some(300));
}

#[test]
fn a_cname_chain_is_followed_to_its_addresses_with_the_smallest_ttl() {
    let message = Message::decode(&ipv6_example_net_aaaa()).unwrap();
    assert_eq!(
        message.answers[0].data,
        RecordData::Cname(name("edge.cdn.example.net"))
    );
    let answer = message.addresses(&message.questions[0]);
    let expected: Vec<IpAddr> = ["2001:db8::1", "2001:db8::2"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(answer.addresses, expected);
    assert_eq!(answer.canonical_name, name("cdn.example.net"));
    assert_eq!(answer.ttl, Some(30));
    // Asked for A, the same answer has none.
    let a = Question::new(name("IPV6.example.net"), RecordType::A);
    assert_eq!(message.addresses(&a).addresses, Vec::<IpAddr>::new());
    assert_eq!(message.addresses(&a).ttl, None);
}

#[test]
fn nxdomain_carries_the_soa_that_bounds_negative_caching() {
    let message = Message::decode(&nxdomain_with_soa()).unwrap();
    assert_eq!(message.header.rcode, Rcode::NX_DOMAIN);
    let RecordData::Soa(soa) = &message.authority[0].data else {
        panic!("not an SOA: {:?}", message.authority[0]);
    };
    assert_eq!(soa.mname, name("ns.example"));
    assert_eq!(soa.rname, name("hostmaster.example"));
    assert_eq!(soa.minimum, 300);
    assert_eq!(message.negative_ttl(), Some(300));
    assert_eq!(
        Message::decode(&www_example_com_a())
            .unwrap()
            .negative_ttl(),
        None
    );
}

#[test]
fn a_query_encodes_as_the_rfc_says() {
    let wire = Message::query(0xABCD, name("Example.com"), RecordType::AAAA).encode();
    let mut expected = header(0xABCD, 0x0100, [1, 0, 0, 0]);
    expected.extend_from_slice(b"\x07Example\x03com\x00\x00\x1c\x00\x01");
    assert_eq!(wire, expected);
}

/// Each header field reads from its own bits (RFC 1035 §4.1.1) and from no other: one bit set
/// at a time, every field but the one it belongs to stays clear.
#[test]
fn each_header_flag_decodes_from_its_own_bit_alone() {
    let only = |bit: u16| {
        Message::decode(&header(7, 1 << bit, [0; 4]))
            .unwrap()
            .header
    };
    let clear = Header {
        id: 7,
        ..Header::default()
    };
    assert_eq!(
        Message::decode(&header(7, 0, [0; 4])).unwrap().header,
        clear
    );
    let expected = [
        (
            15,
            Header {
                response: true,
                ..clear
            },
        ),
        (11, Header { opcode: 1, ..clear }),
        (14, Header { opcode: 8, ..clear }),
        (
            10,
            Header {
                authoritative: true,
                ..clear
            },
        ),
        (
            9,
            Header {
                truncated: true,
                ..clear
            },
        ),
        (
            8,
            Header {
                recursion_desired: true,
                ..clear
            },
        ),
        (
            7,
            Header {
                recursion_available: true,
                ..clear
            },
        ),
        (
            0,
            Header {
                rcode: Rcode(1),
                ..clear
            },
        ),
        (
            3,
            Header {
                rcode: Rcode(8),
                ..clear
            },
        ),
    ];
    for (bit, header) in expected {
        assert_eq!(only(bit), header, "bit {bit}");
        assert_eq!(
            Message::decode(
                &Message {
                    header,
                    ..Message::default()
                }
                .encode()
            )
            .unwrap()
            .header,
            header
        );
    }
    // Z, the three reserved bits between RA and RCODE, means nothing.
    for bit in 4..7 {
        assert_eq!(only(bit), clear, "bit {bit}");
    }
}

#[test]
fn a_response_header_keeps_the_query_s_id_opcode_and_rd_and_carries_the_outcome() {
    let query = Header {
        id: 9,
        opcode: 2,
        recursion_desired: true,
        ..Header::default()
    };
    let expected = Header {
        id: 9,
        response: true,
        opcode: 2,
        recursion_desired: true,
        recursion_available: true,
        rcode: Rcode(3),
        ..Header::default()
    };
    assert_eq!(Header::response_to(&query, Rcode(3)), expected);
}

#[test]
fn every_decoded_message_encodes_back_to_the_same_message() {
    for wire in [
        www_example_com_a(),
        ipv6_example_net_aaaa(),
        nxdomain_with_soa(),
    ] {
        let message = Message::decode(&wire).unwrap();
        let again = Message::decode(&message.encode()).unwrap();
        assert_eq!(again, message);
    }
}

#[test]
fn the_head_alone_decodes_from_a_truncated_reply() {
    let mut wire = www_example_com_a();
    wire[2] |= 0x02; // TC
    wire.truncate(40); // cut inside the first answer
    assert!(Message::decode(&wire).is_err());
    let (header, questions) = Message::decode_head(&wire).unwrap();
    assert!(header.truncated);
    assert_eq!(questions[0].name, name("www.example.com"));
}

#[test]
fn a_ttl_with_the_top_bit_set_reads_as_zero() {
    let mut wire = www_example_com_a();
    wire[53..57].copy_from_slice(&0x8000_0001u32.to_be_bytes());
    let message = Message::decode(&wire).unwrap();
    assert_eq!(message.answers[1].ttl, 0);
    // The largest TTL without it stays.
    wire[53..57].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    let message = Message::decode(&wire).unwrap();
    assert_eq!(message.answers[1].ttl, 0x7FFF_FFFF);
}

#[test]
fn a_cname_loop_ends_with_no_address() {
    let mut response = Message::response_to(
        &Message::query(1, name("a.test"), RecordType::A),
        Rcode::NO_ERROR,
    );
    response.answers.push(Record::new(
        name("a.test"),
        5,
        RecordData::Cname(name("b.test")),
    ));
    response.answers.push(Record::new(
        name("b.test"),
        5,
        RecordData::Cname(name("a.test")),
    ));
    let message = Message::decode(&response.encode()).unwrap();
    assert_eq!(
        message.addresses(&message.questions[0]).addresses,
        Vec::<IpAddr>::new()
    );
}

/// A message whose question name is `name_bytes` (type A, class IN), with `counts`.
fn with_question_name(name_bytes: &[u8], counts: [u16; 4]) -> Vec<u8> {
    let mut m = header(1, 0x8180, counts);
    m.extend_from_slice(name_bytes);
    m.extend_from_slice(b"\x00\x01\x00\x01");
    m
}

#[test]
fn compression_loops_are_rejected() {
    // A pointer to itself.
    let wire = with_question_name(b"\xc0\x0c", [1, 0, 0, 0]);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::PointerLoop { at: 12, target: 12 })
    );
    // A label, then a pointer back to it: backwards, but round and round.
    let wire = with_question_name(b"\x01a\xc0\x0c", [1, 0, 0, 0]);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::PointerLoop { at: 14, target: 12 })
    );
    // Through another name: the answer's owner (at 17) is a label and a pointer to the
    // question's name, whose pointer leads back into the owner.
    let mut wire = with_question_name(b"\x01q\xc0\x11", [1, 1, 0, 0]);
    wire.extend_from_slice(b"\x01b\xc0\x0c");
    let err = Message::decode(&wire).unwrap_err();
    // The question's own pointer is forward (17 > 14), and is refused first.
    assert_eq!(err, MessageError::PointerForward { at: 14, target: 17 });
}

#[test]
fn pointers_forward_or_out_of_range_are_rejected() {
    // The question points past itself, to the answer's owner name.
    let mut wire = with_question_name(b"\xc0\x12", [1, 1, 0, 0]);
    wire.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00");
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::PointerForward { at: 12, target: 18 })
    );
    let wire = with_question_name(b"\xc0\x05", [1, 0, 0, 0]);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::PointerOutOfRange { at: 12, target: 5 })
    );
    let wire = with_question_name(b"\xff\xff", [1, 0, 0, 0]);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::PointerOutOfRange {
            at: 12,
            target: 0x3FFF
        })
    );
}

#[test]
fn reserved_label_types_are_rejected() {
    for byte in [0x40, 0x41, 0x80, 0xBF] {
        let wire = with_question_name(&[byte, 0, 0], [1, 0, 0, 0]);
        assert_eq!(
            Message::decode(&wire),
            Err(MessageError::BadLabelType { at: 12, byte })
        );
    }
}

#[test]
fn a_pointer_cut_after_its_first_byte_is_truncation() {
    let mut wire = header(1, 0x8180, [1, 0, 0, 0]);
    wire.push(0xC0);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::Truncated { at: wire.len() })
    );
}

#[test]
fn a_label_running_past_the_end_is_truncation() {
    let wire = header(1, 0x8180, [1, 0, 0, 0]);
    let mut wire = wire;
    wire.extend_from_slice(b"\x3fabc");
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::Truncated { at: wire.len() })
    );
}

#[test]
fn names_over_255_bytes_are_rejected_in_place_and_through_pointers() {
    let label = |c: u8| {
        let mut l = vec![63u8];
        l.extend_from_slice(&[c; 63]);
        l
    };
    // Four labels of 63 in place: 257 bytes.
    let mut long = [label(b'a'), label(b'b'), label(b'c'), label(b'd')].concat();
    long.push(0);
    let wire = with_question_name(&long, [1, 0, 0, 0]);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::NameTooLong { at: 12 })
    );
    // Three labels (193 bytes), then an answer owner of one label and a pointer to them:
    // 64 + 193 = 257.
    let mut three = [label(b'a'), label(b'b'), label(b'c')].concat();
    three.push(0);
    let mut wire = with_question_name(&three, [1, 1, 0, 0]);
    let owner_at = wire.len();
    wire.extend_from_slice(&label(b'x'));
    wire.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x01\x02\x03\x04");
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::NameTooLong { at: owner_at })
    );
    // A label of 61 in the owner instead: 62 + 193 = 255, the longest allowed.
    let mut wire = with_question_name(&three, [1, 1, 0, 0]);
    wire.push(61);
    wire.extend_from_slice(&[b'x'; 61]);
    wire.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x01\x02\x03\x04");
    let message = Message::decode(&wire).unwrap();
    assert_eq!(message.answers[0].name.as_wire().len(), 255);
    // And one byte more, a label of 62: 63 + 193 = 256.
    let mut wire = with_question_name(&three, [1, 1, 0, 0]);
    let owner_at = wire.len();
    wire.push(62);
    wire.extend_from_slice(&[b'x'; 62]);
    wire.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x01\x02\x03\x04");
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::NameTooLong { at: owner_at })
    );
}

#[test]
fn a_long_chain_of_pointers_is_cut_off() {
    // The question is the root; the first answer is a TXT whose RDATA is a chain of
    // pointers, each to the one before, the first to the root at 12; the second answer's
    // owner points to the end of the chain.
    let chain = |links: usize| {
        let mut wire = with_question_name(b"\x00", [1, 2, 0, 0]);
        wire.extend_from_slice(b"\x00\x00\x10\x00\x01\x00\x00\x00\x00");
        wire.extend_from_slice(&((links * 2) as u16).to_be_bytes());
        let first = wire.len();
        for i in 0..links {
            let target = if i == 0 { 12 } else { first + 2 * (i - 1) };
            wire.extend_from_slice(&(0xC000 | target as u16).to_be_bytes());
        }
        let last = first + 2 * (links - 1);
        wire.extend_from_slice(&(0xC000 | last as u16).to_be_bytes());
        wire.extend_from_slice(b"\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x01\x02\x03\x04");
        wire
    };
    // The owner's pointer and the chain's: 127 pointers are followed, the 128th is refused.
    assert!(Message::decode(&chain(126)).is_ok());
    assert!(matches!(
        Message::decode(&chain(127)),
        Err(MessageError::TooManyPointers { .. })
    ));
}

#[test]
fn counts_that_lie_are_rejected() {
    // Two questions announced, one there.
    let wire = with_question_name(b"\x00", [2, 0, 0, 0]);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::CountMismatch {
            section: Section::Question,
            announced: 2,
            found: 1
        })
    );
    // 65,535 answers announced, none there: refused without allocating for them.
    let mut wire = www_example_com_a();
    wire[6..8].copy_from_slice(&u16::MAX.to_be_bytes());
    wire[10..12].copy_from_slice(&[0, 0]);
    wire.truncate(63);
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::CountMismatch {
            section: Section::Answer,
            announced: u16::MAX,
            found: 2
        })
    );
    // Fewer announced than there: the rest is trailing.
    let mut wire = www_example_com_a();
    wire[11] = 0;
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::TrailingBytes { at: 63 })
    );
}

#[test]
fn rdata_that_does_not_fit_its_type_is_rejected() {
    // An A record of 5 bytes.
    let mut wire = with_question_name(b"\x00", [1, 1, 0, 0]);
    wire.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x05\x01\x02\x03\x04\x05");
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::BadRdata {
            at: 28,
            rtype: RecordType::A
        })
    );
    // A CNAME whose RDATA is longer than its name.
    let mut wire = with_question_name(b"\x00", [1, 1, 0, 0]);
    wire.extend_from_slice(b"\x00\x00\x05\x00\x01\x00\x00\x00\x00\x00\x04\x01a\x00\x00");
    assert_eq!(
        Message::decode(&wire),
        Err(MessageError::BadRdata {
            at: 28,
            rtype: RecordType::CNAME
        })
    );
    // An AAAA of 4 bytes.
    let mut wire = with_question_name(b"\x00", [1, 1, 0, 0]);
    wire.extend_from_slice(b"\x00\x00\x1c\x00\x01\x00\x00\x00\x00\x00\x04\x01\x02\x03\x04");
    assert!(matches!(
        Message::decode(&wire),
        Err(MessageError::BadRdata { .. })
    ));
}

#[test]
fn every_cut_of_a_valid_message_is_an_error_not_a_panic() {
    for wire in [
        www_example_com_a(),
        ipv6_example_net_aaaa(),
        nxdomain_with_soa(),
    ] {
        for len in 0..wire.len() {
            let err = Message::decode(&wire[..len]).unwrap_err();
            assert!(!err.to_string().is_empty());
        }
    }
    assert_eq!(
        Message::decode(&[0; 11]),
        Err(MessageError::Truncated { at: 11 })
    );
}

/// A small xorshift generator: reproducible random bytes with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(600);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Small counts, so the decoder gets past the header and into the names.
        if bytes.len() >= 12 {
            for i in [4, 6, 8, 10] {
                bytes[i] = 0;
                bytes[i + 1] = rng.below(4) as u8;
            }
        }
        let _ = Message::decode(&bytes);
        let _ = Message::decode_head(&bytes);
    }
}

#[test]
fn random_mutations_and_cuts_of_valid_messages_never_panic() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let valid = [
        www_example_com_a(),
        ipv6_example_net_aaaa(),
        nxdomain_with_soa(),
    ];
    for _ in 0..20_000 {
        let mut wire = valid[rng.below(valid.len())].clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(wire.len());
            wire[at] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => 0xC0 | (rng.next() as u8 & 0x3F),
                2 => wire[at].wrapping_add(1),
                _ => wire[at] ^ 0x80,
            };
        }
        let cut = rng.below(wire.len() + 1);
        if let Ok(message) = Message::decode(&wire[..cut]) {
            // Whatever decodes must survive the rest of the API.
            let _ = message.encode();
            for q in &message.questions {
                let _ = message.addresses(q);
            }
        }
    }
}

#[test]
fn errors_read_as_sentences() {
    let err = MessageError::PointerLoop { at: 14, target: 12 };
    assert_eq!(
        err.to_string(),
        "DNS compression pointer at byte 14 loops back to 12"
    );
    let err = MessageError::CountMismatch {
        section: Section::Answer,
        announced: 3,
        found: 1,
    };
    assert_eq!(
        err.to_string(),
        "DNS header announces 3 answer entries, message holds 1"
    );
    assert_eq!(RecordType(99).to_string(), "TYPE99");
    assert_eq!(Rcode::NX_DOMAIN.to_string(), "NXDOMAIN");
}
