//! 住建: housing benefits, affordable-housing purchases, fraud bans and other open
//! applications (HS-BENEFIT, HS-PURCHASE, HS-BAN, HS-DUPLICATE).

use super::{Answer, Context, combine, unknown};
use prh_common::{
    criteria::{CriterionCode as C, ReasonCode as R},
    dates::years_before,
    id_number::IdNumber,
    store::registry::{hs_application_members, hs_bans, hs_benefits, hs_persons, hs_purchases},
};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

/// What the housing bureau holds about a household's persons.
#[derive(Debug, Default)]
pub(super) struct Holdings {
    pub benefits: Vec<hs_benefits::Model>,
    pub purchases: Vec<hs_purchases::Model>,
    pub bans: Vec<hs_bans::Model>,
    /// Memberships of the same persons in other applications still open.
    pub other_open: Vec<hs_application_members::Model>,
}

pub async fn check(
    db: &DatabaseConnection,
    ctx: &Context<'_>,
    ids: &[IdNumber],
    application_id: Uuid,
) -> Result<Answer, DbErr> {
    let raw: Vec<&str> = ids.iter().map(IdNumber::expose).collect();

    // Record this application's members first (idempotent on redelivery). Two applications
    // naming the same person: the one checked second sees the first while it is open.
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

    let known = hs_persons::Entity::find()
        .filter(hs_persons::Column::IdNumber.is_in(raw.clone()))
        .all(db)
        .await?;
    let missing = unknown(ids, known.into_iter().map(|r| r.id_number));
    let holdings = Holdings {
        benefits: hs_benefits::Entity::find()
            .filter(hs_benefits::Column::IdNumber.is_in(raw.clone()))
            .filter(hs_benefits::Column::Active.eq(true))
            .all(db)
            .await?,
        purchases: hs_purchases::Entity::find()
            .filter(hs_purchases::Column::IdNumber.is_in(raw.clone()))
            .all(db)
            .await?,
        bans: hs_bans::Entity::find()
            .filter(hs_bans::Column::IdNumber.is_in(raw.clone()))
            .all(db)
            .await?,
        other_open: hs_application_members::Entity::find()
            .filter(hs_application_members::Column::IdNumber.is_in(raw))
            .filter(hs_application_members::Column::ApplicationId.ne(application_id))
            .filter(hs_application_members::Column::Closed.eq(false))
            .all(db)
            .await?,
    };
    Ok(evaluate(ctx, ids, &missing, &holdings))
}

pub(super) fn evaluate(ctx: &Context<'_>, ids: &[IdNumber], missing: &[String], h: &Holdings) -> Answer {
    let masked = |id: &str| {
        ids.iter()
            .find(|i| i.expose() == id)
            .map(IdNumber::masked)
            .unwrap_or_default()
    };
    let since = years_before(ctx.date, ctx.policy.ban_years);
    let benefit = combine(
        C::HsBenefit,
        h.benefits
            .iter()
            .filter(|b| b.active)
            .map(|b| (R::AlreadyHoused, format!("{} holds {}", masked(&b.id_number), b.kind)))
            .collect(),
        missing,
        "no public housing or rent subsidy".into(),
        "nobody rents public housing or receives a rent subsidy".into(),
    );
    let purchase = combine(
        C::HsPurchase,
        h.purchases
            .iter()
            .map(|b| {
                (
                    R::BoughtAffordableHousing,
                    format!("{} bought {} housing", masked(&b.id_number), b.kind),
                )
            })
            .collect(),
        missing,
        "no affordable-housing purchase".into(),
        "nobody bought 经济适用房, 限价房 or 房改房".into(),
    );
    // A ban is active when it was imposed after the same day `ban_years` ago.
    let ban = combine(
        C::HsBan,
        h.bans
            .iter()
            .filter(|b| b.imposed_on > since && b.imposed_on <= ctx.date)
            .map(|b| {
                (
                    R::FraudBan,
                    format!("{} banned on {}", masked(&b.id_number), b.imposed_on),
                )
            })
            .collect(),
        missing,
        "no active fraud ban".into(),
        format!("no fraud ban imposed after {since}"),
    );
    let duplicate = combine(
        C::HsDuplicate,
        h.other_open
            .iter()
            .map(|o| {
                (
                    R::DuplicateApplication,
                    format!("{} is in another open application", masked(&o.id_number)),
                )
            })
            .collect(),
        missing,
        "in no other open application".into(),
        "nobody is part of another open application".into(),
    );
    Answer {
        criteria: vec![benefit, purchase, ban, duplicate],
        facts: Default::default(),
    }
}
