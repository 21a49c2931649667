//! Synthetic, mutually consistent registry data and sample applications whose expected
//! outcomes are known: qualified households, and households built to hit one rejection
//! or referral reason each. Generation is pure; `load` writes it to the registries.

use chrono::{Datelike, Days, NaiveDate};
use prh_common::{
    application::{ApplicationForm, PersonForm},
    criteria::ReasonCode,
    dates::{month_key, previous_month},
    department::{Department, Track},
    id_number::IdNumber,
    policy::DecisionOutcome,
    store::registry::*,
};
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, Iterable, PrimaryKeyToColumn,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// An application with the outcome the generator built it for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleApplication {
    pub scenario: String,
    pub expected: DecisionOutcome,
    pub expected_reason: Option<ReasonCode>,
    pub application: ApplicationForm,
}

/// Every registry row the generator made, table by table.
#[derive(Debug, Default)]
pub struct Records {
    pub ps_persons: Vec<ps_persons::Model>,
    pub ps_permits: Vec<ps_residence_permits::Model>,
    pub ps_vehicles: Vec<ps_vehicles::Model>,
    pub ca_persons: Vec<ca_persons::Model>,
    pub hr_persons: Vec<hr_persons::Model>,
    pub hr_contributions: Vec<hr_contributions::Model>,
    pub nr_persons: Vec<nr_persons::Model>,
    pub nr_properties: Vec<nr_properties::Model>,
    pub hs_persons: Vec<hs_persons::Model>,
    pub hs_benefits: Vec<hs_benefits::Model>,
    pub hs_bans: Vec<hs_bans::Model>,
    pub ed_persons: Vec<ed_persons::Model>,
    pub ed_degrees: Vec<ed_degrees::Model>,
}

/// The scenarios, with the tracks they can be built on.
const REJECTIONS: &[(&str, ReasonCode, &[Track])] = &[
    ("income_exceeds", ReasonCode::IncomeExceeds, &Track::ALL),
    ("vehicle_exceeds", ReasonCode::VehicleExceeds, &Track::ALL),
    ("fraud_ban", ReasonCode::FraudBan, &Track::ALL),
    ("already_housed", ReasonCode::AlreadyHoused, &Track::ALL),
    ("spouse_not_declared", ReasonCode::SpouseNotDeclared, &Track::ALL),
    ("hukou_too_recent", ReasonCode::HukouTooRecent, &[Track::LocalFamily]),
    (
        "housing_area_exceeds",
        ReasonCode::HousingAreaExceeds,
        &[Track::LocalFamily],
    ),
    (
        "owns_housing",
        ReasonCode::OwnsHousing,
        &[Track::NewEmployee, Track::MigrantWorker],
    ),
    (
        "not_recent_graduate",
        ReasonCode::NotRecentGraduate,
        &[Track::NewEmployee],
    ),
    (
        "insurance_too_short",
        ReasonCode::InsuranceTooShort,
        &[Track::NewEmployee, Track::MigrantWorker],
    ),
    (
        "no_residence_permit",
        ReasonCode::NoResidencePermit,
        &[Track::MigrantWorker],
    ),
];
const REFERRALS: &[(&str, ReasonCode)] = &[
    ("record_not_found", ReasonCode::RecordNotFound),
    ("non_residential_property", ReasonCode::NonResidentialProperty),
];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "于", "丛", "毕", "林",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "海燕",
    "建华", "志强",
];
const ELSEWHERE: &[&str] = &["370102", "370202", "370602", "410105", "230102", "220102"];

struct Member {
    name: String,
    id: IdNumber,
    relation: &'static str,
}

/// Makes households until `citizens` people exist, each with one sample application.
pub struct Generator {
    rng: StdRng,
    today: NaiveDate,
    used: HashSet<String>,
    pub records: Records,
    pub applications: Vec<SampleApplication>,
}

