//! What officers do by hand: decide referred cases (manual review), stop and restart the
//! clock for a missing document (补正), record an objection during the public notice,
//! revoke a certificate, start a yearly re-check (年审). Each action is one transaction
//! that also appends to the application's audit trail, and names who acted.

use crate::intake::{Intake, Receipt, SubmitError};
use chrono::{DateTime, Utc};
use prh_common::{
    application::{Application, Channel},
    audit::kinds as audit_kinds,
    contract::{CertificateEvent, DecisionEvent},
    metrics as m,
    policy::{Decision, DecisionOutcome},
    store::{
        audit,
        clocks::pauses_of,
        outbox,
        pipeline::{
            applications, certificate_status, certificates, clock_pauses, decisions, notice_status, notices, renewals,
            reviews, revocations, status,
        },
    },
    time_limit::CaseClock,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// Why an office action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(&'static str),
    /// The case or certificate is not in a state this action applies to.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// A reviewer's verdict on a referred case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Qualified,
    Rejected,
}

/// A written reason: required, and bounded so a trail event stays small.
fn reason(text: &str, what: &str) -> Result<String, ActionError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ActionError::Invalid(format!(
            "{what} must be written down: it is empty"
        )));
    }
    if text.chars().count() > 2000 {
        return Err(ActionError::Invalid(format!("{what} is longer than 2,000 characters")));
    }
    Ok(text.to_owned())
}

/// An application by id or reference, read inside `txn` after taking its lock. The write
/// comes first: on SQLite a transaction that reads before it writes can lose its snapshot
/// to another writer.
async fn lock_application(
    txn: &DatabaseTransaction,
    id_or_reference: &str,
    now: DateTime<Utc>,
) -> Result<applications::Model, ActionError> {
    let matching = match Uuid::parse_str(id_or_reference) {
        Ok(id) => applications::Column::Id.eq(id),
        Err(_) => applications::Column::Reference.eq(id_or_reference),
    };
    applications::Entity::update_many()
        .col_expr(applications::Column::UpdatedAt, Expr::value(now))
        .filter(matching.clone())
        .exec(txn)
        .await?;
    applications::Entity::find()
        .filter(matching)
        .one(txn)
        .await?
        .ok_or(ActionError::NotFound("no application with this id or reference"))
}

