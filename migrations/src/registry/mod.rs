//! One migrator per department registry: each department's tables are created in that
//! department's own database or schema, never beside another's.

use sea_orm_migration::{prelude::*, schema::*};

mod m20261126_000002_married_on;

macro_rules! registry_migrator {
    ($migrator:ident, $migration:ident, $name:literal, $create:ident, [$($table:literal),*] $(, then [$($later:expr),*])?) => {
        pub struct $migration;

        impl MigrationName for $migration {
            fn name(&self) -> &str {
                $name
            }
        }

        #[async_trait::async_trait]
        impl MigrationTrait for $migration {
            async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
                $create(m).await
            }
            async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
                $(m.drop_table(Table::drop().table($table).if_exists().to_owned()).await?;)*
                Ok(())
            }
        }

        pub struct $migrator;

        #[async_trait::async_trait]
        impl MigratorTrait for $migrator {
            fn migrations() -> Vec<Box<dyn MigrationTrait>> {
                vec![Box::new($migration) $($(, Box::new($later))*)?]
            }
        }
    };
}

registry_migrator!(
    PublicSecurity,
    PublicSecurityV1,
    "m20261126_000001_public_security",
    public_security,
    ["ps_vehicles", "ps_residence_permits", "ps_persons"]
);
registry_migrator!(
    CivilAffairs,
    CivilAffairsV1,
    "m20261126_000001_civil_affairs",
    civil_affairs,
    ["ca_persons"],
    then[m20261126_000002_married_on::Migration]
);
registry_migrator!(
    HumanResources,
    HumanResourcesV1,
    "m20261126_000001_human_resources",
    human_resources,
    ["hr_contributions", "hr_persons"]
);
registry_migrator!(
    NaturalResources,
    NaturalResourcesV1,
    "m20261126_000001_natural_resources",
    natural_resources,
    ["nr_properties", "nr_persons"]
);
registry_migrator!(
    Housing,
    HousingV1,
    "m20261126_000001_housing",
    housing,
    [
        "hs_application_members",
        "hs_bans",
        "hs_purchases",
        "hs_benefits",
        "hs_persons"
    ]
);
registry_migrator!(
    Education,
    EducationV1,
    "m20261126_000001_education",
    education,
    ["ed_degrees", "ed_persons"]
);

/// A `*_persons` table keyed by ID number.
fn persons(table: &'static str) -> TableCreateStatement {
    Table::create()
        .table(table)
        .if_not_exists()
        .col(string("id_number").primary_key())
        .to_owned()
}

/// A table of records about persons, with an index on the ID number.
async fn records(m: &SchemaManager<'_>, mut table: TableCreateStatement, name: &'static str) -> Result<(), DbErr> {
    m.create_table(
        table
            .table(name)
            .if_not_exists()
            .col(big_pk_auto("id"))
            .col(string("id_number"))
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .if_not_exists()
            .name(format!("ix_{name}_id_number"))
            .table(name)
            .col("id_number")
            .to_owned(),
    )
    .await
}

async fn public_security(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        persons("ps_persons")
            .col(string("name"))
            .col(string("hukou_region"))
            .col(date("hukou_since"))
            .col(boolean("deceased"))
            .to_owned(),
    )
    .await?;
    records(
        m,
        Table::create()
            .col(string("region"))
            .col(date("valid_until"))
            .to_owned(),
        "ps_residence_permits",
    )
    .await?;
    records(
        m,
        Table::create()
            .col(string("plate"))
            .col(big_integer("value_fen"))
            .col(boolean("disability_adapted"))
            .to_owned(),
        "ps_vehicles",
    )
    .await
}

async fn civil_affairs(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        persons("ca_persons")
            .col(string("name"))
            .col(string("marital_status"))
            .col(string_null("spouse_id_number"))
            .col(string("assistance_category"))
            .col(big_integer("verified_monthly_income_fen"))
            .col(big_integer("financial_assets_fen"))
            .to_owned(),
    )
    .await
}

async fn human_resources(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        persons("hr_persons")
            .col(string("name"))
            .col(string_null("employer"))
            .to_owned(),
    )
    .await?;
    records(
        m,
        Table::create()
            .col(integer("month"))
            .col(boolean("back_paid"))
            .to_owned(),
        "hr_contributions",
    )
    .await
}

async fn natural_resources(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(persons("nr_persons")).await?;
    records(
        m,
        Table::create()
            .col(string("usage"))
            .col(big_integer("area_centi_sqm"))
            .col(date("acquired_on"))
            .col(date_null("transferred_on"))
            .col(string_null("transfer_cause"))
            .to_owned(),
        "nr_properties",
    )
    .await
}

async fn housing(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(persons("hs_persons")).await?;
    records(
        m,
        Table::create().col(string("kind")).col(boolean("active")).to_owned(),
        "hs_benefits",
    )
    .await?;
    records(
        m,
        Table::create().col(string("kind")).col(date("purchased_on")).to_owned(),
        "hs_purchases",
    )
    .await?;
    records(m, Table::create().col(date("imposed_on")).to_owned(), "hs_bans").await?;
    records(
        m,
        Table::create()
            .col(uuid("application_id"))
            .col(boolean("closed"))
            .index(
                Index::create()
                    .name("ux_hs_application_members")
                    .col("application_id")
                    .col("id_number")
                    .unique(),
            )
            .to_owned(),
        "hs_application_members",
    )
    .await
}

async fn education(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(persons("ed_persons").col(string("name")).to_owned())
        .await?;
    records(
        m,
        Table::create()
            .col(string("level"))
            .col(date("graduated_on"))
            .to_owned(),
        "ed_degrees",
    )
    .await
}
