//! Storing the audit trail: appending a batch of events to their applications' chains
//! inside the caller's transaction, and reading a chain back.

use super::{batch::Batch, pipeline::audit_events};
use crate::audit::{Link, next};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    sea_query::{Expr, ExprTrait},
};
use std::collections::HashMap;
use uuid::Uuid;

/// An event to record: which application, what kind, its details as JSON.
pub struct Event {
    pub application_id: Uuid,
    pub kind: &'static str,
    pub payload: serde_json::Value,
}

/// Appends `events`, in order, to their applications' chains. The caller holds the
/// applications' locks (the collector touches them first), so nobody appends between
/// reading a chain's end and writing after it; the unique (application, seq) index would
/// refuse a fork anyway.
pub async fn append<C: ConnectionTrait>(db: &C, at: DateTime<Utc>, events: Vec<Event>) -> Result<(), DbErr> {
    let mut batch = Batch::new(db);
    append_in(&mut batch, db, at, events).await?;
    batch.run(db).await
}

/// [`append`], reading the chains' ends from `db` now and adding the insert to `batch`,
/// which the caller runs in the same transaction.
pub async fn append_in<C: ConnectionTrait>(
    batch: &mut Batch,
    db: &C,
    at: DateTime<Utc>,
    events: Vec<Event>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.application_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let ends = chain_ends(db, ids).await?;
    insert(batch, at, events, ends);
    Ok(())
}

/// The last link (sequence number and hash) of each of `ids`' chains; none for an
/// application without events.
pub async fn chain_ends<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> Result<HashMap<Uuid, (i32, String)>, DbErr> {
    // Only each chain's last link: the whole chains would be read back on the writer's
    // one serial path, and they grow with every event.
    let last_seq = audit_events::Entity::find()
        .select_only()
        .column(audit_events::Column::ApplicationId)
        .column_as(audit_events::Column::Seq.max(), "seq")
        .filter(audit_events::Column::ApplicationId.is_in(super::in_list::padded(ids)))
        .group_by(audit_events::Column::ApplicationId)
        .into_query();
    Ok(audit_events::Entity::find()
        .select_only()
        .columns([
            audit_events::Column::ApplicationId,
            audit_events::Column::Seq,
            audit_events::Column::Hash,
        ])
        .filter(
            Expr::tuple([
                Expr::col(audit_events::Column::ApplicationId),
                Expr::col(audit_events::Column::Seq),
            ])
            .in_subquery(last_seq),
        )
        .into_tuple::<(Uuid, i32, String)>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, seq, hash)| (id, (seq, hash)))
        .collect())
}

/// Appends `events` after the chain ends read earlier with [`chain_ends`], adding the
/// insert to `batch`: for a caller that has made sure, under the write lock, that the
/// chains have not grown since.
pub fn append_after(batch: &mut Batch, at: DateTime<Utc>, events: Vec<Event>, ends: HashMap<Uuid, (i32, String)>) {
    insert(batch, at, events, ends);
}

/// Starts the chains of applications written in this transaction (no event yet), without
/// reading anything first: adds the insert to `batch`.
pub fn start_in(batch: &mut Batch, at: DateTime<Utc>, events: Vec<Event>) {
    insert(batch, at, events, HashMap::new());
}

fn insert(batch: &mut Batch, at: DateTime<Utc>, events: Vec<Event>, mut ends: HashMap<Uuid, (i32, String)>) {
    if events.is_empty() {
        return;
    }
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let last = ends.get(&event.application_id).map(|(s, h)| (*s, h.as_str()));
        let link = next(last, event.application_id, event.kind, at, event.payload.to_string());
        ends.insert(link.application_id, (link.seq, link.hash.clone()));
        rows.push(audit_events::ActiveModel {
            application_id: Set(link.application_id),
            seq: Set(link.seq),
            kind: Set(link.kind),
            at: Set(link.at),
            payload: Set(link.payload),
            prev_hash: Set(link.prev_hash),
            hash: Set(link.hash),
            ..Default::default()
        });
    }
    batch.push(&audit_events::Entity::insert_many(rows));
}

/// An application's chain in order.
pub async fn chain<C: ConnectionTrait>(db: &C, application_id: Uuid) -> Result<Vec<Link>, DbErr> {
    Ok(audit_events::Entity::find()
        .filter(audit_events::Column::ApplicationId.eq(application_id))
        .order_by_asc(audit_events::Column::Seq)
        .all(db)
        .await?
        .into_iter()
        .map(|r| Link {
            application_id: r.application_id,
            seq: r.seq,
            kind: r.kind,
            at: r.at,
            payload: r.payload,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
        .collect())
}
