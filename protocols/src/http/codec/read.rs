//! What the request and response decoders share: gathering a head or trailer section that
//! arrives in pieces (each byte scanned once), lending body bytes, and reading a chunked body.

use bytes::Bytes;
use http::HeaderMap;

use super::chunked::{Chunk, ChunkedBody};
use super::headers::read_trailer_fields;
use super::scan::SectionScan;
use super::{HttpError, Limits};
use crate::input::Input;

/// How one side's head is parsed: the request line or the status line, then the headers.
pub(super) trait HeadParser {
    /// The parsed head.
    type Head;

    /// Parses a complete head at the start of `buf`, or says more bytes are needed.
    fn parse(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(Self::Head, usize)>, HttpError>;

    /// The verdict on a partial head, `scan` having looked at it: `Ok` while within the
    /// limits.
    fn check_partial(
        &self,
        pending: &[u8],
        scan: &SectionScan,
        limits: &Limits,
    ) -> Result<(), HttpError>;
}

/// The head, once whole, and its length on the wire. A head wholly inside the chunk is parsed
/// there (one pass); otherwise it is gathered in the backlog and parsed when it may be
/// complete.
///
/// The verdict must not depend on how reads split the bytes, and gathering is what a head in
/// pieces gets: httparse judges the bytes up to the end of the first line, then up to the empty
/// line, and the limits judge what is pending in between. So the one-pass parse decides only
/// a head it accepts; a refusal there (which httparse may reach on bytes gathering would not
/// parse yet, or reach by another limit first) is judged again by gathering.
pub(super) fn read_head<P: HeadParser>(
    parser: &mut P,
    scan: &mut SectionScan,
    input: &mut Input<'_, '_>,
    limits: &Limits,
) -> Option<Result<(P::Head, usize), HttpError>> {
    if input.backlog.is_empty() && scan.scanned == 0 {
        let rest = input.rest();
        if rest.is_empty() {
            return None;
        }
        if let Ok(Some((head, len))) = parser.parse(rest, limits) {
            input.pos += len;
            return Some(Ok((head, len)));
        }
    }
    loop {
        match gather(input, scan, false, limits.max_head_len) {
            Gathered::Ready => match parser.parse(scanned(input, scan), limits) {
                Ok(Some((head, len))) => {
                    input.backlog.consume(len);
                    return Some(Ok((head, len)));
                }
                Ok(None) => {}
                Err(error) => return Some(Err(error)),
            },
            Gathered::NeedMore => {
                let pending = input.backlog.pending();
                return parser.check_partial(pending, scan, limits).err().map(Err);
            }
            Gathered::TooLong => {
                let max = limits.max_head_len;
                let pending = input.backlog.pending();
                let error = parser
                    .check_partial(pending, scan, limits)
                    .err()
                    .unwrap_or(HttpError::HeadTooLarge { max });
                return Some(Err(error));
            }
        }
    }
}

/// The pending bytes of the section that the scan has reached. A consumer that stopped early
/// may have left more, which httparse must not judge before the scan gets there: a head read
/// whole is judged on the same bytes.
fn scanned<'i>(input: &'i Input<'_, '_>, scan: &SectionScan) -> &'i [u8] {
    let pending = input.backlog.pending();
    &pending[..scan.scanned.min(pending.len())]
}

/// What [`gather`] found.
enum Gathered {
    /// The backlog's pending bytes may hold the whole section: parse them.
    Ready,
    /// Every byte was scanned and the section is not complete.
    NeedMore,
    /// The section passed `max` bytes.
    TooLong,
}

