//! The criteria of RULES.md: their codes, owners, outcomes and reason codes, and the record
//! every check yields so that a decision can be read and replayed.

use crate::department::{Department, Track};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who evaluates a criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "department")]
pub enum Owner {
    Collector,
    Department(Department),
}

macro_rules! criterion_codes {
    ($($variant:ident => $code:literal, $owner:expr;)*) => {
        /// A criterion code such as `PS-HUKOU`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        pub enum CriterionCode {
            $(#[serde(rename = $code)] $variant,)*
        }

        impl CriterionCode {
            pub const ALL: &'static [CriterionCode] = &[$(CriterionCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(CriterionCode::$variant => $code,)* }
            }

            pub fn owner(self) -> Owner {
                use Department::*;
                #[allow(unused_imports)]
                use Owner::Collector;
                match self { $(CriterionCode::$variant => $owner,)* }
            }
        }
    };
}

criterion_codes! {
    AgeAdult => "AGE-ADULT", Collector;
    AgeSingle => "AGE-SINGLE", Collector;
    PsIdentity => "PS-IDENTITY", Owner::Department(PublicSecurity);
    PsAlive => "PS-ALIVE", Owner::Department(PublicSecurity);
    PsHukou => "PS-HUKOU", Owner::Department(PublicSecurity);
    PsResidence => "PS-RESIDENCE", Owner::Department(PublicSecurity);
    PsVehicle => "PS-VEHICLE", Owner::Department(PublicSecurity);
    CaMarriage => "CA-MARRIAGE", Owner::Department(CivilAffairs);
    CaIncome => "CA-INCOME", Owner::Department(CivilAffairs);
    CaAssets => "CA-ASSETS", Owner::Department(CivilAffairs);
    HrEmployed => "HR-EMPLOYED", Owner::Department(HumanResources);
    HrInsurance => "HR-INSURANCE", Owner::Department(HumanResources);
    NrArea => "NR-AREA", Owner::Department(NaturalResources);
    NrNone => "NR-NONE", Owner::Department(NaturalResources);
    NrNonResidential => "NR-NONRESIDENTIAL", Owner::Department(NaturalResources);
    HsBenefit => "HS-BENEFIT", Owner::Department(Housing);
    HsPurchase => "HS-PURCHASE", Owner::Department(Housing);
    HsBan => "HS-BAN", Owner::Department(Housing);
    HsDuplicate => "HS-DUPLICATE", Owner::Department(Housing);
    EdGraduate => "ED-GRADUATE", Owner::Department(Education);
}

impl CriterionCode {
    /// Whether the track asks for this criterion (RULES.md, column "tracks").
    pub fn applies_to(self, track: Track) -> bool {
        use CriterionCode::*;
        use Track::*;
        match self {
            AgeSingle | PsHukou | CaAssets | NrArea => track == LocalFamily,
            PsResidence | HrEmployed | HrInsurance | NrNone => track != LocalFamily,
            EdGraduate => track == NewEmployee,
            _ => true,
        }
    }

    /// The criteria one owner must report for a track, in table order.
    pub fn for_owner(owner: Owner, track: Track) -> Vec<CriterionCode> {
        CriterionCode::ALL
            .iter()
            .copied()
            .filter(|c| c.owner() == owner && c.applies_to(track))
            .collect()
    }
}

impl std::fmt::Display for CriterionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// pass, fail (with a reason code) or refer (a person must look).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Refer,
}

macro_rules! reason_codes {
    ($($variant:ident => $code:literal, $zh:literal, $en:literal;)*) => {
        /// Why a criterion failed or was referred.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ReasonCode { $($variant,)* }

        impl ReasonCode {
            pub fn as_str(self) -> &'static str {
                match self { $(ReasonCode::$variant => $code,)* }
            }
            /// A plain message in Chinese.
            pub fn message_zh(self) -> &'static str {
                match self { $(ReasonCode::$variant => $zh,)* }
            }
            /// A plain message in English.
            pub fn message_en(self) -> &'static str {
                match self { $(ReasonCode::$variant => $en,)* }
            }
        }
    };
}

reason_codes! {
    ApplicantMinor => "applicant_minor", "申请人未达到成年年龄", "The applicant is not of age.";
    SingleUnderAge => "single_under_age", "单人户申请人未达到规定年龄", "A single-person household's applicant is under the required age.";
    IdentityMismatch => "identity_mismatch", "身份信息与户籍登记不一致", "The name does not match the registered identity.";
    PersonDeceased => "person_deceased", "家庭成员已登记死亡", "A household member is recorded as deceased.";
    HukouNotLocal => "hukou_not_local", "申请人户籍不在市区", "The applicant's hukou is not in the city's urban districts.";
    HukouTooRecent => "hukou_too_recent", "申请人市区户籍年限不足", "The applicant's local hukou is too recent.";
    NoResidencePermit => "no_residence_permit", "无本市户籍或有效居住证", "Neither local hukou nor a valid residence permit.";
    VehicleExceeds => "vehicle_exceeds", "家庭车辆超过标准", "The household's vehicles exceed the limit.";
    SpouseNotDeclared => "spouse_not_declared", "未申报登记配偶", "The registered spouse is not listed.";
    SpouseMismatch => "spouse_mismatch", "申报配偶与婚姻登记不符", "A listed spouse is not the registered spouse.";
    IncomeExceeds => "income_exceeds", "家庭人均月收入超过标准", "Household income per person exceeds the limit.";
    AssetsExceed => "assets_exceed", "家庭人均金融资产超过标准", "Household financial assets per person exceed the limit.";
    NotEmployed => "not_employed", "申请人当前未缴纳社会保险", "The applicant has no current social insurance contribution.";
    InsuranceTooShort => "insurance_too_short", "社会保险缴纳时间不足", "Social insurance has not been paid long enough.";
    HousingAreaExceeds => "housing_area_exceeds", "家庭人均住房面积超过标准", "Housing floor area per person exceeds the limit.";
    OwnsHousing => "owns_housing", "家庭成员在本市有住房", "A household member owns housing in the city.";
    NonResidentialProperty => "non_residential_property", "家庭成员有非住宅房产，需人工审核", "A non-residential property needs a person to look.";
    AlreadyHoused => "already_housed", "已享受公租房或租赁补贴", "Already renting public housing or receiving a rent subsidy.";
    BoughtAffordableHousing => "bought_affordable_housing", "已购买政策性住房", "Bought affordable, price-capped or reform housing.";
    FraudBan => "fraud_ban", "处于骗租禁入期", "Under a ban for a previous fraudulent application.";
    DuplicateApplication => "duplicate_application", "家庭成员有其他在办申请", "A household member is part of another open application.";
    NotRecentGraduate => "not_recent_graduate", "非规定年限内大专及以上毕业生", "Not a recent enough college graduate.";
    RecordNotFound => "record_not_found", "部门未查到相关记录，需人工审核", "The department holds no record; a person must look.";
    DepartmentNoAnswer => "department_no_answer", "部门未在时限内答复", "The department did not answer in time.";
}

