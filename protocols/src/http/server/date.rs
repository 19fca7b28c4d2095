//! The `Date` header, formatted at most once a second and shared by every connection of a
//! server.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::http::codec::HttpDate;

/// The current `Date`, from the reactor's clock mapped to wall time: the first use pairs
/// `reactor.now()` with `SystemTime::now()`, and later dates follow the reactor's clock from
/// there (so a test on a manual clock sees the date move only when it advances the clock).
#[derive(Debug, Default)]
pub(super) struct DateCache {
    /// The reactor instant and wall time paired at the first use.
    base: Option<(Instant, SystemTime)>,
    /// The second `date` was formatted for, and the value.
    cached: Option<(u64, HttpDate)>,
}

impl DateCache {
    /// The date at reactor time `now`; formats a new one only when the second changed.
    pub(super) fn at(&mut self, now: Instant) -> HttpDate {
        let (then, wall) = *self.base.get_or_insert_with(|| (now, SystemTime::now()));
        let wall_now = wall + now.saturating_duration_since(then);
        let secs = wall_now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        match self.cached {
            Some((cached_secs, date)) if cached_secs == secs => date,
            _ => {
                let date = HttpDate::from_unix_secs(secs);
                self.cached = Some((secs, date));
                date
            }
        }
    }
}