impl Generator {
    pub fn new(seed: u64, today: NaiveDate) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            today,
            used: HashSet::new(),
            records: Records::default(),
            applications: Vec::new(),
        }
    }

    /// Generates households until at least `citizens` persons exist.
    pub fn generate(mut self, citizens: usize) -> (Records, Vec<SampleApplication>) {
        let mut people = 0;
        while people < citizens {
            people += self.household();
        }
        (self.records, self.applications)
    }

    /// Generates exactly `n` households, one application each.
    pub fn households(mut self, n: usize) -> (Records, Vec<SampleApplication>) {
        for _ in 0..n {
            self.household();
        }
        (self.records, self.applications)
    }

    fn date_years_ago(&mut self, min: u32, max: u32) -> NaiveDate {
        let days = self
            .rng
            .random_range(u64::from(min) * 365 + 30..=u64::from(max) * 365 + 300);
        self.today - Days::new(days)
    }

    fn person(&mut self, region: &str, min_age: u32, max_age: u32) -> (String, IdNumber) {
        loop {
            let birth = self.date_years_ago(min_age, max_age);
            let seq = self.rng.random_range(0..1000);
            let body = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
            if let Ok(id) = IdNumber::from_body(&body)
                && self.used.insert(id.expose().to_owned())
            {
                let name = format!(
                    "{}{}",
                    SURNAMES.choose(&mut self.rng).unwrap_or(&"王"),
                    GIVEN.choose(&mut self.rng).unwrap_or(&"伟")
                );
                return (name, id);
            }
        }
    }

    fn household(&mut self) -> usize {
        let track = match self.rng.random_range(0..4) {
            0 | 1 => Track::LocalFamily,
            2 => Track::NewEmployee,
            _ => Track::MigrantWorker,
        };
        let roll = self.rng.random_range(0..100);
        let (scenario, expected, reason) = if roll < 55 {
            ("qualified", DecisionOutcome::Qualified, None)
        } else if roll < 85 {
            let options: Vec<_> = REJECTIONS
                .iter()
                .filter(|(_, _, tracks)| tracks.contains(&track))
                .collect();
            let (name, reason, _) = **options.choose(&mut self.rng).expect("every track has rejections");
            (name, DecisionOutcome::Rejected, Some(reason))
        } else {
            let (name, reason) = *REFERRALS.choose(&mut self.rng).expect("non-empty");
            (name, DecisionOutcome::Referred, Some(reason))
        };
        self.build(track, scenario, expected, reason)
    }

    fn build(&mut self, track: Track, scenario: &str, expected: DecisionOutcome, reason: Option<ReasonCode>) -> usize {
        let today = self.today;
        let urban = ["371002", "371003"];
        let applicant_region = match track {
            Track::LocalFamily => urban[self.rng.random_range(0..2)].to_owned(),
            Track::NewEmployee if self.rng.random_bool(0.5) => "371082".to_owned(),
            Track::NewEmployee => urban[0].to_owned(),
            Track::MigrantWorker => ELSEWHERE.choose(&mut self.rng).unwrap_or(&"370102").to_string(),
        };
        let (min_age, max_age) = match track {
            Track::NewEmployee => (23, 28),
            _ => (36, 55),
        };
        let with_spouse = scenario != "spouse_not_declared"
            && self
                .rng
                .random_bool(if track == Track::NewEmployee { 0.3 } else { 0.7 });
        let children = if track == Track::NewEmployee {
            0
        } else {
            self.rng.random_range(0..3)
        };

        let (name, id) = self.person(&applicant_region, min_age, max_age);
        let mut members = vec![Member {
            name,
            id,
            relation: "applicant",
        }];
        let mut registered_spouse = None;
        if with_spouse || scenario == "spouse_not_declared" {
            let (name, id) = self.person(&applicant_region, min_age, max_age);
            registered_spouse = Some(id.clone());
            if with_spouse {
                members.push(Member {
                    name,
                    id,
                    relation: "spouse",
                });
            } else {
                // Known to civil affairs as the applicant's spouse, but not on the form.
                self.records
                    .ca_persons
                    .push(ca(&id, &name, "married", Some(&members[0].id), "none", 0));
            }
        }
        for _ in 0..children {
            let (name, id) = self.person(&applicant_region, 1, 17);
            members.push(Member {
                name,
                id,
                relation: "child",
            });
        }
        let size = members.len() as i64;

        // Who the departments know, and what they hold: a qualifying household first.
        let category = match self.rng.random_range(0..20) {
            0 | 1 => "dibao",
            2 => "tekun",
            3..=5 => "low_income",
            _ => "none",
        };
        let category = if scenario == "income_exceeds" { "none" } else { category };
        let mut declared = 0;
        for (i, m) in members.iter().enumerate() {
            let adult = m.id.age_on(today) >= 18;
            let hukou_region = if i == 0 {
                applicant_region.clone()
            } else {
                m.id.region_code().to_owned()
            };
            self.records.ps_persons.push(ps_persons::Model {
                id_number: m.id.expose().into(),
                name: m.name.clone(),
                hukou_region,
                hukou_since: m.id.birth_date(),
                deceased: false,
            });
            let income = if adult {
                self.rng.random_range(0..=3_580i64) * 100
            } else {
                0
            };
            declared += income;
            let (status, spouse) = match (i, m.relation) {
                (0, _) if registered_spouse.is_some() => ("married", registered_spouse.as_ref()),
                (_, "spouse") => ("married", Some(&members[0].id)),
                _ => ("single", None),
            };
            let assets = self.rng.random_range(0..100_000i64) * 100;
            if !(i == 0 && scenario == "record_not_found") {
                let mut row = ca(
                    &m.id,
                    &m.name,
                    status,
                    spouse,
                    if i == 0 { category } else { "none" },
                    income,
                );
                row.financial_assets_fen = assets;
                self.records.ca_persons.push(row);
            }
            self.records.hr_persons.push(hr_persons::Model {
                id_number: m.id.expose().into(),
                name: m.name.clone(),
                employer: None,
            });
            self.records.nr_persons.push(nr_persons::Model {
                id_number: m.id.expose().into(),
            });
            self.records.hs_persons.push(hs_persons::Model {
                id_number: m.id.expose().into(),
            });
            self.records.ed_persons.push(ed_persons::Model {
                id_number: m.id.expose().into(),
                name: m.name.clone(),
            });
        }
        let applicant = members[0].id.expose().to_owned();

        if self.rng.random_bool(0.3) {
            let value = self.rng.random_range(20_000..=150_000i64) * 100;
            self.records.ps_vehicles.push(vehicle(&applicant, value));
        }
        if track != Track::LocalFamily && !urban.contains(&applicant_region.as_str()) {
            let valid_until = today + Days::new(self.rng.random_range(30..700));
            self.records.ps_permits.push(ps_residence_permits::Model {
                id: 0,
                id_number: applicant.clone(),
                region: "371002".into(),
                valid_until,
            });
        }
        if track != Track::LocalFamily {
            let months = match track {
                Track::MigrantWorker => self.rng.random_range(12..60),
                _ => self.rng.random_range(6..30),
            };
            self.contributions(&applicant, months);
        }
        if track == Track::LocalFamily && self.rng.random_bool(0.4) {
            let area = self.rng.random_range(20..=(15 * size).max(21)).min(15 * size) * 100;
            self.records
                .nr_properties
                .push(home(&applicant, "residential", area, today - Days::new(4000)));
        }
        if track == Track::NewEmployee {
            let graduated = NaiveDate::from_ymd_opt(today.year() - self.rng.random_range(1..4), 7, 1).unwrap_or(today);
            let level = ["college", "bachelor", "master"]
                .choose(&mut self.rng)
                .unwrap_or(&"bachelor")
                .to_string();
            self.records.ed_degrees.push(ed_degrees::Model {
                id: 0,
                id_number: applicant.clone(),
                level,
                graduated_on: graduated,
            });
        }

        // Then the one thing that makes this household's scenario.
        match scenario {
            "income_exceeds" => {
                if let Some(r) = self
                    .records
                    .ca_persons
                    .iter_mut()
                    .rev()
                    .find(|r| r.id_number == applicant)
                {
                    r.verified_monthly_income_fen = 358_000 * size + 50_000;
                }
            }
            "vehicle_exceeds" => self.records.ps_vehicles.push(vehicle(&applicant, 26_000_000)),
            "fraud_ban" => self.records.hs_bans.push(hs_bans::Model {
                id: 0,
                id_number: applicant.clone(),
                imposed_on: today - Days::new(700),
            }),
            "already_housed" => self.records.hs_benefits.push(hs_benefits::Model {
                id: 0,
                id_number: applicant.clone(),
                kind: "rent_subsidy".into(),
                active: true,
            }),
            "hukou_too_recent" => {
                if let Some(r) = self
                    .records
                    .ps_persons
                    .iter_mut()
                    .rev()
                    .find(|r| r.id_number == applicant)
                {
                    r.hukou_since = today - Days::new(700);
                }
            }
            "housing_area_exceeds" => {
                self.records.nr_properties.retain(|p| p.id_number != applicant);
                self.records.nr_properties.push(home(
                    &applicant,
                    "residential",
                    (15 * size + 12) * 100,
                    today - Days::new(3000),
                ));
            }
            "owns_housing" => {
                self.records
                    .nr_properties
                    .push(home(&applicant, "residential", 6_000, today - Days::new(3000)))
            }
            "not_recent_graduate" => {
                if let Some(d) = self
                    .records
                    .ed_degrees
                    .iter_mut()
                    .rev()
                    .find(|d| d.id_number == applicant)
                {
                    d.graduated_on = NaiveDate::from_ymd_opt(today.year() - 8, 7, 1).unwrap_or(d.graduated_on);
                }
            }
            "insurance_too_short" => {
                self.records.hr_contributions.retain(|c| c.id_number != applicant);
                self.contributions(&applicant, 3);
            }
            "no_residence_permit" => {
                for p in self.records.ps_permits.iter_mut().filter(|p| p.id_number == applicant) {
                    p.valid_until = today - Days::new(40);
                }
            }
            "non_residential_property" => {
                self.records
                    .nr_properties
                    .push(home(&applicant, "non_residential", 8_000, today - Days::new(2000)))
            }
            _ => {}
        }

        let person_form = |m: &Member, relation: Option<&str>| PersonForm {
            name: Some(m.name.clone()),
            id_number: Some(m.id.expose().to_owned()),
            relation: relation.map(str::to_owned),
        };
        let form = ApplicationForm {
            track: Some(track.as_str().into()),
            applicant: Some(person_form(&members[0], None)),
            co_applicants: members[1..].iter().map(|m| person_form(m, Some(m.relation))).collect(),
            declared_monthly_income_fen: Some(declared),
            benefit: Some(
                if self.rng.random_bool(0.5) {
                    "rent_subsidy"
                } else {
                    "flat"
                }
                .into(),
            ),
            phone: Some(format!("138{:08}", self.rng.random_range(0..100_000_000u32))),
            employer: (track != Track::LocalFamily).then(|| "威海市某某有限公司".to_owned()),
            consent: Some(true),
        };
        self.applications.push(SampleApplication {
            scenario: scenario.into(),
            expected,
            expected_reason: reason,
            application: form,
        });
        members.len()
    }

    /// `months` consecutive on-time contributions ending this month.
    fn contributions(&mut self, id: &str, months: u32) {
        let mut m = month_key(self.today);
        for _ in 0..months {
            self.records.hr_contributions.push(hr_contributions::Model {
                id: 0,
                id_number: id.into(),
                month: m,
                back_paid: false,
            });
            m = previous_month(m);
        }
    }
}

