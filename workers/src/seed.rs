//! Synthetic, mutually consistent registry data and sample applications whose outcomes
//! are known in advance. Each household is planned as a qualifying one, then one scenario
//! changes the plan to sit just inside or just outside one threshold of RULES.md (or to
//! hit one rejection or referral reason). Generation is pure; the records are loaded
//! through the same path as a department's export (`import::load`).

use crate::import;
use chrono::{Datelike, Days, NaiveDate};
use prh_common::{
    application::{ApplicationForm, PersonForm},
    contract::AssistanceCategory,
    criteria::ReasonCode,
    dates::{month_key, previous_month, years_before},
    department::{Department, Track},
    id_number::IdNumber,
    money::{CentiSqm, Fen},
    policy::{DecisionOutcome, Policy},
    records::{
        BenefitKind, CivilAffairsRecord as Ca, DegreeLevel, EducationRecord as Ed, HousingRecord as Hs,
        HumanResourcesRecord as Hr, MaritalStatus, Month, NaturalResourcesRecord as Nr, PropertyUse,
        PublicSecurityRecord as Ps, PurchaseKind, Record, RegionCode, TransferCause,
    },
};
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{DatabaseConnection, DbErr};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// An application with the outcome the generator built it for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleApplication {
    pub scenario: String,
    /// The application date the data was built for: dates in the registries (permits,
    /// contributions, look-backs) are relative to it, so the expected outcome holds for
    /// an application submitted that day.
    pub built_for: NaiveDate,
    pub expected: DecisionOutcome,
    pub expected_reason: Option<ReasonCode>,
    pub application: ApplicationForm,
}

use DecisionOutcome::{Qualified as Q, Referred as F, Rejected as R};
use ReasonCode as Why;
use Track::{LocalFamily as L, MigrantWorker as M, NewEmployee as N};

/// Every scenario: name, the tracks it can be built on, the outcome and reason it must
/// produce. Passes at a boundary are as important as failures just past it.
pub const SCENARIOS: &[(&str, &[Track], DecisionOutcome, Option<ReasonCode>)] = &[
    ("qualified", &[L, N, M], Q, None),
    ("adult_today", &[L], Q, None),
    ("minor_until_tomorrow", &[L], R, Some(Why::ApplicantMinor)),
    ("single_35_today", &[L], Q, None),
    ("single_35_tomorrow", &[L], R, Some(Why::SingleUnderAge)),
    ("name_mismatch", &[L, N, M], R, Some(Why::IdentityMismatch)),
    ("co_applicant_unknown", &[L, N, M], F, Some(Why::RecordNotFound)),
    ("co_applicant_deceased", &[L, M], R, Some(Why::PersonDeceased)),
    ("hukou_five_years", &[L], Q, None),
    ("hukou_too_recent", &[L], R, Some(Why::HukouTooRecent)),
    ("hukou_rongcheng", &[L], R, Some(Why::HukouNotLocal)),
    ("permit_valid_today", &[M], Q, None),
    ("permit_expired", &[M], R, Some(Why::NoResidencePermit)),
    ("vehicle_at_limit", &[L, N, M], Q, None),
    ("vehicle_over_limit", &[L, N, M], R, Some(Why::VehicleExceeds)),
    ("two_vehicles", &[L, M], R, Some(Why::VehicleExceeds)),
    ("adapted_vehicle_ignored", &[L, N, M], Q, None),
    ("spouse_not_declared", &[L, N, M], R, Some(Why::SpouseNotDeclared)),
    ("spouse_mismatch", &[L, M], R, Some(Why::SpouseMismatch)),
    ("income_at_limit", &[L, N, M], Q, None),
    ("income_over_limit", &[L, N, M], R, Some(Why::IncomeExceeds)),
    ("dibao_income_exempt", &[L, M], Q, None),
    ("assets_at_limit", &[L], Q, None),
    ("assets_over_limit", &[L], R, Some(Why::AssetsExceed)),
    ("record_not_found", &[L, N, M], F, Some(Why::RecordNotFound)),
    ("insurance_at_minimum", &[N, M], Q, None),
    ("insurance_one_short", &[N, M], R, Some(Why::InsuranceTooShort)),
    ("migrant_total_36", &[M], Q, None),
    ("back_paid_breaks_run", &[M], R, Some(Why::InsuranceTooShort)),
    ("not_employed", &[N, M], R, Some(Why::NotEmployed)),
    ("area_at_limit", &[L], Q, None),
    ("area_over_limit", &[L], R, Some(Why::HousingAreaExceeds)),
    ("sold_before_look_back", &[L, N, M], Q, None),
    ("sold_within_look_back", &[N, M], R, Some(Why::OwnsHousing)),
    ("owns_home", &[N, M], R, Some(Why::OwnsHousing)),
    ("shop_held", &[L, N, M], F, Some(Why::NonResidentialProperty)),
    ("already_housed", &[L, N, M], R, Some(Why::AlreadyHoused)),
    ("bought_affordable", &[L, N, M], R, Some(Why::BoughtAffordableHousing)),
    ("ban_expired", &[L, N, M], Q, None),
    ("ban_active", &[L, N, M], R, Some(Why::FraudBan)),
    ("graduated_just_within", &[N], Q, None),
    ("graduated_five_years_ago", &[N], R, Some(Why::NotRecentGraduate)),
    ("vocational_only", &[N], R, Some(Why::NotRecentGraduate)),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "于", "丛", "毕", "林",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "海燕",
    "建华", "志强",
];
const ELSEWHERE: &[&str] = &["370102", "370202", "370602", "410105", "230102", "220102"];

