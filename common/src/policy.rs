//! The eligibility policy: thresholds as versioned data, and the pure decision the collector
//! takes from an application and the departments' findings. No I/O here.

use crate::{
    application::{Application, Benefit},
    contract::{AssistanceCategory, Facts, Finding},
    criteria::{CriterionCode, CriterionResult, Outcome, Owner, ReasonCode},
    department::Department,
    money::{CentiSqm, Fen},
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The thresholds of RULES.md. Defaults are RULES.md's; an operator sets Weihai's figures
/// in a policy file (see `policy/default.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: String,
    pub effective_from: NaiveDate,
    /// Region codes of the city's urban districts (市区), for PS-HUKOU.
    pub urban_regions: Vec<String>,
    /// Region codes of the whole city, for residence permits.
    pub city_regions: Vec<String>,
    pub hukou_min_years: u32,
    pub look_back_years: u32,
    pub adult_age: u32,
    pub single_min_age: u32,
    pub vehicle_max_count: u32,
    pub vehicle_max_value_fen: Fen,
    /// Verified household income per person per month.
    pub income_limit_fen: Fen,
    /// Financial assets per person, as a multiple of the yearly income limit.
    pub assets_limit_years: i64,
    pub new_employee_insurance_months: u32,
    pub migrant_consecutive_months: u32,
    pub migrant_total_months: u32,
    pub area_limit_per_person: CentiSqm,
    pub graduate_within_years: u32,
    pub ban_years: u32,
    pub certificate_validity_years: u32,
    /// The statutory limit for the decision, in working days from the submission date.
    pub decision_working_days: u32,
    /// Each department's limit for its answer, in working days; past it the case is
    /// referred with the department named.
    #[serde(default = "defaults::department_working_days")]
    pub department_working_days: u32,
    /// The public notice period (公示) a qualified household goes through before its
    /// certificate is issued, in working days; 0 issues the certificate with the decision.
    #[serde(default = "defaults::notice_working_days")]
    pub notice_working_days: u32,
    pub subsidy: SubsidyPolicy,
}

/// RULES.md's time limits, for policy files written before they were settable.
mod defaults {
    pub fn department_working_days() -> u32 {
        5
    }
    pub fn notice_working_days() -> u32 {
        5
    }
}

/// How a qualified household's rent subsidy is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsidyPolicy {
    /// Guaranteed area by household size: (smallest household size of the band, area),
    /// ascending; a household gets the area of the last band it reaches.
    pub guaranteed_area: Vec<(u32, CentiSqm)>,
    /// Rate for 特困 and 低保 households, fen per m² per month.
    pub assisted_rate_fen: Fen,
    /// Rate bands by verified income per person: (inclusive upper limit, rate).
    pub income_bands: Vec<(Fen, Fen)>,
    /// Rate above every band.
    pub top_rate_fen: Fen,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            version: "rules-md-defaults-1".into(),
            effective_from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid date"),
            urban_regions: vec!["371002".into(), "371003".into()],
            city_regions: vec!["371002".into(), "371003".into(), "371082".into(), "371083".into()],
            hukou_min_years: 5,
            look_back_years: 5,
            adult_age: 18,
            single_min_age: 35,
            vehicle_max_count: 1,
            vehicle_max_value_fen: Fen::yuan(150_000),
            income_limit_fen: Fen::yuan(3_580),
            assets_limit_years: 6,
            new_employee_insurance_months: 6,
            migrant_consecutive_months: 12,
            migrant_total_months: 36,
            area_limit_per_person: CentiSqm::sqm(15),
            graduate_within_years: 5,
            ban_years: 5,
            certificate_validity_years: 1,
            decision_working_days: 15,
            department_working_days: defaults::department_working_days(),
            notice_working_days: defaults::notice_working_days(),
            subsidy: SubsidyPolicy {
                guaranteed_area: vec![(1, CentiSqm::sqm(30)), (3, CentiSqm::sqm(40)), (4, CentiSqm::sqm(50))],
                assisted_rate_fen: Fen::yuan(20),
                income_bands: vec![(Fen::yuan(1_693), Fen::yuan(18)), (Fen::yuan(2_540), Fen::yuan(16))],
                top_rate_fen: Fen::yuan(14),
            },
        }
    }
}

