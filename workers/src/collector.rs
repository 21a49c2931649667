//! The collector: stores each finding once, and when every department the track needs has
//! answered, applies the policy and writes the decision, the signed certificate and the
//! decision event — all in one transaction.

use prh_common::{
    application::Application,
    audit::kinds as audit_kinds,
    bus::{Disposition, Handler, Incoming, Outgoing, Publisher, Topology},
    certificate::{Certificate, Issuer},
    contract::{DecisionEvent, Finding, headers, kinds},
    department::Department,
    id_number::redact,
    metrics as m,
    policy::{self, DecisionOutcome},
    policy_set::PolicySet,
    signing::{DepartmentKeys, KeyError, KeyPair, SignatureError},
    store::{
        audit,
        db::is_transient,
        group_commit::{GroupCommit, Unit},
        outbox,
        pipeline::{applications, certificates, decisions, findings, status},
    },
    trace,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QuerySelect, sea_query::Expr,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

/// Outbox origin of the collector's rows.
pub const ORIGIN: &str = "collector";

/// What decides: the pipeline database, the policies and the signing key.
pub struct Decider {
    pub db: DatabaseConnection,
    pub policies: Arc<PolicySet>,
    pub key: Arc<KeyPair>,
    pub authority: String,
    pub topology: Topology,
}

/// The collector's handler. Findings are stored by group commit (`store::group_commit`):
/// under load many findings share one transaction.
pub struct Collector {
    commits: GroupCommit<Decider>,
    relay: Arc<Notify>,
    trust: Trust,
}

/// Which findings the collector believes.
pub struct Trust {
    /// A finding must be signed by a key of the department it speaks for.
    pub signers: TrustedSigners,
    /// With per-component broker users, each department's user: a finding must also have
    /// been published by its department's user, so a leaked key is no use from another
    /// department's account.
    pub department_users: Option<HashMap<Department, String>>,
}

impl Collector {
    /// Starts the group-commit task; at most `max_batch` findings share a transaction.
    pub fn start(decider: Decider, relay: Arc<Notify>, max_batch: usize, trust: Trust) -> Self {
        let db = decider.db.clone();
        Self {
            commits: GroupCommit::start(db, Arc::new(decider), max_batch),
            relay,
            trust,
        }
    }

    /// Whether the finding's publisher and signature are its department's.
    fn believe(&self, msg: &Incoming<'_>, finding: &Finding, key_id: &str, signature: &str) -> Result<(), Disposition> {
        let department = finding.department;
        if let Some(users) = &self.trust.department_users {
            let expected = users.get(&department).map(String::as_str).unwrap_or_default();
            let sender = msg.properties.user_id().as_ref().map(|u| u.as_str().to_owned());
            if sender.as_deref() != Some(expected) {
                return Err(Disposition::Park(format!(
                    "wrong_sender: a finding of {department} must come from broker user {expected}, not {}",
                    sender.as_deref().unwrap_or("an unnamed one")
                )));
            }
        }
        match self.trust.signers.verify(department, key_id, msg.body, signature) {
            Ok(()) => Ok(()),
            Err(Untrusted::Bad(e)) => Err(Disposition::Park(format!(
                "bad_signature: a finding of {department} not signed by {department}: {e}"
            ))),
            Err(Untrusted::NotYet) => Err(Disposition::Retry(format!(
                "unknown key {key_id}: the keys were re-read a moment ago"
            ))),
        }
    }
}

/// The departments' public keys, read from their folder (`DepartmentKeys`) and read again
/// when a finding names a key not seen yet — a department that has just started or rotated
/// its key — at most once a second, so forged key ids cannot keep the collector busy.
pub struct TrustedSigners {
    dir: PathBuf,
    keys: RwLock<(DepartmentKeys, Option<Instant>)>,
}

/// Why a finding's signature is not accepted.
#[derive(Debug)]
pub enum Untrusted {
    /// Not signed by a key of the department it speaks for: never counted.
    Bad(SignatureError),
    /// The key is unknown and the keys were re-read less than a second ago: try later.
    NotYet,
}

impl TrustedSigners {
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        Ok(Self {
            dir: dir.to_owned(),
            keys: RwLock::new((DepartmentKeys::load(dir)?, None)),
        })
    }

    /// Whether `department`'s key `key_id` signed `body`.
    pub fn verify(&self, department: Department, key_id: &str, body: &[u8], signature: &str) -> Result<(), Untrusted> {
        let first = match self.keys.read() {
            Ok(keys) => keys.0.verify(department, key_id, body, signature),
            Err(poisoned) => poisoned.get_ref().0.verify(department, key_id, body, signature),
        };
        let Err(SignatureError::UnknownKey(_)) = first else {
            return first.map_err(Untrusted::Bad);
        };
        let mut keys = match self.keys.write() {
            Ok(keys) => keys,
            Err(poisoned) => poisoned.into_inner(),
        };
        if keys.1.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return Err(Untrusted::NotYet);
        }
        match DepartmentKeys::load(&self.dir) {
            Ok(fresh) => *keys = (fresh, Some(Instant::now())),
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the departments' public keys");
                keys.1 = Some(Instant::now());
                return Err(Untrusted::NotYet);
            }
        }
        keys.0
            .verify(department, key_id, body, signature)
            .map_err(Untrusted::Bad)
    }
}