/// A property as planned: its use, its area in centi-m², and when and why it was
/// transferred, if it was.
type PlannedProperty = (PropertyUse, i64, Option<(NaiveDate, TransferCause)>);

/// A household member as planned.
struct Member {
    name: String,
    id: IdNumber,
    relation: &'static str,
    income: i64,
    assets: i64,
}

/// Everything the departments will hold about one household, before it becomes records.
struct Plan {
    track: Track,
    members: Vec<Member>,
    hukou_region: String,
    hukou_since: NaiveDate,
    category: AssistanceCategory,
    /// (plate value in fen, disability-adapted)
    vehicles: Vec<(i64, bool)>,
    permit_until: Option<NaiveDate>,
    /// (month, back-paid)
    contributions: Vec<(i32, bool)>,
    /// (use, area, transferred on and why)
    properties: Vec<PlannedProperty>,
    degree: Option<(DegreeLevel, NaiveDate)>,
    benefit: bool,
    purchase: bool,
    ban: Option<NaiveDate>,
    /// A spouse registered with civil affairs but left off the form.
    undeclared_spouse: Option<(String, IdNumber)>,
    /// Somebody listed as spouse whom civil affairs does not record as the spouse.
    spouse_not_registered: bool,
    /// The name public security holds for the applicant, when it differs from the form.
    ps_name: Option<String>,
    skip_ps_for_co_applicant: bool,
    co_applicant_deceased: bool,
    skip_ca_for_applicant: bool,
}

/// Makes households, their registry records and their sample applications.
pub struct Generator {
    rng: StdRng,
    today: NaiveDate,
    policy: Policy,
    used: HashSet<String>,
    records: Vec<Record>,
    applications: Vec<SampleApplication>,
}

