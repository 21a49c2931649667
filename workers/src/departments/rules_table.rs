//! RULES.md's criteria table, row by row: each threshold at, just below and just above
//! its limit, on each track, for households of 1 to 5 people. The expected outcomes are
//! written from RULES.md's numbers (3,580 元, 150,000 元, 15 m², 257,760 元, 5 years,
//! 6 / 12 / 36 months), not from the code.

use super::{Context, civil_affairs, education, housing, human_resources, natural_resources, public_security};
use chrono::{Days, NaiveDate};
use prh_common::{
    application::Relation,
    contract::NamedPerson,
    criteria::{CriterionCode, CriterionResult, Outcome},
    department::Track,
    id_number::IdNumber,
    money::{CentiSqm, Fen},
    policy::Policy,
    store::registry::*,
};
use std::collections::{BTreeSet, HashMap};

use Outcome::{Fail, Pass, Refer};

const DAY: Days = Days::new(1);

/// The application date of every row: Thursday 26 November 2026.
fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

/// The same day five years earlier: 26 November 2021.
fn five_years_ago() -> NaiveDate {
    NaiveDate::from_ymd_opt(2021, 11, 26).unwrap()
}

/// A household of `n`: the applicant, then a spouse, then children.
fn household(n: usize) -> Vec<NamedPerson> {
    (0..n)
        .map(|i| {
            let (birth, relation) = match i {
                0 => ("19800101", Relation::Applicant),
                1 => ("19820202", Relation::Spouse),
                _ => ("20120303", Relation::Child),
            };
            let id = IdNumber::from_body(&format!("371002{birth}{:03}", 100 + i)).unwrap();
            NamedPerson {
                name: format!("成员{i}"),
                id_number: id,
                relation,
            }
        })
        .collect()
}

/// The outcome of `code` as the department would report it on `track`: `None` when the
/// track does not ask for it.
fn on_track(track: Track, code: CriterionCode, results: &[CriterionResult]) -> Option<Outcome> {
    if !code.applies_to(track) {
        return None;
    }
    results.iter().find(|r| r.code == code).map(|r| r.outcome)
}

fn every_track(code: CriterionCode, results: &[CriterionResult], expected: Outcome, what: &str) {
    for track in Track::ALL {
        let want = code.applies_to(track).then_some(expected);
        assert_eq!(on_track(track, code, results), want, "{code} on {track}: {what}");
    }
}

#[test]
fn ps_vehicle_per_household_size() {
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        date: date(),
    };
    let limit = Fen::yuan(150_000).0;
    // (what, vehicles as (owner index, value in fen, disability-adapted), expected)
    type Row = (&'static str, Vec<(usize, i64, bool)>, Outcome);
    let rows: Vec<Row> = vec![
        ("no vehicle", vec![], Pass),
        ("one at the limit", vec![(0, limit, false)], Pass),
        ("one just below", vec![(0, limit - 1, false)], Pass),
        ("one just above", vec![(0, limit + 1, false)], Fail),
        (
            "two cheap ones in the household",
            vec![(0, Fen::yuan(1_000).0, false), (1, Fen::yuan(1_000).0, false)],
            Fail,
        ),
        (
            "an adapted one does not count",
            vec![(0, limit, false), (1, Fen::yuan(900_000).0, true)],
            Pass,
        ),
    ];
    for n in 1..=5 {
        let persons = household(n);
        let records: HashMap<String, ps_persons::Model> = persons
            .iter()
            .map(|p| {
                let r = ps_persons::Model {
                    id_number: p.id_number.expose().into(),
                    name: p.name.clone(),
                    hukou_region: "371002".into(),
                    hukou_since: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
                    deceased: false,
                };
                (r.id_number.clone(), r)
            })
            .collect();
        for (what, vehicles, expected) in &rows {
            if vehicles.iter().any(|(owner, _, _)| *owner >= n) {
                continue;
            }
            let vehicles: Vec<ps_vehicles::Model> = vehicles
                .iter()
                .map(|(owner, value, adapted)| ps_vehicles::Model {
                    id: 0,
                    id_number: persons[*owner].id_number.expose().into(),
                    plate: "鲁K".into(),
                    value_fen: *value,
                    disability_adapted: *adapted,
                })
                .collect();
            let got = public_security::evaluate(&ctx, &persons, &records, &vehicles, &[]);
            every_track(
                CriterionCode::PsVehicle,
                &got,
                *expected,
                &format!("{what}, household of {n}"),
            );
        }
    }
}

