//! The keeper of the statutory clocks, run beside the collector: asks silent departments
//! again with backoff, warns before their limit, refers a case whose department is past it
//! (naming the department), decides a case whose last answer came during a 补正 pause, and
//! issues the certificate when a public notice (公示) ends without objection.

use crate::collector::{Decider, Writes, renewals_of};
use chrono::{DateTime, Utc};
use prh_common::{
    application::Application,
    audit::kinds as audit_kinds,
    contract::{CheckRequest, Finding},
    department::Department,
    metrics as m,
    policy::{self, Decision, DecisionOutcome},
    store::{
        audit,
        batch::Batch,
        clocks::pauses_of,
        pipeline::{applications, chases, decisions, findings, notice_status, notices, status},
    },
    time_limit::CaseClock,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use serde::Deserialize;
use serde_json::json;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// When to ask a silent department again and when to warn.
#[derive(Debug, Clone, Copy)]
pub struct Chasing {
    pub first_after: chrono::Duration,
    pub max_interval: chrono::Duration,
    pub warn_working_days: u32,
}

impl Chasing {
    /// Whether a department asked `count` times already, last at `last`, is due again:
    /// the wait doubles with each ask, up to the maximum.
    pub fn due(&self, count: i32, last: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let doubled = self
            .first_after
            .checked_mul(1 << count.clamp(0, 16))
            .unwrap_or(self.max_interval);
        now - last >= doubled.min(self.max_interval)
    }
}

/// What one sweep did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub chased: usize,
    pub warned: usize,
    pub referred_overdue: usize,
    pub decided_after_pause: usize,
    pub certified: usize,
}

pub struct Sweeper {
    pub decider: Arc<Decider>,
    pub chasing: Chasing,
    pub relay: Arc<Notify>,
}

