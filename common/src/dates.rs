//! Date arithmetic the rules need: "N years before" and contribution months. Working
//! days are the calendar's (`crate::calendar`).

use chrono::{Datelike, NaiveDate};

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
}