impl Unit for Decider {
    /// The finding, its trace context and how it was signed.
    type Job = (Finding, String, Evidence);
    type Out = Stored;

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        jobs: &'a [Self::Job],
    ) -> impl std::future::Future<Output = Result<Vec<Stored>, DbErr>> + Send + 'a {
        self.store(txn, jobs)
    }
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
        if let Err(refused) = self.believe(&msg, &finding, &key_id, &signature) {
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
        let now = chrono::Utc::now();
        let mut ids: Vec<Uuid> = jobs.iter().map(|(f, ..)| f.application_id).collect();
        ids.sort_unstable();
        ids.dedup();
        // Touch the applications first: this takes their row locks on PostgreSQL and the
        // write lock on SQLite, so findings of one application are stored one transaction
        // at a time and the last one always sees the others.
        applications::Entity::update_many()
            .col_expr(applications::Column::UpdatedAt, Expr::value(now))
            .filter(applications::Column::Id.is_in(ids.clone()))
            .exec(txn)
            .await?;
        let apps: HashMap<Uuid, applications::Model> = applications::Entity::find()
            .filter(applications::Column::Id.is_in(ids))
            .all(txn)
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
        // The answers already stored. The applications' locks, taken above, keep them
        // current until this transaction ends. The first answer of a department stands: a
        // redelivered finding, or a second one in this batch, is neither stored nor
        // recorded again.
        let mut stored: HashMap<Uuid, Vec<Finding>> = HashMap::new();
        for row in findings::Entity::find()
            .filter(findings::Column::ApplicationId.is_in(apps.keys().copied().collect::<Vec<_>>()))
            .all(txn)
            .await?
        {
            let finding: Finding = serde_json::from_value(row.payload)
                .map_err(|e| DbErr::Custom(format!("stored finding unreadable: {e}")))?;
            stored.entry(row.application_id).or_default().push(finding);
        }
        let mut answered: HashSet<(Uuid, Department)> = stored
            .values()
            .flatten()
            .map(|f| (f.application_id, f.department))
            .collect();
        let mut rows = Vec::new();
        let mut trail = Vec::new();
        for (f, _, evidence) in jobs {
            if !apps.contains_key(&f.application_id) || !answered.insert((f.application_id, f.department)) {
                continue;
            }
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
            stored.entry(f.application_id).or_default().push(f.clone());
        }
        if apps.is_empty() {
            return Ok(vec![Stored::UnknownApplication; jobs.len()]);
        }
        if !rows.is_empty() {
            findings::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([findings::Column::ApplicationId, findings::Column::Department])
                .exec_without_returning(txn)
                .await?;
        }

        let known: Vec<Uuid> = apps.keys().copied().collect();
        let decided: HashSet<Uuid> = decisions::Entity::find()
            .select_only()
            .column(decisions::Column::ApplicationId)
            .filter(decisions::Column::ApplicationId.is_in(known.clone()))
            .into_tuple::<Uuid>()
            .all(txn)
            .await?
            .into_iter()
            .collect();

        // Of several findings of one application in the batch, the last one decides.
        let last: HashMap<Uuid, usize> = jobs
            .iter()
            .enumerate()
            .map(|(i, (f, ..))| (f.application_id, i))
            .collect();
        let mut writes = Writes::default();
        let mut out = Vec::with_capacity(jobs.len());
        for (i, (finding, traceparent, _)) in jobs.iter().enumerate() {
            let id = finding.application_id;
            let Some(app_row) = apps.get(&id) else {
                out.push(Stored::UnknownApplication);
                continue;
            };
            if decided.contains(&id) {
                out.push(Stored::AlreadyDecided);
                continue;
            }
            if last.get(&id) != Some(&i) {
                out.push(Stored::Waiting);
                continue;
            }
            let application: Application =
                serde_json::from_value(app_row.payload.clone()).map_err(|e| DbErr::Custom(e.to_string()))?;
            let answers = stored.get(&id).map(Vec::as_slice).unwrap_or_default();
            let complete = application
                .track
                .departments()
                .iter()
                .all(|d| answers.iter().any(|f| f.department == *d));
            out.push(if complete {
                Stored::Decided(self.decide(&mut writes, app_row, &application, answers, now, traceparent)?)
            } else {
                Stored::Waiting
            });
        }
        trail.append(&mut writes.trail);
        writes.apply(txn, now).await?;
        audit::append(txn, now, trail).await?;
        Ok(out)
    }

    /// Applies the policy to one complete application and adds what it decided to `writes`.
    fn decide(
        &self,
        writes: &mut Writes,
        app_row: &applications::Model,
        application: &Application,
        findings: &[Finding],
        now: chrono::DateTime<chrono::Utc>,
        traceparent: &str,
    ) -> Result<Decided, DbErr> {
        let version = app_row.policy_version.as_deref().unwrap_or_default();
        let policy = self.policies.get(version).ok_or_else(|| {
            DbErr::Custom(format!(
                "unknown_policy_version: the collector has no policy `{version}`"
            ))
        })?;
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

        let issued_on = prh_common::china_date(now);
        let certificate = Certificate::for_decision(
            app_row.id,
            &reference,
            application,
            &decision,
            policy,
            &Issuer {
                authority: &self.authority,
                key_id: self.key.key_id(),
                issued_on,
            },
        );
        let certificate_number = certificate.as_ref().map(|c| c.number.clone());
        let certified = certificate_number.is_some();
        if let Some(cert) = certificate {
            let signed = cert.sign(&self.key);
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
                status: Set("valid".into()),
            });
        }

        let status_value = match decision.outcome {
            DecisionOutcome::Qualified => status::QUALIFIED,
            DecisionOutcome::Rejected => status::REJECTED,
            DecisionOutcome::Referred => status::REFERRED,
        };
        writes
            .statuses
            .entry((status_value, decision.policy_version.clone()))
            .or_default()
            .push(app_row.id);

        let event = DecisionEvent {
            application_id: app_row.id,
            reference,
            outcome: decision.outcome,
            policy_version: decision.policy_version.clone(),
            decided_at: now,
            reasons: decision.reasons(),
            certificate_number,
        };
        let body = serde_json::to_vec(&event).map_err(|e| DbErr::Custom(e.to_string()))?;
        writes.events.push(Outgoing {
            exchange: self.topology.decisions_exchange(),
            routing_key: format!("decision.{}", decision.outcome.as_str()),
            kind: kinds::DECISION_MADE.into(),
            message_id: Uuid::now_v7(),
            correlation_id: Some(app_row.id),
            headers: vec![
                (headers::POLICY.into(), decision.policy_version.clone()),
                (headers::TRACEPARENT.into(), trace::child(Some(traceparent), app_row.id)),
            ],
            body,
        });
        Ok(Decided {
            outcome: decision.outcome,
            submit_to_decision: (now - app_row.submitted_at).num_milliseconds().max(0) as f64 / 1000.0,
            certified,
        })
    }
}

