//! The evidence trail: `audit_events`, one hash chain per application.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("audit_events")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(uuid("application_id"))
                .col(integer("seq"))
                .col(string("kind"))
                .col(timestamp_with_time_zone("at"))
                .col(text("payload"))
                .col(string("prev_hash"))
                .col(string("hash"))
                .to_owned(),
        )
        .await?;
        // One event per place in a chain: two writers cannot fork it.
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("ux_audit_events_chain")
                .table("audit_events")
                .col("application_id")
                .col("seq")
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("audit_events").to_owned()).await
    }
}
