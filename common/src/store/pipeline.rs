//! Entities of the pipeline schema: applications, findings, decisions, certificates.
//! The outbox entity lives with its relay in `outbox`.

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