impl Generator {
    /// Thresholds come from RULES.md's defaults; `today` is the application date.
    pub fn new(seed: u64, today: NaiveDate) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            today,
            policy: Policy::default(),
            used: HashSet::new(),
            records: Vec::new(),
            applications: Vec::new(),
        }
    }

    /// Households until at least `citizens` persons exist, in a realistic mix: about half
    /// qualify, the rest spread over every scenario.
    pub fn generate(mut self, citizens: usize) -> (Vec<Record>, Vec<SampleApplication>) {
        let mut people = 0;
        while people < citizens {
            people += self.random_household();
        }
        (self.records, self.applications)
    }

    /// Exactly `n` households in the same mix.
    pub fn households(mut self, n: usize) -> (Vec<Record>, Vec<SampleApplication>) {
        for _ in 0..n {
            self.random_household();
        }
        (self.records, self.applications)
    }

    /// One household for every scenario on every track it applies to.
    pub fn catalogue(mut self) -> (Vec<Record>, Vec<SampleApplication>) {
        for &(name, tracks, _, _) in SCENARIOS {
            for &track in tracks {
                self.household(track, name);
            }
        }
        (self.records, self.applications)
    }

    fn random_household(&mut self) -> usize {
        let track = [L, L, N, M][self.rng.random_range(0..4)];
        let name = if self.rng.random_bool(0.5) {
            "qualified"
        } else {
            let options: Vec<&str> = SCENARIOS.iter().filter(|s| s.1.contains(&track)).map(|s| s.0).collect();
            options.choose(&mut self.rng).copied().unwrap_or("qualified")
        };
        self.household(track, name)
    }

    fn days_ago(&self, days: u64) -> NaiveDate {
        self.today - Days::new(days)
    }

    /// A date between `min` and `max` whole years ago, away from the boundaries.
    fn years_ago(&mut self, min: u32, max: u32) -> NaiveDate {
        let days = self
            .rng
            .random_range(u64::from(min) * 366 + 10..=u64::from(max) * 365 + 300);
        self.days_ago(days)
    }

    fn new_person(&mut self, region: &str, birth: NaiveDate) -> (String, IdNumber) {
        loop {
            let seq = self.rng.random_range(0..1000);
            if let Ok(id) = IdNumber::from_body(&format!("{region}{}{seq:03}", birth.format("%Y%m%d")))
                && self.used.insert(id.expose().to_owned())
            {
                let surname = SURNAMES.choose(&mut self.rng).copied().unwrap_or("王");
                let given = GIVEN.choose(&mut self.rng).copied().unwrap_or("伟");
                return (format!("{surname}{given}"), id);
            }
        }
    }

    fn member(&mut self, region: &str, birth: NaiveDate, relation: &'static str) -> Member {
        let (name, id) = self.new_person(region, birth);
        let adult = id.age_on(self.today) >= 18;
        let income = if adult {
            self.rng.random_range(0..=3_580i64) * 100
        } else {
            0
        };
        let assets = self.rng.random_range(0..100_000i64) * 100;
        Member {
            name,
            id,
            relation,
            income,
            assets,
        }
    }

    /// Plans a qualifying household on `track`, applies `scenario`, then writes it out.
    fn household(&mut self, track: Track, scenario: &str) -> usize {
        let (_, _, expected, reason) = SCENARIOS
            .iter()
            .find(|s| s.0 == scenario)
            .copied()
            .unwrap_or(SCENARIOS[0]);
        let mut plan = self.qualifying_plan(track, scenario);
        self.apply(&mut plan, scenario);
        let size = plan.members.len();
        let form = self.emit(plan);
        self.applications.push(SampleApplication {
            scenario: scenario.into(),
            built_for: self.today,
            expected,
            expected_reason: reason,
            application: form,
        });
        size
    }

    fn qualifying_plan(&mut self, track: Track, scenario: &str) -> Plan {
        let today = self.today;
        let region = match track {
            L => ["371002", "371003"][self.rng.random_range(0..2)].to_owned(),
            N if self.rng.random_bool(0.5) => "371082".to_owned(),
            N => "371002".to_owned(),
            M => ELSEWHERE.choose(&mut self.rng).copied().unwrap_or("370102").to_owned(),
        };
        let birth = match (track, scenario) {
            (L, "adult_today") => years_before(today, 18),
            (L, "minor_until_tomorrow") => years_before(today, 18) + Days::new(1),
            (L, "single_35_today") => years_before(today, 35),
            (L, "single_35_tomorrow") => years_before(today, 35) + Days::new(1),
            (N, _) => self.years_ago(23, 28),
            _ => self.years_ago(36, 55),
        };
        let applicant = self.member(&region, birth, "applicant");
        let mut members = vec![applicant];

        let single = matches!(scenario, "single_35_today" | "single_35_tomorrow");
        let needs_company = matches!(
            scenario,
            "adult_today"
                | "minor_until_tomorrow"
                | "co_applicant_unknown"
                | "co_applicant_deceased"
                | "spouse_mismatch"
        );
        if matches!(scenario, "adult_today" | "minor_until_tomorrow") {
            let parent_birth = self.years_ago(42, 60);
            members.push(self.member(&region, parent_birth, "parent"));
        } else if !single && scenario != "spouse_not_declared" {
            let with_spouse = scenario == "spouse_mismatch" || self.rng.random_bool(if track == N { 0.3 } else { 0.7 });
            if with_spouse {
                let spouse_birth = if track == N {
                    self.years_ago(23, 28)
                } else {
                    self.years_ago(30, 55)
                };
                members.push(self.member(&region, spouse_birth, "spouse"));
            }
            if track != N {
                for _ in 0..self.rng.random_range(0..3) {
                    let child_birth = self.years_ago(1, 16);
                    members.push(self.member(&region, child_birth, "child"));
                }
            }
            if needs_company && members.len() == 1 {
                let child_birth = self.years_ago(1, 16);
                members.push(self.member(&region, child_birth, "child"));
            }
        }

        let category = match self.rng.random_range(0..20) {
            0 | 1 => AssistanceCategory::Dibao,
            2 => AssistanceCategory::Tekun,
            3..=5 => AssistanceCategory::LowIncome,
            _ => AssistanceCategory::None,
        };
        let vehicles = if self.rng.random_bool(0.3) {
            vec![(self.rng.random_range(20_000..=150_000i64) * 100, false)]
        } else {
            vec![]
        };
        let permit_until = (track != L && !["371002", "371003"].contains(&region.as_str()))
            .then(|| today + Days::new(self.rng.random_range(30..700)));
        let months = match track {
            L => 0,
            N => self.rng.random_range(6..30),
            M => self.rng.random_range(12..60),
        };
        let size = members.len() as i64;
        let properties = if track == L && self.rng.random_bool(0.4) {
            let area = self.rng.random_range(10..=15 * size) * 100;
            vec![(PropertyUse::Residential, area, None)]
        } else {
            vec![]
        };
        let degree = (track == N).then(|| {
            let level = [DegreeLevel::College, DegreeLevel::Bachelor, DegreeLevel::Master][self.rng.random_range(0..3)];
            let year = today.year() - self.rng.random_range(1..4);
            (level, NaiveDate::from_ymd_opt(year, 7, 1).unwrap_or(today))
        });
        let hukou_since = members[0].id.birth_date();
        Plan {
            track,
            members,
            hukou_region: region,
            hukou_since,
            category,
            vehicles,
            permit_until,
            contributions: consecutive(month_key(today), months),
            properties,
            degree,
            benefit: false,
            purchase: false,
            ban: None,
            undeclared_spouse: None,
            spouse_not_registered: false,
            ps_name: None,
            skip_ps_for_co_applicant: false,
            co_applicant_deceased: false,
            skip_ca_for_applicant: false,
        }
    }

    /// Moves the plan to one side of one threshold.
    fn apply(&mut self, plan: &mut Plan, scenario: &str) {
        let p = self.policy.clone();
        let today = self.today;
        let size = plan.members.len() as i64;
        let look_back = years_before(today, p.look_back_years);
        let month = month_key(today);
        let unassisted = |plan: &mut Plan| {
            if plan.category.is_assisted() {
                plan.category = AssistanceCategory::None;
            }
        };
        match scenario {
            "name_mismatch" => plan.ps_name = Some(format!("{}某", plan.members[0].name)),
            "co_applicant_unknown" => plan.skip_ps_for_co_applicant = true,
            "co_applicant_deceased" => plan.co_applicant_deceased = true,
            "hukou_five_years" => plan.hukou_since = years_before(today, p.hukou_min_years),
            "hukou_too_recent" => plan.hukou_since = years_before(today, p.hukou_min_years) + Days::new(1),
            "hukou_rongcheng" => plan.hukou_region = "371082".into(),
            "permit_valid_today" => plan.permit_until = Some(today),
            "permit_expired" => plan.permit_until = Some(today - Days::new(1)),
            "vehicle_at_limit" => plan.vehicles = vec![(p.vehicle_max_value_fen.0, false)],
            "vehicle_over_limit" => plan.vehicles = vec![(p.vehicle_max_value_fen.0 + 1, false)],
            "two_vehicles" => plan.vehicles = vec![(5_000_000, false), (6_000_000, false)],
            "adapted_vehicle_ignored" => plan.vehicles = vec![(10_000_000, false), (30_000_000, true)],
            "spouse_not_declared" => {
                let birth = self.years_ago(30, 50);
                let region = plan.hukou_region.clone();
                plan.undeclared_spouse = Some(self.new_person(&region, birth));
            }
            "spouse_mismatch" => plan.spouse_not_registered = true,
            "income_at_limit" | "income_over_limit" => {
                unassisted(plan);
                let extra = if scenario == "income_over_limit" { 1 } else { 0 };
                for m in plan.members.iter_mut() {
                    m.income = 0;
                }
                plan.members[0].income = p.income_limit_fen.0 * size + extra;
            }
            "dibao_income_exempt" => {
                plan.category = AssistanceCategory::Dibao;
                plan.members[0].income = p.income_limit_fen.0 * size + 100_000;
            }
            "assets_at_limit" | "assets_over_limit" => {
                for m in plan.members.iter_mut() {
                    m.assets = 0;
                }
                plan.members[0].assets =
                    p.assets_limit_per_person().0 * size + i64::from(scenario == "assets_over_limit");
            }
            "record_not_found" => plan.skip_ca_for_applicant = true,
            "insurance_at_minimum" | "insurance_one_short" => {
                let need = if plan.track == M {
                    p.migrant_consecutive_months
                } else {
                    p.new_employee_insurance_months
                };
                let n = if scenario == "insurance_one_short" {
                    need - 1
                } else {
                    need
                };
                plan.contributions = consecutive(month, n);
            }
            "migrant_total_36" => {
                // A current run of 3, then a gap, then 33 earlier months: 36 in total.
                let mut months = consecutive(month, 3);
                months.extend(consecutive(back(month, 5), p.migrant_total_months - 3));
                plan.contributions = months;
            }
            "back_paid_breaks_run" => {
                let mut months = consecutive(month, p.migrant_consecutive_months);
                months[6].1 = true;
                plan.contributions = months;
            }
            "not_employed" => plan.contributions = consecutive(back(month, 2), 24),
            "area_at_limit" => {
                plan.properties = vec![(PropertyUse::Residential, p.area_limit_per_person.0 * size, None)]
            }
            "area_over_limit" => {
                plan.properties = vec![(PropertyUse::Residential, p.area_limit_per_person.0 * size + 1, None)]
            }
            "sold_before_look_back" => {
                plan.properties = vec![(PropertyUse::Residential, 9_000, Some((look_back, TransferCause::Sale)))]
            }
            "sold_within_look_back" => {
                plan.properties = vec![(
                    PropertyUse::Residential,
                    9_000,
                    Some((look_back + Days::new(1), TransferCause::Gift)),
                )]
            }
            "owns_home" => plan.properties = vec![(PropertyUse::Residential, 2_000, None)],
            "shop_held" => plan.properties.push((PropertyUse::NonResidential, 8_000, None)),
            "already_housed" => plan.benefit = true,
            "bought_affordable" => plan.purchase = true,
            "ban_expired" => plan.ban = Some(years_before(today, p.ban_years)),
            "ban_active" => plan.ban = Some(years_before(today, p.ban_years) + Days::new(1)),
            "graduated_just_within" => {
                plan.degree = Some((
                    DegreeLevel::Bachelor,
                    years_before(today, p.graduate_within_years) + Days::new(1),
                ))
            }
            "graduated_five_years_ago" => {
                plan.degree = Some((DegreeLevel::Bachelor, years_before(today, p.graduate_within_years)))
            }
            "vocational_only" => plan.degree = Some((DegreeLevel::Vocational, today - Days::new(400))),
            _ => {}
        }
    }

    /// Writes the plan as each department's records and the applicant's form.
    fn emit(&mut self, plan: Plan) -> ApplicationForm {
        let today = self.today;
        let applicant = plan.members[0].id.clone();
        let listed_spouse = plan
            .members
            .iter()
            .find(|m| m.relation == "spouse")
            .map(|m| m.id.clone());
        let registered_spouse = match (&plan.undeclared_spouse, plan.spouse_not_registered) {
            (Some((_, id)), _) => Some(id.clone()),
            (None, true) => None,
            (None, false) => listed_spouse.clone(),
        };
        let mut out = Vec::new();
        for (i, m) in plan.members.iter().enumerate() {
            let is_applicant = i == 0;
            if !(plan.skip_ps_for_co_applicant && i == 1) {
                out.push(Record::PublicSecurity(Ps::Person {
                    id_number: m.id.clone(),
                    name: if is_applicant {
                        plan.ps_name.clone().unwrap_or_else(|| m.name.clone())
                    } else {
                        m.name.clone()
                    },
                    hukou_region: region(if is_applicant {
                        &plan.hukou_region
                    } else {
                        m.id.region_code()
                    }),
                    hukou_since: if is_applicant {
                        plan.hukou_since
                    } else {
                        m.id.birth_date()
                    },
                    deceased: plan.co_applicant_deceased && i == 1,
                }));
            }
            let (status, spouse) = if is_applicant {
                match &registered_spouse {
                    Some(s) => (MaritalStatus::Married, Some(s.clone())),
                    None => (MaritalStatus::Single, None),
                }
            } else if m.relation == "spouse" && !plan.spouse_not_registered {
                (MaritalStatus::Married, Some(applicant.clone()))
            } else {
                (MaritalStatus::Single, None)
            };
            if !(is_applicant && plan.skip_ca_for_applicant) {
                out.push(Record::CivilAffairs(Ca::Person {
                    id_number: m.id.clone(),
                    name: m.name.clone(),
                    marital_status: status,
                    married_on: (status == MaritalStatus::Married).then(|| today - Days::new(2000)),
                    spouse_id_number: spouse,
                    assistance_category: if is_applicant {
                        plan.category
                    } else {
                        AssistanceCategory::None
                    },
                    verified_monthly_income_fen: Fen(m.income),
                    financial_assets_fen: Fen(m.assets),
                }));
            }
            out.push(Record::HumanResources(Hr::Person {
                id_number: m.id.clone(),
                name: m.name.clone(),
                employer: None,
            }));
            out.push(Record::NaturalResources(Nr::Person {
                id_number: m.id.clone(),
            }));
            out.push(Record::Housing(Hs::Person {
                id_number: m.id.clone(),
            }));
            out.push(Record::Education(Ed::Person {
                id_number: m.id.clone(),
                name: m.name.clone(),
            }));
        }
        if let Some((name, id)) = &plan.undeclared_spouse {
            out.push(Record::CivilAffairs(Ca::Person {
                id_number: id.clone(),
                name: name.clone(),
                marital_status: MaritalStatus::Married,
                married_on: Some(today - Days::new(2000)),
                spouse_id_number: Some(applicant.clone()),
                assistance_category: AssistanceCategory::None,
                verified_monthly_income_fen: Fen(0),
                financial_assets_fen: Fen(0),
            }));
        }
        for (value, adapted) in &plan.vehicles {
            out.push(Record::PublicSecurity(Ps::Vehicle {
                id_number: applicant.clone(),
                plate: "鲁K·00000".into(),
                value_fen: Fen(*value),
                disability_adapted: *adapted,
            }));
        }
        if let Some(until) = plan.permit_until {
            out.push(Record::PublicSecurity(Ps::ResidencePermit {
                id_number: applicant.clone(),
                region: region("371002"),
                valid_until: until,
            }));
        }
        for (month, back_paid) in &plan.contributions {
            out.push(Record::HumanResources(Hr::Contribution {
                id_number: applicant.clone(),
                month: Month(*month),
                back_paid: *back_paid,
            }));
        }
        for (usage, area, transfer) in &plan.properties {
            out.push(Record::NaturalResources(Nr::Property {
                id_number: applicant.clone(),
                usage: *usage,
                area_centi_sqm: CentiSqm(*area),
                acquired_on: today - Days::new(4000),
                transferred_on: transfer.map(|t| t.0),
                transfer_cause: transfer.map(|t| t.1),
            }));
        }
        if plan.benefit {
            out.push(Record::Housing(Hs::Benefit {
                id_number: applicant.clone(),
                kind: BenefitKind::RentSubsidy,
                active: true,
            }));
        }
        if plan.purchase {
            out.push(Record::Housing(Hs::Purchase {
                id_number: applicant.clone(),
                kind: PurchaseKind::Economical,
                purchased_on: today - Days::new(3000),
            }));
        }
        if let Some(on) = plan.ban {
            out.push(Record::Housing(Hs::Ban {
                id_number: applicant.clone(),
                imposed_on: on,
            }));
        }
        if let Some((level, on)) = plan.degree {
            out.push(Record::Education(Ed::Degree {
                id_number: applicant.clone(),
                level,
                graduated_on: on,
            }));
        }
        self.records.extend(out);

        let person = |m: &Member, relation: Option<&str>| PersonForm {
            name: Some(m.name.clone()),
            id_number: Some(m.id.expose().to_owned()),
            relation: relation.map(str::to_owned),
        };
        ApplicationForm {
            track: Some(plan.track.as_str().into()),
            applicant: Some(person(&plan.members[0], None)),
            co_applicants: plan.members[1..].iter().map(|m| person(m, Some(m.relation))).collect(),
            declared_monthly_income_fen: Some(plan.members.iter().map(|m| m.income).sum()),
            benefit: Some(
                if self.rng.random_bool(0.5) {
                    "rent_subsidy"
                } else {
                    "flat"
                }
                .into(),
            ),
            phone: Some(format!("138{:08}", self.rng.random_range(0..100_000_000u32))),
            employer: (plan.track != L).then(|| "威海市某某有限公司".to_owned()),
            consent: Some(true),
        }
    }
}