impl Sweeper {
    /// Sweeps every `every` until `shutdown`. A failed sweep is logged and tried again at
    /// the next one: nothing it does is lost by waiting.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self.sweep().await {
                Ok(swept) if swept != Swept::default() => tracing::info!(?swept, "sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %prh_common::id_number::redact(&e.to_string()), "sweep failed"),
            }
        }
    }

    /// One sweep at the decider's clock's time.
    pub async fn sweep(&self) -> Result<Swept, DbErr> {
        let now = self.decider.clock.now();
        let mut swept = self.keep_clocks(now).await?;
        swept.certified = self.end_notices(now).await?;
        if swept.chased + swept.referred_overdue + swept.decided_after_pause + swept.certified > 0 {
            self.relay.notify_one();
        }
        Ok(swept)
    }

    /// Applications still being checked: chase, warn, refer or decide each.
    async fn keep_clocks(&self, now: DateTime<Utc>) -> Result<Swept, DbErr> {
        let d = &self.decider;
        let txn = d.db.begin().await?;
        let open = applications::Entity::find()
            .filter(applications::Column::Status.eq(status::CHECKING))
            .filter(applications::Column::SubmittedAt.lte(now - self.chasing.first_after))
            .all(&txn)
            .await?;
        if open.is_empty() {
            txn.commit().await?;
            return Ok(Swept::default());
        }
        let ids: Vec<Uuid> = open.iter().map(|a| a.id).collect();
        touch(&txn, &ids, now).await?;
        let mut answers: HashMap<Uuid, Vec<Finding>> = HashMap::new();
        for row in findings::Entity::find()
            .filter(findings::Column::ApplicationId.is_in(ids.clone()))
            .all(&txn)
            .await?
        {
            let finding: Finding = serde_json::from_value(row.payload)
                .map_err(|e| DbErr::Custom(format!("stored finding unreadable: {e}")))?;
            answers.entry(row.application_id).or_default().push(finding);
        }
        let pauses = pauses_of(&txn, Some(&ids)).await?;
        let asked: HashMap<(Uuid, String), chases::Model> = chases::Entity::find()
            .filter(chases::Column::ApplicationId.is_in(ids.clone()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|c| ((c.application_id, c.department.clone()), c))
            .collect();
        let renewal_of = renewals_of(&txn, open.iter()).await?;

        let today = prh_common::china_date(now);
        let mut swept = Swept::default();
        let mut writes = Writes::default();
        let mut chase_rows = Vec::new();
        let mut trail = Vec::new();
        let mut requests = Vec::new();
        for app_row in &open {
            let application: Application =
                Application::deserialize(&app_row.payload).map_err(|e| DbErr::Custom(e.to_string()))?;
            let policy = d.policy_of(app_row)?;
            let found = answers.get(&app_row.id).map(Vec::as_slice).unwrap_or_default();
            let missing: Vec<Department> = application
                .track
                .departments()
                .iter()
                .copied()
                .filter(|dep| !found.iter().any(|f| f.department == *dep))
                .collect();
            let clock = CaseClock {
                calendar: &d.calendar,
                start: prh_common::china_date(app_row.submitted_at),
                pauses: pauses.get(&app_row.id).map(Vec::as_slice).unwrap_or_default(),
            };
            let traceparent = prh_common::trace::traceparent(app_row.id);
            let renewal = renewal_of.get(&app_row.id);
            if missing.is_empty() {
                d.decide(&mut writes, app_row, &application, found, now, &traceparent, renewal)?;
                swept.decided_after_pause += 1;
                continue;
            }
            if clock.is_overdue(policy.department_working_days, today) {
                let names: Vec<&str> = missing.iter().map(|dep| dep.as_str()).collect();
                tracing::warn!(application_id = %app_row.id, overdue = ?names, "departments past their limit: referred");
                for dep in &missing {
                    metrics::counter!(m::OVERDUE, "department" => dep.as_str()).increment(1);
                }
                trail.push(audit::Event {
                    application_id: app_row.id,
                    kind: audit_kinds::CHASED,
                    payload: json!({ "overdue": names, "working_days_used": clock.used(today) }),
                });
                d.decide(&mut writes, app_row, &application, found, now, &traceparent, renewal)?;
                swept.referred_overdue += 1;
                continue;
            }
            let deadline = clock.deadline(policy.department_working_days);
            for dep in missing {
                let previous = asked.get(&(app_row.id, dep.as_str().to_owned()));
                let (count, last) = previous.map_or((0, app_row.submitted_at), |c| (c.count, c.last_at));
                let mut warned_at = previous.and_then(|c| c.warned_at);
                let left = deadline.map(|end| d.calendar.working_days_between(today, end));
                let warn = warned_at.is_none() && left.is_some_and(|l| l <= self.chasing.warn_working_days);
                if warn {
                    tracing::warn!(
                        application_id = %app_row.id,
                        department = dep.as_str(),
                        deadline = ?deadline,
                        "a department's answer limit is near"
                    );
                    metrics::counter!(m::DEADLINE_WARNINGS, "department" => dep.as_str()).increment(1);
                    warned_at = Some(now);
                    swept.warned += 1;
                }
                let chase = self.chasing.due(count, last, now);
                if chase {
                    requests.push(
                        CheckRequest::message(&d.topology, app_row.id, &application, dep, &policy.version)
                            .map_err(|e| DbErr::Custom(e.to_string()))?,
                    );
                    trail.push(audit::Event {
                        application_id: app_row.id,
                        kind: audit_kinds::CHASED,
                        payload: json!({ "department": dep, "time": count + 1, "deadline": deadline }),
                    });
                    metrics::counter!(m::CHASES, "department" => dep.as_str()).increment(1);
                    swept.chased += 1;
                }
                if chase || warn {
                    chase_rows.push(chases::ActiveModel {
                        application_id: Set(app_row.id),
                        department: Set(dep.as_str().into()),
                        count: Set(count + i32::from(chase)),
                        last_at: Set(if chase { now } else { last }),
                        warned_at: Set(warned_at),
                    });
                }
            }
        }
        if !chase_rows.is_empty() {
            chases::Entity::insert_many(chase_rows)
                .on_conflict(
                    OnConflict::columns([chases::Column::ApplicationId, chases::Column::Department])
                        .update_columns([chases::Column::Count, chases::Column::LastAt, chases::Column::WarnedAt])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        let mut batch = Batch::new(&txn);
        prh_common::store::outbox::enqueue_in(&mut batch, crate::collector::ORIGIN, &requests)?;
        writes.apply(&txn, now, batch, trail).await?;
        txn.commit().await?;
        Ok(swept)
    }

    /// Notices whose period has ended, and objected ones a reviewer has since qualified:
    /// issue their certificates.
    async fn end_notices(&self, now: DateTime<Utc>) -> Result<usize, DbErr> {
        let d = &self.decider;
        let today = prh_common::china_date(now);
        let txn = d.db.begin().await?;
        let due = notices::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(notices::Column::Status.eq(notice_status::OPEN))
                            .add(notices::Column::EndsOn.lt(today)),
                    )
                    .add(notices::Column::Status.eq(notice_status::CLEARED)),
            )
            .all(&txn)
            .await?;
        if due.is_empty() {
            txn.commit().await?;
            return Ok(0);
        }
        let ids: Vec<Uuid> = due.iter().map(|n| n.application_id).collect();
        touch(&txn, &ids, now).await?;
        let apps = applications::Entity::find()
            .filter(applications::Column::Id.is_in(ids.clone()))
            .filter(applications::Column::Status.eq(status::IN_NOTICE))
            .all(&txn)
            .await?;
        let decided: HashMap<Uuid, Decision> = decisions::Entity::find()
            .filter(decisions::Column::ApplicationId.is_in(ids.clone()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|row| {
                serde_json::from_value(row.payload)
                    .map(|decision| (row.application_id, decision))
                    .map_err(|e| DbErr::Custom(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let mut answers: HashMap<Uuid, Vec<Finding>> = HashMap::new();
        for row in findings::Entity::find()
            .filter(findings::Column::ApplicationId.is_in(ids.clone()))
            .all(&txn)
            .await?
        {
            let finding: Finding = serde_json::from_value(row.payload).map_err(|e| DbErr::Custom(e.to_string()))?;
            answers.entry(row.application_id).or_default().push(finding);
        }
        let renewal_of = renewals_of(&txn, apps.iter()).await?;
        let mut writes = Writes::default();
        let mut certified = Vec::new();
        for app_row in &apps {
            let Some(decision) = decided.get(&app_row.id) else {
                continue;
            };
            let application: Application =
                Application::deserialize(&app_row.payload).map_err(|e| DbErr::Custom(e.to_string()))?;
            let policy = d.policy_of(app_row)?;
            let found = answers.get(&app_row.id).map(Vec::as_slice).unwrap_or_default();
            // A referred case a reviewer qualified: its award from the facts reported.
            let decision = match decision.outcome {
                DecisionOutcome::Qualified => decision.clone(),
                _ => policy::qualified_on_review(policy, &application, decision, found),
            };
            let renewal = renewal_of.get(&app_row.id);
            d.certify(&mut writes, app_row, &application, &decision, policy, today, renewal)?;
            certified.push(app_row.id);
        }
        if !certified.is_empty() {
            applications::Entity::update_many()
                .col_expr(applications::Column::Status, Expr::value(status::QUALIFIED))
                .filter(applications::Column::Id.is_in(certified.clone()))
                .exec(&txn)
                .await?;
        }
        notices::Entity::update_many()
            .col_expr(notices::Column::Status, Expr::value(notice_status::COMPLETED))
            .col_expr(notices::Column::ClosedAt, Expr::value(now))
            .filter(notices::Column::ApplicationId.is_in(ids))
            .exec(&txn)
            .await?;
        writes.apply(&txn, now, Batch::new(&txn), Vec::new()).await?;
        txn.commit().await?;
        for _ in &certified {
            metrics::counter!(m::CERTIFICATES).increment(1);
        }
        Ok(certified.len())
    }
}

/// Takes the applications' locks before their chains are appended to.
async fn touch(txn: &DatabaseTransaction, ids: &[Uuid], now: DateTime<Utc>) -> Result<(), DbErr> {
    applications::Entity::update_many()
        .col_expr(applications::Column::UpdatedAt, Expr::value(now))
        .filter(applications::Column::Id.is_in(ids.to_vec()))
        .exec(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chasing_backs_off_to_the_maximum() {
        let chasing = Chasing {
            first_after: chrono::Duration::hours(4),
            max_interval: chrono::Duration::hours(24),
            warn_working_days: 1,
        };
        let t0 = DateTime::parse_from_rfc3339("2026-11-27T02:00:00Z").unwrap().to_utc();
        let h = chrono::Duration::hours;
        // (times asked, hours since the last ask, due?)
        let cases = [
            (0, 3, false),
            (0, 4, true),
            (1, 7, false),
            (1, 8, true),
            (2, 15, false),
            (2, 16, true),
            (3, 23, false),
            (3, 24, true),
            (20, 24, true),
        ];
        for (count, hours, due) in cases {
            assert_eq!(
                chasing.due(count, t0, t0 + h(hours)),
                due,
                "asked {count} times, {hours} h ago"
            );
        }
    }
}
