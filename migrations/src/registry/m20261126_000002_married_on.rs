//! Civil affairs keeps the date of the current marriage registration (结婚登记日期).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000002_civil_affairs_married_on"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.has_column("ca_persons", "married_on").await? {
            return Ok(());
        }
        m.alter_table(
            Table::alter()
                .table("ca_persons")
                .add_column(date_null("married_on"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("ca_persons").drop_column("married_on").to_owned())
            .await
    }
}
