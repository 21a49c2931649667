//! The collector: stores each finding once, and when every department the track needs has
//! answered, applies the policy and writes the decision, the public notice (公示) or the
//! signed certificate, and the decision event — all in one transaction.

use crate::trust::Trust;
use prh_common::{
    application::Application,
    audit::kinds as audit_kinds,
    bus::{Disposition, Handler, Incoming, Outgoing, Publisher, Topology},
    calendar::WorkCalendar,
    certificate::{Certificate, Issuer},
    clock::Clock,
    contract::{CertificateEvent, DecisionEvent, Finding, headers},
    department::{Department, Track},
    id_number::redact,
    metrics as m,
    policy::{self, Decision, DecisionOutcome, Policy},
    policy_set::PolicySet,
    signing::KeyPair,
    store::{
        audit,
        batch::Batch,
        db::is_transient,
        group_commit::{GroupCommit, Unit},
        in_list, outbox,
        pipeline::{
            applications, audit_events, certificate_status, certificates, decisions, findings, notice_status, notices,
            renewals, revocations, status,
        },
    },
    trace,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QuerySelect,
    sea_query::{Alias, CaseStatement, Expr, Query},
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

/// Outbox origin of the collector's rows.
pub const ORIGIN: &str = "collector";

/// What decides: the pipeline database, the policies and the signing key, and the
/// calendar and clock the public notice is counted by.
pub struct Decider {
    pub db: DatabaseConnection,
    pub policies: Arc<PolicySet>,
    pub key: Arc<KeyPair>,
    pub authority: String,
    pub topology: Topology,
    pub calendar: Arc<WorkCalendar>,
    pub clock: Clock,
}

/// The collector's handler. Findings are stored by group commit (`store::group_commit`):
/// under load many findings share one transaction.
pub struct Collector {
    commits: GroupCommit<Decider>,
    relay: Arc<Notify>,
    trust: Trust,
}

impl Collector {
    /// Starts the group-commit task; at most `max_batch` findings share a transaction.
    pub fn start(decider: Arc<Decider>, relay: Arc<Notify>, max_batch: usize, trust: Trust) -> Self {
        let db = decider.db.clone();
        Self {
            commits: GroupCommit::start("collector", db, decider, max_batch),
            relay,
            trust,
        }
    }
}

impl Unit for Decider {
    /// The finding, its trace context and how it was signed.
    type Job = (Finding, String, Evidence);
    type Out = Stored;
    type Plan = Plan;

    async fn prepare(&self, db: &DatabaseConnection, jobs: &[Self::Job]) -> Option<Plan> {
        // Whatever went wrong is met again, and reported, inside the transaction.
        self.plan(db, jobs).await.unwrap_or_default()
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        jobs: &[Self::Job],
        plan: Option<Plan>,
    ) -> Result<Vec<Stored>, DbErr> {
        if let Some(plan) = plan {
            if seen(txn, plan.ids.clone()).await? == plan.seen {
                plan.batch.run(txn).await?;
                return Ok(plan.out);
            }
            metrics::counter!(m::COLLECTOR_REPLANNED).increment(1);
        }
        self.store(txn, jobs).await
    }
}

/// A batch decided before its transaction, on SQLite: the writes, and what they were
/// worked out from, which must still hold under the write lock for them to run.
///
/// On SQLite the collector holds the pipeline file's one write lock, which intake and
/// the relays wait for, while it reads and decides; planning outside it leaves it only
/// one check, the writes and the commit. The check covers everything a plan reads that
/// can change: each application's mutable columns (its form, track and channel are
/// written once), how many findings it has (they are only ever added, one per
/// department) and its audit chain's last link (only ever appended). Re-checks (年审),
/// which also read and write their original application, are decided inside the lock.
pub struct Plan {
    /// Every application the batch names, known or not.
    ids: Vec<Uuid>,
    seen: HashMap<Uuid, Seen>,
    out: Vec<Stored>,
    batch: Batch,
}

/// What a plan saw of one application: the columns another writer may change, how many
/// findings it has and its audit chain's last sequence number.
#[derive(Debug, PartialEq, FromQueryResult)]
struct Seen {
    id: Uuid,
    status: String,
    policy_version: Option<String>,
    decided_at: Option<chrono::DateTime<chrono::Utc>>,
    updated_at: chrono::DateTime<chrono::Utc>,
    deadline: chrono::NaiveDate,
    reference: Option<String>,
    findings: i64,
    last_seq: Option<i32>,
}

/// What `ids` look like now, in one statement: the check of a [`Plan`].
async fn seen<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<HashMap<Uuid, Seen>, DbErr> {
    use sea_orm::sea_query::{ExprTrait, IntoIden};
    /// `table.application_id` equals the outer row's `applications.id`.
    fn of_the_application(table: impl IntoIden, column: impl IntoIden) -> Expr {
        Expr::col((table, column)).equals((applications::Entity, applications::Column::Id))
    }
    let findings_count = Query::select()
        .expr(Expr::col((findings::Entity, findings::Column::Id)).count())
        .from(findings::Entity)
        .and_where(of_the_application(findings::Entity, findings::Column::ApplicationId))
        .to_owned();
    let last_seq = Query::select()
        .expr(Expr::col((audit_events::Entity, audit_events::Column::Seq)).max())
        .from(audit_events::Entity)
        .and_where(of_the_application(
            audit_events::Entity,
            audit_events::Column::ApplicationId,
        ))
        .to_owned();
    Ok(applications::Entity::find()
        .select_only()
        .columns([
            applications::Column::Id,
            applications::Column::Status,
            applications::Column::PolicyVersion,
            applications::Column::DecidedAt,
            applications::Column::UpdatedAt,
            applications::Column::Deadline,
            applications::Column::Reference,
        ])
        .expr_as(Expr::SubQuery(None, Box::new(findings_count.into())), "findings")
        .expr_as(Expr::SubQuery(None, Box::new(last_seq.into())), "last_seq")
        .filter(applications::Column::Id.is_in(in_list::padded(ids)))
        .into_model::<Seen>()
        .all(db)
        .await?
        .into_iter()
        .map(|seen| (seen.id, seen))
        .collect())
}

/// The applications a batch of findings names, each once.
fn application_ids(jobs: &[(Finding, String, Evidence)]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = jobs.iter().map(|(f, ..)| f.application_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The answers stored already for `ids`, as text: parsed only for the applications a
/// batch completes. The first answer of a department stands.
async fn stored_answers<C: ConnectionTrait>(
    db: &C,
    ids: Vec<Uuid>,
) -> Result<HashMap<(Uuid, Department), String>, DbErr> {
    let mut stored = HashMap::new();
    for (id, department, payload) in findings::Entity::find()
        .select_only()
        .column(findings::Column::ApplicationId)
        .column(findings::Column::Department)
        .column_as(
            sea_orm::sea_query::ExprTrait::cast_as(Expr::col(findings::Column::Payload), Alias::new("text")),
            "payload",
        )
        .filter(findings::Column::ApplicationId.is_in(in_list::padded(ids)))
        .into_tuple::<(Uuid, String, String)>()
        .all(db)
        .await?
    {
        let department = department
            .parse::<Department>()
            .map_err(|e| DbErr::Custom(format!("stored finding unreadable: {e}")))?;
        stored.insert((id, department), payload);
    }
    Ok(stored)
}

/// What a batch comes to before anything is written: one result per finding, the
/// statements storing the findings, the decisions' writes and the findings' audit events.
struct Worked {
    out: Vec<Stored>,
    batch: Batch,
    writes: Writes,
    trail: Vec<audit::Event>,
}

/// How a finding was signed, for the audit trail.
pub struct Evidence {
    pub key_id: String,
    pub signature: String,
    /// SHA-256 of the exact body the signature covers, in hex.
    pub body_sha256: String,
}

/// What a decision did, for the metrics recorded once it is committed.
#[derive(Clone)]
pub struct Decided {
    outcome: DecisionOutcome,
    submit_to_decision: f64,
    certified: bool,
}

/// What storing one finding came to.
#[derive(Clone)]
pub enum Stored {
    UnknownApplication,
    Waiting,
    AlreadyDecided,
    Decided(Decided),
}

impl Handler for Collector {
    async fn handle(&self, msg: Incoming<'_>, _publisher: &Publisher) -> Disposition {
        if let Err(reason) = msg.check_schema(false) {
            return Disposition::Park(reason);
        }
        let (Some(key_id), Some(signature)) = (msg.header(headers::KEY_ID), msg.header(headers::SIGNATURE)) else {
            return Disposition::Park(format!(
                "unsigned_finding: a finding must carry {} and {}",
                headers::KEY_ID,
                headers::SIGNATURE
            ));
        };
        let finding: Finding = match serde_json::from_slice(msg.body) {
            Ok(f) => f,
            Err(e) => return Disposition::Park(redact(&format!("malformed_body: {e}"))),
        };
        if let Err(refused) = self.trust.believe(&msg, finding.department, &key_id, &signature).await {
            return refused;
        }
        let traceparent = trace::child(msg.header(headers::TRACEPARENT).as_deref(), finding.application_id);
        let span = tracing::info_span!(
            "collect",
            application_id = %finding.application_id,
            department = %finding.department,
            trace_id = trace::trace_id(&traceparent).unwrap_or_default(),
        );
        let department = finding.department.as_str();
        let evidence = Evidence {
            key_id,
            signature,
            body_sha256: hex::encode(Sha256::digest(msg.body)),
        };
        let result = self
            .commits
            .run((finding, traceparent, evidence))
            .instrument(span.clone())
            .await;
        if result.is_ok() {
            metrics::counter!(m::FINDINGS, "department" => department).increment(1);
        }
        let _enter = span.enter();
        match result {
            Ok(Stored::UnknownApplication) => {
                Disposition::Park("unknown_application: no application has this id".into())
            }
            Ok(Stored::Decided(d)) => {
                tracing::info!(outcome = d.outcome.as_str(), "decided");
                metrics::counter!(m::DECISIONS, "outcome" => d.outcome.as_str()).increment(1);
                metrics::histogram!(m::SUBMIT_TO_DECISION).record(d.submit_to_decision);
                if d.certified {
                    metrics::counter!(m::CERTIFICATES).increment(1);
                }
                self.relay.notify_one();
                Disposition::Ack
            }
            Ok(Stored::Waiting | Stored::AlreadyDecided) => Disposition::Ack,
            Err(e) => {
                let text = redact(&e.to_string());
                if is_transient(&e) {
                    Disposition::Retry(format!("database: {text}"))
                } else {
                    Disposition::Park(format!("collector_error: {text}"))
                }
            }
        }
    }
}

impl Decider {
    /// Stores a batch of findings and decides every application they complete, with a
    /// handful of statements per batch rather than per finding.
    async fn store(
        &self,
        txn: &DatabaseTransaction,
        jobs: &[(Finding, String, Evidence)],
    ) -> Result<Vec<Stored>, DbErr> {
        let now = self.clock.now();
        let ids = application_ids(jobs);
        // Touch the applications first, reading them back in the same statement: this
        // takes their row locks on PostgreSQL and the write lock on SQLite, so findings of
        // one application are stored one transaction at a time and the last one always
        // sees the others. Every statement here is a round trip on the one serial path
        // (SQLite's writer), so the batch reads and writes as few times as it can.
        let apps: HashMap<Uuid, applications::Model> = applications::Entity::update_many()
            .col_expr(applications::Column::UpdatedAt, Expr::value(now))
            .filter(applications::Column::Id.is_in(in_list::padded(ids)))
            .exec_with_returning(txn)
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
        if apps.is_empty() {
            return Ok(vec![Stored::UnknownApplication; jobs.len()]);
        }
        // The applications' locks, taken above, keep what is read now current until the
        // transaction ends.
        let stored = stored_answers(txn, apps.keys().copied().collect()).await?;
        let worked = self.work_out(txn, jobs, &apps, &stored, now).await?;
        worked.writes.apply(txn, now, worked.batch, worked.trail).await?;
        Ok(worked.out)
    }

    /// The plan of a batch (see [`Plan`]), read and decided outside any transaction; none
    /// on PostgreSQL, whose row locks let other writers run meanwhile, or for a batch with
    /// a re-check.
    async fn plan(&self, db: &DatabaseConnection, jobs: &[(Finding, String, Evidence)]) -> Result<Option<Plan>, DbErr> {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Ok(None);
        }
        let now = self.clock.now();
        let ids = application_ids(jobs);
        // Three reads at once, each on a connection of its own: the plan is on the
        // collector's serial path. Each is compared with the rows under the lock, so they
        // need not be one snapshot.
        let (apps, stored, ends) = tokio::try_join!(
            applications::Entity::find()
                .filter(applications::Column::Id.is_in(in_list::padded(ids.clone())))
                .all(db),
            stored_answers(db, ids.clone()),
            audit::chain_ends(db, ids.clone()),
        )?;
        let apps: HashMap<Uuid, applications::Model> = apps.into_iter().map(|row| (row.id, row)).collect();
        let recheck = prh_common::application::Channel::Recheck.as_str();
        if apps.is_empty() || apps.values().any(|a| a.channel == recheck) {
            return Ok(None);
        }
        let mut worked = self.work_out(db, jobs, &apps, &stored, now).await?;
        if !worked.writes.touched.is_empty() {
            return Ok(None);
        }
        let known: Vec<Uuid> = apps.keys().copied().collect();
        worked.batch.push(
            &applications::Entity::update_many()
                .col_expr(applications::Column::UpdatedAt, Expr::value(now))
                .filter(applications::Column::Id.is_in(known.clone())),
        );
        let mut trail = worked.trail;
        trail.extend(worked.writes.push_into(&mut worked.batch, now)?);
        let mut findings_of: HashMap<Uuid, i64> = HashMap::new();
        for (id, _) in stored.keys() {
            *findings_of.entry(*id).or_default() += 1;
        }
        let seen = apps
            .into_values()
            .map(|a| {
                let seen = Seen {
                    id: a.id,
                    status: a.status,
                    policy_version: a.policy_version,
                    decided_at: a.decided_at,
                    updated_at: a.updated_at,
                    deadline: a.deadline,
                    reference: a.reference,
                    findings: findings_of.get(&a.id).copied().unwrap_or_default(),
                    last_seq: ends.get(&a.id).map(|(seq, _)| *seq),
                };
                (a.id, seen)
            })
            .collect();
        audit::append_after(&mut worked.batch, now, trail, ends);
        Ok(Some(Plan {
            ids,
            seen,
            out: worked.out,
            batch: worked.batch,
        }))
    }

    /// Decides what storing `jobs` comes to, given the applications and the answers
    /// stored already; reads only the re-checks' renewals.
    async fn work_out<C: ConnectionTrait>(
        &self,
        db: &C,
        jobs: &[(Finding, String, Evidence)],
        apps: &HashMap<Uuid, applications::Model>,
        stored: &HashMap<(Uuid, Department), String>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Worked, DbErr> {
        let mut answered: HashSet<(Uuid, Department)> = stored.keys().copied().collect();
        // The findings this batch stores, by application and department.
        let mut fresh: HashMap<(Uuid, Department), &Finding> = HashMap::new();
        let mut rows = Vec::new();
        let mut trail = Vec::new();
        for (f, _, evidence) in jobs {
            if !apps.contains_key(&f.application_id) || !answered.insert((f.application_id, f.department)) {
                continue;
            }
            fresh.insert((f.application_id, f.department), f);
            rows.push(findings::ActiveModel {
                application_id: Set(f.application_id),
                department: Set(f.department.to_string()),
                payload: Set(serde_json::to_value(f).map_err(|e| DbErr::Custom(e.to_string()))?),
                received_at: Set(now),
                ..Default::default()
            });
            trail.push(audit::Event {
                application_id: f.application_id,
                kind: audit_kinds::FINDING,
                payload: json!({
                    "department": f.department,
                    "key_id": evidence.key_id,
                    "signature": evidence.signature,
                    "body_sha256": evidence.body_sha256,
                }),
            });
        }
        let mut batch = Batch::new(db);
        if !rows.is_empty() {
            batch.push(
                &findings::Entity::insert_many(rows)
                    .on_conflict_do_nothing_on([findings::Column::ApplicationId, findings::Column::Department]),
            );
        }

        // Of several findings of one application in the batch, the last one decides, once
        // every department its track asks has answered. While the applicant is asked for a
        // document (补正) the case waits; the sweeper decides it once the clock runs again.
        // An application with `decided_at` has its decision row (both are written together
        // in `Writes::apply`): a late finding of it is stored and changes nothing.
        let last: HashMap<Uuid, usize> = jobs
            .iter()
            .enumerate()
            .map(|(i, (f, ..))| (f.application_id, i))
            .collect();
        // None: the finding completes its application, which is decided below.
        let mut outcome: Vec<Option<Stored>> = Vec::with_capacity(jobs.len());
        let mut complete: Vec<Uuid> = Vec::new();
        for (i, (finding, ..)) in jobs.iter().enumerate() {
            let id = finding.application_id;
            let Some(row) = apps.get(&id) else {
                outcome.push(Some(Stored::UnknownApplication));
                continue;
            };
            if row.decided_at.is_some() {
                outcome.push(Some(Stored::AlreadyDecided));
                continue;
            }
            let track = row
                .track
                .parse::<Track>()
                .map_err(|e| DbErr::Custom(format!("stored application unreadable: {e}")))?;
            let completes = last.get(&id) == Some(&i)
                && row.status != status::AWAITING_DOCUMENTS
                && track.departments().iter().all(|d| answered.contains(&(id, *d)));
            if completes {
                complete.push(id);
                outcome.push(None);
            } else {
                outcome.push(Some(Stored::Waiting));
            }
        }
        let mut answers: HashMap<Uuid, Vec<Finding>> = HashMap::new();
        for &id in &complete {
            let found = answers.entry(id).or_default();
            for department in Department::ALL {
                if let Some(text) = stored.get(&(id, department)) {
                    found.push(
                        serde_json::from_str(text)
                            .map_err(|e| DbErr::Custom(format!("stored finding unreadable: {e}")))?,
                    );
                } else if let Some(f) = fresh.get(&(id, department)) {
                    found.push((*f).clone());
                }
            }
        }
        let renewal_of = renewals_of(db, complete.iter().filter_map(|id| apps.get(id))).await?;
        let mut writes = Writes::default();
        let mut out = Vec::with_capacity(jobs.len());
        for ((finding, traceparent, _), stored) in jobs.iter().zip(outcome) {
            let id = finding.application_id;
            let (None, Some(app_row)) = (&stored, apps.get(&id)) else {
                out.push(stored.unwrap_or(Stored::Waiting));
                continue;
            };
            let application = Application::deserialize(&app_row.payload)
                .map_err(|e| DbErr::Custom(format!("stored application unreadable: {e}")))?;
            let found = answers.get(&id).map(Vec::as_slice).unwrap_or_default();
            out.push(Stored::Decided(self.decide(
                &mut writes,
                app_row,
                &application,
                found,
                now,
                traceparent,
                renewal_of.get(&id),
            )?));
        }
        Ok(Worked {
            out,
            batch,
            writes,
            trail,
        })
    }

    /// The policy an application is judged by: the version recorded at intake.
    pub(crate) fn policy_of(&self, app_row: &applications::Model) -> Result<&Policy, DbErr> {
        let version = app_row.policy_version.as_deref().unwrap_or_default();
        self.policies.get(version).ok_or_else(|| {
            DbErr::Custom(format!(
                "unknown_policy_version: the collector has no policy `{version}`"
            ))
        })
    }

    /// Applies the policy to an application — complete, or past its departments' limit —
    /// and adds what it decided to `writes`. A qualified household goes into the public
    /// notice (公示) unless the policy has none or this is a yearly re-check, which renews
    /// the certificate at once; a rejected re-check revokes it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide(
        &self,
        writes: &mut Writes,
        app_row: &applications::Model,
        application: &Application,
        findings: &[Finding],
        now: chrono::DateTime<chrono::Utc>,
        traceparent: &str,
        renewal: Option<&renewals::Model>,
    ) -> Result<Decided, DbErr> {
        let policy = self.policy_of(app_row)?;
        let decision = policy::decide(policy, application, findings);
        let reference = app_row.reference.clone().unwrap_or_default();
        writes.trail.push(audit::Event {
            application_id: app_row.id,
            kind: audit_kinds::DECISION,
            payload: json!({
                "outcome": decision.outcome.as_str(),
                "policy_version": decision.policy_version,
                "reasons": decision.reasons(),
            }),
        });
        writes.decisions.push(decisions::ActiveModel {
            application_id: Set(app_row.id),
            outcome: Set(decision.outcome.as_str().into()),
            policy_version: Set(decision.policy_version.clone()),
            payload: Set(serde_json::to_value(&decision).map_err(|e| DbErr::Custom(e.to_string()))?),
            decided_at: Set(now),
        });

        let today = prh_common::china_date(now);
        let mut certificate_number = None;
        let status_value = match (decision.outcome, renewal) {
            (DecisionOutcome::Qualified, None) if policy.notice_working_days > 0 => {
                let ends_on = self.calendar.add_working_days(today, policy.notice_working_days);
                writes.start_notice(app_row.id, today, ends_on);
                status::IN_NOTICE
            }
            (DecisionOutcome::Qualified, _) => {
                certificate_number =
                    Some(self.certify(writes, app_row, application, &decision, policy, today, renewal)?);
                status::QUALIFIED
            }
            (DecisionOutcome::Rejected, Some(renewal)) => {
                let reasons: Vec<&str> = decision.reasons().iter().map(|r| r.as_str()).collect();
                writes.revoke(
                    &self.topology,
                    renewal,
                    format!("yearly re-check {reference} rejected: {}", reasons.join(", ")),
                    "yearly re-check",
                    now,
                )?;
                status::REJECTED
            }
            (DecisionOutcome::Rejected, None) => status::REJECTED,
            (DecisionOutcome::Referred, _) => status::REFERRED,
        };
        writes
            .statuses
            .entry((status_value, decision.policy_version.clone()))
            .or_default()
            .push(app_row.id);

        let certified = certificate_number.is_some();
        let event = DecisionEvent {
            application_id: app_row.id,
            reference,
            outcome: decision.outcome,
            policy_version: decision.policy_version.clone(),
            decided_at: now,
            reasons: decision.reasons(),
            certificate_number,
        };
        writes.events.push(
            event
                .message(&self.topology, &trace::child(Some(traceparent), app_row.id))
                .map_err(|e| DbErr::Custom(e.to_string()))?,
        );
        Ok(Decided {
            outcome: decision.outcome,
            submit_to_decision: (now - app_row.submitted_at).num_milliseconds().max(0) as f64 / 1000.0,
            certified,
        })
    }

    /// Signs the certificate of a qualified `decision` issued `today` and adds it to
    /// `writes`; returns its number. A re-check's certificate replaces the one it renews.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn certify(
        &self,
        writes: &mut Writes,
        app_row: &applications::Model,
        application: &Application,
        decision: &Decision,
        policy: &Policy,
        today: chrono::NaiveDate,
        renewal: Option<&renewals::Model>,
    ) -> Result<String, DbErr> {
        let reference = app_row.reference.clone().unwrap_or_default();
        let certificate = Certificate::for_decision(
            app_row.id,
            &reference,
            application,
            decision,
            policy,
            &Issuer {
                authority: &self.authority,
                key_id: self.key.key_id(),
                issued_on: today,
            },
        )
        .ok_or_else(|| DbErr::Custom(format!("no award to certify for {}", app_row.id)))?;
        let signed = certificate.sign(&self.key);
        let document = String::from_utf8(signed.to_file_bytes()).map_err(|e| DbErr::Custom(e.to_string()))?;
        writes.trail.push(audit::Event {
            application_id: app_row.id,
            kind: audit_kinds::CERTIFICATE,
            payload: json!({
                "number": signed.certificate.number,
                "key_id": signed.signature.key_id,
                "document_sha256": hex::encode(Sha256::digest(document.as_bytes())),
            }),
        });
        writes.certificates.push(certificates::ActiveModel {
            number: Set(signed.certificate.number.clone()),
            application_id: Set(app_row.id),
            document: Set(document),
            key_id: Set(signed.signature.key_id.clone()),
            issued_on: Set(signed.certificate.issued_on),
            valid_until: Set(signed.certificate.valid_until),
            status: Set(certificate_status::VALID.into()),
        });
        let issued = CertificateEvent::issued(
            &signed.certificate.number,
            app_row.id,
            self.clock.now(),
            signed.certificate.valid_until,
            renewal.map(|r| r.certificate_number.as_str()),
        );
        writes.announce(&self.topology, &issued)?;
        if let Some(renewal) = renewal {
            writes.touched.push(renewal.original_application_id);
            writes.renewed.push(renewal.certificate_number.clone());
            writes.trail.push(audit::Event {
                application_id: renewal.original_application_id,
                kind: audit_kinds::CERTIFICATE,
                payload: json!({
                    "number": renewal.certificate_number,
                    "renewed_by": signed.certificate.number,
                }),
            });
        }
        Ok(signed.certificate.number)
    }
}

/// The yearly re-checks among `apps`, by application; read only when the batch has one.
pub(crate) async fn renewals_of<'a, C: ConnectionTrait>(
    txn: &C,
    apps: impl Iterator<Item = &'a applications::Model>,
) -> Result<HashMap<Uuid, renewals::Model>, DbErr> {
    let ids: Vec<Uuid> = apps
        .filter(|a| a.channel == prh_common::application::Channel::Recheck.as_str())
        .map(|a| a.id)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(renewals::Entity::find()
        .filter(renewals::Column::ApplicationId.is_in(ids))
        .all(txn)
        .await?
        .into_iter()
        .map(|r| (r.application_id, r))
        .collect())
}