#[test]
fn ps_hukou_and_residence_at_the_five_year_line() {
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        date: date(),
    };
    // (hukou region, registered since, permit valid until, expected HUKOU, expected RESIDENCE)
    let rows: Vec<(&str, NaiveDate, Option<NaiveDate>, Outcome, Outcome)> = vec![
        ("371002", five_years_ago(), None, Pass, Pass),
        ("371003", five_years_ago() - DAY, None, Pass, Pass),
        ("371002", five_years_ago() + DAY, None, Fail, Pass),
        ("371082", five_years_ago() - DAY, None, Fail, Fail),
        ("371083", five_years_ago() - DAY, Some(date()), Fail, Pass),
        ("370102", five_years_ago() - DAY, Some(date() - DAY), Fail, Fail),
        ("370102", five_years_ago() - DAY, Some(date() + DAY), Fail, Pass),
    ];
    for n in 1..=5 {
        let persons = household(n);
        for (region, since, permit, hukou, residence) in &rows {
            let records: HashMap<String, ps_persons::Model> = persons
                .iter()
                .map(|p| {
                    let r = ps_persons::Model {
                        id_number: p.id_number.expose().into(),
                        name: p.name.clone(),
                        hukou_region: region.to_string(),
                        hukou_since: *since,
                        deceased: false,
                    };
                    (r.id_number.clone(), r)
                })
                .collect();
            let permits: Vec<ps_residence_permits::Model> = permit
                .iter()
                .map(|until| ps_residence_permits::Model {
                    id: 0,
                    id_number: persons[0].id_number.expose().into(),
                    region: "371002".into(),
                    valid_until: *until,
                })
                .collect();
            let got = public_security::evaluate(&ctx, &persons, &records, &[], &permits);
            let what = format!("{region} since {since}, permit {permit:?}, household of {n}");
            every_track(CriterionCode::PsHukou, &got, *hukou, &what);
            every_track(CriterionCode::PsResidence, &got, *residence, &what);
        }
    }
}

fn ca_records(
    persons: &[NamedPerson],
    category: &str,
    incomes: &[i64],
    assets: &[i64],
) -> HashMap<String, ca_persons::Model> {
    persons
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let married = i < 2 && persons.len() > 1;
            let spouse = if i == 0 { persons.get(1) } else { persons.first() };
            let r = ca_persons::Model {
                id_number: p.id_number.expose().into(),
                name: p.name.clone(),
                marital_status: if married { "married" } else { "single" }.into(),
                spouse_id_number: married.then(|| spouse.unwrap().id_number.expose().to_owned()),
                married_on: None,
                assistance_category: if i == 0 { category } else { "none" }.into(),
                verified_monthly_income_fen: incomes[i],
                financial_assets_fen: assets[i],
            };
            (r.id_number.clone(), r)
        })
        .collect()
}

/// Spreads `total` over `n` persons, the applicant taking the remainder.
fn spread(total: i64, n: usize) -> Vec<i64> {
    let each = total / n as i64;
    let mut v = vec![each; n];
    v[0] += total - each * n as i64;
    v
}

#[test]
fn ca_income_and_assets_per_person() {
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        date: date(),
    };
    for n in 1..=5 {
        let persons = household(n);
        let income_limit = Fen::yuan(3_580).0 * n as i64;
        let assets_limit = Fen::yuan(257_760).0 * n as i64;
        // (category, household income, household assets, expected INCOME, expected ASSETS)
        let rows = [
            ("none", income_limit, 0, Pass, Pass),
            ("none", income_limit - 1, 0, Pass, Pass),
            ("none", income_limit + 1, 0, Fail, Pass),
            ("low_income", income_limit + 1, 0, Fail, Pass),
            ("dibao", income_limit * 3, 0, Pass, Pass),
            ("tekun", income_limit * 3, assets_limit + 1, Pass, Fail),
            ("none", 0, assets_limit, Pass, Pass),
            ("none", 0, assets_limit - 1, Pass, Pass),
            ("none", 0, assets_limit + 1, Pass, Fail),
        ];
        for (category, income, assets, want_income, want_assets) in rows {
            let records = ca_records(&persons, category, &spread(income, n), &spread(assets, n));
            let got = civil_affairs::evaluate(&ctx, &persons, &records).criteria;
            let what = format!("{category}, income {income}, assets {assets}, household of {n}");
            every_track(CriterionCode::CaIncome, &got, want_income, &what);
            every_track(CriterionCode::CaAssets, &got, want_assets, &what);
            every_track(CriterionCode::CaMarriage, &got, Pass, &what);
        }
        // Nobody's record: every civil-affairs criterion refers.
        let got = civil_affairs::evaluate(&ctx, &persons, &HashMap::new()).criteria;
        for code in [
            CriterionCode::CaIncome,
            CriterionCode::CaAssets,
            CriterionCode::CaMarriage,
        ] {
            every_track(code, &got, Refer, &format!("no records, household of {n}"));
        }
    }
}

