//! 民政: marriage, verified income, financial assets and the assistance category
//! (CA-MARRIAGE, CA-INCOME, CA-ASSETS).

use super::{Answer, Check, Context, by_id, combine, rows_about};
use prh_common::{
    application::Relation,
    contract::{AssistanceCategory, CheckRequest, Facts, NamedPerson, Subject},
    criteria::{CriterionCode as C, ReasonCode as R},
    money::Fen,
    store::registry::ca_persons,
};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait};
use std::collections::HashMap;

pub struct CivilAffairs;

impl Check for CivilAffairs {
    type Rows = HashMap<String, ca_persons::Model>;

    async fn read(txn: &DatabaseTransaction, ids: &[&str], _: &[&CheckRequest]) -> Result<Self::Rows, DbErr> {
        let rows = rows_about(txn, ca_persons::Entity::find(), ca_persons::Column::IdNumber, ids).await?;
        Ok(by_id(rows, |r| &r.id_number))
    }

    fn answer(ctx: &Context<'_>, request: &CheckRequest, rows: &Self::Rows) -> Option<Answer> {
        match &request.subject {
            Subject::CivilAffairs { persons, .. } => Some(evaluate(ctx, persons, rows)),
            _ => None,
        }
    }
}

pub fn category_of(text: &str) -> AssistanceCategory {
    match text {
        "tekun" => AssistanceCategory::Tekun,
        "dibao" => AssistanceCategory::Dibao,
        "low_income" => AssistanceCategory::LowIncome,
        _ => AssistanceCategory::None,
    }
}

