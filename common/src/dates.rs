//! Calendar arithmetic the rules need: "N years before" and working days.
//! Pure functions of dates; the holiday calendar arrives with the 限时办结 work.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// The same calendar day `years` before `date`; 29 February falls back to 28 February.
pub fn years_before(date: NaiveDate, years: u32) -> NaiveDate {
    let year = date.year() - years as i32;
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), date.day() - 1))
        .expect("only 29 February can be missing")
}

/// The month of a date as `yyyymm`, the form registries keep contribution months in.
pub fn month_key(date: NaiveDate) -> i32 {
    date.year() * 100 + date.month() as i32
}

/// The `yyyymm` month before `yyyymm`.
pub fn previous_month(yyyymm: i32) -> i32 {
    let (y, m) = (yyyymm / 100, yyyymm % 100);
    if m == 1 { (y - 1) * 100 + 12 } else { y * 100 + m - 1 }
}

/// `start` plus `n` working days, counting Monday to Friday only. Public holidays and
/// make-up working days (调休) come with the yearly calendar file (issue 7).
pub fn add_working_days(start: NaiveDate, n: u32) -> NaiveDate {
    let mut date = start;
    let mut left = n;
    while left > 0 {
        date = date + Days::new(1);
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    date
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn years_before_handles_leap_days() {
        assert_eq!(years_before(d(2028, 2, 29), 5), d(2023, 2, 28));
        assert_eq!(years_before(d(2026, 11, 26), 5), d(2021, 11, 26));
    }

    #[test]
    fn months_step_back_across_years() {
        assert_eq!(month_key(d(2026, 1, 15)), 202601);
        assert_eq!(previous_month(202601), 202512);
        assert_eq!(previous_month(202611), 202610);
    }

    #[test]
    fn working_days_skip_weekends() {
        // Thursday 2026-11-26 + 2 working days = Monday 2026-11-30.
        assert_eq!(add_working_days(d(2026, 11, 26), 2), d(2026, 11, 30));
        assert_eq!(add_working_days(d(2026, 11, 26), 0), d(2026, 11, 26));
        assert_eq!(add_working_days(d(2026, 11, 27), 15), d(2026, 12, 18));
    }
}
