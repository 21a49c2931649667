//! Accepting an application, whatever the channel: idempotency, validation, and one
//! transaction that writes the application and one outbox row per department it needs.

use crate::validate::{self, FieldError, Limits};
use prh_common::{
    application::Application,
    application::{ApplicationForm, Channel},
    audit::kinds as audit_kinds,
    bus::{Outgoing, Topology},
    calendar::WorkCalendar,
    clock::Clock,
    contract::CheckRequest,
    policy_set::PolicySet,
    store::{
        audit,
        batch::{self, Batch},
        db::is_transient,
        group_commit::{GroupCommit, Unit},
        outbox,
        pipeline::{applications, renewals, status},
    },
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryTrait,
    SqlErr,
    sea_query::{CaseStatement, Expr, Query},
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::{collections::HashMap, sync::Arc};
use tokio::sync::Notify;
use utoipa::ToSchema;
use uuid::Uuid;

/// Outbox origin of intake's rows.
pub const ORIGIN: &str = "intake";

/// What the submitter gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Receipt {
    pub application_id: Uuid,
    /// Human reference, e.g. `GZF-2026-000123`.
    pub reference: String,
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the application is invalid")]
    Invalid(Vec<FieldError>),
    #[error("this Idempotency-Key was already used for a different application")]
    KeyReused,
    #[error("no eligibility policy is in force on {0}; the operator must configure one")]
    NoPolicy(chrono::NaiveDate),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

impl SubmitError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SubmitError::Db(e) if is_transient(e))
    }
}

pub struct Intake {
    pub db: DatabaseConnection,
    pub topology: Topology,
    pub policies: Arc<PolicySet>,
    pub limits: Limits,
    pub relay: Arc<Notify>,
    /// Submissions that arrive together share a transaction.
    pub commits: GroupCommit<Writer>,
    pub calendar: Arc<WorkCalendar>,
    pub clock: Clock,
}

/// An accepted application ready to be written: its row and its check requests.
pub struct Prepared {
    row: applications::ActiveModel,
    id: Uuid,
    year: String,
    requests: Vec<Outgoing>,
    /// What the audit trail's `submitted` event records besides the reference.
    submitted: serde_json::Value,
    /// For a yearly re-check: the certificate it re-checks.
    renewal: Option<renewals::ActiveModel>,
    /// When it was accepted, by the intake's clock.
    at: chrono::DateTime<chrono::Utc>,
}

/// Writes prepared applications; the unit of intake's group commit.
pub struct Writer;

impl Unit for Writer {
    type Job = Prepared;
    /// The application's reference.
    type Out = String;
    type Plan = ();

    /// Writes a batch with two round trips whatever its size: the rows, reading back their
    /// sequence numbers; then, in one [`Batch`], their references, every check request and
    /// the start of each audit trail.
    async fn apply(&self, txn: &DatabaseTransaction, batch: &[Prepared], _: Option<()>) -> Result<Vec<String>, DbErr> {
        let ids: Vec<Uuid> = batch.iter().map(|p| p.id).collect();
        let mut insert = applications::Entity::insert_many(batch.iter().map(|p| p.row.clone())).into_query();
        insert.returning(Query::returning().columns([applications::Column::Id, applications::Column::Seq]));
        let mut seqs: HashMap<Uuid, i64> = HashMap::with_capacity(batch.len());
        for row in txn
            .query_all_raw(batch::json_as_text(txn.get_database_backend().build(&insert)))
            .await?
        {
            seqs.insert(row.try_get("", "id")?, row.try_get("", "seq")?);
        }
        let mut writes = Batch::new(txn);
        let mut references = Vec::with_capacity(batch.len());
        let mut by_id = CaseStatement::new();
        for p in batch {
            let seq = seqs
                .get(&p.id)
                .ok_or_else(|| DbErr::RecordNotFound(format!("application {} just inserted", p.id)))?;
            let reference = format!("GZF-{}-{seq:06}", p.year);
            by_id = by_id.case(applications::Column::Id.eq(p.id), Expr::value(reference.clone()));
            references.push(reference);
        }
        writes.push(
            &applications::Entity::update_many()
                .col_expr(applications::Column::Reference, by_id.into())
                .filter(applications::Column::Id.is_in(ids)),
        );
        let requests: Vec<Outgoing> = batch.iter().flat_map(|p| p.requests.iter().cloned()).collect();
        outbox::enqueue_in(&mut writes, ORIGIN, &requests)?;
        let renewals: Vec<renewals::ActiveModel> = batch.iter().filter_map(|p| p.renewal.clone()).collect();
        if !renewals.is_empty() {
            writes.push(&renewals::Entity::insert_many(renewals));
        }
        let mut events = Vec::with_capacity(batch.len() * 2);
        for (p, reference) in batch.iter().zip(&references) {
            let mut submitted = p.submitted.clone();
            submitted["reference"] = reference.clone().into();
            events.push(audit::Event {
                application_id: p.id,
                kind: audit_kinds::SUBMITTED,
                payload: submitted,
            });
            let asked: Vec<serde_json::Value> = p
                .requests
                .iter()
                .map(|r| json!({ "department": r.routing_key, "message_id": r.message_id }))
                .collect();
            events.push(audit::Event {
                application_id: p.id,
                kind: audit_kinds::DISPATCHED,
                payload: json!({ "check_requests": asked }),
            });
        }
        let at = batch.first().map_or_else(chrono::Utc::now, |p| p.at);
        audit::start_in(&mut writes, at, events);
        writes.run(txn).await?;
        Ok(references)
    }
}

