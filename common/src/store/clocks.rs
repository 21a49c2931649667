//! Reading the statutory clock's stops (补正 pauses) of applications, for the sweeper, the
//! status view and the deadline report.

use super::pipeline::clock_pauses;
use crate::time_limit::Pause;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;
use uuid::Uuid;

/// Every pause of each of `ids`, oldest first. `None` reads every application's.
pub async fn pauses_of<C: ConnectionTrait>(db: &C, ids: Option<&[Uuid]>) -> Result<HashMap<Uuid, Vec<Pause>>, DbErr> {
    let mut query = clock_pauses::Entity::find().order_by_asc(clock_pauses::Column::Id);
    if let Some(ids) = ids {
        query = query.filter(clock_pauses::Column::ApplicationId.is_in(ids.to_vec()));
    }
    let mut out: HashMap<Uuid, Vec<Pause>> = HashMap::new();
    for p in query.all(db).await? {
        out.entry(p.application_id).or_default().push(Pause {
            from: p.paused_on,
            until: p.resumed_on,
        });
    }
    Ok(out)
}
