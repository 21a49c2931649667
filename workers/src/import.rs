//! Loading a department's export (JSON Lines, see docs/registry-format.md) into its own
//! registry: every line validated, bad lines reported by number and reason, the rest
//! loaded in one transaction. `prh seed` loads its synthetic data the same way.

use prh_common::{
    department::Department,
    records::{
        CivilAffairsRecord as Ca, EducationRecord as Ed, HousingRecord as Hs, HumanResourcesRecord as Hr,
        NaturalResourcesRecord as Nr, PublicSecurityRecord as Ps, Record, parse_line,
    },
    store::registry::*,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IdenStatic, Iterable,
    PrimaryKeyToColumn, TransactionTrait, sea_query::OnConflict,
};

/// What an import did.
#[derive(Debug, Default, PartialEq)]
pub struct ImportReport {
    pub loaded: usize,
    /// (line number, reason) of every line that was not loaded.
    pub rejected: Vec<(usize, String)>,
}

/// Parses an export: valid records, and the number and reason of each bad line. Blank
/// lines are skipped.
pub fn parse_export(department: Department, text: &str) -> (Vec<Record>, Vec<(usize, String)>) {
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(department, line) {
            Ok(r) => records.push(r),
            Err(reason) => rejected.push((i + 1, reason)),
        }
    }
    (records, rejected)
}

/// Reads and loads an export file into `department`'s registry. With `replace`, the
/// registry's previous content is deleted in the same transaction.
pub async fn import(
    db: &DatabaseConnection,
    department: Department,
    text: &str,
    replace: bool,
) -> Result<ImportReport, DbErr> {
    let (records, rejected) = parse_export(department, text);
    let loaded = load(db, department, &records, replace).await?;
    Ok(ImportReport { loaded, rejected })
}

/// Writes records into `department`'s registry in one transaction. A person already
/// known is updated; other records are added.
pub async fn load(
    db: &DatabaseConnection,
    department: Department,
    records: &[Record],
    replace: bool,
) -> Result<usize, DbErr> {
    if let Some(foreign) = records.iter().find(|r| r.department() != department) {
        return Err(DbErr::Custom(format!(
            "a {} record cannot be loaded into the {department} registry",
            foreign.department()
        )));
    }
    let txn = db.begin().await?;
    if replace {
        clear(&txn, department).await?;
    }
    let mut rows = Rows::default();
    for record in records {
        rows.add(record);
    }
    rows.write(&txn).await?;
    txn.commit().await?;
    Ok(records.len())
}

async fn clear<C: ConnectionTrait>(db: &C, department: Department) -> Result<(), DbErr> {
    macro_rules! delete_all {
        ($($entity:ident),*) => {{ $( $entity::Entity::delete_many().exec(db).await?; )* }};
    }
    match department {
        Department::PublicSecurity => delete_all!(ps_persons, ps_residence_permits, ps_vehicles),
        Department::CivilAffairs => delete_all!(ca_persons),
        Department::HumanResources => delete_all!(hr_persons, hr_contributions),
        Department::NaturalResources => delete_all!(nr_persons, nr_properties),
        Department::Housing => delete_all!(hs_persons, hs_benefits, hs_purchases, hs_bans),
        Department::Education => delete_all!(ed_persons, ed_degrees),
    }
    Ok(())
}

/// Records turned into rows, table by table.
#[derive(Default)]
struct Rows {
    ps_persons: Vec<ps_persons::ActiveModel>,
    ps_permits: Vec<ps_residence_permits::ActiveModel>,
    ps_vehicles: Vec<ps_vehicles::ActiveModel>,
    ca_persons: Vec<ca_persons::ActiveModel>,
    hr_persons: Vec<hr_persons::ActiveModel>,
    hr_contributions: Vec<hr_contributions::ActiveModel>,
    nr_persons: Vec<nr_persons::ActiveModel>,
    nr_properties: Vec<nr_properties::ActiveModel>,
    hs_persons: Vec<hs_persons::ActiveModel>,
    hs_benefits: Vec<hs_benefits::ActiveModel>,
    hs_purchases: Vec<hs_purchases::ActiveModel>,
    hs_bans: Vec<hs_bans::ActiveModel>,
    ed_persons: Vec<ed_persons::ActiveModel>,
    ed_degrees: Vec<ed_degrees::ActiveModel>,
}