/// `n` on-time months ending at `last` (yyyymm).
fn months(last: i32, n: u32) -> Vec<i32> {
    let mut out = vec![];
    let mut m = last;
    for _ in 0..n {
        out.push(m);
        m = prh_common::dates::previous_month(m);
    }
    out
}

#[test]
fn hr_employment_and_insurance_by_track() {
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        date: date(),
    };
    // (paid months, expected EMPLOYED, expected INSURANCE on new_employee, on migrant_worker)
    let rows: Vec<(&str, Vec<i32>, Outcome, Outcome, Outcome)> = vec![
        ("6 months to this month", months(202611, 6), Pass, Pass, Fail),
        ("5 months", months(202611, 5), Pass, Fail, Fail),
        ("7 months to last month", months(202610, 7), Pass, Pass, Fail),
        ("12 months", months(202611, 12), Pass, Pass, Pass),
        ("11 months", months(202611, 11), Pass, Pass, Fail),
        ("13 months", months(202611, 13), Pass, Pass, Pass),
        (
            "36 in total, run of 2",
            [months(202611, 2), months(202608, 34)].concat(),
            Pass,
            Fail,
            Pass,
        ),
        (
            "35 in total, run of 2",
            [months(202611, 2), months(202608, 33)].concat(),
            Pass,
            Fail,
            Fail,
        ),
        ("ended two months ago", months(202609, 40), Fail, Fail, Pass),
        ("nothing", vec![], Fail, Fail, Fail),
    ];
    for (what, paid, employed, new_employee, migrant) in rows {
        let paid: BTreeSet<i32> = paid.into_iter().collect();
        for (track, insurance) in [(Track::NewEmployee, new_employee), (Track::MigrantWorker, migrant)] {
            let got = human_resources::evaluate(&ctx, &paid, 202611, track);
            assert_eq!(
                on_track(track, CriterionCode::HrEmployed, &got),
                Some(employed),
                "{what} on {track}"
            );
            assert_eq!(
                on_track(track, CriterionCode::HrInsurance, &got),
                Some(insurance),
                "{what} on {track}"
            );
        }
        let got = human_resources::evaluate(&ctx, &paid, 202611, Track::LocalFamily);
        assert_eq!(on_track(Track::LocalFamily, CriterionCode::HrInsurance, &got), None);
    }
}

fn property(usage: &str, centi_sqm: i64, transferred: Option<(NaiveDate, &str)>) -> nr_properties::Model {
    nr_properties::Model {
        id: 0,
        id_number: "x".into(),
        usage: usage.into(),
        area_centi_sqm: centi_sqm,
        acquired_on: NaiveDate::from_ymd_opt(2010, 1, 1).unwrap(),
        transferred_on: transferred.map(|t| t.0),
        transfer_cause: transferred.map(|t| t.1.to_owned()),
    }
}

#[test]
fn nr_area_and_ownership_per_household_size() {
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        date: date(),
    };
    for n in 1..=5usize {
        let limit = CentiSqm::sqm(15).0 * n as i64;
        // (properties, expected AREA, NONE, NONRESIDENTIAL)
        let rows: Vec<(&str, Vec<nr_properties::Model>, Outcome, Outcome, Outcome)> = vec![
            ("nothing", vec![], Pass, Pass, Pass),
            (
                "at the limit",
                vec![property("residential", limit, None)],
                Pass,
                Fail,
                Pass,
            ),
            (
                "just below",
                vec![property("residential", limit - 1, None)],
                Pass,
                Fail,
                Pass,
            ),
            (
                "just above",
                vec![property("residential", limit + 1, None)],
                Fail,
                Fail,
                Pass,
            ),
            (
                "sold on the 5-year day",
                vec![property("residential", limit + 1, Some((five_years_ago(), "sale")))],
                Pass,
                Pass,
                Pass,
            ),
            (
                "sold the day after",
                vec![property(
                    "residential",
                    limit + 1,
                    Some((five_years_ago() + DAY, "sale")),
                )],
                Fail,
                Fail,
                Pass,
            ),
            (
                "lost in a divorce",
                vec![property("residential", limit + 1, Some((date() - DAY, "divorce")))],
                Fail,
                Fail,
                Pass,
            ),
            (
                "expropriated",
                vec![property("residential", limit + 1, Some((date() - DAY, "other")))],
                Pass,
                Pass,
                Pass,
            ),
            (
                "a shop",
                vec![property("non_residential", CentiSqm::sqm(500).0, None)],
                Pass,
                Pass,
                Refer,
            ),
            (
                "a shop sold",
                vec![property(
                    "non_residential",
                    CentiSqm::sqm(500).0,
                    Some((date() - DAY, "sale")),
                )],
                Pass,
                Pass,
                Pass,
            ),
        ];
        for (what, props, area, none, shop) in rows {
            let got = natural_resources::evaluate(&ctx, n, &[], &props).criteria;
            let what = format!("{what}, household of {n}");
            every_track(CriterionCode::NrArea, &got, area, &what);
            every_track(CriterionCode::NrNone, &got, none, &what);
            every_track(CriterionCode::NrNonResidential, &got, shop, &what);
        }
        let got = natural_resources::evaluate(&ctx, n, &["someone".into()], &[]).criteria;
        every_track(CriterionCode::NrArea, &got, Refer, "a person not in the register");
    }
}