/// Moves the section being gathered into the backlog, up to the next place it may be complete
/// (nothing past it, so a body after a head stays in the chunk to be lent), scanning each byte
/// once and never holding more than `max + 1` bytes.
fn gather(
    input: &mut Input<'_, '_>,
    scan: &mut SectionScan,
    trailers: bool,
    max: usize,
) -> Gathered {
    let pending = input.backlog.pending();
    if scan.scanned < pending.len() {
        // Bytes a consumer that stopped early left here: scan them first, as far as the limit.
        let end = pending.len().min(max + 1);
        if scan.scanned < end && scan.scan(&pending[scan.scanned..end], trailers).is_some() {
            return Gathered::Ready;
        }
        if pending.len() > max {
            return Gathered::TooLong;
        }
    }
    let room = (max + 1).saturating_sub(pending.len());
    let rest = input.rest();
    let piece = &rest[..rest.len().min(room)];
    let found = scan.scan(piece, trailers);
    let taken = found.unwrap_or(piece.len());
    input.backlog.append(&rest[..taken]);
    input.pos += taken;
    if found.is_some() {
        Gathered::Ready
    } else if input.backlog.len() > max {
        Gathered::TooLong
    } else {
        Gathered::NeedMore
    }
}

/// Up to `max` bytes available now: the backlog's first, else the chunk's (lent, not copied).
pub(super) fn take_some<'i>(input: &'i mut Input<'_, '_>, max: u64) -> Option<&'i [u8]> {
    let want = usize::try_from(max).unwrap_or(usize::MAX);
    if !input.backlog.is_empty() {
        let from = input.backlog.start();
        let len = input.backlog.len().min(want);
        input.backlog.consume(len);
        return Some(&input.backlog.raw()[from..from + len]);
    }
    let rest = input.rest();
    if rest.is_empty() {
        return None;
    }
    let len = rest.len().min(want);
    input.pos += len;
    Some(&rest[..len])
}

/// What a chunked body yields.
pub(super) enum Chunked<'a> {
    Data(&'a [u8]),
    End(HeaderMap),
}

pub(super) fn read_chunked<'i>(
    body: &mut ChunkedBody,
    input: &'i mut Input<'_, '_>,
    limits: &Limits,
) -> Option<Result<Chunked<'i>, HttpError>> {
    loop {
        match &mut body.chunk {
            Chunk::Data { remaining } => {
                let data = take_some(input, *remaining)?;
                *remaining -= data.len() as u64;
                if *remaining == 0 {
                    body.chunk = Chunk::DataCr;
                }
                return Some(Ok(Chunked::Data(data)));
            }
            Chunk::Trailers(scan) => {
                return read_trailers(scan, input, limits).map(|r| r.map(Chunked::End))
            }
            _ => {
                if let Err(error) = body.byte(input.next_byte()?, limits) {
                    return Some(Err(error));
                }
            }
        }
    }
}

/// The trailer section, once whole (RFC 9112 §7.1.2); most bodies have none, and their
/// final CRLF is read without touching the backlog.
fn read_trailers(
    scan: &mut SectionScan,
    input: &mut Input<'_, '_>,
    limits: &Limits,
) -> Option<Result<HeaderMap, HttpError>> {
    if input.backlog.is_empty() && scan.scanned == 0 && input.rest().starts_with(b"\r\n") {
        input.pos += 2;
        return Some(Ok(HeaderMap::new()));
    }
    loop {
        match gather(input, scan, true, limits.max_head_len) {
            Gathered::Ready => match parse_trailers(input.backlog.pending(), limits) {
                Ok(Some((_, len))) if len > limits.max_head_len => {
                    return Some(Err(HttpError::TrailersTooLarge));
                }
                Ok(Some((trailers, len))) => {
                    input.backlog.consume(len);
                    return Some(Ok(trailers));
                }
                Ok(None) => {}
                Err(error) => return Some(Err(error)),
            },
            Gathered::NeedMore => return None,
            Gathered::TooLong => return Some(Err(HttpError::TrailersTooLarge)),
        }
    }
}

fn parse_trailers(buf: &[u8], limits: &Limits) -> Result<Option<(HeaderMap, usize)>, HttpError> {
    let mut lines: Vec<httparse::Header<'_>> = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let (len, lines) = match httparse::parse_headers(buf, &mut lines) {
        Ok(httparse::Status::Complete(done)) => done,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TrailersTooLarge),
        Err(_) => return Err(HttpError::MalformedTrailers("invalid trailer field")),
    };
    let shared = Bytes::copy_from_slice(&buf[..len]);
    let trailers = read_trailer_fields(lines, buf, &shared)?;
    Ok(Some((trailers, len)))
}
