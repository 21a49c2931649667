//! The first pipeline schema.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("applications")
                .if_not_exists()
                .col(big_pk_auto("seq"))
                .col(uuid_uniq("id"))
                .col(string_null("reference").unique_key())
                .col(string_null("idempotency_key").unique_key())
                .col(string("request_hash"))
                .col(string("channel"))
                .col(string("track"))
                .col(json_binary("payload"))
                .col(string("status"))
                .col(string_null("policy_version"))
                .col(timestamp_with_time_zone("submitted_at"))
                .col(date("deadline"))
                .col(timestamp_with_time_zone_null("decided_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("ix_applications_status")
                .table("applications")
                .col("status")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("outbox")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(string("origin"))
                .col(string("exchange"))
                .col(string("routing_key"))
                .col(string("kind"))
                .col(uuid("message_id"))
                .col(uuid_null("correlation_id"))
                .col(json_binary("headers"))
                .col(text("body"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("sent_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("ix_outbox_pending")
                .table("outbox")
                .col("origin")
                .col("sent_at")
                .col("id")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("findings")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(uuid("application_id"))
                .col(string("department"))
                .col(json_binary("payload"))
                .col(timestamp_with_time_zone("received_at"))
                .index(
                    Index::create()
                        .name("ux_findings_application_department")
                        .col("application_id")
                        .col("department")
                        .unique(),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("decisions")
                .if_not_exists()
                .col(uuid("application_id").primary_key())
                .col(string("outcome"))
                .col(string("policy_version"))
                .col(json_binary("payload"))
                .col(timestamp_with_time_zone("decided_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("certificates")
                .if_not_exists()
                .col(string("number").primary_key())
                .col(uuid_uniq("application_id"))
                .col(text("document"))
                .col(string("key_id"))
                .col(date("issued_on"))
                .col(date("valid_until"))
                .col(string("status"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["certificates", "decisions", "findings", "outbox", "applications"] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