/// A policy file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file is not valid TOML for a policy: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("policy is inconsistent: {0}")]
    Invalid(String),
}

impl Policy {
    /// The policy in `file`, or the built-in defaults when no file is configured.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, PolicyError> {
        match file {
            None => Ok(Policy::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| PolicyError::Invalid(format!("cannot read {}: {e}", path.display())))?;
                Policy::from_toml(&text)
            }
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text)?;
        policy.check()?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), PolicyError> {
        let invalid = |m: &str| Err(PolicyError::Invalid(m.into()));
        if self.version.trim().is_empty() {
            return invalid("version must not be empty");
        }
        let six_digits = |r: &String| r.len() == 6 && r.bytes().all(|b| b.is_ascii_digit());
        if !self.city_regions.iter().all(six_digits) || !self.urban_regions.iter().all(six_digits) {
            return invalid("region codes are six digits");
        }
        if !self.urban_regions.iter().all(|r| self.city_regions.contains(r)) {
            return invalid("every urban region must also be one of city_regions");
        }
        let sizes: Vec<u32> = self.subsidy.guaranteed_area.iter().map(|(n, _)| *n).collect();
        if sizes.first() != Some(&1) || sizes.windows(2).any(|w| w[0] >= w[1]) {
            return invalid("subsidy.guaranteed_area must start at household size 1 and ascend");
        }
        let limits: Vec<i64> = self.subsidy.income_bands.iter().map(|(limit, _)| limit.0).collect();
        if limits.windows(2).any(|w| w[0] >= w[1]) {
            return invalid("subsidy.income_bands must ascend by income limit");
        }
        if self.income_limit_fen.0 <= 0 || self.vehicle_max_value_fen.0 < 0 {
            return invalid("income and vehicle limits must be positive");
        }
        Ok(())
    }

    /// Financial assets allowed per person.
    pub fn assets_limit_per_person(&self) -> Fen {
        Fen(self.income_limit_fen.0 * 12 * self.assets_limit_years)
    }

    fn guaranteed_area(&self, household_size: usize) -> CentiSqm {
        self.subsidy
            .guaranteed_area
            .iter()
            .rev()
            .find(|(min, _)| household_size as u64 >= u64::from(*min))
            .map(|(_, area)| *area)
            .unwrap_or_default()
    }
}

/// qualified, rejected or referred to manual review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Qualified,
    Rejected,
    Referred,
}

impl DecisionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qualified => "qualified",
            Self::Rejected => "rejected",
            Self::Referred => "referred",
        }
    }
}

/// What a qualified household is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Award {
    /// 1 for 特困 and 低保, 2 for 低收入, 3 otherwise.
    pub priority_group: u8,
    pub assistance_category: AssistanceCategory,
    pub benefit: Benefit,
    /// Present only when the benefit asked for is the rent subsidy.
    #[schema(value_type = Option<i64>)]
    pub monthly_subsidy_fen: Option<Fen>,
    #[schema(value_type = Option<i64>)]
    pub subsidy_rate_fen_per_sqm: Option<Fen>,
    #[schema(value_type = Option<i64>)]
    pub subsidised_area_centi_sqm: Option<CentiSqm>,
}

/// The explainable decision: every criterion's record, the outcome and the award.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub outcome: DecisionOutcome,
    pub policy_version: String,
    pub criteria: Vec<CriterionResult>,
    pub award: Option<Award>,
}

impl Decision {
    /// Every distinct reason across the criteria, in criterion order.
    pub fn reasons(&self) -> Vec<ReasonCode> {
        let mut out = Vec::new();
        for r in self.criteria.iter().flat_map(|c| c.reasons.iter()) {
            if !out.contains(r) {
                out.push(*r);
            }
        }
        out
    }
}

