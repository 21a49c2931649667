//! The read side: an application's progress and decision, and a certificate with its
//! verification, as the HTTP API and `prh status` show them.

use chrono::{DateTime, NaiveDate, Utc};
use prh_common::{
    calendar::WorkCalendar,
    certificate::SignedCertificate,
    department::{Department, Track},
    policy::Decision,
    policy_set::PolicySet,
    signing::KeyRing,
    store::pipeline::{
        applications, certificate_status, certificates, chases, clock_pauses, decisions, findings, notices, renewals,
        reviews, revocations,
    },
    time_limit::{CaseClock, Pause},
};
use sea_orm::{
    AccessMode, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait, IsolationLevel,
    QueryFilter, QueryOrder, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DepartmentProgress {
    pub department: Department,
    pub answered: bool,
    pub received_at: Option<DateTime<Utc>>,
    /// The last day of the department's limit; none while the clock is stopped.
    pub deadline: Option<NaiveDate>,
    /// Answered after its limit, or still silent past it.
    pub late: bool,
    /// How often it was asked again.
    pub chases: i32,
}

/// The statutory clock (限时办结) as of today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClockView {
    /// Working days used so far (until the decision, once decided); paused days do not count.
    pub working_days_used: u32,
    pub decision_working_days: u32,
    pub department_working_days: u32,
    /// Stopped while the applicant is asked for a document (补正).
    pub paused: bool,
    pub pauses: Vec<PauseView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PauseView {
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
    pub asked_for: String,
    pub asked_by: String,
    pub note: Option<String>,
}

/// The public notice (公示) of a qualified case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoticeView {
    pub starts_on: NaiveDate,
    /// The last day objections are taken; the certificate follows.
    pub ends_on: NaiveDate,
    pub status: String,
    pub objection: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub outcome: String,
    pub reason: String,
    pub reviewer: String,
    pub at: DateTime<Utc>,
}

/// What the status view needs besides the database: the calendar, the policies' time
/// limits and today's date.
pub struct Context<'a> {
    pub calendar: &'a WorkCalendar,
    pub policies: &'a PolicySet,
    pub today: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    pub decided_at: DateTime<Utc>,
    pub reasons: Vec<prh_common::criteria::ReasonCode>,
    #[serde(flatten)]
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApplicationView {
    pub application_id: Uuid,
    pub reference: Option<String>,
    pub track: Track,
    pub status: String,
    pub channel: String,
    pub submitted_at: DateTime<Utc>,
    /// The decision's statutory deadline; moved by pauses.
    pub deadline: NaiveDate,
    pub clock: ClockView,
    pub departments: Vec<DepartmentProgress>,
    pub decision: Option<DecisionView>,
    /// Departments that had not answered when their limit passed.
    pub overdue_departments: Vec<Department>,
    pub reviews: Vec<ReviewView>,
    pub notice: Option<NoticeView>,
    pub certificate_number: Option<String>,
    /// For a yearly re-check (年审): the certificate it re-checks.
    pub rechecks_certificate: Option<String>,
}

/// Looks an application up by its id or its human reference.
pub async fn application(
    db: &DatabaseConnection,
    id_or_reference: &str,
    context: &Context<'_>,
) -> Result<Option<ApplicationView>, DbErr> {
    // One snapshot for every read, so the view never shows a decision beside a status
    // or department list from before it. SQLite's deferred transaction in WAL mode is a
    // snapshot from its first read; PostgreSQL needs repeatable read for that.
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
                .await?
        }
        _ => db.begin().await?,
    };
    let view = read_application(&txn, id_or_reference, context).await;
    txn.commit().await?;
    view
}

