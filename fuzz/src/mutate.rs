//! Mutations of an input, in the manner of AFL's "havoc" stage: a few random edits stacked,
//! some of them aware of what these parsers read (numbers, tokens from a dictionary, pieces
//! of other inputs).

use crate::rng::Rng;

/// Byte values that sit on the edges of what the parsers read.
const INTERESTING: &[u8] = b"\0\xff\x7f\x80\r\n \t:;,=\"/.0129afAF";

/// Numbers worth trying where the input has one (lengths, chunk sizes, counts).
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"1",
    b"00",
    b"9",
    b"10",
    b"64",
    b"65",
    b"255",
    b"256",
    b"4096",
    b"65535",
    b"99999",
    b"100000",
    b"4294967295",
    b"4294967296",
    b"18446744073709551615",
    b"18446744073709551616",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"-1",
    b"+1",
];

/// Applies 1 to 16 stacked mutations to `input`, keeping it at most `max_len` bytes.
/// `dictionary` holds the target's tokens; `other` is another input to splice from.
pub fn mutate(
    input: &mut Vec<u8>,
    rng: &mut Rng,
    dictionary: &[&[u8]],
    other: &[u8],
    max_len: usize,
) {
    let stack = 1 << rng.below(5);
    for _ in 0..stack {
        mutate_once(input, rng, dictionary, other);
    }
    if input.is_empty() {
        input.push(*rng.pick(INTERESTING));
    }
    input.truncate(max_len);
}

fn mutate_once(input: &mut Vec<u8>, rng: &mut Rng, dictionary: &[&[u8]], other: &[u8]) {
    let len = input.len();
    let at = rng.below(len + 1);
    match rng.below(13) {
        0 if len > 0 => input[at.min(len - 1)] ^= 1 << rng.below(8),
        1 if len > 0 => input[at.min(len - 1)] = rng.next_u64() as u8,
        2 if len > 0 => input[at.min(len - 1)] = *rng.pick(INTERESTING),
        3 => {
            let n = rng.range(1, 8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            input.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let end = (at + rng.range(1, 16)).min(len);
            input.drain(at.min(len - 1)..end);
        }
        5 if len > 0 => {
            // Copy a run of the input elsewhere (a header twice, a chunk twice).
            let from = rng.below(len);
            let n = rng.range(1, (len - from).min(64));
            let run = input[from..from + n].to_vec();
            input.splice(at..at, run);
        }
        6 | 7 if !dictionary.is_empty() => {
            let token = *rng.pick(dictionary);
            input.splice(at..at, token.iter().copied());
        }
        8 if !dictionary.is_empty() => {
            let token = *rng.pick(dictionary);
            let end = (at + token.len()).min(len);
            input.splice(at..end, token.iter().copied());
        }
        9 if !other.is_empty() => {
            // Splice: a piece of another input here.
            let from = rng.below(other.len());
            let n = rng.range(1, other.len() - from);
            input.splice(at..at, other[from..from + n].iter().copied());
        }
        10 if !other.is_empty() => {
            // Crossover: this input's head, the other's tail.
            let from = rng.below(other.len());
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
        11 => replace_number(input, rng, at),
        12 if len > 0 => {
            // Repeat a short run many times (many headers, long lines, deep names).
            let from = rng.below(len);
            let n = rng.range(1, (len - from).min(16));
            let times = rng.range(2, 64);
            let run = input[from..from + n].repeat(times);
            input.splice(from..from, run);
        }
        _ => input.truncate(at),
    }
}

/// Replaces the first run of hex digits at or after `at` with another number.
fn replace_number(input: &mut Vec<u8>, rng: &mut Rng, at: usize) {
    let Some(start) = input[at..]
        .iter()
        .position(u8::is_ascii_hexdigit)
        .map(|i| i + at)
    else {
        let number = *rng.pick(NUMBERS);
        input.splice(at..at, number.iter().copied());
        return;
    };
    let end = input[start..]
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .map_or(input.len(), |i| i + start);
    let replacement: Vec<u8> = match rng.below(3) {
        0 => rng.pick(NUMBERS).to_vec(),
        1 => (rng.next_u64() >> rng.below(64)).to_string().into_bytes(),
        _ => format!("{:x}", rng.next_u64() >> rng.below(64)).into_bytes(),
    };
    input.splice(start..end, replacement);
}

#[cfg(test)]
mod tests {
    use super::mutate;
    use crate::rng::Rng;

    #[test]
    fn mutations_are_deterministic_and_bounded() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut input = b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec();
            for _ in 0..1000 {
                mutate(&mut input, &mut rng, &[b"chunked"], b"0\r\n\r\n", 200);
                assert!(!input.is_empty() && input.len() <= 200);
            }
            input
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