pub(super) fn evaluate(
    ctx: &Context<'_>,
    persons: &[NamedPerson],
    records: &HashMap<String, ca_persons::Model>,
) -> Answer {
    let p = ctx.policy;
    let size = persons.len() as i64;
    let missing: Vec<String> = persons
        .iter()
        .filter(|x| !records.contains_key(x.id_number.expose()))
        .map(|x| x.id_number.masked())
        .collect();
    let applicant = persons.first().and_then(|a| records.get(a.id_number.expose()));
    let category = applicant
        .map(|r| category_of(&r.assistance_category))
        .unwrap_or(AssistanceCategory::None);

    let marriage_threshold = "a married applicant lists the registered spouse, and nobody else as spouse".to_owned();
    let marriage = match applicant {
        None => combine(
            C::CaMarriage,
            vec![],
            &missing[..missing.len().min(1)],
            String::new(),
            marriage_threshold,
        ),
        Some(r) => {
            let registered = (r.marital_status == "married")
                .then_some(r.spouse_id_number.as_deref())
                .flatten();
            let listed: Vec<&NamedPerson> = persons.iter().filter(|x| x.relation == Relation::Spouse).collect();
            let mut failures = Vec::new();
            if let Some(spouse) = registered
                && !listed.iter().any(|x| x.id_number.expose() == spouse)
            {
                failures.push((R::SpouseNotDeclared, "the registered spouse is not listed".to_owned()));
            }
            for x in listed.iter().filter(|x| Some(x.id_number.expose()) != registered) {
                failures.push((
                    R::SpouseMismatch,
                    format!("{} listed as spouse is not the registered spouse", x.id_number.masked()),
                ));
            }
            combine(
                C::CaMarriage,
                failures,
                &[],
                format!("marital status {}", r.marital_status),
                marriage_threshold,
            )
        }
    };

    let income: Fen = persons
        .iter()
        .filter_map(|x| records.get(x.id_number.expose()))
        .map(|r| Fen(r.verified_monthly_income_fen))
        .sum();
    let income_threshold = format!("at most {} per person per month (特困/低保 exempt)", p.income_limit_fen);
    let income_observed = format!("{income} for {size} person(s), category {}", category.as_str());
    // Without the applicant's record the category, and so the exemption, is unknown: the
    // income cannot be judged, only referred.
    let income_failures = if applicant.is_some() && !category.is_assisted() && income.0 > p.income_limit_fen.0 * size {
        vec![(R::IncomeExceeds, income_observed.clone())]
    } else {
        vec![]
    };
    let income_result = combine(
        C::CaIncome,
        income_failures,
        &missing,
        income_observed,
        income_threshold,
    );

    let assets: Fen = persons
        .iter()
        .filter_map(|x| records.get(x.id_number.expose()))
        .map(|r| Fen(r.financial_assets_fen))
        .sum();
    let assets_threshold = format!("at most {} per person", p.assets_limit_per_person());
    let assets_observed = format!("{assets} for {size} person(s)");
    let assets_failures = if assets.0 > p.assets_limit_per_person().0 * size {
        vec![(R::AssetsExceed, assets_observed.clone())]
    } else {
        vec![]
    };
    let assets_result = combine(
        C::CaAssets,
        assets_failures,
        &missing,
        assets_observed,
        assets_threshold,
    );

    let facts = Facts {
        assistance_category: applicant.map(|_| category),
        verified_household_income_fen: missing.is_empty().then_some(income),
        owned_residential_area: None,
    };
    Answer {
        criteria: vec![marriage, income_result, assets_result],
        facts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prh_common::{criteria::Outcome, id_number::IdNumber, policy::Policy};

    fn person(body: &str, relation: Relation) -> NamedPerson {
        NamedPerson {
            name: "某".into(),
            id_number: IdNumber::from_body(body).unwrap(),
            relation,
        }
    }

    fn record(
        p: &NamedPerson,
        status: &str,
        spouse: Option<&NamedPerson>,
        category: &str,
        income_yuan: i64,
    ) -> ca_persons::Model {
        ca_persons::Model {
            id_number: p.id_number.expose().into(),
            name: p.name.clone(),
            marital_status: status.into(),
            spouse_id_number: spouse.map(|s| s.id_number.expose().to_owned()),
            married_on: None,
            assistance_category: category.into(),
            verified_monthly_income_fen: income_yuan * 100,
            financial_assets_fen: 0,
        }
    }

    #[test]
    fn income_and_marriage_by_table() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        };
        let a = person("37100219800101123", Relation::Applicant);
        let s = person("37100219820101124", Relation::Spouse);
        let other = person("37100219830101125", Relation::Spouse);
        // (listed, applicant's status and spouse, category, incomes, expected marriage, expected income)
        let cases = [
            (
                vec![&a, &s],
                "married",
                Some(&s),
                "none",
                [3580, 3580],
                Outcome::Pass,
                Outcome::Pass,
            ),
            (
                vec![&a, &s],
                "married",
                Some(&s),
                "none",
                [3580, 3581],
                Outcome::Pass,
                Outcome::Fail,
            ),
            (
                vec![&a, &s],
                "married",
                Some(&s),
                "dibao",
                [9000, 9000],
                Outcome::Pass,
                Outcome::Pass,
            ),
            (
                vec![&a],
                "married",
                Some(&s),
                "none",
                [100, 0],
                Outcome::Fail,
                Outcome::Pass,
            ),
            (
                vec![&a, &other],
                "married",
                Some(&s),
                "none",
                [100, 0],
                Outcome::Fail,
                Outcome::Pass,
            ),
            (
                vec![&a, &s],
                "single",
                None,
                "low_income",
                [3581, 3580],
                Outcome::Fail,
                Outcome::Fail,
            ),
        ];
        for (listed, status, spouse, category, incomes, marriage, income) in cases {
            let persons: Vec<NamedPerson> = listed.iter().map(|p| (*p).clone()).collect();
            let mut records = HashMap::new();
            for (i, p) in persons.iter().enumerate() {
                let r = if i == 0 {
                    record(p, status, spouse, category, incomes[0])
                } else {
                    record(p, "married", Some(&a), "none", incomes[1])
                };
                records.insert(p.id_number.expose().to_owned(), r);
            }
            let got = evaluate(&ctx, &persons, &records);
            assert_eq!(
                (got.criteria[0].outcome, got.criteria[1].outcome),
                (marriage, income),
                "{status} {category} {incomes:?}"
            );
        }
    }

    #[test]
    fn a_missing_applicant_record_refers_income_instead_of_failing_it() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        };
        let a = person("37100219800101123", Relation::Applicant);
        let s = person("37100219820101124", Relation::Spouse);
        // The spouse alone earns more than the household limit; the applicant may be 低保.
        let records = HashMap::from([(
            s.id_number.expose().to_owned(),
            record(&s, "married", Some(&a), "none", 8_000),
        )]);
        let got = evaluate(&ctx, &[a, s], &records);
        assert_eq!(got.criteria[1].outcome, Outcome::Refer);
        assert_eq!(got.criteria[1].reasons, vec![R::RecordNotFound]);
    }

    #[test]
    fn both_spouse_reasons_can_appear_together() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        };
        let a = person("37100219800101123", Relation::Applicant);
        let s = person("37100219820101124", Relation::Spouse);
        let other = person("37100219830101125", Relation::Spouse);
        let persons = vec![a.clone(), other.clone()];
        let records = HashMap::from([
            (
                a.id_number.expose().to_owned(),
                record(&a, "married", Some(&s), "none", 0),
            ),
            (
                other.id_number.expose().to_owned(),
                record(&other, "single", None, "none", 0),
            ),
        ]);
        let got = evaluate(&ctx, &persons, &records);
        assert_eq!(got.criteria[0].reasons, vec![R::SpouseNotDeclared, R::SpouseMismatch]);
    }
}