/// Everything a batch decided, written with one statement per table (one update per
/// status and policy version).
#[derive(Default)]
struct Writes {
    decisions: Vec<decisions::ActiveModel>,
    certificates: Vec<certificates::ActiveModel>,
    statuses: HashMap<(&'static str, String), Vec<Uuid>>,
    events: Vec<Outgoing>,
    /// The decision and certificate events of the audit trail.
    trail: Vec<audit::Event>,
}

impl Writes {
    async fn apply(self, txn: &DatabaseTransaction, now: chrono::DateTime<chrono::Utc>) -> Result<(), DbErr> {
        if self.decisions.is_empty() {
            return Ok(());
        }
        decisions::Entity::insert_many(self.decisions)
            .exec_without_returning(txn)
            .await?;
        if !self.certificates.is_empty() {
            certificates::Entity::insert_many(self.certificates)
                .exec_without_returning(txn)
                .await?;
        }
        for ((status_value, version), ids) in self.statuses {
            applications::Entity::update_many()
                .col_expr(applications::Column::Status, Expr::value(status_value))
                .col_expr(applications::Column::DecidedAt, Expr::value(now))
                .col_expr(applications::Column::PolicyVersion, Expr::value(version))
                .filter(applications::Column::Id.is_in(ids))
                .exec(txn)
                .await?;
        }
        outbox::enqueue_all(txn, ORIGIN, &self.events).await
    }
}
