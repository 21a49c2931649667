//! The working-day calendar (工作日历): weekends, public holidays and make-up working days
//! (调休) from yearly files, and counting working days across them. Pure after loading.
//!
//! The official calendars this build knows are compiled in from `calendar/*.toml`; an
//! operator adds a year the State Council has announced since by putting its file into
//! `calendar.dir`. A year with no file counts Monday to Friday only, and says so
//! (`covers`), because holidays are never guessed. A `provisional` year holds only what the
//! law fixes (the statutory holidays), before the year's 调休 arrangement is published.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// The official calendars shipped with this build, one file per year.
const SHIPPED: &[(&str, &str)] = &[
    ("calendar/2026.toml", include_str!("../../calendar/2026.toml")),
    ("calendar/2027.toml", include_str!("../../calendar/2027.toml")),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {message}")]
pub struct CalendarError {
    pub file: String,
    pub message: String,
}

/// One year's file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    source: String,
    #[serde(default)]
    provisional: bool,
    #[serde(default)]
    workdays: Vec<NaiveDate>,
    #[serde(default)]
    holidays: Vec<HolidayFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayFile {
    name: String,
    from: NaiveDate,
    to: NaiveDate,
}

/// One checked year: which days are off and which weekend days are worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Year {
    pub year: i32,
    pub source: String,
    /// Only the statutory holidays: the year's arrangement (bridge days, 调休) is not out yet.
    pub provisional: bool,
    /// Each public holiday day with its holiday's name.
    pub holidays: BTreeMap<NaiveDate, String>,
    /// Weekend days that are working days (调休上班).
    pub workdays: BTreeSet<NaiveDate>,
}

impl Year {
    /// Parses and checks one year's file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, CalendarError> {
        let err = |message: String| CalendarError {
            file: file.to_owned(),
            message,
        };
        let raw: YearFile = toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_owned()))?;
        if raw.source.trim().is_empty() {
            return Err(err("`source` must name the official notice the dates come from".into()));
        }
        let mut holidays = BTreeMap::new();
        for (i, h) in raw.holidays.iter().enumerate() {
            let at = format!("holidays[{i}] ({})", h.name);
            if h.from > h.to {
                return Err(err(format!("{at}: `from` {} is after `to` {}", h.from, h.to)));
            }
            if h.from.year() != raw.year || h.to.year() != raw.year {
                return Err(err(format!("{at}: {}..{} is not in {}", h.from, h.to, raw.year)));
            }
            for day in h.from.iter_days().take_while(|d| *d <= h.to) {
                if let Some(other) = holidays.insert(day, h.name.clone()) {
                    return Err(err(format!("{at}: {day} is already a day of {other}")));
                }
            }
        }
        let mut workdays = BTreeSet::new();
        for (i, day) in raw.workdays.iter().enumerate() {
            let at = format!("workdays[{i}] {day}");
            if day.year() != raw.year {
                return Err(err(format!("{at}: not in {}", raw.year)));
            }
            if !is_weekend(*day) {
                return Err(err(format!(
                    "{at}: a {} is a working day anyway; only weekend days are listed",
                    day.weekday()
                )));
            }
            if let Some(name) = holidays.get(day) {
                return Err(err(format!("{at}: also listed as a day of {name}")));
            }
            if !workdays.insert(*day) {
                return Err(err(format!("{at}: listed twice")));
            }
        }
        Ok(Self {
            year: raw.year,
            source: raw.source,
            provisional: raw.provisional,
            holidays,
            workdays,
        })
    }
}