/// Everything a batch decided, written with one statement per table (one update for
/// every status and policy version), all sent together (`store::batch`).
#[derive(Default)]
pub(crate) struct Writes {
    pub decisions: Vec<decisions::ActiveModel>,
    pub certificates: Vec<certificates::ActiveModel>,
    pub statuses: HashMap<(&'static str, String), Vec<Uuid>>,
    pub events: Vec<Outgoing>,
    /// Certificates issued or revoked, announced after the decisions.
    pub certificate_events: Vec<Outgoing>,
    pub notices: Vec<notices::ActiveModel>,
    pub revocations: Vec<revocations::ActiveModel>,
    /// Certificates replaced by their re-check's.
    pub renewed: Vec<String>,
    /// Applications whose chains get an event though nothing else of theirs is written
    /// (the original of a re-check): touched first, for their locks.
    pub touched: Vec<Uuid>,
    /// The decision, notice and certificate events of the audit trail.
    pub trail: Vec<audit::Event>,
}

impl Writes {
    fn start_notice(&mut self, id: Uuid, starts_on: chrono::NaiveDate, ends_on: chrono::NaiveDate) {
        self.notices.push(notices::ActiveModel {
            application_id: Set(id),
            starts_on: Set(starts_on),
            ends_on: Set(ends_on),
            status: Set(notice_status::OPEN.into()),
            objection: Set(None),
            objected_by: Set(None),
            closed_at: Set(None),
        });
        self.trail.push(audit::Event {
            application_id: id,
            kind: audit_kinds::NOTICE_STARTED,
            payload: json!({ "starts_on": starts_on, "ends_on": ends_on }),
        });
    }

