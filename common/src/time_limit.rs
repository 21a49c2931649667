//! An application's statutory clock (限时办结): working days counted from the submission
//! date, stopped while the applicant is asked for a missing document (补正). Pure.

use crate::calendar::WorkCalendar;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One stop of the clock: from the day the applicant was asked until the day the document
/// arrived (`None` while still waited for). The working days after `from` up to and
/// including `until` do not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pause {
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
}

/// The clock of one application.
#[derive(Debug, Clone, Copy)]
pub struct CaseClock<'a> {
    pub calendar: &'a WorkCalendar,
    /// The submission date; day 0.
    pub start: NaiveDate,
    pub pauses: &'a [Pause],
}

impl CaseClock<'_> {
    pub fn is_paused(&self) -> bool {
        self.pauses.iter().any(|p| p.until.is_none())
    }

    /// Working days the clock stood still, up to `today`.
    pub fn paused_days(&self, today: NaiveDate) -> u32 {
        self.pauses
            .iter()
            .map(|p| {
                let until = p.until.map_or(today, |u| u.min(today));
                self.calendar.working_days_between(p.from, until)
            })
            .sum()
    }

    /// Working days used by `today`.
    pub fn used(&self, today: NaiveDate) -> u32 {
        self.calendar
            .working_days_between(self.start, today)
            .saturating_sub(self.paused_days(today))
    }

    /// The last day of a limit of `working_days`, or `None` while the clock is stopped
    /// (the deadline moves by however long the applicant takes).
    pub fn deadline(&self, working_days: u32) -> Option<NaiveDate> {
        if self.is_paused() {
            return None;
        }
        let paused: u32 = self
            .pauses
            .iter()
            .filter_map(|p| p.until.map(|u| self.calendar.working_days_between(p.from, u)))
            .sum();
        Some(self.calendar.add_working_days(self.start, working_days + paused))
    }

    /// Whether a limit of `working_days` has passed by `today`: more working days used
    /// than allowed. On the deadline itself there is still time.
    pub fn is_overdue(&self, working_days: u32, today: NaiveDate) -> bool {
        !self.is_paused() && self.used(today) > working_days
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn deadlines_and_days_used() {
        let calendar = WorkCalendar::official();
        // (pauses, limit, today, deadline, used, overdue, why)
        let closed = [Pause {
            from: d(11, 30),
            until: Some(d(12, 3)),
        }];
        let open = [Pause {
            from: d(11, 30),
            until: None,
        }];
        type Case<'a> = (&'a [Pause], u32, NaiveDate, Option<NaiveDate>, u32, bool, &'a str);
        let cases: [Case; 6] = [
            (
                &[],
                5,
                d(9, 24),
                Some(d(9, 24)),
                5,
                false,
                "the deadline day itself is in time",
            ),
            (&[], 5, d(9, 28), Some(d(9, 24)), 6, true, "中秋 does not count"),
            (
                &[],
                15,
                d(10, 10),
                Some(d(10, 15)),
                11,
                false,
                "国庆 skipped, the make-up Saturday counted",
            ),
            (
                &closed,
                5,
                d(12, 8),
                Some(d(12, 9)),
                4,
                false,
                "3 paused working days move the deadline",
            ),
            (
                &open,
                5,
                d(12, 31),
                None,
                1,
                false,
                "a stopped clock has no deadline and is never overdue",
            ),
            (
                &closed,
                5,
                d(12, 14),
                Some(d(12, 9)),
                8,
                true,
                "past the moved deadline",
            ),
        ];
        for (pauses, limit, today, deadline, used, overdue, why) in cases {
            let start = if pauses.is_empty() { d(9, 18) } else { d(11, 27) };
            let clock = CaseClock {
                calendar: &calendar,
                start,
                pauses,
            };
            assert_eq!(clock.deadline(limit), deadline, "deadline: {why}");
            assert_eq!(clock.used(today), used, "used: {why}");
            assert_eq!(clock.is_overdue(limit, today), overdue, "overdue: {why}");
        }
    }
}