impl Rows {
    fn add(&mut self, record: &Record) {
        let id = |n: &prh_common::id_number::IdNumber| Set(n.expose().to_owned());
        match record {
            Record::PublicSecurity(Ps::Person {
                id_number,
                name,
                hukou_region,
                hukou_since,
                deceased,
            }) => self.ps_persons.push(ps_persons::ActiveModel {
                id_number: id(id_number),
                name: Set(name.trim().to_owned()),
                hukou_region: Set(hukou_region.as_str().into()),
                hukou_since: Set(*hukou_since),
                deceased: Set(*deceased),
            }),
            Record::PublicSecurity(Ps::ResidencePermit {
                id_number,
                region,
                valid_until,
            }) => self.ps_permits.push(ps_residence_permits::ActiveModel {
                id_number: id(id_number),
                region: Set(region.as_str().into()),
                valid_until: Set(*valid_until),
                ..Default::default()
            }),
            Record::PublicSecurity(Ps::Vehicle {
                id_number,
                plate,
                value_fen,
                disability_adapted,
            }) => self.ps_vehicles.push(ps_vehicles::ActiveModel {
                id_number: id(id_number),
                plate: Set(plate.clone()),
                value_fen: Set(value_fen.0),
                disability_adapted: Set(*disability_adapted),
                ..Default::default()
            }),
            Record::CivilAffairs(Ca::Person {
                id_number,
                name,
                marital_status,
                spouse_id_number,
                married_on,
                assistance_category,
                verified_monthly_income_fen,
                financial_assets_fen,
            }) => self.ca_persons.push(ca_persons::ActiveModel {
                id_number: id(id_number),
                name: Set(name.trim().to_owned()),
                marital_status: Set(marital_status.as_str().into()),
                spouse_id_number: Set(spouse_id_number.as_ref().map(|s| s.expose().to_owned())),
                married_on: Set(*married_on),
                assistance_category: Set(assistance_category.as_str().into()),
                verified_monthly_income_fen: Set(verified_monthly_income_fen.0),
                financial_assets_fen: Set(financial_assets_fen.0),
            }),
            Record::HumanResources(Hr::Person {
                id_number,
                name,
                employer,
            }) => self.hr_persons.push(hr_persons::ActiveModel {
                id_number: id(id_number),
                name: Set(name.trim().to_owned()),
                employer: Set(employer.clone()),
            }),
            Record::HumanResources(Hr::Contribution {
                id_number,
                month,
                back_paid,
            }) => self.hr_contributions.push(hr_contributions::ActiveModel {
                id_number: id(id_number),
                month: Set(month.0),
                back_paid: Set(*back_paid),
                ..Default::default()
            }),
            Record::NaturalResources(Nr::Person { id_number }) => self.nr_persons.push(nr_persons::ActiveModel {
                id_number: id(id_number),
            }),
            Record::NaturalResources(Nr::Property {
                id_number,
                usage,
                area_centi_sqm,
                acquired_on,
                transferred_on,
                transfer_cause,
            }) => self.nr_properties.push(nr_properties::ActiveModel {
                id_number: id(id_number),
                usage: Set(usage.as_str().into()),
                area_centi_sqm: Set(area_centi_sqm.0),
                acquired_on: Set(*acquired_on),
                transferred_on: Set(*transferred_on),
                transfer_cause: Set(transfer_cause.map(|c| c.as_str().to_owned())),
                ..Default::default()
            }),
            Record::Housing(Hs::Person { id_number }) => self.hs_persons.push(hs_persons::ActiveModel {
                id_number: id(id_number),
            }),
            Record::Housing(Hs::Benefit {
                id_number,
                kind,
                active,
            }) => self.hs_benefits.push(hs_benefits::ActiveModel {
                id_number: id(id_number),
                kind: Set(kind.as_str().into()),
                active: Set(*active),
                ..Default::default()
            }),
            Record::Housing(Hs::Purchase {
                id_number,
                kind,
                purchased_on,
            }) => self.hs_purchases.push(hs_purchases::ActiveModel {
                id_number: id(id_number),
                kind: Set(kind.as_str().into()),
                purchased_on: Set(*purchased_on),
                ..Default::default()
            }),
            Record::Housing(Hs::Ban { id_number, imposed_on }) => self.hs_bans.push(hs_bans::ActiveModel {
                id_number: id(id_number),
                imposed_on: Set(*imposed_on),
                ..Default::default()
            }),
            Record::Education(Ed::Person { id_number, name }) => self.ed_persons.push(ed_persons::ActiveModel {
                id_number: id(id_number),
                name: Set(name.trim().to_owned()),
            }),
            Record::Education(Ed::Degree {
                id_number,
                level,
                graduated_on,
            }) => self.ed_degrees.push(ed_degrees::ActiveModel {
                id_number: id(id_number),
                level: Set(level.as_str().into()),
                graduated_on: Set(*graduated_on),
                ..Default::default()
            }),
        }
    }

