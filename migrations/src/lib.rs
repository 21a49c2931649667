//! prh-migrations: the pipeline schema and each department's registry schema, for SQLite
//! and PostgreSQL alike. Every migration is idempotent and tracked in `seaql_migrations`.

mod pipeline;
mod registry;

use prh_common::department::Department;
use sea_orm_migration::{MigratorTrait, sea_orm::DatabaseConnection};

pub use sea_orm_migration::sea_orm::DbErr;

/// Brings the pipeline schema up to date.
pub async fn migrate_pipeline(db: &DatabaseConnection) -> Result<(), DbErr> {
    pipeline::Migrator::up(db, None).await
}

/// Brings one department's registry schema up to date.
pub async fn migrate_registry(department: Department, db: &DatabaseConnection) -> Result<(), DbErr> {
    match department {
        Department::PublicSecurity => registry::PublicSecurity::up(db, None).await,
        Department::CivilAffairs => registry::CivilAffairs::up(db, None).await,
        Department::HumanResources => registry::HumanResources::up(db, None).await,
        Department::NaturalResources => registry::NaturalResources::up(db, None).await,
        Department::Housing => registry::Housing::up(db, None).await,
        Department::Education => registry::Education::up(db, None).await,
    }
}
