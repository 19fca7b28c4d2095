//! Validators (`ETag`, `Last-Modified`) and the evaluation of conditional requests
//! (RFC 9110 §8.8, §13).

use std::fs::Metadata;
use std::time::UNIX_EPOCH;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};

use crate::http::codec::HttpDate;

/// A file's validators, computed from its metadata.
///
/// The `ETag` is **strong**, `"<size hex>-<mtime nanoseconds since 1970 hex>"`, as nginx's
/// `"<mtime>-<size>"`: it changes whenever the size or modification time does. It can miss a
/// rewrite of the same size within one timestamp tick (the file system's mtime resolution),
/// the price of not hashing the content. A file whose mtime cannot be read has `0` there and
/// no `Last-Modified`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// The entity tag, quotes included.
    pub etag: String,
    /// The modification time in whole seconds since 1970 (what `Last-Modified` says), if known.
    pub modified_secs: Option<u64>,
}

impl Validators {
    /// The validators of a file with this metadata.
    pub fn of(metadata: &Metadata) -> Validators {
        let since_epoch = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok());
        let nanos = since_epoch.map_or(0, |elapsed| elapsed.as_nanos());
        Validators {
            etag: format!("\"{:x}-{:x}\"", metadata.len(), nanos),
            modified_secs: since_epoch.map(|elapsed| elapsed.as_secs()),
        }
    }

    /// Adds `ETag` and, when the mtime is known, `Last-Modified` (IMF-fixdate) to `headers`.
    pub fn write(&self, headers: &mut HeaderMap) {
        if let Ok(value) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, value);
        }
        if let Some(secs) = self.modified_secs {
            let date = HttpDate::from_unix_secs(secs);
            if let Ok(value) = HeaderValue::from_bytes(date.as_bytes()) {
                headers.insert(header::LAST_MODIFIED, value);
            }
        }
    }
}

/// The outcome of a request's preconditions (RFC 9110 §13.2.2), for `GET` and `HEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on and send the representation (or the range).
    Proceed,
    /// 304 Not Modified: the client's cached copy is current.
    NotModified,
    /// 412 Precondition Failed (`If-Match` or `If-Unmodified-Since` is false).
    Failed,
}

/// Evaluates the preconditions of a `GET` or `HEAD` in RFC 9110 §13.2.2's order:
/// 1. `If-Match` (strong comparison, `*` matches) false → 412; else, only when `If-Match` is
///    absent, `If-Unmodified-Since` older than the file → 412.
/// 2. `If-None-Match` (weak comparison, `*` matches) true → 304; else, only when
///    `If-None-Match` is absent, `If-Modified-Since` not older than the file → 304. So an
///    `If-None-Match` that does not match wins over any `If-Modified-Since`.
///
/// Field values that do not parse (a malformed tag list, a date in no HTTP-date format) are
/// treated as absent, as RFC 9110 §13.1.3 and §13.1.4 require for dates.
pub fn evaluate(headers: &HeaderMap, validators: &Validators) -> Precondition {
    if let Some(tags) = tag_list(headers, &header::IF_MATCH) {
        if !tags.matches(&validators.etag, strong_eq) {
            return Precondition::Failed;
        }
    } else if let Some(since) = date_header(headers, &header::IF_UNMODIFIED_SINCE) {
        if validators
            .modified_secs
            .is_some_and(|modified| modified > since)
        {
            return Precondition::Failed;
        }
    }
    if let Some(tags) = tag_list(headers, &header::IF_NONE_MATCH) {
        if tags.matches(&validators.etag, weak_eq) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = date_header(headers, &header::IF_MODIFIED_SINCE) {
        if validators
            .modified_secs
            .is_some_and(|modified| modified <= since)
        {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// Whether `If-Range` (RFC 9110 §13.1.5) lets a `Range` apply: true when absent; an entity
/// tag must equal the current one by strong comparison (a weak tag never does); a date must
/// equal `Last-Modified` exactly. Anything else (a mismatch, a malformed value) means: send
/// the whole file, 200.
pub fn if_range_holds(headers: &HeaderMap, validators: &Validators) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return parse_tag(value)
            .is_some_and(|(tag, rest)| rest.trim().is_empty() && strong_eq(tag, &validators.etag));
    }
    parse_http_date(value).is_some_and(|date| validators.modified_secs == Some(date))
}

/// A parsed `If-Match`/`If-None-Match`: `*` or a list of entity tags (with their `W/`).
enum TagList<'a> {
    Any,
    Tags(Vec<&'a str>),
}

impl TagList<'_> {
    fn matches(&self, etag: &str, eq: fn(&str, &str) -> bool) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|tag| eq(tag, etag)),
        }
    }
}

/// Strong comparison: both strong and the same opaque tag.
fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

/// Weak comparison: the same opaque tag, either or both weak.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// Every line of `name` as one tag list; `None` if absent or malformed.
fn tag_list<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<TagList<'a>> {
    let mut tags = Vec::new();
    let mut present = false;
    for value in headers.get_all(name) {
        present = true;
        let mut rest = value.to_str().ok()?;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('*') {
                if after.trim().is_empty() {
                    return Some(TagList::Any);
                }
                return None;
            }
            let (tag, after) = parse_tag(rest)?;
            tags.push(tag);
            rest = after;
        }
    }
    present.then_some(TagList::Tags(tags))
}

/// One `entity-tag` (`W/"…"` or `"…"`, RFC 9110 §8.8.3) at the start of `text`: the tag and
/// what follows it.
fn parse_tag(text: &str) -> Option<(&str, &str)> {
    let opaque_start = if text.starts_with("W/") { 2 } else { 0 };
    let body = text.get(opaque_start..)?.strip_prefix('"')?;
    let close = body.find('"')?;
    // etagc: %x21 / %x23-7E / obs-text; to_str() already excluded obs-text.
    if !body[..close]
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
    {
        return None;
    }
    let end = opaque_start + 1 + close + 1;
    Some((&text[..end], &text[end..]))
}

/// A date header with exactly one valid HTTP-date, in seconds since 1970.
fn date_header(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_http_date(value.to_str().ok()?)
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) in any of its three formats into seconds since
/// 1970: IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850
/// `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`. The weekday is
/// not checked. A two-digit year is 19xx from 70, 20xx below.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let tokens: Vec<&str> = text
        .split([' ', ',', '-'])
        .filter(|token| !token.is_empty())
        .collect();
    let (day, month, year, time) = match tokens.as_slice() {
        [_, day, month, year, time, "GMT"] => (*day, *month, *year, *time),
        [_, month, day, time, year] => (*day, *month, *year, *time),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let day: u64 = number(day, 1, 2)?;
    let year = match year.len() {
        2 => number(year, 2, 2).map(|yy| if yy >= 70 { 1900 + yy } else { 2000 + yy })?,
        _ => number(year, 4, 4)?,
    };
    let mut clock = time.split(':');
    let (h, m, s) = (clock.next()?, clock.next()?, clock.next()?);
    let (h, m, s) = (number(h, 2, 2)?, number(m, 2, 2)?, number(s, 2, 2)?);
    if clock.next().is_some()
        || year < 1970
        || !(1..=31).contains(&day)
        || h > 23
        || m > 59
        || s > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn number(text: &str, min_len: usize, max_len: usize) -> Option<u64> {
    if !(min_len..=max_len).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of a date from 1970 on (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