async fn touch(txn: &DatabaseTransaction, id: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    applications::Entity::update_many()
        .col_expr(applications::Column::UpdatedAt, Expr::value(now))
        .filter(applications::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

fn refuse_unless(row: &applications::Model, expected: &str, action: &str) -> Result<(), ActionError> {
    if row.status == expected {
        Ok(())
    } else {
        Err(ActionError::Conflict(format!(
            "{} is {}: only a case that is {expected} can be {action}",
            row.reference.as_deref().unwrap_or("the application"),
            row.status
        )))
    }
}

async fn set_status(txn: &DatabaseTransaction, id: Uuid, value: &str) -> Result<(), DbErr> {
    applications::Entity::update_many()
        .col_expr(applications::Column::Status, Expr::value(value))
        .filter(applications::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

fn counted(action: &'static str) {
    metrics::counter!(m::OFFICE_ACTIONS, "action" => action).increment(1);
}

impl Intake {
    /// A reviewer decides a referred case. Qualified: the public notice starts (a case
    /// that was objected to, or a re-check, goes straight to its certificate); rejected:
    /// the case ends, and a re-check's certificate is revoked. Either way the decision
    /// event is published, as for an automatic decision.
    pub async fn review(
        &self,
        id_or_reference: &str,
        verdict: Verdict,
        why: &str,
        reviewer: &str,
    ) -> Result<String, ActionError> {
        let why = reason(why, "the reason")?;
        let now = self.clock.now();
        let today = self.clock.today();
        let txn = self.db.begin().await?;
        let row = lock_application(&txn, id_or_reference, now).await?;
        refuse_unless(&row, status::REFERRED, "reviewed")?;
        reviews::Entity::insert(reviews::ActiveModel {
            application_id: Set(row.id),
            outcome: Set(format!("{verdict:?}").to_lowercase()),
            reason: Set(why.clone()),
            reviewer: Set(reviewer.to_owned()),
            at: Set(now),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        let mut trail = vec![audit::Event {
            application_id: row.id,
            kind: audit_kinds::REVIEWED,
            payload: json!({ "outcome": verdict, "reason": why, "reviewer": reviewer }),
        }];
        let renewal = renewals::Entity::find_by_id(row.id).one(&txn).await?;
        let notice = notices::Entity::find_by_id(row.id).one(&txn).await?;
        let new_status = match verdict {
            Verdict::Rejected => {
                if let Some(r) = &renewal {
                    trail.extend(
                        self.revoke_in(
                            &txn,
                            &r.certificate_number,
                            &format!("yearly re-check rejected on review: {why}"),
                            reviewer,
                            now,
                        )
                        .await?,
                    );
                }
                status::REJECTED
            }
            Verdict::Qualified => {
                let policy = self
                    .policies
                    .get(row.policy_version.as_deref().unwrap_or_default())
                    .ok_or_else(|| ActionError::Conflict("the case's policy version is not loaded".into()))?;
                let cleared = renewal.is_some() || notice.is_some() || policy.notice_working_days == 0;
                let (status_value, ends_on) = if cleared {
                    (notice_status::CLEARED, today)
                } else {
                    (
                        notice_status::OPEN,
                        self.calendar.add_working_days(today, policy.notice_working_days),
                    )
                };
                let model = notices::ActiveModel {
                    application_id: Set(row.id),
                    starts_on: Set(today),
                    ends_on: Set(ends_on),
                    status: Set(status_value.into()),
                    objection: Set(notice.as_ref().and_then(|n| n.objection.clone())),
                    objected_by: Set(notice.as_ref().and_then(|n| n.objected_by.clone())),
                    closed_at: Set(None),
                };
                if notice.is_some() {
                    notices::Entity::update(model).exec(&txn).await?;
                } else {
                    notices::Entity::insert(model).exec_without_returning(&txn).await?;
                }
                if !cleared {
                    trail.push(audit::Event {
                        application_id: row.id,
                        kind: audit_kinds::NOTICE_STARTED,
                        payload: json!({ "starts_on": today, "ends_on": ends_on }),
                    });
                }
                status::IN_NOTICE
            }
        };
        set_status(&txn, row.id, new_status).await?;
        let decision = decisions::Entity::find_by_id(row.id).one(&txn).await?;
        let reasons = match decision {
            Some(d) => serde_json::from_value::<Decision>(d.payload)
                .map(|d| d.reasons())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let event = DecisionEvent {
            application_id: row.id,
            reference: row.reference.clone().unwrap_or_default(),
            outcome: match verdict {
                Verdict::Qualified => DecisionOutcome::Qualified,
                Verdict::Rejected => DecisionOutcome::Rejected,
            },
            policy_version: row.policy_version.clone().unwrap_or_default(),
            decided_at: now,
            reasons,
            certificate_number: None,
        };
        let message = event
            .message(&self.topology, &prh_common::trace::traceparent(row.id))
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        outbox::enqueue_all(&txn, crate::intake::ORIGIN, &[message]).await?;
        audit::append(&txn, now, trail).await?;
        txn.commit().await?;
        self.relay.notify_one();
        counted("review");
        tracing::info!(application_id = %row.id, ?verdict, reviewer, "reviewed");
        Ok(new_status.to_owned())
    }

    /// Asks the applicant for a missing document (补正): the clock stops.
    pub async fn pause(&self, id_or_reference: &str, why: &str, officer: &str) -> Result<String, ActionError> {
        let why = reason(why, "the document asked for")?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let row = lock_application(&txn, id_or_reference, now).await?;
        refuse_unless(&row, status::CHECKING, "asked for a document")?;
        clock_pauses::Entity::insert(clock_pauses::ActiveModel {
            application_id: Set(row.id),
            reason: Set(why.clone()),
            asked_by: Set(officer.to_owned()),
            paused_at: Set(now),
            paused_on: Set(self.clock.today()),
            resumed_at: Set(None),
            resumed_on: Set(None),
            note: Set(None),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        set_status(&txn, row.id, status::AWAITING_DOCUMENTS).await?;
        let trail = vec![audit::Event {
            application_id: row.id,
            kind: audit_kinds::PAUSED,
            payload: json!({ "asked_for": why, "by": officer }),
        }];
        audit::append(&txn, now, trail).await?;
        txn.commit().await?;
        counted("pause");
        Ok(status::AWAITING_DOCUMENTS.into())
    }

    /// The document arrived: the clock runs again and the deadline moves by the working
    /// days it stood still.
    pub async fn resume(
        &self,
        id_or_reference: &str,
        note: Option<&str>,
        officer: &str,
    ) -> Result<String, ActionError> {
        let note = note.map(|n| reason(n, "the note")).transpose()?;
        let now = self.clock.now();
        let today = self.clock.today();
        let txn = self.db.begin().await?;
        let row = lock_application(&txn, id_or_reference, now).await?;
        refuse_unless(&row, status::AWAITING_DOCUMENTS, "resumed")?;
        clock_pauses::Entity::update_many()
            .col_expr(clock_pauses::Column::ResumedAt, Expr::value(now))
            .col_expr(clock_pauses::Column::ResumedOn, Expr::value(today))
            .col_expr(clock_pauses::Column::Note, Expr::value(note.clone()))
            .filter(clock_pauses::Column::ApplicationId.eq(row.id))
            .filter(clock_pauses::Column::ResumedOn.is_null())
            .exec(&txn)
            .await?;
        let pauses = pauses_of(&txn, Some(&[row.id])).await?;
        let clock = CaseClock {
            calendar: &self.calendar,
            start: prh_common::china_date(row.submitted_at),
            pauses: pauses.get(&row.id).map(Vec::as_slice).unwrap_or_default(),
        };
        let policy = self.policies.get(row.policy_version.as_deref().unwrap_or_default());
        let deadline = policy
            .and_then(|p| clock.deadline(p.decision_working_days))
            .unwrap_or(row.deadline);
        applications::Entity::update_many()
            .col_expr(applications::Column::Status, Expr::value(status::CHECKING))
            .col_expr(applications::Column::Deadline, Expr::value(deadline))
            .filter(applications::Column::Id.eq(row.id))
            .exec(&txn)
            .await?;
        let trail = vec![audit::Event {
            application_id: row.id,
            kind: audit_kinds::RESUMED,
            payload: json!({ "note": note, "by": officer, "deadline": deadline }),
        }];
        audit::append(&txn, now, trail).await?;
        txn.commit().await?;
        counted("resume");
        Ok(status::CHECKING.into())
    }

    /// An objection received during the public notice (公示): the case goes back to
    /// manual review and no certificate is issued unless a reviewer qualifies it again.
    pub async fn object(&self, id_or_reference: &str, objection: &str, officer: &str) -> Result<String, ActionError> {
        let objection = reason(objection, "the objection")?;
        let now = self.clock.now();
        let today = self.clock.today();
        let txn = self.db.begin().await?;
        let row = lock_application(&txn, id_or_reference, now).await?;
        refuse_unless(&row, status::IN_NOTICE, "objected to")?;
        let notice = notices::Entity::find_by_id(row.id)
            .one(&txn)
            .await?
            .ok_or(ActionError::NotFound("this case has no public notice"))?;
        if notice.status != notice_status::OPEN || today > notice.ends_on {
            return Err(ActionError::Conflict(format!(
                "the public notice ended on {}: objections are no longer taken",
                notice.ends_on
            )));
        }
        notices::Entity::update_many()
            .col_expr(notices::Column::Status, Expr::value(notice_status::OBJECTED))
            .col_expr(notices::Column::Objection, Expr::value(objection.clone()))
            .col_expr(notices::Column::ObjectedBy, Expr::value(officer))
            .filter(notices::Column::ApplicationId.eq(row.id))
            .exec(&txn)
            .await?;
        set_status(&txn, row.id, status::REFERRED).await?;
        let trail = vec![audit::Event {
            application_id: row.id,
            kind: audit_kinds::OBJECTED,
            payload: json!({ "objection": objection, "recorded_by": officer }),
        }];
        audit::append(&txn, now, trail).await?;
        txn.commit().await?;
        counted("objection");
        Ok(status::REFERRED.into())
    }

    /// Revokes a valid certificate, with the reason; anyone checking it sees both.
    pub async fn revoke(&self, number: &str, why: &str, officer: &str) -> Result<(), ActionError> {
        let why = reason(why, "the reason")?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        let trail = self.revoke_in(&txn, number, &why, officer, now).await?;
        audit::append(&txn, now, trail).await?;
        txn.commit().await?;
        self.relay.notify_one();
        counted("revoke");
        Ok(())
    }

    /// Revokes inside `txn`; returns the trail event for the certificate's application.
    async fn revoke_in(
        &self,
        txn: &DatabaseTransaction,
        number: &str,
        why: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<audit::Event>, ActionError> {
        // The write first (see `lock_application`); it only takes a valid certificate.
        let revoked = certificates::Entity::update_many()
            .col_expr(certificates::Column::Status, Expr::value(certificate_status::REVOKED))
            .filter(certificates::Column::Number.eq(number))
            .filter(certificates::Column::Status.eq(certificate_status::VALID))
            .exec(txn)
            .await?;
        let cert = certificates::Entity::find_by_id(number.to_owned())
            .one(txn)
            .await?
            .ok_or(ActionError::NotFound("no certificate with this number"))?;
        if revoked.rows_affected == 0 {
            return Err(ActionError::Conflict(format!(
                "certificate {number} is {}: only a valid one can be revoked",
                cert.status
            )));
        }
        touch(txn, cert.application_id, now).await?;
        revocations::Entity::insert(revocations::ActiveModel {
            certificate_number: Set(number.to_owned()),
            reason: Set(why.to_owned()),
            revoked_by: Set(by.to_owned()),
            at: Set(now),
        })
        .exec_without_returning(txn)
        .await?;
        let message = CertificateEvent::revoked(number, cert.application_id, now)
            .message(&self.topology)
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        outbox::enqueue_all(txn, crate::intake::ORIGIN, &[message]).await?;
        Ok(vec![audit::Event {
            application_id: cert.application_id,
            kind: audit_kinds::REVOKED,
            payload: json!({ "number": number, "reason": why, "by": by }),
        }])
    }

    /// Starts the yearly re-check (年审) of a valid certificate: the household as certified,
    /// checked again by every department as of today. Asking twice returns the first.
    pub async fn recheck(&self, number: &str) -> Result<Receipt, ActionError> {
        let cert = certificates::Entity::find_by_id(number.to_owned())
            .one(&self.db)
            .await?
            .ok_or(ActionError::NotFound("no certificate with this number"))?;
        if cert.status != certificate_status::VALID {
            return Err(ActionError::Conflict(format!(
                "certificate {number} is {}: only a valid one is re-checked",
                cert.status
            )));
        }
        let original = applications::Entity::find()
            .filter(applications::Column::Id.eq(cert.application_id))
            .one(&self.db)
            .await?
            .ok_or(ActionError::NotFound("the certificate's application is missing"))?;
        let mut application: Application =
            serde_json::from_value(original.payload).map_err(|e| DbErr::Custom(e.to_string()))?;
        application.application_date = self.clock.today();
        // The key and the hash name the certificate, so a repeat finds the first re-check.
        let key = format!("recheck-{number}");
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        let receipt = self
            .accept(
                &application,
                hash,
                Some(&key),
                Channel::Recheck,
                Some((number.to_owned(), original.id)),
            )
            .await?;
        counted("recheck");
        Ok(receipt)
    }

    /// Starts the re-check of every valid certificate expiring within `days_before` days
    /// that has none yet; returns how many were started.
    pub async fn recheck_due(&self, days_before: u32) -> Result<usize, ActionError> {
        let today = self.clock.today();
        let horizon = today + chrono::Days::new(u64::from(days_before));
        let due = certificates::Entity::find()
            .filter(certificates::Column::Status.eq(certificate_status::VALID))
            .filter(certificates::Column::ValidUntil.gte(today))
            .filter(certificates::Column::ValidUntil.lte(horizon))
            .all(&self.db)
            .await?;
        let started: Vec<String> = renewals::Entity::find()
            .filter(renewals::Column::CertificateNumber.is_in(due.iter().map(|c| c.number.clone())))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| r.certificate_number)
            .collect();
        let mut count = 0;
        for cert in due.iter().filter(|c| !started.contains(&c.number)) {
            self.recheck(&cert.number).await?;
            count += 1;
        }
        Ok(count)
    }
}
