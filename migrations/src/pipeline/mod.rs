//! The pipeline schema: applications, outbox, findings, decisions, certificates, the
//! audit trail and the case's life after the decision.

use sea_orm_migration::prelude::*;

mod m20261126_000001_pipeline;
mod m20261127_000003_audit;
mod m20261127_000004_lifecycle;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_pipeline::Migration),
            Box::new(m20261127_000003_audit::Migration),
            Box::new(m20261127_000004_lifecycle::Migration),
        ]
    }
}
