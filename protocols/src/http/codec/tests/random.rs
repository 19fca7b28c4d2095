//! Random bytes, and valid requests truncated and mutated at random, fed in random pieces:
//! the decoder never panics and never buffers more than its head limit (plus the piece being
//! fed).

use super::super::*;

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const VALID: &[u8] = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
    PUT /b HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n\
    5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nGET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

fn feed_randomly(rng: &mut Rng, limits: &Limits, input: &[u8]) {
    let mut decoder = RequestDecoder::with_limits(limits.clone());
    let mut rest = input;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(1 + rng.below(rest.len().min(64)));
        rest = tail;
        let mut events = decoder.feed(piece);
        let budget = if rng.below(2) == 0 { 1 } else { usize::MAX };
        for _ in 0..budget {
            if events.next().is_none() {
                break;
            }
        }
        drop(events);
        assert!(decoder.buffered_len() <= limits.max_head_len + 1 + input.len().min(64));
    }
    let mut events = decoder.feed(&[]);
    while events.next().is_some() {}
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let limits = Limits::default()
        .with_max_head_len(512)
        .with_max_target_len(64);
    let alphabet = b"GET /HTP1.0\r\n: ;,-chunkedContent-LengthTransfer-Encoding0123456789abcdef\0\x01\x7f\xff \t";
    for round in 0..3000 {
        let len = rng.below(1500);
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if round % 2 == 0 {
                    rng.next() as u8
                } else {
                    alphabet[rng.below(alphabet.len())]
                }
            })
            .collect();
        feed_randomly(&mut rng, &limits, &input);
    }
}

#[test]
fn truncated_and_mutated_requests_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let limits = Limits::default();
    for _ in 0..5000 {
        let mut input = VALID[..rng.below(VALID.len() + 1)].to_vec();
        for _ in 0..rng.below(4) {
            if !input.is_empty() {
                let at = rng.below(input.len());
                input[at] = rng.next() as u8;
            }
        }
        feed_randomly(&mut rng, &limits, &input);
    }
}

#[test]
fn an_endless_head_is_refused_at_its_limit() {
    let limits = Limits::default().with_max_head_len(1024);
    let mut decoder = RequestDecoder::with_limits(limits);
    let mut refused = false;
    let mut line = b"GET / HTTP/1.1\r\n".to_vec();
    for _ in 0..10_000 {
        let mut events = decoder.feed(&line);
        if let Some(Err(error)) = events.next() {
            assert_eq!(error, HttpError::HeadTooLarge { max: 1024 });
            refused = true;
        }
        drop(events);
        assert!(decoder.buffered_len() <= 1025);
        line = b"X-Header: value\r\n".to_vec();
    }
    assert!(refused);
}
