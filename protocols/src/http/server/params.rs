//! A request's path parameters, as the [`Router`](super::Router) matched them: names shared
//! with the route, values as spans of the path, decoded into a buffer of their own only when
//! one of them has a `%` escape.

use std::sync::Arc;

use crate::http::form::{percent_decode, FormError};

/// The most parameters (`{name}` segments and a trailing `*`) a route pattern may have.
pub const MAX_PARAMS: usize = 8;

/// Byte ranges, into the path or into [`Params::decoded`].
pub(super) type Spans = [(u32, u32); MAX_PARAMS];

/// The path parameters of a request ([`Request::param`](super::Request::param)); empty unless
/// a route pattern matched.
///
/// One pointer in every request (boxed, so a request to an exact route carries and moves no
/// more than that); a pattern's match fills it.
#[derive(Debug, Clone, Default)]
pub struct Params {
    taken: Option<Box<Taken>>,
}

/// What a pattern took from a path.
#[derive(Debug, Clone)]
struct Taken {
    /// The pattern's parameter names, in order (`*` for the rest of the path).
    names: Arc<[Box<str>]>,
    /// Each value's range: in `decoded` if it is there, else in the path.
    spans: Spans,
    /// The values decoded, when one of them had an escape.
    decoded: Option<String>,
}

impl Params {
    /// The parameters `names` take from `path` at `spans`, percent-decoded (`+` stays `+`);
    /// an escape that is not `%XX` or a value that does not decode to UTF-8 is an error.
    pub(super) fn decode(
        names: &Arc<[Box<str>]>,
        path: &str,
        mut spans: Spans,
    ) -> Result<Params, FormError> {
        let count = names.len().min(MAX_PARAMS);
        let raw = |(start, end): (u32, u32)| &path.as_bytes()[start as usize..end as usize];
        let escaped = spans[..count].iter().any(|s| raw(*s).contains(&b'%'));
        let decoded = if escaped {
            let mut out = String::new();
            for span in &mut spans[..count] {
                let value = percent_decode(raw(*span), false)?;
                let value = std::str::from_utf8(&value).map_err(|_| FormError::NotUtf8)?;
                let start = out.len();
                out.push_str(value);
                // Never longer than the path, whose length fits the spans' type.
                *span = (start as u32, out.len() as u32);
            }
            Some(out)
        } else {
            None
        };
        Ok(Params {
            taken: Some(Box::new(Taken {
                names: names.clone(),
                spans,
                decoded,
            })),
        })
    }

    /// The value of parameter `name`, given the request's `path`.
    pub(super) fn get<'a>(&'a self, path: &'a str, name: &str) -> Option<&'a str> {
        let taken = self.taken.as_deref()?;
        let at = taken.names.iter().position(|n| **n == *name)?;
        taken.value(path, at)
    }

    /// Every parameter as (name, value), in the pattern's order.
    pub(super) fn iter<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        let taken = self.taken.as_deref();
        let names = taken.map_or(&[][..], |t| &t.names[..]);
        names
            .iter()
            .enumerate()
            .filter_map(move |(at, name)| Some((&**name, taken?.value(path, at)?)))
    }
}

impl Taken {
    fn value<'a>(&'a self, path: &'a str, at: usize) -> Option<&'a str> {
        let (start, end) = *self.spans.get(at)?;
        let source = self.decoded.as_deref().unwrap_or(path);
        source.get(start as usize..end as usize)
    }
}