async fn read_application(
    db: &DatabaseTransaction,
    id_or_reference: &str,
    context: &Context<'_>,
) -> Result<Option<ApplicationView>, DbErr> {
    let query = applications::Entity::find();
    let query = match Uuid::parse_str(id_or_reference) {
        Ok(id) => query.filter(applications::Column::Id.eq(id)),
        Err(_) => query.filter(applications::Column::Reference.eq(id_or_reference)),
    };
    let Some(row) = query.one(db).await? else {
        return Ok(None);
    };
    let track: Track = row.track.parse().map_err(DbErr::Custom)?;
    let answered = findings::Entity::find()
        .filter(findings::Column::ApplicationId.eq(row.id))
        .all(db)
        .await?;
    let pause_rows = clock_pauses::Entity::find()
        .filter(clock_pauses::Column::ApplicationId.eq(row.id))
        .order_by_asc(clock_pauses::Column::Id)
        .all(db)
        .await?;
    let pauses: Vec<Pause> = pause_rows
        .iter()
        .map(|p| Pause {
            from: p.paused_on,
            until: p.resumed_on,
        })
        .collect();
    let clock = CaseClock {
        calendar: context.calendar,
        start: prh_common::china_date(row.submitted_at),
        pauses: &pauses,
    };
    let policy = context.policies.get(row.policy_version.as_deref().unwrap_or_default());
    let (decision_days, department_days) =
        policy.map_or((0, 0), |p| (p.decision_working_days, p.department_working_days));
    let until = row.decided_at.map_or(context.today, prh_common::china_date);
    let department_deadline = clock.deadline(department_days);
    let chased: Vec<chases::Model> = chases::Entity::find()
        .filter(chases::Column::ApplicationId.eq(row.id))
        .all(db)
        .await?;
    let departments = track
        .departments()
        .iter()
        .map(|&d| {
            let found = answered.iter().find(|f| f.department == d.as_str());
            let answered_on = found.map(|f| prh_common::china_date(f.received_at));
            DepartmentProgress {
                department: d,
                answered: found.is_some(),
                received_at: found.map(|f| f.received_at),
                deadline: department_deadline,
                late: clock.is_overdue(department_days, answered_on.unwrap_or(until)),
                chases: chased
                    .iter()
                    .find(|c| c.department == d.as_str())
                    .map_or(0, |c| c.count),
            }
        })
        .collect();
    let decision = match decisions::Entity::find_by_id(row.id).one(db).await? {
        Some(d) => {
            let decision: Decision = serde_json::from_value(d.payload).map_err(|e| DbErr::Custom(e.to_string()))?;
            Some(DecisionView {
                decided_at: d.decided_at,
                reasons: decision.reasons(),
                decision,
            })
        }
        None => None,
    };
    let certificate_number = certificates::Entity::find()
        .filter(certificates::Column::ApplicationId.eq(row.id))
        .one(db)
        .await?
        .map(|c| c.number);
    // A department is overdue when the decision referred the case for want of its answer.
    let no_answer = decision.as_ref().is_some_and(|d| {
        d.reasons
            .contains(&prh_common::criteria::ReasonCode::DepartmentNoAnswer)
    });
    let overdue_departments = if no_answer {
        track
            .departments()
            .iter()
            .copied()
            .filter(|dep| {
                !answered
                    .iter()
                    .any(|f| f.department == dep.as_str() && Some(f.received_at) <= row.decided_at)
            })
            .collect()
    } else {
        Vec::new()
    };
    let reviews = reviews::Entity::find()
        .filter(reviews::Column::ApplicationId.eq(row.id))
        .order_by_asc(reviews::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|r| ReviewView {
            outcome: r.outcome,
            reason: r.reason,
            reviewer: r.reviewer,
            at: r.at,
        })
        .collect();
    let notice = notices::Entity::find_by_id(row.id).one(db).await?.map(|n| NoticeView {
        starts_on: n.starts_on,
        ends_on: n.ends_on,
        status: n.status,
        objection: n.objection,
    });
    let rechecks_certificate = renewals::Entity::find_by_id(row.id)
        .one(db)
        .await?
        .map(|r| r.certificate_number);
    let clock_view = ClockView {
        working_days_used: clock.used(until),
        decision_working_days: decision_days,
        department_working_days: department_days,
        paused: clock.is_paused(),
        pauses: pause_rows
            .into_iter()
            .map(|p| PauseView {
                from: p.paused_on,
                until: p.resumed_on,
                asked_for: p.reason,
                asked_by: p.asked_by,
                note: p.note,
            })
            .collect(),
    };
    Ok(Some(ApplicationView {
        application_id: row.id,
        reference: row.reference,
        track,
        status: row.status,
        channel: row.channel,
        submitted_at: row.submitted_at,
        deadline: row.deadline,
        clock: clock_view,
        departments,
        decision,
        overdue_departments,
        reviews,
        notice,
        certificate_number,
        rechecks_certificate,
    }))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    /// Genuine (the stored file verifies against the keys this service trusts), in force
    /// today, not revoked and not renewed.
    pub valid: bool,
    pub problem: Option<String>,
    /// `valid`, `revoked`, `renewed` or `expired`.
    pub status: String,
    pub revocation: Option<RevocationView>,
    pub certificate: SignedCertificate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevocationView {
    pub reason: String,
    pub revoked_by: String,
    pub at: DateTime<Utc>,
}

/// The certificate `number`, checked byte for byte against the trusted keys and for
/// whether it is in force on `today`.
pub async fn certificate(
    db: &DatabaseConnection,
    number: &str,
    keys: &KeyRing,
    today: NaiveDate,
) -> Result<Option<CertificateView>, DbErr> {
    let Some(row) = certificates::Entity::find_by_id(number.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let verified = SignedCertificate::verify_file(row.document.as_bytes(), keys);
    let certificate: SignedCertificate =
        serde_json::from_str(&row.document).map_err(|e| DbErr::Custom(e.to_string()))?;
    let revocation = revocations::Entity::find_by_id(number.to_owned())
        .one(db)
        .await?
        .map(|r| RevocationView {
            reason: r.reason,
            revoked_by: r.revoked_by,
            at: r.at,
        });
    let status = if row.status == certificate_status::VALID && today > row.valid_until {
        "expired".to_owned()
    } else {
        row.status
    };
    let (valid, problem) = match verified {
        Err(e) => (false, Some(e.to_string())),
        Ok(_) if status == certificate_status::VALID => (true, None),
        Ok(_) if status == "expired" => (false, Some(format!("certificate expired after {}", row.valid_until))),
        Ok(_) => (false, Some(format!("certificate is {status}"))),
    };
    Ok(Some(CertificateView {
        valid,
        problem,
        status,
        revocation,
        certificate,
    }))
}

/// How many applications have a decision.
pub async fn decided_count(db: &DatabaseConnection) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    applications::Entity::find()
        .filter(applications::Column::DecidedAt.is_not_null())
        .count(db)
        .await
}
