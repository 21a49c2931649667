//! 自然资源和规划: homes held now or transferred within the look-back, and
//! non-residential property (NR-AREA, NR-NONE, NR-NONRESIDENTIAL).

use super::{Answer, ByPerson, Check, Context, by_id, combine, rows_about, unknown};
use prh_common::{
    contract::{CheckRequest, Facts, Subject},
    criteria::{CriterionCode as C, CriterionResult, ReasonCode as R},
    dates::years_before,
    id_number::IdNumber,
    money::CentiSqm,
    store::registry::{nr_persons, nr_properties},
};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait};
use std::collections::HashMap;

pub struct NaturalResources;

pub struct Rows {
    known: HashMap<String, nr_persons::Model>,
    properties: ByPerson<nr_properties::Model>,
}

impl Check for NaturalResources {
    type Rows = Rows;

    async fn read(txn: &DatabaseTransaction, ids: &[&str], _: &[&CheckRequest]) -> Result<Rows, DbErr> {
        let known = rows_about(txn, nr_persons::Entity::find(), nr_persons::Column::IdNumber, ids).await?;
        let properties = rows_about(txn, nr_properties::Entity::find(), nr_properties::Column::IdNumber, ids).await?;
        Ok(Rows {
            known: by_id(known, |r| &r.id_number),
            properties: ByPerson::new(properties, |r| &r.id_number),
        })
    }

    fn answer(ctx: &Context<'_>, request: &CheckRequest, rows: &Rows) -> Option<Answer> {
        let Subject::NaturalResources { id_numbers } = &request.subject else {
            return None;
        };
        let missing = unknown(id_numbers, |id| rows.known.contains_key(id));
        let properties = rows.properties.of(id_numbers.iter().map(IdNumber::expose));
        Some(evaluate(ctx, id_numbers.len(), &missing, &properties))
    }
}

pub(super) fn evaluate(
    ctx: &Context<'_>,
    size: usize,
    missing: &[String],
    properties: &[nr_properties::Model],
) -> Answer {
    let p = ctx.policy;
    let since = years_before(ctx.date, p.look_back_years);
    // Only what was acquired by the application date is held on it.
    let properties: Vec<nr_properties::Model> = properties
        .iter()
        .filter(|x| x.acquired_on <= ctx.date)
        .cloned()
        .collect();
    let properties = properties.as_slice();
    let residential = |x: &&nr_properties::Model| x.usage == "residential";
    let held = |x: &&nr_properties::Model| x.transferred_on.is_none();
    let added_back = |x: &&nr_properties::Model| {
        matches!(x.transfer_cause.as_deref(), Some("sale" | "gift" | "divorce"))
            && x.transferred_on.is_some_and(|d| d > since)
    };
    let counted: Vec<&nr_properties::Model> = properties
        .iter()
        .filter(residential)
        .filter(|x| held(x) || added_back(x))
        .collect();
    let counted_area: CentiSqm = counted.iter().map(|x| CentiSqm(x.area_centi_sqm)).sum();
    let owned_now: CentiSqm = properties
        .iter()
        .filter(residential)
        .filter(held)
        .map(|x| CentiSqm(x.area_centi_sqm))
        .sum();

    let area_threshold = format!(
        "at most {} per person, homes transferred since {since} included",
        p.area_limit_per_person
    );
    let area_observed = format!("{counted_area} for {size} person(s)");
    let area_failures = if counted_area.0 > p.area_limit_per_person.0 * size as i64 {
        vec![(R::HousingAreaExceeds, area_observed.clone())]
    } else {
        vec![]
    };
    let area = combine(C::NrArea, area_failures, missing, area_observed, area_threshold);

    let none_threshold = format!("no home owned, or transferred since {since}");
    let none_observed = format!("{} home(s) counted", counted.len());
    let none_failures = if counted.is_empty() {
        vec![]
    } else {
        vec![(R::OwnsHousing, none_observed.clone())]
    };
    let none = combine(C::NrNone, none_failures, missing, none_observed, none_threshold);

    let shops = properties
        .iter()
        .filter(|x| x.usage != "residential" && x.transferred_on.is_none())
        .count();
    let non_residential = if shops > 0 {
        CriterionResult::refer(
            C::NrNonResidential,
            R::NonResidentialProperty,
            format!("{shops} non-residential property(ies) held"),
            "non-residential property is reviewed by a person",
        )
    } else {
        combine(
            C::NrNonResidential,
            vec![],
            missing,
            "no non-residential property".into(),
            "no non-residential property".into(),
        )
    };

    let facts = Facts {
        owned_residential_area: Some(owned_now),
        ..Default::default()
    };
    Answer {
        criteria: vec![area, none, non_residential],
        facts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prh_common::{criteria::Outcome, policy::Policy};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn home(m2: i64, usage: &str, transferred: Option<(NaiveDate, &str)>) -> nr_properties::Model {
        nr_properties::Model {
            id: 0,
            id_number: "x".into(),
            usage: usage.into(),
            area_centi_sqm: m2 * 100,
            acquired_on: d(2010, 1, 1),
            transferred_on: transferred.map(|t| t.0),
            transfer_cause: transferred.map(|t| t.1.to_owned()),
        }
    }

    #[test]
    fn look_back_and_area_by_table() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: d(2026, 11, 26),
        };
        // (household size, properties, expected AREA, NONE, NONRESIDENTIAL)
        let cases = vec![
            (2, vec![], Outcome::Pass, Outcome::Pass, Outcome::Pass),
            (
                2,
                vec![home(30, "residential", None)],
                Outcome::Pass,
                Outcome::Fail,
                Outcome::Pass,
            ),
            (
                2,
                vec![home(31, "residential", None)],
                Outcome::Fail,
                Outcome::Fail,
                Outcome::Pass,
            ),
            (
                2,
                vec![home(31, "residential", Some((d(2021, 11, 27), "sale")))],
                Outcome::Fail,
                Outcome::Fail,
                Outcome::Pass,
            ),
            (
                2,
                vec![home(31, "residential", Some((d(2021, 11, 26), "sale")))],
                Outcome::Pass,
                Outcome::Pass,
                Outcome::Pass,
            ),
            (
                2,
                vec![home(31, "residential", Some((d(2024, 1, 1), "other")))],
                Outcome::Pass,
                Outcome::Pass,
                Outcome::Pass,
            ),
            (
                1,
                vec![home(200, "non_residential", None)],
                Outcome::Pass,
                Outcome::Pass,
                Outcome::Refer,
            ),
        ];
        for (size, props, area, none, shop) in cases {
            let got = evaluate(&ctx, size, &[], &props);
            let outcomes: Vec<Outcome> = got.criteria.iter().map(|c| c.outcome).collect();
            assert_eq!(outcomes, vec![area, none, shop], "{props:?}");
        }
    }
}
