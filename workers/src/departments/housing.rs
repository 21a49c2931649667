//! 住建: housing benefits, affordable-housing purchases, fraud bans and other open
//! applications (HS-BENEFIT, HS-PURCHASE, HS-BAN, HS-DUPLICATE).

use super::{Answer, Context, combine};
use prh_common::{
    criteria::{CriterionCode as C, ReasonCode as R},
    dates::years_before,
    id_number::IdNumber,
    store::registry::{hs_application_members, hs_bans, hs_benefits, hs_persons, hs_purchases},
};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

pub async fn check(
    db: &DatabaseConnection,
    ctx: &Context<'_>,
    ids: &[IdNumber],
    application_id: Uuid,
) -> Result<Answer, DbErr> {
    let raw: Vec<&str> = ids.iter().map(IdNumber::expose).collect();
    let masked = |id: &str| {
        ids.iter()
            .find(|i| i.expose() == id)
            .map(IdNumber::masked)
            .unwrap_or_default()
    };

    // Record this application's members first (idempotent), so two applications naming the
    // same person see each other whichever is checked first.
    let members = ids.iter().map(|id| hs_application_members::ActiveModel {
        application_id: Set(application_id),
        id_number: Set(id.expose().to_owned()),
        closed: Set(false),
        ..Default::default()
    });
    hs_application_members::Entity::insert_many(members)
        .on_conflict_do_nothing_on([
            hs_application_members::Column::ApplicationId,
            hs_application_members::Column::IdNumber,
        ])
        .exec_without_returning(db)
        .await?;

    let known: Vec<String> = hs_persons::Entity::find()
        .filter(hs_persons::Column::IdNumber.is_in(raw.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.id_number)
        .collect();
    let missing: Vec<String> = ids
        .iter()
        .filter(|i| !known.iter().any(|k| k == i.expose()))
        .map(IdNumber::masked)
        .collect();

    let benefits = hs_benefits::Entity::find()
        .filter(hs_benefits::Column::IdNumber.is_in(raw.clone()))
        .filter(hs_benefits::Column::Active.eq(true))
        .all(db)
        .await?;
    let purchases = hs_purchases::Entity::find()
        .filter(hs_purchases::Column::IdNumber.is_in(raw.clone()))
        .all(db)
        .await?;
    let since = years_before(ctx.date, ctx.policy.ban_years);
    let bans = hs_bans::Entity::find()
        .filter(hs_bans::Column::IdNumber.is_in(raw.clone()))
        .filter(hs_bans::Column::ImposedOn.gt(since))
        .all(db)
        .await?;
    let others = hs_application_members::Entity::find()
        .filter(hs_application_members::Column::IdNumber.is_in(raw))
        .filter(hs_application_members::Column::ApplicationId.ne(application_id))
        .filter(hs_application_members::Column::Closed.eq(false))
        .all(db)
        .await?;

    let benefit = combine(
        C::HsBenefit,
        benefits
            .iter()
            .map(|b| (R::AlreadyHoused, format!("{} holds {}", masked(&b.id_number), b.kind)))
            .collect(),
        &missing,
        "no public housing or rent subsidy".into(),
        "nobody rents public housing or receives a rent subsidy".into(),
    );
    let purchase = combine(
        C::HsPurchase,
        purchases
            .iter()
            .map(|b| {
                (
                    R::BoughtAffordableHousing,
                    format!("{} bought {} housing", masked(&b.id_number), b.kind),
                )
            })
            .collect(),
        &missing,
        "no affordable-housing purchase".into(),
        "nobody bought 经济适用房, 限价房 or 房改房".into(),
    );
    let ban = combine(
        C::HsBan,
        bans.iter()
            .map(|b| {
                (
                    R::FraudBan,
                    format!("{} banned on {}", masked(&b.id_number), b.imposed_on),
                )
            })
            .collect(),
        &missing,
        "no active fraud ban".into(),
        format!("no fraud ban imposed after {since}"),
    );
    let duplicate = combine(
        C::HsDuplicate,
        others
            .iter()
            .map(|o| {
                (
                    R::DuplicateApplication,
                    format!("{} is in another open application", masked(&o.id_number)),
                )
            })
            .collect(),
        &missing,
        "in no other open application".into(),
        "nobody is part of another open application".into(),
    );
    Ok(Answer {
        criteria: vec![benefit, purchase, ban, duplicate],
        facts: Default::default(),
    })
}