#[test]
fn hs_ban_benefit_purchase_and_duplicates() {
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        date: date(),
    };
    for n in 1..=5 {
        let ids: Vec<IdNumber> = household(n).into_iter().map(|p| p.id_number).collect();
        let last = ids[n - 1].expose().to_owned();
        let ban = |on| hs_bans::Model {
            id: 0,
            id_number: last.clone(),
            imposed_on: on,
        };
        // (holdings, BENEFIT, PURCHASE, BAN, DUPLICATE)
        let rows: Vec<(&str, housing::Holdings, [Outcome; 4])> = vec![
            ("nothing", housing::Holdings::default(), [Pass; 4]),
            (
                "ban imposed on the 5-year day",
                housing::Holdings {
                    bans: vec![ban(five_years_ago())],
                    ..Default::default()
                },
                [Pass; 4],
            ),
            (
                "ban imposed the day after",
                housing::Holdings {
                    bans: vec![ban(five_years_ago() + DAY)],
                    ..Default::default()
                },
                [Pass, Pass, Fail, Pass],
            ),
            (
                "an active rent subsidy",
                housing::Holdings {
                    benefits: vec![hs_benefits::Model {
                        id: 0,
                        id_number: last.clone(),
                        kind: "rent_subsidy".into(),
                        active: true,
                    }],
                    ..Default::default()
                },
                [Fail, Pass, Pass, Pass],
            ),
            (
                "an ended tenancy",
                housing::Holdings {
                    benefits: vec![hs_benefits::Model {
                        id: 0,
                        id_number: last.clone(),
                        kind: "public_rental".into(),
                        active: false,
                    }],
                    ..Default::default()
                },
                [Pass; 4],
            ),
            (
                "a 房改房 purchase",
                housing::Holdings {
                    purchases: vec![hs_purchases::Model {
                        id: 0,
                        id_number: last.clone(),
                        kind: "reform".into(),
                        purchased_on: date(),
                    }],
                    ..Default::default()
                },
                [Pass, Fail, Pass, Pass],
            ),
            (
                "in another open application",
                housing::Holdings {
                    other_open: vec![hs_application_members::Model {
                        id: 0,
                        application_id: uuid::Uuid::nil(),
                        id_number: last.clone(),
                        closed: false,
                    }],
                    ..Default::default()
                },
                [Pass, Pass, Pass, Fail],
            ),
        ];
        for (what, holdings, want) in rows {
            let got = housing::evaluate(&ctx, &ids, &[], &holdings).criteria;
            let codes = [
                CriterionCode::HsBenefit,
                CriterionCode::HsPurchase,
                CriterionCode::HsBan,
                CriterionCode::HsDuplicate,
            ];
            for (code, want) in codes.into_iter().zip(want) {
                every_track(code, &got, want, &format!("{what}, household of {n}"));
            }
        }
    }
}

#[test]
fn ed_graduate_at_the_five_year_line() {
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        date: date(),
    };
    let degree = |level: &str, on| ed_degrees::Model {
        id: 0,
        id_number: "x".into(),
        level: level.into(),
        graduated_on: on,
    };
    let rows = vec![
        (
            "college the day after the 5-year day",
            vec![degree("college", five_years_ago() + DAY)],
            Pass,
        ),
        (
            "college on the 5-year day",
            vec![degree("college", five_years_ago())],
            Fail,
        ),
        (
            "bachelor on the application date",
            vec![degree("bachelor", date())],
            Pass,
        ),
        ("doctor tomorrow", vec![degree("doctor", date() + DAY)], Fail),
        (
            "vocational last year",
            vec![degree("vocational", date() - Days::new(365))],
            Fail,
        ),
        (
            "an old bachelor and a recent master",
            vec![
                degree("bachelor", five_years_ago() - DAY),
                degree("master", date() - DAY),
            ],
            Pass,
        ),
        ("no degree", vec![], Fail),
    ];
    for (what, degrees, expected) in rows {
        let got = vec![education::evaluate(&ctx, &degrees)];
        every_track(CriterionCode::EdGraduate, &got, expected, what);
    }
}
