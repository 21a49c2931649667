//! 教育: a recent college degree (ED-GRADUATE).

use super::{Answer, ByPerson, Check, Context, by_id, combine, rows_about};
use prh_common::{
    contract::{CheckRequest, Subject},
    criteria::{CriterionCode as C, CriterionResult, ReasonCode as R},
    dates::years_before,
    records::DegreeLevel,
    store::registry::{ed_degrees, ed_persons},
};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait};
use std::collections::HashMap;

pub struct Education;

pub struct Rows {
    persons: HashMap<String, ed_persons::Model>,
    degrees: ByPerson<ed_degrees::Model>,
}

impl Check for Education {
    type Rows = Rows;

    async fn read(txn: &DatabaseTransaction, ids: &[&str], _: &[&CheckRequest]) -> Result<Rows, DbErr> {
        let persons = rows_about(txn, ed_persons::Entity::find(), ed_persons::Column::IdNumber, ids).await?;
        let degrees = rows_about(txn, ed_degrees::Entity::find(), ed_degrees::Column::IdNumber, ids).await?;
        Ok(Rows {
            persons: by_id(persons, |r| &r.id_number),
            degrees: ByPerson::new(degrees, |r| &r.id_number),
        })
    }

    fn answer(ctx: &Context<'_>, request: &CheckRequest, rows: &Rows) -> Option<Answer> {
        let Subject::Education { applicant } = &request.subject else {
            return None;
        };
        let id = applicant.id_number.expose();
        let result = if rows.persons.contains_key(id) {
            evaluate(ctx, &rows.degrees.of([id]))
        } else {
            combine(
                C::EdGraduate,
                vec![],
                &[applicant.id_number.masked()],
                String::new(),
                String::new(),
            )
        };
        Some(Answer {
            criteria: vec![result],
            facts: Default::default(),
        })
    }
}

/// The stored level; an unknown one counts as below college.
fn level(d: &ed_degrees::Model) -> DegreeLevel {
    DegreeLevel::parse(&d.level).unwrap_or(DegreeLevel::Vocational)
}

pub(super) fn evaluate(ctx: &Context<'_>, degrees: &[ed_degrees::Model]) -> CriterionResult {
    let since = years_before(ctx.date, ctx.policy.graduate_within_years);
    let threshold = format!("大专 or above, graduated after {since}");
    // The highest degree held on the application date; a later one does not count yet.
    let highest = degrees
        .iter()
        .filter(|d| d.graduated_on <= ctx.date)
        .max_by_key(|d| (level(d), d.graduated_on));
    match highest {
        Some(d) if level(d) >= DegreeLevel::College && d.graduated_on > since => CriterionResult::pass(
            C::EdGraduate,
            format!("{} graduated {}", d.level, d.graduated_on),
            threshold,
        ),
        Some(d) => CriterionResult::fail(
            C::EdGraduate,
            vec![R::NotRecentGraduate],
            format!("{} graduated {}", d.level, d.graduated_on),
            threshold,
        ),
        None => CriterionResult::fail(C::EdGraduate, vec![R::NotRecentGraduate], "no degree", threshold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prh_common::{criteria::Outcome, policy::Policy};

    #[test]
    fn graduates_by_table() {
        let policy = Policy::default();
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let ctx = Context {
            policy: &policy,
            date: d(2026, 11, 26),
        };
        let degree = |level: &str, on| ed_degrees::Model {
            id: 0,
            id_number: "x".into(),
            level: level.into(),
            graduated_on: on,
        };
        let cases = vec![
            (vec![degree("college", d(2021, 11, 27))], Outcome::Pass),
            (vec![degree("college", d(2021, 11, 26))], Outcome::Fail),
            (vec![degree("vocational", d(2025, 7, 1))], Outcome::Fail),
            (
                vec![degree("bachelor", d(2015, 7, 1)), degree("master", d(2024, 7, 1))],
                Outcome::Pass,
            ),
            (vec![degree("master", d(2026, 11, 27))], Outcome::Fail),
            (
                vec![degree("bachelor", d(2024, 7, 1)), degree("master", d(2027, 1, 1))],
                Outcome::Pass,
            ),
            (vec![], Outcome::Fail),
        ];
        for (degrees, expected) in cases {
            assert_eq!(evaluate(&ctx, &degrees).outcome, expected, "{degrees:?}");
        }
    }
}