/// Applies the policy: the collector's own criteria, the departments' criteria as reported,
/// and RULES.md's outcome rule. A criterion that a required department did not report is a
/// refer, never a pass.
pub fn decide(policy: &Policy, application: &Application, findings: &[Finding]) -> Decision {
    let track = application.track;
    let mut criteria = collector_criteria(policy, application);

    let by_department: BTreeMap<Department, &Finding> = findings.iter().map(|f| (f.department, f)).collect();
    for &department in track.departments() {
        for code in CriterionCode::for_owner(Owner::Department(department), track) {
            let reported = by_department
                .get(&department)
                .and_then(|f| f.criteria.iter().find(|c| c.code == code));
            criteria.push(match reported {
                Some(result) => result.clone(),
                None => CriterionResult::refer(
                    code,
                    ReasonCode::DepartmentNoAnswer,
                    format!("{department} reported nothing for {code}"),
                    "every criterion must be answered",
                ),
            });
        }
    }

    let outcome = if criteria.iter().any(|c| c.outcome == Outcome::Fail) {
        DecisionOutcome::Rejected
    } else if criteria.iter().any(|c| c.outcome == Outcome::Refer) {
        DecisionOutcome::Referred
    } else {
        DecisionOutcome::Qualified
    };

    let facts = Facts::merged(findings.iter().map(|f| &f.facts));
    let award = (outcome == DecisionOutcome::Qualified).then(|| award(policy, application, &facts));
    Decision {
        outcome,
        policy_version: policy.version.clone(),
        criteria,
        award,
    }
}

/// The decision a reviewer's qualification turns a referred one into: qualified, with the
/// award computed from whatever facts the departments have reported by now. The criteria
/// stay as the rules found them, so the certificate's record shows what was referred.
pub fn qualified_on_review(
    policy: &Policy,
    application: &Application,
    decision: &Decision,
    findings: &[Finding],
) -> Decision {
    let facts = Facts::merged(findings.iter().map(|f| &f.facts));
    Decision {
        outcome: DecisionOutcome::Qualified,
        award: Some(award(policy, application, &facts)),
        ..decision.clone()
    }
}

fn collector_criteria(policy: &Policy, application: &Application) -> Vec<CriterionResult> {
    let date = application.application_date;
    let age = application.applicant().id_number.age_on(date);
    let mut out = Vec::new();

    let threshold = format!("applicant aged {} or older", policy.adult_age);
    out.push(if age >= policy.adult_age {
        CriterionResult::pass(CriterionCode::AgeAdult, format!("aged {age}"), threshold)
    } else {
        CriterionResult::fail(
            CriterionCode::AgeAdult,
            vec![ReasonCode::ApplicantMinor],
            format!("aged {age}"),
            threshold,
        )
    });

    if CriterionCode::AgeSingle.applies_to(application.track) {
        let size = application.household_size();
        let threshold = format!("a household of one: applicant aged {} or older", policy.single_min_age);
        let observed = format!("household of {size}, applicant aged {age}");
        out.push(if size > 1 || age >= policy.single_min_age {
            CriterionResult::pass(CriterionCode::AgeSingle, observed, threshold)
        } else {
            CriterionResult::fail(
                CriterionCode::AgeSingle,
                vec![ReasonCode::SingleUnderAge],
                observed,
                threshold,
            )
        });
    }
    out
}

