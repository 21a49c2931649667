//! The case's life after submission (限时办结): clock pauses for missing documents,
//! chasing of silent departments, manual reviews, public notices, revocations and yearly
//! re-checks.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("clock_pauses")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(uuid("application_id"))
                .col(text("reason"))
                .col(string("asked_by"))
                .col(timestamp_with_time_zone("paused_at"))
                .col(date("paused_on"))
                .col(timestamp_with_time_zone_null("resumed_at"))
                .col(date_null("resumed_on"))
                .col(text_null("note"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_clock_pauses_application",
            "clock_pauses",
            &["application_id"],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table("chases")
                .if_not_exists()
                .col(uuid("application_id"))
                .col(string("department"))
                .col(integer("count"))
                .col(timestamp_with_time_zone("last_at"))
                .col(timestamp_with_time_zone_null("warned_at"))
                .primary_key(Index::create().col("application_id").col("department"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("notices")
                .if_not_exists()
                .col(uuid("application_id").primary_key())
                .col(date("starts_on"))
                .col(date("ends_on"))
                .col(string("status"))
                .col(text_null("objection"))
                .col(string_null("objected_by"))
                .col(timestamp_with_time_zone_null("closed_at"))
                .to_owned(),
        )
        .await?;
        index(m, "ix_notices_open", "notices", &["status", "ends_on"], false).await?;

        m.create_table(
            Table::create()
                .table("reviews")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(uuid("application_id"))
                .col(string("outcome"))
                .col(text("reason"))
                .col(string("reviewer"))
                .col(timestamp_with_time_zone("at"))
                .to_owned(),
        )
        .await?;
        index(m, "ix_reviews_application", "reviews", &["application_id"], false).await?;

        m.create_table(
            Table::create()
                .table("revocations")
                .if_not_exists()
                .col(string("certificate_number").primary_key())
                .col(text("reason"))
                .col(string("revoked_by"))
                .col(timestamp_with_time_zone("at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("renewals")
                .if_not_exists()
                .col(uuid("application_id").primary_key())
                .col(string("certificate_number"))
                .col(uuid("original_application_id"))
                .to_owned(),
        )
        .await?;
        // One re-check per certificate: a second request finds the first.
        index(m, "ux_renewals_certificate", "renewals", &["certificate_number"], true).await?;
        index(m, "ix_applications_status", "applications", &["status"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "clock_pauses",
            "chases",
            "notices",
            "reviews",
            "revocations",
            "renewals",
        ] {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

async fn index(m: &SchemaManager<'_>, name: &str, table: &str, cols: &[&str], unique: bool) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table.to_owned());
    for col in cols {
        index.col(Alias::new(*col));
    }
    if unique {
        index.unique();
    }
    m.create_index(index.to_owned()).await
}
