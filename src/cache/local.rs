//! The process layer: one moka cache per key family, each bounded by entries and by bytes at
//! once, entries living their family's TTL, every eviction counted.
//!
//! Both bounds with one weigher: an entry weighs its key plus body, but never less than
//! `max_bytes / max_entries`; total weight <= `max_bytes` then also means at most
//! `max_entries` entries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use moka::future::Cache;
use moka::notification::RemovalCause;

use super::family::Family;
use crate::metrics::Metrics;

/// One family's TTL and process bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyLimits {
    pub ttl: Duration,
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl FamilyLimits {
    /// The plan's TTL with room for `max_entries` entries of up to `max_bytes` in all.
    pub fn new(ttl: Duration, max_entries: u64, max_bytes: u64) -> Self {
        Self {
            ttl,
            max_entries: max_entries.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// What an entry of `len` bytes weighs.
    pub fn weight(&self, len: usize) -> u32 {
        let floor = self.max_bytes.div_ceil(self.max_entries);
        (len as u64).max(floor).try_into().unwrap_or(u32::MAX)
    }
}

/// A cached body and when this process stored it.
#[derive(Clone)]
pub(super) struct Entry {
    pub body: Bytes,
    pub stored: Instant,
    pub ttl: Duration,
    /// Filled while Redis could not be reached: trusted only for the outage bound, even after
    /// Redis is back (another instance's invalidation may still be on its way).
    pub provisional: bool,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, value: &Entry, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Every family's process cache.
pub(super) struct LocalLayer {
    caches: Vec<Cache<String, Entry>>,
    limits: [FamilyLimits; 8],
}

impl LocalLayer {
    pub(super) fn new(limits: [FamilyLimits; 8], metrics: &Arc<Metrics>) -> Self {
        let caches = Family::ALL
            .iter()
            .map(|&family| {
                let l = limits[family.index()];
                let evictions = metrics.cache_evictions.clone();
                Cache::builder()
                    .weigher(move |k: &String, v: &Entry| l.weight(k.len() + v.body.len()))
                    .max_capacity(l.max_bytes)
                    .expire_after(PerEntryTtl)
                    .eviction_listener(move |_, _, cause| {
                        let cause = match cause {
                            RemovalCause::Size => "size",
                            RemovalCause::Expired => "expired",
                            // Replaced or dropped by this instance (an outage refill): not an
                            // eviction.
                            RemovalCause::Explicit | RemovalCause::Replaced => return,
                        };
                        evictions
                            .with_label_values(&["memory", family.name(), cause])
                            .inc();
                    })
                    .build()
            })
            .collect();
        Self { caches, limits }
    }

    /// The process cache of `family`.
    pub(super) fn of(&self, family: Family) -> &Cache<String, Entry> {
        &self.caches[family.index()]
    }

    /// The limits of `family`.
    pub(super) fn limits(&self, family: Family) -> FamilyLimits {
        self.limits[family.index()]
    }

    /// Applies pending evictions now (tests and metrics read settled counts).
    pub(super) async fn settle(&self) {
        for c in &self.caches {
            c.run_pending_tasks().await;
        }
    }

    /// Entries and weighed bytes held per family (after pending evictions).
    pub(super) fn usage(&self) -> Vec<(Family, u64, u64)> {
        Family::ALL
            .iter()
            .map(|&f| {
                let c = self.of(f);
                (f, c.entry_count(), c.weighted_size())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_weighs_at_least_its_share_so_both_bounds_hold() {
        let l = FamilyLimits::new(Duration::from_secs(60), 100, 10_000);
        assert_eq!(l.weight(10), 100, "small entries weigh the entry bound's share");
        assert_eq!(l.weight(5_000), 5_000, "large ones weigh their bytes");
        // 100 entries of any size reach the byte bound: no more than max_entries fit.
        assert!(100 * u64::from(l.weight(1)) >= l.max_bytes);
    }
}
