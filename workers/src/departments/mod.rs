//! One module per department check. Each reads only its own registry, evaluates the
//! criteria it owns with pure functions, and returns the criterion records and facts.

mod civil_affairs;
mod education;
mod housing;
mod human_resources;
mod natural_resources;
mod public_security;
#[cfg(test)]
mod rules_table;

use chrono::NaiveDate;
use prh_common::{
    contract::{CheckRequest, Facts, Subject},
    criteria::{CriterionCode, CriterionResult},
    policy::Policy,
};
use sea_orm::{DatabaseConnection, DbErr};

/// What every check needs besides its subject.
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub date: NaiveDate,
}

/// A department's answer before it is wrapped in a `Finding`.
#[derive(Debug, Default)]
pub struct Answer {
    pub criteria: Vec<CriterionResult>,
    pub facts: Facts,
}

/// Runs the department check the request's subject names, against that department's
/// registry, and keeps only the criteria the request asks for.
pub async fn check(db: &DatabaseConnection, request: &CheckRequest, policy: &Policy) -> Result<Answer, DbErr> {
    let ctx = Context {
        policy,
        date: request.application_date,
    };
    let mut answer = match &request.subject {
        Subject::PublicSecurity { persons } => public_security::check(db, &ctx, persons).await?,
        Subject::CivilAffairs { persons, .. } => civil_affairs::check(db, &ctx, persons).await?,
        Subject::HumanResources {
            applicant,
            application_month,
            ..
        } => human_resources::check(db, &ctx, applicant, *application_month, request.track).await?,
        Subject::NaturalResources { id_numbers } => natural_resources::check(db, &ctx, id_numbers).await?,
        Subject::Housing { id_numbers } => housing::check(db, &ctx, id_numbers, request.application_id).await?,
        Subject::Education { applicant } => education::check(db, &ctx, applicant).await?,
    };
    answer.criteria.retain(|c| request.criteria.contains(&c.code));
    Ok(answer)
}

/// The masked numbers of `ids` the registry does not know, given the ones it does.
fn unknown(ids: &[prh_common::id_number::IdNumber], known: impl Iterator<Item = String>) -> Vec<String> {
    let known: std::collections::HashSet<String> = known.collect();
    ids.iter()
        .filter(|i| !known.contains(i.expose()))
        .map(|i| i.masked())
        .collect()
}

/// Combines per-person outcomes into one record: any failure fails (listing every
/// reason, and `record_not_found` too when somebody's record is missing), else any
/// missing record refers, else it passes.
fn combine(
    code: CriterionCode,
    failures: Vec<(prh_common::criteria::ReasonCode, String)>,
    missing: &[String],
    pass_observed: String,
    threshold: String,
) -> CriterionResult {
    if !failures.is_empty() {
        let mut reasons = Vec::new();
        for (r, _) in &failures {
            if !reasons.contains(r) {
                reasons.push(*r);
            }
        }
        let mut observed = failures.into_iter().map(|(_, o)| o).collect::<Vec<_>>();
        if !missing.is_empty() {
            reasons.push(prh_common::criteria::ReasonCode::RecordNotFound);
            observed.push(format!("no record of {}", missing.join(", ")));
        }
        CriterionResult::fail(code, reasons, observed.join("; "), threshold)
    } else if !missing.is_empty() {
        CriterionResult::record_not_found(code, &missing.join(", "))
    } else {
        CriterionResult::pass(code, pass_observed, threshold)
    }
}
