//! The read side: an application's progress and decision, and a certificate with its
//! verification, as the HTTP API and `prh status` show them.

use chrono::{DateTime, NaiveDate, Utc};
use prh_common::{
    certificate::SignedCertificate,
    department::{Department, Track},
    policy::Decision,
    signing::KeyRing,
    store::pipeline::{applications, certificates, decisions, findings},
};
use sea_orm::{
    AccessMode, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityTrait, IsolationLevel,
    QueryFilter, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DepartmentProgress {
    pub department: Department,
    pub answered: bool,
    pub received_at: Option<DateTime<Utc>>,
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
    pub deadline: NaiveDate,
    pub departments: Vec<DepartmentProgress>,
    pub decision: Option<DecisionView>,
    pub certificate_number: Option<String>,
}

/// Looks an application up by its id or its human reference.
pub async fn application(db: &DatabaseConnection, id_or_reference: &str) -> Result<Option<ApplicationView>, DbErr> {
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
    let view = read_application(&txn, id_or_reference).await;
    txn.commit().await?;
    view
}

async fn read_application(db: &DatabaseTransaction, id_or_reference: &str) -> Result<Option<ApplicationView>, DbErr> {
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
    let departments = track
        .departments()
        .iter()
        .map(|&d| {
            let found = answered.iter().find(|f| f.department == d.as_str());
            DepartmentProgress {
                department: d,
                answered: found.is_some(),
                received_at: found.map(|f| f.received_at),
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
    Ok(Some(ApplicationView {
        application_id: row.id,
        reference: row.reference,
        track,
        status: row.status,
        channel: row.channel,
        submitted_at: row.submitted_at,
        deadline: row.deadline,
        departments,
        decision,
        certificate_number,
    }))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    /// Whether the stored file verifies against the keys this service trusts.
    pub valid: bool,
    pub problem: Option<String>,
    pub status: String,
    pub certificate: SignedCertificate,
}

/// The certificate `number`, checked byte for byte against the trusted keys.
pub async fn certificate(
    db: &DatabaseConnection,
    number: &str,
    keys: &KeyRing,
) -> Result<Option<CertificateView>, DbErr> {
    let Some(row) = certificates::Entity::find_by_id(number.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let verified = SignedCertificate::verify_file(row.document.as_bytes(), keys);
    let certificate: SignedCertificate =
        serde_json::from_str(&row.document).map_err(|e| DbErr::Custom(e.to_string()))?;
    let (valid, problem) = match verified {
        Ok(_) if row.status == "valid" => (true, None),
        Ok(_) => (false, Some(format!("certificate is {}", row.status))),
        Err(e) => (false, Some(e.to_string())),
    };
    Ok(Some(CertificateView {
        valid,
        problem,
        status: row.status,
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