fn ca(
    id: &IdNumber,
    name: &str,
    status: &str,
    spouse: Option<&IdNumber>,
    category: &str,
    income_fen: i64,
) -> ca_persons::Model {
    ca_persons::Model {
        id_number: id.expose().into(),
        name: name.into(),
        marital_status: status.into(),
        spouse_id_number: spouse.map(|s| s.expose().to_owned()),
        assistance_category: category.into(),
        verified_monthly_income_fen: income_fen,
        financial_assets_fen: 0,
    }
}

fn vehicle(id: &str, value_fen: i64) -> ps_vehicles::Model {
    ps_vehicles::Model {
        id: 0,
        id_number: id.into(),
        plate: "鲁K·00000".into(),
        value_fen,
        disability_adapted: false,
    }
}

fn home(id: &str, usage: &str, area_centi_sqm: i64, acquired_on: NaiveDate) -> nr_properties::Model {
    nr_properties::Model {
        id: 0,
        id_number: id.into(),
        usage: usage.into(),
        area_centi_sqm,
        acquired_on,
        transferred_on: None,
        transfer_cause: None,
    }
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

/// Writes generated records into each department's own registry, in chunks.
pub async fn load(records: Records, registries: &BTreeMap<Department, DatabaseConnection>) -> Result<(), DbErr> {
    let db = |d: Department| {
        registries
            .get(&d)
            .ok_or_else(|| DbErr::Custom(format!("no registry connection for {d}")))
    };
    insert::<ps_persons::ActiveModel, _>(db(Department::PublicSecurity)?, records.ps_persons, false).await?;
    insert::<ps_residence_permits::ActiveModel, _>(db(Department::PublicSecurity)?, records.ps_permits, true).await?;
    insert::<ps_vehicles::ActiveModel, _>(db(Department::PublicSecurity)?, records.ps_vehicles, true).await?;
    insert::<ca_persons::ActiveModel, _>(db(Department::CivilAffairs)?, records.ca_persons, false).await?;
    insert::<hr_persons::ActiveModel, _>(db(Department::HumanResources)?, records.hr_persons, false).await?;
    insert::<hr_contributions::ActiveModel, _>(db(Department::HumanResources)?, records.hr_contributions, true).await?;
    insert::<nr_persons::ActiveModel, _>(db(Department::NaturalResources)?, records.nr_persons, false).await?;
    insert::<nr_properties::ActiveModel, _>(db(Department::NaturalResources)?, records.nr_properties, true).await?;
    insert::<hs_persons::ActiveModel, _>(db(Department::Housing)?, records.hs_persons, false).await?;
    insert::<hs_benefits::ActiveModel, _>(db(Department::Housing)?, records.hs_benefits, true).await?;
    insert::<hs_bans::ActiveModel, _>(db(Department::Housing)?, records.hs_bans, true).await?;
    insert::<ed_persons::ActiveModel, _>(db(Department::Education)?, records.ed_persons, false).await?;
    insert::<ed_degrees::ActiveModel, _>(db(Department::Education)?, records.ed_degrees, true).await?;
    Ok(())
}

/// Inserts rows in chunks; `auto_id` rows get their key from the database.
async fn insert<A, M>(db: &DatabaseConnection, rows: Vec<M>, auto_id: bool) -> Result<(), DbErr>
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait + sea_orm::ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let mut models: Vec<A> = rows.into_iter().map(IntoActiveModel::into_active_model).collect();
    if auto_id {
        for m in &mut models {
            if let Some(pk) = <A::Entity as EntityTrait>::PrimaryKey::iter().next() {
                m.not_set(pk.into_column());
            }
        }
    }
    for chunk in models.chunks(500) {
        <A::Entity as EntityTrait>::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}
