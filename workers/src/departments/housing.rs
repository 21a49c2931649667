//! 住建: housing benefits, affordable-housing purchases, fraud bans and other open
//! applications (HS-BENEFIT, HS-PURCHASE, HS-BAN, HS-DUPLICATE).

use super::{Answer, ByPerson, Check, Context, by_id, combine, rows_about, unknown};
use prh_common::{
    contract::{CheckRequest, Subject},
    criteria::{CriterionCode as C, ReasonCode as R},
    dates::years_before,
    id_number::IdNumber,
    store::registry::{hs_application_members, hs_bans, hs_benefits, hs_persons, hs_purchases},
};
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set};
use std::collections::HashMap;

/// What the housing bureau holds about a household's persons.
#[derive(Debug, Default)]
pub(super) struct Holdings {
    pub benefits: Vec<hs_benefits::Model>,
    pub purchases: Vec<hs_purchases::Model>,
    pub bans: Vec<hs_bans::Model>,
    /// Memberships of the same persons in other applications still open.
    pub other_open: Vec<hs_application_members::Model>,
}

pub struct Housing;

pub struct Rows {
    known: HashMap<String, hs_persons::Model>,
    benefits: ByPerson<hs_benefits::Model>,
    purchases: ByPerson<hs_purchases::Model>,
    bans: ByPerson<hs_bans::Model>,
    open_memberships: ByPerson<hs_application_members::Model>,
}

impl Check for Housing {
    type Rows = Rows;

    async fn read(txn: &DatabaseTransaction, ids: &[&str], requests: &[&CheckRequest]) -> Result<Rows, DbErr> {
        // Record the batch's members first (idempotent on redelivery). Two applications
        // naming the same person: the one checked second sees the first while it is open,
        // and two checked in the same batch see each other.
        let members: Vec<_> = requests
            .iter()
            .flat_map(|r| {
                r.subject
                    .id_numbers()
                    .into_iter()
                    .map(|id| hs_application_members::ActiveModel {
                        application_id: Set(r.application_id),
                        id_number: Set(id.expose().to_owned()),
                        closed: Set(false),
                        ..Default::default()
                    })
            })
            .collect();
        if !members.is_empty() {
            hs_application_members::Entity::insert_many(members)
                .on_conflict_do_nothing_on([
                    hs_application_members::Column::ApplicationId,
                    hs_application_members::Column::IdNumber,
                ])
                .exec_without_returning(txn)
                .await?;
        }
        let known = rows_about(txn, hs_persons::Entity::find(), hs_persons::Column::IdNumber, ids).await?;
        let benefits = rows_about(
            txn,
            hs_benefits::Entity::find().filter(hs_benefits::Column::Active.eq(true)),
            hs_benefits::Column::IdNumber,
            ids,
        )
        .await?;
        let purchases = rows_about(txn, hs_purchases::Entity::find(), hs_purchases::Column::IdNumber, ids).await?;
        let bans = rows_about(txn, hs_bans::Entity::find(), hs_bans::Column::IdNumber, ids).await?;
        let open_memberships = rows_about(
            txn,
            hs_application_members::Entity::find().filter(hs_application_members::Column::Closed.eq(false)),
            hs_application_members::Column::IdNumber,
            ids,
        )
        .await?;
        Ok(Rows {
            known: by_id(known, |r| &r.id_number),
            benefits: ByPerson::new(benefits, |r| &r.id_number),
            purchases: ByPerson::new(purchases, |r| &r.id_number),
            bans: ByPerson::new(bans, |r| &r.id_number),
            open_memberships: ByPerson::new(open_memberships, |r| &r.id_number),
        })
    }

    fn answer(ctx: &Context<'_>, request: &CheckRequest, rows: &Rows) -> Option<Answer> {
        let Subject::Housing { id_numbers } = &request.subject else {
            return None;
        };
        let ids = || id_numbers.iter().map(IdNumber::expose);
        let missing = unknown(id_numbers, |id| rows.known.contains_key(id));
        let holdings = Holdings {
            benefits: rows.benefits.of(ids()),
            purchases: rows.purchases.of(ids()),
            bans: rows.bans.of(ids()),
            other_open: rows
                .open_memberships
                .of(ids())
                .into_iter()
                .filter(|m| m.application_id != request.application_id)
                .collect(),
        };
        Some(evaluate(ctx, id_numbers, &missing, &holdings))
    }
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
