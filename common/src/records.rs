//! Registry records as a department exports them: one JSON object per line, tagged by
//! `record`. Parsing yields typed, validated records or a reason that names the field;
//! loading them into a registry is `prh_workers::import`.

use crate::{
    contract::AssistanceCategory,
    department::Department,
    id_number::IdNumber,
    money::{CentiSqm, Fen},
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant,)* }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Reads the stored text; anything else is `None`.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

text_enum!(
    /// 婚姻状况
    MaritalStatus { Single => "single", Married => "married", Divorced => "divorced", Widowed => "widowed" }
);
text_enum!(
    /// What a property is used for.
    PropertyUse { Residential => "residential", NonResidential => "non_residential" }
);
text_enum!(
    /// Why a property left the household. Sale, gift and divorce are added back within
    /// the look-back; other causes (expropriation, inheritance passed on…) are not.
    TransferCause { Sale => "sale", Gift => "gift", Divorce => "divorce", Other => "other" }
);
text_enum!(
    /// A housing benefit held from the housing bureau.
    BenefitKind { PublicRental => "public_rental", RentSubsidy => "rent_subsidy" }
);
text_enum!(
    /// 经济适用房, 限价房, 房改房.
    PurchaseKind { Economical => "economical", PriceCapped => "price_capped", Reform => "reform" }
);
text_enum!(
    /// Degree levels, lowest first: 中专/技校, 大专, 本科, 硕士, 博士.
    DegreeLevel { Vocational => "vocational", College => "college", Bachelor => "bachelor", Master => "master", Doctor => "doctor" }
);

/// A six-digit administrative region code (行政区划代码).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);

impl TryFrom<String> for RegionCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s))
        } else {
            Err(format!("a region code is 6 digits, found `{s}`"))
        }
    }
}

impl From<RegionCode> for String {
    fn from(r: RegionCode) -> String {
        r.0
    }
}

impl RegionCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contribution month, `YYYY-MM` in files, `yyyymm` in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month(pub i32);

impl TryFrom<String> for Month {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("a month is written YYYY-MM, found `{s}`");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        let (y, m): (i32, i32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if y.to_string().len() != 4 || !(1..=12).contains(&m) {
            return Err(bad());
        }
        Ok(Self(y * 100 + m))
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        format!("{}-{:02}", m.0 / 100, m.0 % 100)
    }
}

/// 公安 records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum PublicSecurityRecord {
    /// 户籍: identity and household registration.
    Person {
        id_number: IdNumber,
        name: String,
        hukou_region: RegionCode,
        hukou_since: NaiveDate,
        #[serde(default)]
        deceased: bool,
    },
    /// 居住证
    ResidencePermit {
        id_number: IdNumber,
        region: RegionCode,
        valid_until: NaiveDate,
    },
    /// 机动车
    Vehicle {
        id_number: IdNumber,
        plate: String,
        value_fen: Fen,
        #[serde(default)]
        disability_adapted: bool,
    },
}

/// 民政 records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum CivilAffairsRecord {
    Person {
        id_number: IdNumber,
        name: String,
        marital_status: MaritalStatus,
        #[serde(default)]
        spouse_id_number: Option<IdNumber>,
        /// Date of the current marriage registration, when married.
        #[serde(default)]
        married_on: Option<NaiveDate>,
        assistance_category: AssistanceCategory,
        verified_monthly_income_fen: Fen,
        financial_assets_fen: Fen,
    },
}

/// 人社 records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum HumanResourcesRecord {
    Person {
        id_number: IdNumber,
        name: String,
        #[serde(default)]
        employer: Option<String>,
    },
    /// One month paid; `back_paid` (补缴) months never count.
    Contribution {
        id_number: IdNumber,
        month: Month,
        #[serde(default)]
        back_paid: bool,
    },
}

/// 自然资源和规划 records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum NaturalResourcesRecord {
    /// The person was searched for in the real-estate register.
    Person { id_number: IdNumber },
    Property {
        id_number: IdNumber,
        usage: PropertyUse,
        area_centi_sqm: CentiSqm,
        acquired_on: NaiveDate,
        #[serde(default)]
        transferred_on: Option<NaiveDate>,
        #[serde(default)]
        transfer_cause: Option<TransferCause>,
    },
}

