//! What time it is, for everything that keeps a statutory clock: the system's time in
//! production, a settable one in tests that must cross holidays and notice periods.

use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, Mutex};

/// A cheap handle to the time. Every component of a process shares one through
/// `Settings::clock`, so a test that moves it moves intake, the collector and the
/// deadline sweeper together.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `at` until it is set or advanced.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(at))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(at) => *at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Today in China's civil time (UTC+8).
    pub fn today(&self) -> NaiveDate {
        crate::china_date(self.now())
    }

    /// Moves a manual clock to `at`; the system clock cannot be set.
    pub fn set(&self, at: DateTime<Utc>) {
        match &self.manual {
            Some(now) => *now.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = at,
            None => tracing::warn!("the system clock cannot be set"),
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.set(self.now() + by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_copies_share_it() {
        let start = DateTime::parse_from_rfc3339("2026-09-18T09:00:00+08:00")
            .unwrap()
            .to_utc();
        let clock = Clock::manual(start);
        let copy = clock.clone();
        assert_eq!(clock.now(), start);
        copy.advance(chrono::Duration::days(2));
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2026, 9, 20).unwrap());
    }
}
