//! The housing pool's second duty: when an application is decided (qualified or rejected),
//! its members stop counting as "in another open application" for HS-DUPLICATE.

use prh_common::{
    bus::{Disposition, Handler, Incoming, Publisher},
    contract::DecisionEvent,
    id_number::redact,
    store::{db::is_transient, registry::hs_application_members},
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Expr};

pub struct HousingCloser {
    pub registry: DatabaseConnection,
}

impl Handler for HousingCloser {
    async fn handle(&self, msg: Incoming<'_>, _publisher: &Publisher) -> Disposition {
        if let Err(reason) = msg.check_schema(false) {
            return Disposition::Park(reason);
        }
        let event: DecisionEvent = match serde_json::from_slice(msg.body) {
            Ok(e) => e,
            Err(e) => return Disposition::Park(redact(&format!("malformed_body: {e}"))),
        };
        let closed = hs_application_members::Entity::update_many()
            .col_expr(hs_application_members::Column::Closed, Expr::value(true))
            .filter(hs_application_members::Column::ApplicationId.eq(event.application_id))
            .exec(&self.registry)
            .await;
        match closed {
            Ok(_) => Disposition::Ack,
            Err(e) if is_transient(&e) => Disposition::Retry(format!("registry: {e}")),
            Err(e) => Disposition::Park(format!("registry_error: {}", redact(&e.to_string()))),
        }
    }
}
