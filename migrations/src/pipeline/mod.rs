//! The pipeline schema: applications, outbox, findings, decisions, certificates and the
//! audit trail.

use sea_orm_migration::prelude::*;

mod m20261126_000001_pipeline;
mod m20261127_000003_audit;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_pipeline::Migration),
            Box::new(m20261127_000003_audit::Migration),
        ]
    }
}