/// 住建 records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum HousingRecord {
    Person {
        id_number: IdNumber,
    },
    Benefit {
        id_number: IdNumber,
        kind: BenefitKind,
        active: bool,
    },
    Purchase {
        id_number: IdNumber,
        kind: PurchaseKind,
        purchased_on: NaiveDate,
    },
    Ban {
        id_number: IdNumber,
        imposed_on: NaiveDate,
    },
}

/// 教育 records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum EducationRecord {
    Person {
        id_number: IdNumber,
        name: String,
    },
    Degree {
        id_number: IdNumber,
        level: DegreeLevel,
        graduated_on: NaiveDate,
    },
}

/// A record of any department.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    PublicSecurity(PublicSecurityRecord),
    CivilAffairs(CivilAffairsRecord),
    HumanResources(HumanResourcesRecord),
    NaturalResources(NaturalResourcesRecord),
    Housing(HousingRecord),
    Education(EducationRecord),
}

impl Record {
    pub fn department(&self) -> Department {
        match self {
            Record::PublicSecurity(_) => Department::PublicSecurity,
            Record::CivilAffairs(_) => Department::CivilAffairs,
            Record::HumanResources(_) => Department::HumanResources,
            Record::NaturalResources(_) => Department::NaturalResources,
            Record::Housing(_) => Department::Housing,
            Record::Education(_) => Department::Education,
        }
    }

    /// The JSON line for this record, as an export would hold it.
    pub fn to_line(&self) -> String {
        let value = match self {
            Record::PublicSecurity(r) => serde_json::to_string(r),
            Record::CivilAffairs(r) => serde_json::to_string(r),
            Record::HumanResources(r) => serde_json::to_string(r),
            Record::NaturalResources(r) => serde_json::to_string(r),
            Record::Housing(r) => serde_json::to_string(r),
            Record::Education(r) => serde_json::to_string(r),
        };
        value.expect("records always serialize")
    }

