//! A circuit breaker for Redis calls: after `failures` consecutive failed or slow calls it opens
//! for `open_for` (calls are not attempted, callers fall back at once), then lets one probe
//! through (half-open): a good probe closes it, a bad one opens it again. A probe that never
//! reports (its request was dropped mid-call) is given up after `open_for`, and another goes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the breaker stands (exported as a gauge: 0 closed, 1 open, 2 half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// The gauge value.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe in flight since `probe`.
    HalfOpen {
        probe: Instant,
    },
}

/// The breaker's thresholds.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive failed (or slow) calls that open it.
    pub failures: u32,
    /// A call slower than this counts as failed.
    pub slow: Duration,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

/// One breaker, shared by every Redis call of a cache.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves a consistent state (every update is one
        // assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may be attempted now. In half-open, only one probe at a time.
    pub fn allow(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } | Inner::HalfOpen { probe: until }
                if now >= until + self.extra_wait(&inner) =>
            {
                *inner = Inner::HalfOpen { probe: now };
                true
            }
            Inner::Open { .. } | Inner::HalfOpen { .. } => false,
        }
    }

    /// How long after its start a probe is given up (none while open: `until` is the end).
    fn extra_wait(&self, inner: &Inner) -> Duration {
        match inner {
            Inner::HalfOpen { .. } => self.config.open_for,
            _ => Duration::ZERO,
        }
    }

    /// Records the outcome of an allowed call that took `took`.
    pub fn record(&self, ok: bool, took: Duration, now: Instant) {
        let good = ok && took <= self.config.slow;
        let mut inner = self.lock();
        *inner = match (&*inner, good) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) if failures + 1 < self.config.failures => Inner::Closed {
                failures: failures + 1,
            },
            (_, false) => Inner::Open {
                until: now + self.config.open_for,
            },
        };
    }

    /// Where it stands.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            slow: Duration::from_millis(50),
            open_for: Duration::from_secs(1),
        })
    }

    const FAST: Duration = Duration::from_millis(1);

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let b = breaker();
        let t = Instant::now();
        b.record(false, FAST, t);
        b.record(false, FAST, t);
        b.record(true, FAST, t);
        b.record(false, FAST, t);
        b.record(false, FAST, t);
        assert_eq!(b.state(), BreakerState::Closed, "never three in a row");
        b.record(false, FAST, t);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(t + Duration::from_millis(999)));
    }

    #[test]
    fn slow_calls_count_as_failures() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(b.allow(t));
            b.record(true, Duration::from_millis(51), t);
        }
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn one_probe_after_the_open_time_decides() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(false, FAST, t);
        }
        let later = t + Duration::from_secs(1);
        assert!(b.allow(later), "the probe");
        assert!(!b.allow(later), "only one probe at a time");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(false, FAST, later);
        assert_eq!(b.state(), BreakerState::Open, "a failed probe opens it again");
        let again = later + Duration::from_secs(1);
        assert!(b.allow(again));
        b.record(true, FAST, again);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow(again) && b.allow(again));
    }

    #[test]
    fn a_probe_that_never_reports_is_given_up_after_the_open_time() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(false, FAST, t);
        }
        let probe = t + Duration::from_secs(1);
        assert!(b.allow(probe), "the probe, whose request is then dropped");
        assert!(!b.allow(probe + Duration::from_millis(999)));
        assert!(b.allow(probe + Duration::from_secs(1)), "another probe");
        b.record(true, FAST, probe + Duration::from_secs(1));
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