    async fn write<C: ConnectionTrait>(self, db: &C) -> Result<(), DbErr> {
        upsert(db, self.ps_persons).await?;
        insert(db, self.ps_permits).await?;
        insert(db, self.ps_vehicles).await?;
        upsert(db, self.ca_persons).await?;
        upsert(db, self.hr_persons).await?;
        insert(db, self.hr_contributions).await?;
        upsert(db, self.nr_persons).await?;
        insert(db, self.nr_properties).await?;
        upsert(db, self.hs_persons).await?;
        insert(db, self.hs_benefits).await?;
        insert(db, self.hs_purchases).await?;
        insert(db, self.hs_bans).await?;
        upsert(db, self.ed_persons).await?;
        insert(db, self.ed_degrees).await
    }
}

/// Rows per statement: SQLite allows at most 32,766 bound values.
const CHUNK: usize = 500;

async fn insert<C: ConnectionTrait, A: ActiveModelTrait + Send>(db: &C, rows: Vec<A>) -> Result<(), DbErr> {
    for chunk in rows.chunks(CHUNK) {
        A::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Inserts person rows; a person already present gets the new values (the latest export
/// wins). Within one batch, the last line for a person wins too.
async fn upsert<C, A>(db: &C, rows: Vec<A>) -> Result<(), DbErr>
where
    C: ConnectionTrait,
    A: ActiveModelTrait + Send,
{
    let Some(pk) = <A::Entity as EntityTrait>::PrimaryKey::iter()
        .next()
        .map(|k| k.into_column())
    else {
        return insert(db, rows).await;
    };
    let mut latest: std::collections::BTreeMap<String, A> = std::collections::BTreeMap::new();
    for row in rows {
        let key = format!("{:?}", row.get(pk));
        latest.insert(key, row);
    }
    let rows: Vec<A> = latest.into_values().collect();
    let others: Vec<_> = <A::Entity as EntityTrait>::Column::iter()
        .filter(|c| c.as_str() != pk.as_str())
        .collect();
    for chunk in rows.chunks(CHUNK) {
        let mut conflict = OnConflict::column(pk);
        if others.is_empty() {
            conflict.do_nothing();
        } else {
            conflict.update_columns(others.clone());
        }
        A::Entity::insert_many(chunk.to_vec())
            .on_conflict(conflict)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}