    /// Rules serde cannot express: amounts not negative, names present, a transfer with
    /// both its date and its cause, a married person with a spouse.
    fn check(&self) -> Result<(), String> {
        let name_ok = |n: &str| !n.trim().is_empty() && n.chars().count() <= 50;
        let not_negative = |field: &str, v: i64| {
            if v < 0 {
                Err(format!("{field} cannot be negative"))
            } else {
                Ok(())
            }
        };
        match self {
            Record::PublicSecurity(PublicSecurityRecord::Person { name, .. })
            | Record::HumanResources(HumanResourcesRecord::Person { name, .. })
            | Record::Education(EducationRecord::Person { name, .. })
                if !name_ok(name) =>
            {
                Err("name must be 1 to 50 characters".into())
            }
            Record::PublicSecurity(PublicSecurityRecord::Vehicle { value_fen, .. }) => {
                not_negative("value_fen", value_fen.0)
            }
            Record::CivilAffairs(CivilAffairsRecord::Person {
                name,
                marital_status,
                spouse_id_number,
                married_on,
                verified_monthly_income_fen,
                financial_assets_fen,
                ..
            }) => {
                if !name_ok(name) {
                    return Err("name must be 1 to 50 characters".into());
                }
                if (*marital_status == MaritalStatus::Married) != spouse_id_number.is_some() {
                    return Err("spouse_id_number is given exactly when marital_status is married".into());
                }
                if married_on.is_some() && *marital_status != MaritalStatus::Married {
                    return Err("married_on is given only when marital_status is married".into());
                }
                not_negative("verified_monthly_income_fen", verified_monthly_income_fen.0)?;
                not_negative("financial_assets_fen", financial_assets_fen.0)
            }
            Record::NaturalResources(NaturalResourcesRecord::Property {
                area_centi_sqm,
                transferred_on,
                transfer_cause,
                acquired_on,
                ..
            }) => {
                not_negative("area_centi_sqm", area_centi_sqm.0)?;
                if transferred_on.is_some() != transfer_cause.is_some() {
                    return Err("transferred_on and transfer_cause come together".into());
                }
                if transferred_on.is_some_and(|t| t < *acquired_on) {
                    return Err("transferred_on is before acquired_on".into());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Parses one line of `department`'s export. The reason names the field and never
/// repeats an ID number.
pub fn parse_line(department: Department, line: &str) -> Result<Record, String> {
    fn parse<T: serde::de::DeserializeOwned>(line: &str) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_str(line);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            crate::id_number::redact(&format!("{at}{}", e.inner()))
        })?;
        de.end().map_err(|e| format!("text after the record: {e}"))?;
        Ok(value)
    }
    let record = match department {
        Department::PublicSecurity => Record::PublicSecurity(parse(line)?),
        Department::CivilAffairs => Record::CivilAffairs(parse(line)?),
        Department::HumanResources => Record::HumanResources(parse(line)?),
        Department::NaturalResources => Record::NaturalResources(parse(line)?),
        Department::Housing => Record::Housing(parse(line)?),
        Department::Education => Record::Education(parse(line)?),
    };
    record.check()?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_or_say_what_is_wrong() {
        let ps = Department::PublicSecurity;
        let ok = r#"{"record":"person","id_number":"11010519491231002X","name":"张三","hukou_region":"371002","hukou_since":"2001-05-01"}"#;
        assert!(matches!(
            parse_line(ps, ok),
            Ok(Record::PublicSecurity(PublicSecurityRecord::Person {
                deceased: false,
                ..
            }))
        ));
        let cases = [
            (
                ps,
                r#"{"record":"person","id_number":"110105194912310021","name":"张三","hukou_region":"371002","hukou_since":"2001-05-01"}"#,
                "check character",
            ),
            (
                ps,
                r#"{"record":"person","id_number":"11010519491231002X","name":"张三","hukou_region":"37100","hukou_since":"2001-05-01"}"#,
                "region code",
            ),
            (
                ps,
                r#"{"record":"car","id_number":"11010519491231002X"}"#,
                "unknown variant `car`",
            ),
            (
                ps,
                r#"{"record":"vehicle","id_number":"11010519491231002X","plate":"鲁K","value_fen":-1}"#,
                "value_fen cannot be negative",
            ),
            (
                ps,
                r#"{"record":"person","id_number":"11010519491231002X","name":"","hukou_region":"371002","hukou_since":"2001-05-01"}"#,
                "name must be",
            ),
            (
                Department::HumanResources,
                r#"{"record":"contribution","id_number":"11010519491231002X","month":"2026-13"}"#,
                "YYYY-MM",
            ),
            (
                Department::CivilAffairs,
                r#"{"record":"person","id_number":"11010519491231002X","name":"张三","marital_status":"married","assistance_category":"none","verified_monthly_income_fen":0,"financial_assets_fen":0}"#,
                "spouse_id_number",
            ),
            (
                Department::NaturalResources,
                r#"{"record":"property","id_number":"11010519491231002X","usage":"residential","area_centi_sqm":5000,"acquired_on":"2010-01-01","transferred_on":"2020-01-01"}"#,
                "come together",
            ),
            (
                Department::Education,
                r#"{"record":"degree","id_number":"11010519491231002X","level":"phd","graduated_on":"2020-07-01"}"#,
                "unknown variant `phd`",
            ),
            (Department::Housing, "not json", "expected"),
            (
                Department::Housing,
                r#"{"record":"person","id_number":"11010519491231002X"} junk"#,
                "text after the record",
            ),
        ];
        for (department, line, expected) in cases {
            let err = parse_line(department, line).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
            assert!(!err.contains("11010519491231002"), "the ID number leaked: {err}");
        }
    }

    #[test]
    fn records_round_trip_through_their_line() {
        let line = r#"{"record":"contribution","id_number":"11010519491231002X","month":"2026-01","back_paid":true}"#;
        let record = parse_line(Department::HumanResources, line).unwrap();
        assert_eq!(
            parse_line(Department::HumanResources, &record.to_line()).unwrap(),
            record
        );
        assert!(record.to_line().contains("\"2026-01\""));
    }

    #[test]
    fn degree_levels_order_lowest_first() {
        assert!(DegreeLevel::Vocational < DegreeLevel::College && DegreeLevel::Master < DegreeLevel::Doctor);
    }
}
