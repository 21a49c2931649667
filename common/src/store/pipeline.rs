//! Entities of the pipeline schema: applications, findings, decisions, certificates and
//! the case's life after the decision. The outbox entity lives with its relay in `outbox`.

/// One submitted application (申请). `reference` is the human one, `GZF-2026-000123`.
pub mod applications {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "applications")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        #[sea_orm(unique)]
        pub id: Uuid,
        pub reference: Option<String>,
        pub idempotency_key: Option<String>,
        /// SHA-256 of the submitted form, to tell a retry from a reused key.
        pub request_hash: String,
        pub channel: String,
        pub track: String,
        #[sea_orm(column_type = "JsonBinary")]
        pub payload: Json,
        pub status: String,
        pub policy_version: Option<String>,
        pub submitted_at: DateTimeUtc,
        pub deadline: Date,
        pub decided_at: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One department's answer for one application; unique per (application, department).
pub mod findings {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "findings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub application_id: Uuid,
        pub department: String,
        #[sea_orm(column_type = "JsonBinary")]
        pub payload: Json,
        pub received_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The decision on one application; at most one per application.
pub mod decisions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "decisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub application_id: Uuid,
        pub outcome: String,
        pub policy_version: String,
        #[sea_orm(column_type = "JsonBinary")]
        pub payload: Json,
        pub decided_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A signed qualification certificate; at most one per application. `document` holds the
/// exact bytes of the certificate file.
pub mod certificates {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "certificates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub number: String,
        #[sea_orm(unique)]
        pub application_id: Uuid,
        #[sea_orm(column_type = "Text")]
        pub document: String,
        pub key_id: String,
        pub issued_on: Date,
        pub valid_until: Date,
        pub status: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Application status values, as stored.
pub mod status {
    pub const CHECKING: &str = "checking";
    pub const QUALIFIED: &str = "qualified";
    pub const REJECTED: &str = "rejected";
    pub const REFERRED: &str = "referred";
    /// The clock is stopped: the applicant was asked for a missing document (补正).
    pub const AWAITING_DOCUMENTS: &str = "awaiting_documents";
    /// Qualified and published for objections (公示); the certificate follows.
    pub const IN_NOTICE: &str = "in_notice";
}

/// Certificate status values, as stored; expiry is read from `valid_until`, not stored.
pub mod certificate_status {
    pub const VALID: &str = "valid";
    pub const REVOKED: &str = "revoked";
    /// Replaced by the certificate of its yearly re-check (年审).
    pub const RENEWED: &str = "renewed";
}

/// Notice status values, as stored.
pub mod notice_status {
    pub const OPEN: &str = "open";
    pub const OBJECTED: &str = "objected";
    pub const COMPLETED: &str = "completed";
    /// Objected to, then qualified by a reviewer (or a re-check a reviewer qualified):
    /// the certificate is issued at the next sweep.
    pub const CLEARED: &str = "cleared";
}

/// A stop of an application's clock while the applicant is asked for a document (补正).
pub mod clock_pauses {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "clock_pauses")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub application_id: Uuid,
        #[sea_orm(column_type = "Text")]
        pub reason: String,
        pub asked_by: String,
        pub paused_at: DateTimeUtc,
        pub paused_on: Date,
        pub resumed_at: Option<DateTimeUtc>,
        pub resumed_on: Option<Date>,
        #[sea_orm(column_type = "Text", nullable)]
        pub note: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How often a silent department was asked again for one application, and whether it was
/// warned that its limit is near.
pub mod chases {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "chases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub application_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub department: String,
        pub count: i32,
        pub last_at: DateTimeUtc,
        pub warned_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The public notice (公示) of a qualified household; at most one open per application.
pub mod notices {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "notices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub application_id: Uuid,
        pub starts_on: Date,
        /// The last day of the notice; the certificate is issued after it.
        pub ends_on: Date,
        pub status: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub objection: Option<String>,
        pub objected_by: Option<String>,
        pub closed_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A reviewer's decision on a referred case: who, when, which way and why.
pub mod reviews {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "reviews")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub application_id: Uuid,
        pub outcome: String,
        #[sea_orm(column_type = "Text")]
        pub reason: String,
        pub reviewer: String,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Why and by whom a certificate was revoked.
pub mod revocations {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "revocations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub certificate_number: String,
        #[sea_orm(column_type = "Text")]
        pub reason: String,
        pub revoked_by: String,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A yearly re-check (年审): an application that re-runs the department checks for the
/// holder of a certificate; at most one per certificate.
pub mod renewals {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "renewals")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub application_id: Uuid,
        #[sea_orm(unique)]
        pub certificate_number: String,
        pub original_application_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One event of an application's audit trail (`crate::audit`); rows are only ever added.
pub mod audit_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub application_id: Uuid,
        pub seq: i32,
        pub kind: String,
        pub at: DateTimeUtc,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        pub prev_hash: String,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
