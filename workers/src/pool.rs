//! A department pool's handler: parse the check request, run the department's check
//! against its own registry, publish the finding with a confirm, then ack. Requests that
//! arrive together are checked together, reading each registry table once.

use crate::departments::{self, Answer, Job};
use prh_common::{
    bus::{Disposition, Handler, Incoming, Outgoing, Publisher, Topology},
    contract::{CheckRequest, Finding, headers, kinds},
    criteria::Outcome,
    department::Department,
    id_number::redact,
    metrics as m,
    policy_set::PolicySet,
    signing::KeyPair,
    store::{
        db::is_transient,
        group_commit::{GroupCommit, Unit},
    },
    trace,
};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

pub struct CheckHandler {
    department: Department,
    /// Signs every finding, so the collector can tell it came from this department.
    key: Arc<KeyPair>,
    policies: Arc<PolicySet>,
    topology: Topology,
    checks: GroupCommit<Checker>,
}

/// Checks a batch of requests in one registry transaction: the unit of a pool's group
/// commit.
struct Checker {
    department: Department,
    policies: Arc<PolicySet>,
}

impl Unit for Checker {
    /// The request and the policy version it is judged under.
    type Job = (CheckRequest, String);
    type Out = Answer;
    type Plan = ();

    fn writes(&self) -> bool {
        departments::check_writes(self.department)
    }

    async fn apply(&self, txn: &DatabaseTransaction, jobs: &[Self::Job], _: Option<()>) -> Result<Vec<Answer>, DbErr> {
        let jobs = jobs
            .iter()
            .map(|(request, version)| {
                let policy = self
                    .policies
                    .get(version)
                    .ok_or_else(|| DbErr::Custom(format!("unknown_policy_version: `{version}`")))?;
                Ok(Job { request, policy })
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        departments::check_all(txn, self.department, &jobs).await
    }
}

impl Handler for CheckHandler {
    async fn handle(&self, msg: Incoming<'_>, publisher: &Publisher) -> Disposition {
        if let Err(reason) = msg.check_schema(false) {
            return Disposition::Park(reason);
        }
        let request: CheckRequest = match serde_json::from_slice(msg.body) {
            Ok(r) => r,
            Err(e) => return Disposition::Park(redact(&format!("malformed_body: {e}"))),
        };
        if request.subject.is_empty() {
            return Disposition::Park("empty_subject: the request names nobody to check".into());
        }
        if request.subject.department() != self.department {
            let got = request.subject.department();
            return Disposition::Park(format!(
                "wrong_department: a {got} request reached the {} pool",
                self.department
            ));
        }
        let Some(version) = msg.header(headers::POLICY) else {
            return Disposition::Park(format!(
                "missing_policy_version: header {} is required",
                headers::POLICY
            ));
        };
        if self.policies.get(&version).is_none() {
            return Disposition::Park(format!("unknown_policy_version: this pool has no policy `{version}`"));
        }
        let traceparent = trace::child(msg.header(headers::TRACEPARENT).as_deref(), request.application_id);
        let span = tracing::info_span!(
            "check",
            application_id = %request.application_id,
            department = %self.department,
            trace_id = trace::trace_id(&traceparent).unwrap_or_default(),
        );
        self.answer(request, &version, traceparent, publisher)
            .instrument(span)
            .await
    }
}

impl CheckHandler {
    /// A handler for `department`'s pool; at most `max_batch` requests are checked together.
    pub fn start(
        department: Department,
        key: Arc<KeyPair>,
        registry: DatabaseConnection,
        policies: Arc<PolicySet>,
        topology: Topology,
        max_batch: usize,
    ) -> Self {
        let checker = Checker {
            department,
            policies: policies.clone(),
        };
        Self {
            department,
            key,
            policies,
            topology,
            checks: GroupCommit::start(department.as_str(), registry, Arc::new(checker), max_batch),
        }
    }

    async fn answer(
        &self,
        request: CheckRequest,
        version: &str,
        traceparent: String,
        publisher: &Publisher,
    ) -> Disposition {
        let Some(policy) = self.policies.get(version) else {
            return Disposition::Park(format!("unknown_policy_version: `{version}`"));
        };
        let started = std::time::Instant::now();
        let application_id = request.application_id;
        let answer = match self.checks.run((request, version.to_owned())).await {
            Ok(a) => a,
            Err(e) if is_transient(&e) => return Disposition::Retry(format!("registry: {}", redact(&e.to_string()))),
            Err(e) => return Disposition::Park(format!("registry_error: {}", redact(&e.to_string()))),
        };
        let finding_outcomes: Vec<Outcome> = answer.criteria.iter().map(|c| c.outcome).collect();
        let finding = Finding {
            application_id,
            department: self.department,
            policy_version: policy.version.clone(),
            checked_at: chrono::Utc::now(),
            criteria: answer.criteria,
            facts: answer.facts,
        };
        let body = match serde_json::to_vec(&finding) {
            Ok(b) => b,
            Err(e) => return Disposition::Retry(format!("serialize finding: {e}")),
        };
        let out = Outgoing {
            exchange: self.topology.findings_exchange(),
            routing_key: Topology::finding_routing_key(self.department),
            kind: kinds::FINDING_REPORTED.into(),
            message_id: Uuid::now_v7(),
            correlation_id: Some(application_id),
            headers: vec![
                (headers::DEPARTMENT.into(), self.department.to_string()),
                (headers::POLICY.into(), policy.version.clone()),
                (headers::TRACEPARENT.into(), traceparent),
                (headers::KEY_ID.into(), self.key.key_id().to_owned()),
                (headers::SIGNATURE.into(), self.key.sign(&body)),
            ],
            body,
        };
        match publisher.publish(&out).await {
            Ok(()) => {
                let department = self.department.as_str();
                metrics::counter!(m::CHECKS, "department" => department).increment(1);
                metrics::histogram!(m::CHECK_DURATION, "department" => department)
                    .record(started.elapsed().as_secs_f64());
                for c in &finding_outcomes {
                    let outcome = match c {
                        Outcome::Pass => "pass",
                        Outcome::Fail => "fail",
                        Outcome::Refer => "refer",
                    };
                    metrics::counter!(m::CRITERIA, "department" => department, "outcome" => outcome).increment(1);
                }
                Disposition::Ack
            }
            Err(e) => Disposition::Retry(format!("publish finding: {e}")),
        }
    }
}