impl Intake {
    /// Accepts `form`. A repeat with the same idempotency key and the same form returns
    /// the first receipt; nothing is written twice.
    pub async fn submit(
        &self,
        form: &ApplicationForm,
        idempotency_key: Option<&str>,
        channel: Channel,
    ) -> Result<Receipt, SubmitError> {
        let hash = hex::encode(Sha256::digest(serde_json::to_vec(form).unwrap_or_default()));
        let today = self.clock.today();
        let application = validate::parse(form, today, self.limits).map_err(|errors| {
            metrics::counter!(prh_common::metrics::SUBMISSIONS_REFUSED, "channel" => channel.as_str()).increment(1);
            SubmitError::Invalid(errors)
        })?;
        self.accept(&application, hash, idempotency_key, channel, None).await
    }

    /// Writes a parsed application and its check requests; `renewal` names the
    /// certificate a yearly re-check is for.
    pub async fn accept(
        &self,
        application: &Application,
        hash: String,
        idempotency_key: Option<&str>,
        channel: Channel,
        renewal: Option<(String, Uuid)>,
    ) -> Result<Receipt, SubmitError> {
        let now = self.clock.now();
        let today = application.application_date;
        let policy = self.policies.in_force_on(today).ok_or(SubmitError::NoPolicy(today))?;
        let id = Uuid::now_v7();
        let payload = serde_json::to_value(application).map_err(|e| DbErr::Custom(e.to_string()))?;

        let row = applications::ActiveModel {
            id: Set(id),
            reference: Set(None),
            idempotency_key: Set(idempotency_key.map(str::to_owned)),
            request_hash: Set(hash.clone()),
            channel: Set(channel.as_str().into()),
            track: Set(application.track.as_str().into()),
            payload: Set(payload),
            status: Set(status::CHECKING.into()),
            policy_version: Set(Some(policy.version.clone())),
            submitted_at: Set(now),
            deadline: Set(self.calendar.add_working_days(today, policy.decision_working_days)),
            decided_at: Set(None),
            updated_at: Set(now),
            ..Default::default()
        };
        let mut requests = Vec::with_capacity(application.track.departments().len());
        for &department in application.track.departments() {
            requests.push(
                CheckRequest::message(&self.topology, id, application, department, &policy.version)
                    .map_err(|e| DbErr::Custom(e.to_string()))?,
            );
        }
        let mut submitted = json!({
            "channel": channel.as_str(),
            "track": application.track.as_str(),
            "request_sha256": hash,
            "policy_version": policy.version,
        });
        if let Some((number, _)) = &renewal {
            submitted["rechecks_certificate"] = number.clone().into();
        }
        let prepared = Prepared {
            row,
            id,
            year: today.format("%Y").to_string(),
            requests,
            submitted,
            at: now,
            renewal: renewal.map(|(number, original)| renewals::ActiveModel {
                application_id: Set(id),
                certificate_number: Set(number),
                original_application_id: Set(original),
            }),
        };
        let reference = match self.commits.run(prepared).await {
            Ok(reference) => reference,
            Err(e)
                if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) && idempotency_key.is_some() =>
            {
                // The key was used before (a retry, or a request that won the race): answer
                // as the first time. Looking it up only on a conflict saves a query per
                // submission.
                let key = idempotency_key.unwrap_or_default();
                return self.replay(key, &hash).await?.ok_or(SubmitError::KeyReused);
            }
            Err(e) => return Err(e.into()),
        };
        self.relay.notify_one();
        tracing::info!(application_id = %id, %reference, channel = channel.as_str(), track = application.track.as_str(), "application accepted");
        metrics::counter!(prh_common::metrics::APPLICATIONS, "channel" => channel.as_str()).increment(1);
        Ok(Receipt {
            application_id: id,
            reference,
            status: status::CHECKING.into(),
        })
    }

    async fn replay(&self, key: &str, hash: &str) -> Result<Option<Receipt>, SubmitError> {
        let Some(row) = applications::Entity::find()
            .filter(applications::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if row.request_hash != hash {
            return Err(SubmitError::KeyReused);
        }
        Ok(Some(Receipt {
            application_id: row.id,
            reference: row.reference.unwrap_or_default(),
            status: row.status,
        }))
    }
}
