//! 人社: current employment and social insurance history (HR-EMPLOYED, HR-INSURANCE).

use super::{Answer, ByPerson, Check, Context, by_id, combine, rows_about};
use prh_common::{
    contract::{CheckRequest, Subject},
    criteria::{CriterionCode as C, CriterionResult, ReasonCode as R},
    dates::previous_month,
    department::Track,
    store::registry::{hr_contributions, hr_persons},
};
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use std::collections::{BTreeSet, HashMap};

pub struct HumanResources;

pub struct Rows {
    known: HashMap<String, hr_persons::Model>,
    /// Contributions paid on time (back-paid months are left out when read).
    contributions: ByPerson<hr_contributions::Model>,
}

impl Check for HumanResources {
    type Rows = Rows;

    async fn read(txn: &DatabaseTransaction, ids: &[&str], _: &[&CheckRequest]) -> Result<Rows, DbErr> {
        let known = rows_about(txn, hr_persons::Entity::find(), hr_persons::Column::IdNumber, ids).await?;
        let contributions = rows_about(
            txn,
            hr_contributions::Entity::find().filter(hr_contributions::Column::BackPaid.eq(false)),
            hr_contributions::Column::IdNumber,
            ids,
        )
        .await?;
        Ok(Rows {
            known: by_id(known, |r| &r.id_number),
            contributions: ByPerson::new(contributions, |r| &r.id_number),
        })
    }

    fn answer(ctx: &Context<'_>, request: &CheckRequest, rows: &Rows) -> Option<Answer> {
        let Subject::HumanResources {
            applicant,
            application_month,
            ..
        } = &request.subject
        else {
            return None;
        };
        let id = applicant.id_number.expose();
        let criteria = if rows.known.contains_key(id) {
            // Months after the application month are not known on the application date.
            let months: BTreeSet<i32> = rows
                .contributions
                .of([id])
                .into_iter()
                .map(|c| c.month)
                .filter(|m| m <= application_month)
                .collect();
            evaluate(ctx, &months, *application_month, request.track)
        } else {
            let who = applicant.id_number.masked();
            [C::HrEmployed, C::HrInsurance]
                .into_iter()
                .map(|c| combine(c, vec![], std::slice::from_ref(&who), String::new(), String::new()))
                .collect()
        };
        Some(Answer {
            criteria,
            facts: Default::default(),
        })
    }
}

/// `paid`: months paid on time (back-paid months already removed), none after the
/// application month.
pub(super) fn evaluate(ctx: &Context<'_>, paid: &BTreeSet<i32>, month: i32, track: Track) -> Vec<CriterionResult> {
    let p = ctx.policy;
    let before = previous_month(month);
    let employed_threshold = "a contribution in the application month or the month before".to_owned();
    let employed = if paid.contains(&month) || paid.contains(&before) {
        CriterionResult::pass(C::HrEmployed, "contributing now", employed_threshold)
    } else {
        CriterionResult::fail(
            C::HrEmployed,
            vec![R::NotEmployed],
            "no contribution in the last two months",
            employed_threshold,
        )
    };

    let mut run = 0u32;
    let mut m = if paid.contains(&month) { month } else { before };
    while paid.contains(&m) {
        run += 1;
        m = previous_month(m);
    }
    let total = paid.len() as u32;
    let observed = format!("{run} consecutive month(s), {total} in total");
    let (ok, threshold) = match track {
        Track::MigrantWorker => (
            run >= p.migrant_consecutive_months || total >= p.migrant_total_months,
            format!(
                "{} consecutive months or {} in total, back-paid months excluded",
                p.migrant_consecutive_months, p.migrant_total_months
            ),
        ),
        _ => (
            run >= p.new_employee_insurance_months,
            format!("{} consecutive months", p.new_employee_insurance_months),
        ),
    };
    let insurance = if ok {
        CriterionResult::pass(C::HrInsurance, observed, threshold)
    } else {
        CriterionResult::fail(C::HrInsurance, vec![R::InsuranceTooShort], observed, threshold)
    };
    vec![employed, insurance]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prh_common::{criteria::Outcome, policy::Policy};

    /// `n` months ending at `end`.
    fn run(end: i32, n: u32) -> Vec<i32> {
        let mut out = vec![];
        let mut m = end;
        for _ in 0..n {
            out.push(m);
            m = previous_month(m);
        }
        out
    }

    #[test]
    fn runs_and_totals_by_table() {
        let policy = Policy::default();
        let ctx = Context {
            policy: &policy,
            date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        };
        // (paid months, track, expected EMPLOYED, expected INSURANCE)
        let cases: Vec<(Vec<i32>, Track, Outcome, Outcome)> = vec![
            (run(202611, 6), Track::NewEmployee, Outcome::Pass, Outcome::Pass),
            (run(202610, 6), Track::NewEmployee, Outcome::Pass, Outcome::Pass),
            (run(202611, 5), Track::NewEmployee, Outcome::Pass, Outcome::Fail),
            (run(202609, 24), Track::NewEmployee, Outcome::Fail, Outcome::Fail),
            (run(202611, 12), Track::MigrantWorker, Outcome::Pass, Outcome::Pass),
            (run(202611, 11), Track::MigrantWorker, Outcome::Pass, Outcome::Fail),
            (
                [run(202611, 3), run(202401, 33)].concat(),
                Track::MigrantWorker,
                Outcome::Pass,
                Outcome::Pass,
            ),
            (
                [run(202611, 3), run(202401, 32)].concat(),
                Track::MigrantWorker,
                Outcome::Pass,
                Outcome::Fail,
            ),
            // 202512 back-paid (so absent): the run is 11, broken there.
            (
                [run(202611, 11), run(202511, 5)].concat(),
                Track::MigrantWorker,
                Outcome::Pass,
                Outcome::Fail,
            ),
        ];
        for (months, track, employed, insurance) in cases {
            let paid: BTreeSet<i32> = months.into_iter().collect();
            let got = evaluate(&ctx, &paid, 202611, track);
            assert_eq!(
                (got[0].outcome, got[1].outcome),
                (employed, insurance),
                "{track} {paid:?}"
            );
        }
    }
}
