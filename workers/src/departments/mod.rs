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
    contract::{CheckRequest, Facts},
    criteria::{CriterionCode, CriterionResult},
    department::Department,
    id_number::IdNumber,
    policy::Policy,
    store::in_list,
};
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Select};
use std::{collections::HashMap, future::Future};

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

/// One request of a batch with the policy it is judged under.
pub struct Job<'a> {
    pub request: &'a CheckRequest,
    pub policy: &'a Policy,
}

/// A department's check in two steps, so that a batch of requests reads each registry
/// table once: `read` fetches the rows about every person of the batch, `answer` judges
/// one request from them, without I/O.
trait Check {
    type Rows;

    /// The registry rows about `ids` (every person the batch names, each once).
    fn read<'a>(
        txn: &'a DatabaseTransaction,
        ids: &'a [&'a str],
        requests: &'a [&'a CheckRequest],
    ) -> impl Future<Output = Result<Self::Rows, DbErr>> + Send + 'a;

    /// The answer to one request; `None` when the request is another department's.
    fn answer(ctx: &Context<'_>, request: &CheckRequest, rows: &Self::Rows) -> Option<Answer>;
}

/// Runs `department`'s check for every job against its registry, reading each table once
/// for the whole batch, and keeps only the criteria each request asks for. One answer per
/// job, in order.
/// Whether checking writes the department's registry: housing records who is in which
/// open application (`housing::Housing::read`); the others only read.
pub fn check_writes(department: Department) -> bool {
    department == Department::Housing
}

pub async fn check_all(
    txn: &DatabaseTransaction,
    department: Department,
    jobs: &[Job<'_>],
) -> Result<Vec<Answer>, DbErr> {
    match department {
        Department::PublicSecurity => run::<public_security::PublicSecurity>(txn, jobs).await,
        Department::CivilAffairs => run::<civil_affairs::CivilAffairs>(txn, jobs).await,
        Department::HumanResources => run::<human_resources::HumanResources>(txn, jobs).await,
        Department::NaturalResources => run::<natural_resources::NaturalResources>(txn, jobs).await,
        Department::Housing => run::<housing::Housing>(txn, jobs).await,
        Department::Education => run::<education::Education>(txn, jobs).await,
    }
}

async fn run<D: Check>(txn: &DatabaseTransaction, jobs: &[Job<'_>]) -> Result<Vec<Answer>, DbErr> {
    let requests: Vec<&CheckRequest> = jobs.iter().map(|j| j.request).collect();
    let mut ids: Vec<&str> = requests
        .iter()
        .flat_map(|r| r.subject.id_numbers())
        .map(IdNumber::expose)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = D::read(txn, &ids, &requests).await?;
    jobs.iter()
        .map(|job| {
            let ctx = Context {
                policy: job.policy,
                date: job.request.application_date,
            };
            let mut answer = D::answer(&ctx, job.request, &rows).ok_or_else(|| {
                DbErr::Custom(format!(
                    "wrong_department: a {} request in another department's batch",
                    job.request.subject.department()
                ))
            })?;
            answer.criteria.retain(|c| job.request.criteria.contains(&c.code));
            Ok(answer)
        })
        .collect()
}

/// Every row of `query`'s table about the persons `ids`; `query` may add filters.
async fn rows_about<E: EntityTrait>(
    txn: &DatabaseTransaction,
    query: Select<E>,
    id_number: E::Column,
    ids: &[&str],
) -> Result<Vec<E::Model>, DbErr> {
    query
        .filter(id_number.is_in(in_list::padded(ids.to_vec())))
        .all(txn)
        .await
}

/// Rows of one registry table for every person of a batch, grouped by ID number.
struct ByPerson<M>(HashMap<String, Vec<M>>);

impl<M: Clone> ByPerson<M> {
    fn new(rows: Vec<M>, id_number: fn(&M) -> &str) -> Self {
        let mut map: HashMap<String, Vec<M>> = HashMap::new();
        for row in rows {
            map.entry(id_number(&row).to_owned()).or_default().push(row);
        }
        Self(map)
    }

    /// The rows of these persons, each person counted once.
    fn of<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<M> {
        let mut seen = std::collections::HashSet::new();
        ids.into_iter()
            .filter(|id| seen.insert(*id))
            .flat_map(|id| self.0.get(id).into_iter().flatten().cloned())
            .collect()
    }
}

/// A person table keyed by ID number (one row per person).
fn by_id<M>(rows: Vec<M>, id_number: fn(&M) -> &str) -> HashMap<String, M> {
    rows.into_iter().map(|r| (id_number(&r).to_owned(), r)).collect()
}

/// The masked numbers of `ids` the registry does not know.
fn unknown(ids: &[IdNumber], known: impl Fn(&str) -> bool) -> Vec<String> {
    ids.iter()
        .filter(|i| !known(i.expose()))
        .map(IdNumber::masked)
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
