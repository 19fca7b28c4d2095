//! The `Date` header, formatted at most once a second and shared by every connection of a
//! server.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// The reactor instant at which the cached second ends: until then the cached date is
    /// answered with one comparison, the cost per response.
    valid_until: Option<Instant>,
}

impl DateCache {
    /// The date at reactor time `now`; formats a new one only when the second changed.
    pub(super) fn at(&mut self, now: Instant) -> HttpDate {
        if let (Some((_, date)), Some(until)) = (self.cached, self.valid_until) {
            if now < until {
                return date;
            }
        }
        let (then, wall) = *self.base.get_or_insert_with(|| (now, SystemTime::now()));
        let wall_now = wall + now.saturating_duration_since(then);
        let since_epoch = wall_now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_epoch.as_secs();
        let into_second = Duration::from_nanos(u64::from(since_epoch.subsec_nanos()));
        self.valid_until = now.checked_add(Duration::from_secs(1) - into_second);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_date_changes_exactly_when_the_wall_second_does() {
        let mut cache = DateCache::default();
        let start = Instant::now();
        let first = cache.at(start);
        let (_, wall) = cache.base.unwrap();
        let secs = wall.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(first, HttpDate::from_unix_secs(secs));
        let until = cache.valid_until.unwrap();
        assert!(until > start && until <= start + Duration::from_secs(1));
        assert_eq!(cache.at(until - Duration::from_nanos(1)), first);
        assert_eq!(cache.at(until), HttpDate::from_unix_secs(secs + 1));
        // Each later second ends a second after the one before.
        let next_until = cache.valid_until.unwrap();
        assert_eq!(next_until - until, Duration::from_secs(1));
        assert_eq!(
            cache.at(until + Duration::from_millis(2500)),
            HttpDate::from_unix_secs(secs + 3)
        );
    }
}