    /// Queues a certificate event, sent after the batch's decision events.
    fn announce(&mut self, topology: &Topology, event: &CertificateEvent) -> Result<(), DbErr> {
        let message = event.message(topology).map_err(|e| DbErr::Custom(e.to_string()))?;
        self.certificate_events.push(message);
        Ok(())
    }

    fn revoke(
        &mut self,
        topology: &Topology,
        renewal: &renewals::Model,
        reason: String,
        by: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DbErr> {
        let revoked = CertificateEvent::revoked(&renewal.certificate_number, renewal.original_application_id, now);
        self.announce(topology, &revoked)?;
        self.touched.push(renewal.original_application_id);
        self.trail.push(audit::Event {
            application_id: renewal.original_application_id,
            kind: audit_kinds::REVOKED,
            payload: json!({ "number": renewal.certificate_number, "reason": reason, "by": by }),
        });
        self.revocations.push(revocations::ActiveModel {
            certificate_number: Set(renewal.certificate_number.clone()),
            reason: Set(reason),
            revoked_by: Set(by.into()),
            at: Set(now),
        });
        Ok(())
    }

    /// Writes everything in `self` after what `batch` holds already, and appends `trail`
    /// followed by the writes' own events to the audit trail: one round trip for all the
    /// writes on SQLite (`store::batch`), after reading the chains' ends.
    pub(crate) async fn apply(
        mut self,
        txn: &DatabaseTransaction,
        now: chrono::DateTime<chrono::Utc>,
        mut batch: Batch,
        mut trail: Vec<audit::Event>,
    ) -> Result<(), DbErr> {
        if !self.touched.is_empty() {
            // Before their chains' ends are read: on PostgreSQL this takes their locks.
            applications::Entity::update_many()
                .col_expr(applications::Column::UpdatedAt, Expr::value(now))
                .filter(applications::Column::Id.is_in(std::mem::take(&mut self.touched)))
                .exec(txn)
                .await?;
        }
        trail.extend(self.push_into(&mut batch, now)?);
        audit::append_in(&mut batch, txn, now, trail).await?;
        batch.run(txn).await
    }

    /// Adds every write of `self` but the touches to `batch` and returns the audit events
    /// they make, in order.
    pub(crate) fn push_into(
        self,
        batch: &mut Batch,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<audit::Event>, DbErr> {
        if !self.decisions.is_empty() {
            batch.push(&decisions::Entity::insert_many(self.decisions));
        }
        if !self.certificates.is_empty() {
            batch.push(&certificates::Entity::insert_many(self.certificates));
        }
        if !self.notices.is_empty() {
            batch.push(&notices::Entity::insert_many(self.notices));
        }
        if !self.renewed.is_empty() {
            batch.push(
                &certificates::Entity::update_many()
                    .col_expr(certificates::Column::Status, Expr::value(certificate_status::RENEWED))
                    .filter(certificates::Column::Number.is_in(self.renewed))
                    .filter(certificates::Column::Status.eq(certificate_status::VALID)),
            );
        }
        if !self.revocations.is_empty() {
            let numbers: Vec<String> = self
                .revocations
                .iter()
                .filter_map(|r| r.certificate_number.try_as_ref().cloned())
                .collect();
            batch.push(
                &revocations::Entity::insert_many(self.revocations)
                    .on_conflict_do_nothing_on([revocations::Column::CertificateNumber]),
            );
            batch.push(
                &certificates::Entity::update_many()
                    .col_expr(certificates::Column::Status, Expr::value(certificate_status::REVOKED))
                    .filter(certificates::Column::Number.is_in(numbers)),
            );
        }
        if !self.statuses.is_empty() {
            // One statement for every decided application, whatever their statuses.
            let (mut statuses, mut versions) = (CaseStatement::new(), CaseStatement::new());
            let mut decided = Vec::new();
            for ((status_value, version), ids) in self.statuses {
                let of_these = || applications::Column::Id.is_in(ids.iter().copied());
                statuses = statuses.case(of_these(), Expr::value(status_value));
                versions = versions.case(of_these(), Expr::value(version));
                decided.extend(ids);
            }
            batch.push(
                &applications::Entity::update_many()
                    .col_expr(applications::Column::Status, statuses.into())
                    .col_expr(applications::Column::PolicyVersion, versions.into())
                    .col_expr(applications::Column::DecidedAt, Expr::value(now))
                    .filter(applications::Column::Id.is_in(decided)),
            );
        }
        let mut events = self.events;
        events.extend(self.certificate_events);
        outbox::enqueue_in(batch, ORIGIN, &events)?;
        Ok(self.trail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveModelTrait, Database, QueryTrait, Statement};
    use std::path::PathBuf;

    /// A migrated pipeline database in a SQLite file of its own.
    async fn pipeline() -> (DatabaseConnection, PathBuf) {
        let path = std::env::temp_dir().join(format!("prh-collector-{}.db", Uuid::now_v7()));
        let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        prh_migrations::migrate_pipeline(&db).await.unwrap();
        (db, path)
    }

    async fn submit(db: &DatabaseConnection, id: Uuid) {
        let now = chrono::Utc::now();
        applications::ActiveModel {
            id: Set(id),
            reference: Set(None),
            idempotency_key: Set(None),
            request_hash: Set(String::new()),
            channel: Set("portal".into()),
            track: Set("low_income".into()),
            payload: Set(json!({})),
            status: Set(status::CHECKING.into()),
            policy_version: Set(Some("2026".into())),
            submitted_at: Set(now),
            deadline: Set(now.date_naive()),
            decided_at: Set(None),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        audit::append(db, now, vec![event(id)]).await.unwrap();
    }

    fn event(id: Uuid) -> audit::Event {
        audit::Event {
            application_id: id,
            kind: audit_kinds::FINDING,
            payload: json!({}),
        }
    }

    fn set_column(id: Uuid, column: applications::Column, value: Expr) -> sea_orm::UpdateMany<applications::Entity> {
        applications::Entity::update_many()
            .col_expr(column, value)
            .filter(applications::Column::Id.eq(id))
    }

    /// A plan runs only if what it read is what the lock finds: each change another writer
    /// can make to an application between the two must show in `seen`, and a change to
    /// another application must not.
    #[tokio::test]
    async fn what_a_plan_saw_changes_with_every_write_that_could_alter_it() {
        let (db, path) = pipeline().await;
        let (planned, other, unknown) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        submit(&db, planned).await;
        submit(&db, other).await;
        let ids = vec![planned, unknown];
        let later = chrono::Utc::now() + chrono::Duration::seconds(5);
        let mut before = seen(&db, ids.clone()).await.unwrap();
        assert_eq!(before.keys().collect::<Vec<_>>(), vec![&planned]);

        // (the change, whether it must show)
        let changes: Vec<(&str, Statement, bool)> = vec![
            (
                "a finding stored",
                db.get_database_backend().build(
                    &findings::Entity::insert(findings::ActiveModel {
                        application_id: Set(planned),
                        department: Set(Department::Education.to_string()),
                        payload: Set(json!({})),
                        received_at: Set(later),
                        ..Default::default()
                    })
                    .into_query(),
                ),
                true,
            ),
            (
                "a supplement asked for (status only)",
                db.get_database_backend().build(
                    &set_column(
                        planned,
                        applications::Column::Status,
                        Expr::value(status::AWAITING_DOCUMENTS),
                    )
                    .into_query(),
                ),
                true,
            ),
            (
                "touched",
                db.get_database_backend()
                    .build(&set_column(planned, applications::Column::UpdatedAt, Expr::value(later)).into_query()),
                true,
            ),
            (
                "decided",
                db.get_database_backend()
                    .build(&set_column(planned, applications::Column::DecidedAt, Expr::value(later)).into_query()),
                true,
            ),
            (
                "another application decided",
                db.get_database_backend()
                    .build(&set_column(other, applications::Column::DecidedAt, Expr::value(later)).into_query()),
                false,
            ),
        ];
        for (change, statement, shows) in changes {
            db.execute_raw(statement).await.unwrap();
            let after = seen(&db, ids.clone()).await.unwrap();
            assert_eq!(after != before, shows, "{change}: {before:?} → {after:?}");
            before = after;
        }

        audit::append(&db, later, vec![event(planned)]).await.unwrap();
        let after = seen(&db, ids.clone()).await.unwrap();
        assert_ne!(after, before, "an audit event appended");
        before = after;

        submit(&db, unknown).await;
        let after = seen(&db, ids.clone()).await.unwrap();
        assert_ne!(after, before, "an application unknown to the plan appeared");

        db.close().await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