/// The explainable result of one criterion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CriterionResult {
    pub code: CriterionCode,
    pub owner: Owner,
    pub outcome: Outcome,
    pub reasons: Vec<ReasonCode>,
    /// What was observed, in words (never a full ID number).
    pub observed: String,
    /// The rule applied, in words, with the policy's threshold.
    pub threshold: String,
    pub message_zh: String,
    pub message_en: String,
}

impl CriterionResult {
    pub fn pass(code: CriterionCode, observed: impl Into<String>, threshold: impl Into<String>) -> Self {
        Self {
            code,
            owner: code.owner(),
            outcome: Outcome::Pass,
            reasons: Vec::new(),
            observed: observed.into(),
            threshold: threshold.into(),
            message_zh: "符合".into(),
            message_en: "Met.".into(),
        }
    }

    /// Fails with one or more reasons, or refers when the only reasons are refer reasons.
    pub fn not_met(
        code: CriterionCode,
        outcome: Outcome,
        reasons: Vec<ReasonCode>,
        observed: impl Into<String>,
        threshold: impl Into<String>,
    ) -> Self {
        let message_zh = reasons.iter().map(|r| r.message_zh()).collect::<Vec<_>>().join("；");
        let message_en = reasons.iter().map(|r| r.message_en()).collect::<Vec<_>>().join(" ");
        Self {
            code,
            owner: code.owner(),
            outcome,
            reasons,
            observed: observed.into(),
            threshold: threshold.into(),
            message_zh,
            message_en,
        }
    }

    pub fn fail(
        code: CriterionCode,
        reasons: Vec<ReasonCode>,
        observed: impl Into<String>,
        threshold: impl Into<String>,
    ) -> Self {
        Self::not_met(code, Outcome::Fail, reasons, observed, threshold)
    }

    pub fn refer(
        code: CriterionCode,
        reason: ReasonCode,
        observed: impl Into<String>,
        threshold: impl Into<String>,
    ) -> Self {
        Self::not_met(code, Outcome::Refer, vec![reason], observed, threshold)
    }

    /// A check could not find a record of a person it examines.
    pub fn record_not_found(code: CriterionCode, who: &str) -> Self {
        Self::refer(
            code,
            ReasonCode::RecordNotFound,
            format!("no record of {who}"),
            "a record must exist",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_track_reports_the_criteria_of_rules_md() {
        let codes = |t| {
            CriterionCode::ALL
                .iter()
                .filter(|c| c.applies_to(t))
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes(Track::LocalFamily),
            [
                "AGE-ADULT",
                "AGE-SINGLE",
                "PS-IDENTITY",
                "PS-ALIVE",
                "PS-HUKOU",
                "PS-VEHICLE",
                "CA-MARRIAGE",
                "CA-INCOME",
                "CA-ASSETS",
                "NR-AREA",
                "NR-NONRESIDENTIAL",
                "HS-BENEFIT",
                "HS-PURCHASE",
                "HS-BAN",
                "HS-DUPLICATE"
            ]
        );
        assert_eq!(codes(Track::NewEmployee).len(), 16);
        assert!(codes(Track::MigrantWorker).contains(&"HR-INSURANCE"));
        assert!(!codes(Track::MigrantWorker).contains(&"ED-GRADUATE"));
    }

    #[test]
    fn every_owned_criterion_belongs_to_a_department_the_track_asks() {
        for track in Track::ALL {
            for code in CriterionCode::ALL.iter().filter(|c| c.applies_to(track)) {
                if let Owner::Department(d) = code.owner() {
                    assert!(track.departments().contains(&d), "{code} on {track}");
                }
            }
        }
    }

    #[test]
    fn codes_serialize_as_in_rules_md() {
        assert_eq!(
            serde_json::to_string(&CriterionCode::NrNonResidential).unwrap(),
            "\"NR-NONRESIDENTIAL\""
        );
        assert_eq!(
            serde_json::to_string(&ReasonCode::RecordNotFound).unwrap(),
            "\"record_not_found\""
        );
        assert_eq!(ReasonCode::FraudBan.as_str(), "fraud_ban");
    }
}