fn award(policy: &Policy, application: &Application, facts: &Facts) -> Award {
    let category = facts.assistance_category.unwrap_or(AssistanceCategory::None);
    let priority_group = match category {
        AssistanceCategory::Tekun | AssistanceCategory::Dibao => 1,
        AssistanceCategory::LowIncome => 2,
        AssistanceCategory::None => 3,
    };
    let (monthly, rate, area) = if application.benefit == Benefit::RentSubsidy {
        let size = application.household_size();
        let rate = if category.is_assisted() {
            policy.subsidy.assisted_rate_fen
        } else {
            let income = facts.verified_household_income_fen.unwrap_or_default();
            policy
                .subsidy
                .income_bands
                .iter()
                .find(|(limit, _)| income.0 <= limit.0 * size as i64)
                .map(|(_, rate)| *rate)
                .unwrap_or(policy.subsidy.top_rate_fen)
        };
        let owned = facts.owned_residential_area.unwrap_or_default();
        let area = CentiSqm((policy.guaranteed_area(size).0 - owned.0).max(0));
        // rate (fen per m²) × area (centi-m²) / 100, rounded half up to the fen.
        let monthly = Fen((rate.0 * area.0 + 50) / 100);
        (Some(monthly), Some(rate), Some(area))
    } else {
        (None, None, None)
    };
    Award {
        priority_group,
        assistance_category: category,
        benefit: application.benefit,
        monthly_subsidy_fen: monthly,
        subsidy_rate_fen_per_sqm: rate,
        subsidised_area_centi_sqm: area,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        application::{Person, Relation},
        department::Track,
        id_number::IdNumber,
    };
    use chrono::Utc;
    use uuid::Uuid;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn person(body: &str, relation: Relation) -> Person {
        Person {
            name: "测试".into(),
            id_number: IdNumber::from_body(body).unwrap(),
            relation,
        }
    }

    fn application(track: Track, household: Vec<Person>, benefit: Benefit) -> Application {
        Application {
            track,
            household,
            declared_monthly_income_fen: Fen::yuan(3000),
            benefit,
            phone: "13806310000".into(),
            employer: None,
            application_date: d(2026, 11, 26),
        }
    }

    fn passing_finding(department: Department, track: Track, facts: Facts) -> Finding {
        Finding {
            application_id: Uuid::nil(),
            department,
            policy_version: "t".into(),
            checked_at: Utc::now(),
            criteria: CriterionCode::for_owner(Owner::Department(department), track)
                .into_iter()
                .map(|c| CriterionResult::pass(c, "ok", "rule"))
                .collect(),
            facts,
        }
    }

    fn all_passing(track: Track, facts: Facts) -> Vec<Finding> {
        track
            .departments()
            .iter()
            .map(|&dep| passing_finding(dep, track, facts.clone()))
            .collect()
    }

    #[test]
    fn outcome_follows_fail_then_refer_then_qualified() {
        let app = application(
            Track::LocalFamily,
            vec![
                person("37100219800101123", Relation::Applicant),
                person("37100219820101124", Relation::Spouse),
            ],
            Benefit::Flat,
        );
        let policy = Policy::default();
        let mut findings = all_passing(Track::LocalFamily, Facts::default());
        assert_eq!(decide(&policy, &app, &findings).outcome, DecisionOutcome::Qualified);

        findings[0].criteria[0] = CriterionResult::record_not_found(CriterionCode::PsIdentity, "a person");
        assert_eq!(decide(&policy, &app, &findings).outcome, DecisionOutcome::Referred);

        findings[1].criteria[1] =
            CriterionResult::fail(CriterionCode::CaIncome, vec![ReasonCode::IncomeExceeds], "x", "y");
        let decision = decide(&policy, &app, &findings);
        assert_eq!(decision.outcome, DecisionOutcome::Rejected);
        assert_eq!(
            decision.reasons(),
            vec![ReasonCode::RecordNotFound, ReasonCode::IncomeExceeds]
        );
    }

    #[test]
    fn a_missing_department_refers() {
        let app = application(
            Track::MigrantWorker,
            vec![person("37100219800101123", Relation::Applicant)],
            Benefit::Flat,
        );
        let mut findings = all_passing(Track::MigrantWorker, Facts::default());
        findings.retain(|f| f.department != Department::HumanResources);
        let decision = decide(&Policy::default(), &app, &findings);
        assert_eq!(decision.outcome, DecisionOutcome::Referred);
        assert!(decision.reasons().contains(&ReasonCode::DepartmentNoAnswer));
    }

    #[test]
    fn age_criteria_by_table() {
        // Application date 2026-11-26. (birth date body, expected AGE-ADULT, expected
        // AGE-SINGLE for a household of one; households of 2 to 5 always pass AGE-SINGLE.)
        let cases = [
            ("37100220081126123", Outcome::Pass, Outcome::Fail), // 18 today
            ("37100220081127123", Outcome::Fail, Outcome::Fail), // 18 tomorrow
            ("37100220081125123", Outcome::Pass, Outcome::Fail), // 18 yesterday
            ("37100219911126123", Outcome::Pass, Outcome::Pass), // 35 today
            ("37100219911127123", Outcome::Pass, Outcome::Fail), // 35 tomorrow
            ("37100219911125123", Outcome::Pass, Outcome::Pass), // 35 yesterday
        ];
        for (body, adult, single) in cases {
            for size in 1..=5 {
                let mut household = vec![person(body, Relation::Applicant)];
                for i in 1..size {
                    household.push(person(&format!("3710021960010{i}124"), Relation::Parent));
                }
                let expected_single = if size == 1 { single } else { Outcome::Pass };
                for track in Track::ALL {
                    let app = application(track, household.clone(), Benefit::Flat);
                    let got = collector_criteria(&Policy::default(), &app);
                    assert_eq!(got[0].outcome, adult, "{body} size {size} on {track}");
                    let age_single = got
                        .iter()
                        .find(|c| c.code == CriterionCode::AgeSingle)
                        .map(|c| c.outcome);
                    let want = (track == Track::LocalFamily).then_some(expected_single);
                    assert_eq!(age_single, want, "{body} size {size} on {track}");
                }
            }
        }
    }

    #[test]
    fn subsidy_by_band_and_area() {
        let policy = Policy::default();
        // (size, category, household income yuan, owned m², expected group, expected subsidy fen)
        let cases = [
            (1, AssistanceCategory::Dibao, 0, 0, 1, 30 * 2000),
            (3, AssistanceCategory::None, 1693 * 3, 0, 3, 40 * 1800),
            (3, AssistanceCategory::None, 1693 * 3 + 1, 0, 3, 40 * 1600),
            (4, AssistanceCategory::LowIncome, 2540 * 4, 10, 2, 40 * 1600),
            (4, AssistanceCategory::None, 2540 * 4 + 1, 60, 3, 0),
            (2, AssistanceCategory::Tekun, 9000, 0, 1, 30 * 2000),
        ];
        for (size, category, income, owned, group, subsidy) in cases {
            let household = (0..size)
                .map(|i| {
                    person(
                        &format!("3710021980010{}123", i + 1),
                        if i == 0 { Relation::Applicant } else { Relation::Child },
                    )
                })
                .collect();
            let app = application(Track::LocalFamily, household, Benefit::RentSubsidy);
            let facts = Facts {
                assistance_category: Some(category),
                verified_household_income_fen: Some(Fen::yuan(income)),
                owned_residential_area: Some(CentiSqm::sqm(owned)),
            };
            let a = award(&policy, &app, &facts);
            assert_eq!(a.priority_group, group, "{size} {category:?} {income}");
            assert_eq!(
                a.monthly_subsidy_fen,
                Some(Fen(subsidy)),
                "{size} {category:?} {income}"
            );
        }
    }

    #[test]
    fn the_default_policy_file_is_the_builtin_default() {
        let text = include_str!("../../policy/default.toml");
        assert_eq!(Policy::from_toml(text).unwrap(), Policy::default());
    }

    #[test]
    fn guaranteed_area_by_household_size() {
        let p = Policy::default();
        let got: Vec<i64> = (1..=6).map(|n| p.guaranteed_area(n).0 / 100).collect();
        assert_eq!(got, vec![30, 30, 40, 50, 50, 50]);
    }

    #[test]
    fn a_bad_policy_file_says_what_is_wrong() {
        let err = Policy::from_toml("version = 3").unwrap_err().to_string();
        assert!(err.contains("invalid type"), "{err}");
    }
}