/// Logs a warning for this year or next when no official calendar covers it (deadlines
/// there count weekends only) or only a provisional one does, until the operator adds the
/// year's file.
pub fn warn_if_uncovered(calendar: &WorkCalendar, today: NaiveDate) {
    for year in [today.year(), today.year() + 1] {
        if calendar.years.get(&year).is_some_and(|y| y.provisional) {
            tracing::warn!(
                year,
                "the working-day calendar for {year} is provisional: statutory holidays only, without \
                 the State Council's bridge days and make-up working days; add its notice as a file in \
                 calendar.dir (see docs/lifecycle.md)"
            );
        } else if !calendar.covers(year) {
            tracing::warn!(
                year,
                "no working-day calendar for {year}: its deadlines skip weekends only; add the State \
                 Council's holiday notice as a file in calendar.dir (see docs/lifecycle.md)"
            );
        }
    }
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Every known year; counts working days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCalendar {
    years: BTreeMap<i32, Year>,
}

impl WorkCalendar {
    /// The calendars shipped with this build.
    pub fn official() -> Self {
        let years = SHIPPED
            .iter()
            .map(|(file, text)| Year::parse(file, text).expect("a shipped calendar is checked by its test"))
            .map(|y| (y.year, y))
            .collect();
        Self { years }
    }

    /// The shipped calendars, then every `*.toml` in `dir` (a year there replaces the
    /// shipped one). A bad file is an error naming it, never skipped.
    pub fn load(dir: Option<&Path>) -> Result<Self, CalendarError> {
        let mut calendar = Self::official();
        let Some(dir) = dir else {
            return Ok(calendar);
        };
        let entries = std::fs::read_dir(dir).map_err(|e| CalendarError {
            file: dir.display().to_string(),
            message: format!("cannot read the calendar folder: {e}"),
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let year = Self::read_file(&path)?;
            calendar.years.insert(year.year, year);
        }
        Ok(calendar)
    }

    /// Reads and checks one year's file.
    pub fn read_file(path: &Path) -> Result<Year, CalendarError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CalendarError {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Year::parse(&file, &text)
    }

    /// Whether an official calendar for `year` is known; without one, only weekends are
    /// days off that year.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    pub fn years(&self) -> impl Iterator<Item = &Year> {
        self.years.values()
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.years.get(&day.year()) {
            Some(year) if year.workdays.contains(&day) => true,
            Some(year) if year.holidays.contains_key(&day) => false,
            _ => !is_weekend(day),
        }
    }

    /// The day `n` working days after `start` (`start` itself when `n` is 0).
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut day = start;
        let mut left = n;
        while left > 0 {
            day = day + Days::new(1);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// How many working days lie after `from` up to and including `to`; 0 when `to` is
    /// not after `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_shipped_calendars_parse() {
        let calendar = WorkCalendar::official();
        assert!(calendar.covers(2026) && calendar.covers(2027));
        let counts: Vec<(i32, usize, usize, bool)> = calendar
            .years()
            .map(|y| (y.year, y.holidays.len(), y.workdays.len(), y.provisional))
            .collect();
        // 2027: the 13 statutory days of 国务院令第795号 and no 调休 yet.
        assert_eq!(counts, [(2026, 33, 6, false), (2027, 13, 0, true)]);
    }

    #[test]
    fn days_of_2026() {
        let c = WorkCalendar::official();
        let cases = [
            (d(2026, 1, 1), false, "元旦"),
            (d(2026, 1, 4), true, "make-up Sunday after 元旦"),
            (d(2026, 2, 14), true, "make-up Saturday before 春节"),
            (d(2026, 2, 23), false, "last day of 春节, a Monday"),
            (d(2026, 9, 20), true, "make-up Sunday before 国庆"),
            (d(2026, 9, 25), false, "中秋节, a Friday"),
            (d(2026, 10, 8), true, "the Thursday after 国庆"),
            (d(2026, 10, 10), true, "make-up Saturday after 国庆"),
            (d(2026, 10, 11), false, "an ordinary Sunday"),
            (d(2026, 11, 27), true, "an ordinary Friday"),
        ];
        for (day, working, why) in cases {
            assert_eq!(c.is_working_day(day), working, "{day}: {why}");
        }
    }

    #[test]
    fn adding_working_days_across_holidays_and_make_up_weekends() {
        let c = WorkCalendar::official();
        // (start, n, expected, why)
        let cases = [
            (d(2026, 11, 26), 2, d(2026, 11, 30), "over an ordinary weekend"),
            (d(2026, 11, 26), 0, d(2026, 11, 26), "zero days is the day itself"),
            (
                d(2026, 9, 18),
                5,
                d(2026, 9, 24),
                "Sunday 20 September is worked, 中秋 not reached",
            ),
            (
                d(2026, 9, 18),
                15,
                d(2026, 10, 15),
                "中秋, 国庆 and the make-up Saturday 10 October",
            ),
            (d(2026, 2, 13), 1, d(2026, 2, 14), "the make-up Saturday before 春节"),
            (d(2026, 2, 14), 1, d(2026, 2, 24), "the nine days of 春节"),
            (
                d(2026, 12, 31),
                1,
                d(2027, 1, 4),
                "元旦 2027 is a Friday: provisional 2027 calendar",
            ),
            (
                d(2027, 2, 4),
                1,
                d(2027, 2, 9),
                "春节 2027: 除夕 (Friday 5) to 初三 (Monday 8)",
            ),
            (d(2027, 9, 30), 1, d(2027, 10, 4), "国庆 2027: 1–3 October"),
            (d(2028, 1, 3), 5, d(2028, 1, 10), "2028 has no calendar: Mon–Fri only"),
        ];
        for (start, n, expected, why) in cases {
            assert_eq!(c.add_working_days(start, n), expected, "{start} + {n}: {why}");
        }
    }

    #[test]
    fn counting_is_the_inverse_of_adding() {
        let c = WorkCalendar::official();
        let start = d(2026, 1, 1);
        for n in [0, 1, 5, 15, 40, 200] {
            let end = c.add_working_days(start, n);
            assert_eq!(c.working_days_between(start, end), n, "from {start} to {end}");
        }
        assert_eq!(c.working_days_between(d(2026, 5, 1), d(2026, 4, 1)), 0);
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let head = "year = 2026\nsource = \"test\"\n";
        let cases = [
            (
                format!("{head}workdays = [\"2026-01-05\"]\n"),
                "workdays[0] 2026-01-05: a Mon is a working day anyway",
            ),
            (
                format!("{head}workdays = [\"2027-01-02\"]\n"),
                "workdays[0] 2027-01-02: not in 2026",
            ),
            (
                format!("{head}[[holidays]]\nname = \"x\"\nfrom = \"2026-02-03\"\nto = \"2026-02-01\"\n"),
                "holidays[0] (x): `from` 2026-02-03 is after `to` 2026-02-01",
            ),
            (
                format!(
                    "{head}workdays = [\"2026-01-03\"]\n[[holidays]]\nname = \"元旦\"\nfrom = \"2026-01-01\"\nto = \"2026-01-03\"\n"
                ),
                "workdays[0] 2026-01-03: also listed as a day of 元旦",
            ),
            (
                "year = 2026\nsource = \" \"\n".to_owned(),
                "`source` must name the official notice",
            ),
        ];
        for (text, expected) in cases {
            let e = Year::parse("t.toml", &text).unwrap_err();
            assert_eq!(e.file, "t.toml");
            assert!(e.message.starts_with(expected), "{text}\n→ {}", e.message);
        }
        let e = Year::parse("t.toml", "year = 2026\nsource = \"s\"\nworkdays = [\"2026-13-01\"]\n").unwrap_err();
        assert!(e.to_string().contains("t.toml"), "{e}");
    }
}
