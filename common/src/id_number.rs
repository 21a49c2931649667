//! Resident ID numbers (居民身份证号码, GB 11643-1999): parsing with checksum and birth date.
//! An `IdNumber` can only hold a valid number; its `Debug` and `Display` show it masked.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Weihai's county-level region codes (威海市).
pub const WEIHAI_REGIONS: [(&str, &str); 4] = [
    ("371002", "环翠区"),
    ("371003", "文登区"),
    ("371082", "荣成市"),
    ("371083", "乳山市"),
];

/// Why a string is not an ID number. Messages never repeat the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("must be 18 characters, found {0}")]
    Length(usize),
    #[error("characters 1-17 must be digits and the last a digit or X")]
    Characters,
    #[error("the birth date (characters 7-14) is not a real date")]
    BirthDate,
    #[error("the birth date lies in the future")]
    FutureBirthDate,
    #[error("the check character does not match (GB 11643-1999)")]
    Checksum,
}

impl IdNumberError {
    /// A stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Length(_) => "id_length",
            Self::Characters => "id_characters",
            Self::BirthDate => "id_birth_date",
            Self::FutureBirthDate => "id_birth_date_future",
            Self::Checksum => "id_checksum",
        }
    }
}

/// A valid 18-character resident ID number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(String);

impl IdNumber {
    /// Parses `s` as an ID number whose birth date is not after `today`.
    pub fn parse_on(s: &str, today: NaiveDate) -> Result<Self, IdNumberError> {
        let bytes = s.as_bytes();
        if s.chars().count() != 18 {
            return Err(IdNumberError::Length(s.chars().count()));
        }
        if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
            return Err(IdNumberError::Characters);
        }
        let last = bytes[17].to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(IdNumberError::Characters);
        }
        let birth = birth_date_of(&s[6..14]).ok_or(IdNumberError::BirthDate)?;
        if birth > today {
            return Err(IdNumberError::FutureBirthDate);
        }
        if check_char(&bytes[..17]) != last {
            return Err(IdNumberError::Checksum);
        }
        let mut owned = s.to_owned();
        owned.make_ascii_uppercase();
        Ok(Self(owned))
    }

    /// Builds a valid number from its first 17 characters by appending the check character.
    /// Used by the synthetic data generator.
    pub fn from_body(body17: &str) -> Result<Self, IdNumberError> {
        if body17.len() != 17 || !body17.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdNumberError::Characters);
        }
        birth_date_of(&body17[6..14]).ok_or(IdNumberError::BirthDate)?;
        let mut s = body17.to_owned();
        s.push(check_char(body17.as_bytes()) as char);
        Ok(Self(s))
    }

    /// The full number. Only for storage, registry look-ups and the wire to a department.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First four and last four characters visible, as on certificates and in logs.
    pub fn masked(&self) -> String {
        format!("{}**********{}", &self.0[..4], &self.0[14..])
    }

    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(&self.0[6..14]).expect("validated on construction")
    }

    pub fn is_male(&self) -> bool {
        (self.0.as_bytes()[16] - b'0') % 2 == 1
    }

    /// Age in completed years on `date`; the birthday itself counts.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        let birth = self.birth_date();
        let mut years = date.year() - birth.year();
        if (date.month(), date.day()) < (birth.month(), birth.day()) {
            years -= 1;
        }
        years.max(0) as u32
    }
}

/// Masks anything in `text` that looks like an ID number (17 digits and a digit or X), so
/// error messages built from untrusted input never carry a full number.
pub fn redact(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let window = chars.get(i..i + 18);
        let looks_like_id = window.is_some_and(|w| {
            w[..17].iter().all(char::is_ascii_digit) && (w[17].is_ascii_digit() || w[17] == 'X' || w[17] == 'x')
        });
        if looks_like_id {
            let w: String = chars[i..i + 18].iter().collect();
            out.push_str(&format!("{}**********{}", &w[..4], &w[14..]));
            i += 18;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn birth_date_of(yyyymmdd: &str) -> Option<NaiveDate> {
    let y = yyyymmdd[..4].parse().ok()?;
    let m = yyyymmdd[4..6].parse().ok()?;
    let d = yyyymmdd[6..8].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d).filter(|date| date.year() >= 1900)
}

fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for IdNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Deserializing checks everything but the future-date rule, which needs a "today";
/// intake applies that rule when it parses a form.
impl<'de> Deserialize<'de> for IdNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        IdNumber::parse_on(&s, NaiveDate::MAX)
            .map_err(|e| serde::de::Error::custom(format!("not a valid ID number: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    #[test]
    fn parses_and_rejects_by_rule() {
        // 11010519491231002X is the standard's own worked example.
        let cases: &[(&str, Result<(), IdNumberError>)] = &[
            ("11010519491231002X", Ok(())),
            ("11010519491231002x", Ok(())),
            ("110105194912310021", Err(IdNumberError::Checksum)),
            ("11010519491231002", Err(IdNumberError::Length(17))),
            ("11010519491231002XX", Err(IdNumberError::Length(19))),
            ("11010519491331002X", Err(IdNumberError::BirthDate)),
            ("11010519490230002X", Err(IdNumberError::BirthDate)),
            ("1101051949123100AX", Err(IdNumberError::Characters)),
            ("11010520991231002X", Err(IdNumberError::FutureBirthDate)),
            ("１１０１０５１９４９１２３１００２Ｘ", Err(IdNumberError::Characters)),
        ];
        for (input, expected) in cases {
            let got = IdNumber::parse_on(input, today()).map(|_| ());
            assert_eq!(&got, expected, "input {input}");
        }
    }

    #[test]
    fn from_body_makes_valid_numbers() {
        let id = IdNumber::from_body("37100219900307123").unwrap();
        assert_eq!(IdNumber::parse_on(id.expose(), today()).unwrap(), id);
        assert_eq!(id.region_code(), "371002");
        assert!(id.is_male());
    }

    #[test]
    fn masks_in_every_rendering() {
        let id = IdNumber::parse_on("11010519491231002X", today()).unwrap();
        assert_eq!(id.masked(), "1101**********002X");
        assert_eq!(format!("{id}"), "1101**********002X");
        assert!(!format!("{id:?}").contains("19491231"));
    }

    #[test]
    fn age_counts_completed_years_and_the_birthday() {
        let id = IdNumber::from_body("37100220080229123").unwrap();
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(id.age_on(d(2026, 2, 28)), 17);
        assert_eq!(id.age_on(d(2026, 3, 1)), 18);
        let id = IdNumber::from_body("37100220080615123").unwrap();
        assert_eq!(id.age_on(d(2026, 6, 14)), 17);
        assert_eq!(id.age_on(d(2026, 6, 15)), 18);
    }

    #[test]
    fn redact_masks_numbers_inside_text() {
        assert_eq!(
            redact("bad value 11010519491231002X here"),
            "bad value 1101**********002X here"
        );
        assert_eq!(redact("short 12345"), "short 12345");
    }

    #[test]
    fn deserializing_rejects_a_bad_checksum() {
        let err = serde_json::from_str::<IdNumber>("\"110105194912310021\"").unwrap_err();
        assert!(err.to_string().contains("check character"));
    }
}
