//! Answers kept for their TTL, by name and type. Time is passed in (the reactor's clock), so
//! a manual clock expires entries in tests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Name, RecordType};

/// What a server said about a name and type, worth remembering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    /// These addresses.
    Addresses(Vec<IpAddr>),
    /// The name does not exist (NXDOMAIN).
    NotFound,
    /// The name exists without records of the type.
    NoData,
}

struct Entry {
    expires: Instant,
    value: Cached,
}

/// A bounded map from (name, type) to an answer and its expiry.
pub(crate) struct Cache {
    entries: HashMap<(Name, RecordType), Entry>,
    capacity: usize,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The answer for `key` if it has not expired at `now` (an expired one is dropped).
    pub(crate) fn get(&mut self, key: &(Name, RecordType), now: Instant) -> Option<Cached> {
        match self.entries.get(key) {
            Some(entry) if now < entry.expires => Some(entry.value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `ttl` from `now`; a zero TTL keeps nothing. When full, expired
    /// entries go first, then the one closest to expiring.
    pub(crate) fn insert(
        &mut self,
        key: (Name, RecordType),
        value: Cached,
        ttl: Duration,
        now: Instant,
    ) {
        if ttl.is_zero() || self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, e| now < e.expires);
            if self.entries.len() >= self.capacity {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    self.entries.remove(&soonest);
                }
            }
        }
        let expires = now + ttl;
        self.entries.insert(key, Entry { expires, value });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> (Name, RecordType) {
        (Name::from_ascii(name).unwrap(), RecordType::A)
    }

    #[test]
    fn an_answer_lives_for_its_ttl_and_no_longer() {
        let mut cache = Cache::new(10);
        let t0 = Instant::now();
        let value = Cached::Addresses(vec![IpAddr::from([192, 0, 2, 1])]);
        cache.insert(key("a.test"), value.clone(), Duration::from_secs(60), t0);
        assert_eq!(
            cache.get(&key("A.TEST"), t0 + Duration::from_secs(59)),
            Some(value)
        );
        assert_eq!(
            cache.get(&key("a.test"), t0 + Duration::from_secs(60)),
            None
        );
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
    }

    #[test]
    fn a_zero_ttl_is_not_cached() {
        let mut cache = Cache::new(10);
        let t0 = Instant::now();
        cache.insert(key("a.test"), Cached::NotFound, Duration::ZERO, t0);
        assert_eq!(cache.get(&key("a.test"), t0), None);
    }

    #[test]
    fn a_full_cache_drops_the_expired_then_the_soonest_to_expire() {
        let mut cache = Cache::new(2);
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        cache.insert(key("short.test"), Cached::NoData, secs(10), t0);
        cache.insert(key("long.test"), Cached::NoData, secs(100), t0);
        cache.insert(key("new.test"), Cached::NoData, secs(50), t0);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&key("short.test"), t0), None);
        assert_eq!(cache.get(&key("long.test"), t0), Some(Cached::NoData));
        // At t0 + 60 new.test has expired: it goes, nothing else does.
        cache.insert(key("later.test"), Cached::NoData, secs(10), t0 + secs(60));
        assert_eq!(
            cache.get(&key("long.test"), t0 + secs(60)),
            Some(Cached::NoData)
        );
        assert_eq!(
            cache.get(&key("later.test"), t0 + secs(60)),
            Some(Cached::NoData)
        );
    }
}
