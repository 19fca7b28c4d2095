//! The `Range` header, single byte ranges only (RFC 9110 §14.1.2, §14.2).

/// What a `Range` header asks of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Send the whole representation (200): the header was absent, malformed, in a unit other
    /// than `bytes`, or asked for more than one range.
    Whole,
    /// Send bytes `start..=end` (206 with `Content-Range: bytes start-end/size`).
    Bytes {
        /// The first byte sent.
        start: u64,
        /// The last byte sent (inclusive, as in `Content-Range`).
        end: u64,
    },
    /// No byte of the range exists (416 with `Content-Range: bytes */size`).
    Unsatisfiable,
}

impl RangeRequest {
    /// Interprets a `Range` value for a representation of `size` bytes: `bytes=a-b`,
    /// `bytes=a-` and `bytes=-n` (the last `n` bytes).
    ///
    /// - A last position past the end is clamped to the end; a suffix longer than the file
    ///   is the whole file (still 206).
    /// - A first position at or past the end, a suffix of 0 bytes, any range of an empty
    ///   file: [`Unsatisfiable`](RangeRequest::Unsatisfiable).
    /// - Malformed (no `=`, not digits, `b < a`), another unit: [`Whole`](RangeRequest::Whole),
    ///   since a server may ignore a Range it does not understand (RFC 9110 §14.2).
    /// - More than one range (`bytes=0-1,5-6`): [`Whole`](RangeRequest::Whole).
    ///   `multipart/byteranges` is not supported, and ignoring Range is always allowed.
    pub fn parse(value: &str, size: u64) -> RangeRequest {
        let Some((unit, set)) = value.split_once('=') else {
            return RangeRequest::Whole;
        };
        if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
            return RangeRequest::Whole;
        }
        let Some((first, last)) = set.trim().split_once('-') else {
            return RangeRequest::Whole;
        };
        match (digits(first), digits(last)) {
            (None, Some(suffix)) if first.is_empty() => Self::suffix(suffix, size),
            (Some(start), None) if last.is_empty() => Self::from(start, u64::MAX, size),
            (Some(start), Some(end)) if start <= end => Self::from(start, end, size),
            _ => RangeRequest::Whole,
        }
    }

    fn suffix(len: u64, size: u64) -> RangeRequest {
        if len == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        RangeRequest::Bytes {
            start: size.saturating_sub(len),
            end: size - 1,
        }
    }

    fn from(start: u64, end: u64, size: u64) -> RangeRequest {
        if start >= size {
            return RangeRequest::Unsatisfiable;
        }
        RangeRequest::Bytes {
            start,
            end: end.min(size - 1),
        }
    }
}

/// A non-empty run of ASCII digits; a value past `u64::MAX` saturates (it is past any file's
/// end either way).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}