/// `n` on-time months ending at `last` (yyyymm), newest first.
fn consecutive(last: i32, n: u32) -> Vec<(i32, bool)> {
    let mut out = Vec::new();
    let mut m = last;
    for _ in 0..n {
        out.push((m, false));
        m = previous_month(m);
    }
    out
}

/// The month `n` months before `m`.
fn back(m: i32, n: u32) -> i32 {
    (0..n).fold(m, |m, _| previous_month(m))
}

fn region(code: &str) -> RegionCode {
    RegionCode::try_from(code.to_owned()).expect("generator region codes are six digits")
}

/// Opens, migrates and returns every department's registry.
pub async fn open_registries(
    settings: &prh_common::config::Settings,
) -> Result<BTreeMap<Department, DatabaseConnection>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = BTreeMap::new();
    for d in Department::ALL {
        let db = prh_common::store::connect(&settings.registry_db(d)).await?;
        prh_migrations::migrate_registry(d, &db).await?;
        out.insert(d, db);
    }
    Ok(out)
}

/// Loads generated records into each department's own registry, through the import path.
pub async fn load(records: Vec<Record>, registries: &BTreeMap<Department, DatabaseConnection>) -> Result<(), DbErr> {
    let mut by_department: BTreeMap<Department, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_department.entry(r.department()).or_default().push(r);
    }
    for (department, records) in by_department {
        let db = registries
            .get(&department)
            .ok_or_else(|| DbErr::Custom(format!("no registry connection for {department}")))?;
        import::load(db, department, &records, false).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_covers_every_reason_and_every_track() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let (records, samples) = Generator::new(1, today).catalogue();
        assert!(!records.is_empty());
        for track in Track::ALL {
            for outcome in [Q, R, F] {
                assert!(
                    samples
                        .iter()
                        .any(|s| s.expected == outcome && s.application.track.as_deref() == Some(track.as_str())),
                    "{track} has no {outcome:?} sample"
                );
            }
        }
        let reasons: HashSet<_> = samples.iter().filter_map(|s| s.expected_reason).collect();
        assert!(reasons.len() >= 20, "{reasons:?}");
        // Every record the generator makes is one an export could hold.
        for r in &records {
            assert_eq!(
                prh_common::records::parse_line(r.department(), &r.to_line()).as_ref(),
                Ok(r)
            );
        }
    }
}
