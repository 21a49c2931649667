//! The AMQP intake consumer: partner systems publish the same JSON form to `prh.intake`;
//! it goes through the same validation and persistence as HTTP. The message id is the
//! idempotency key. A bad message is parked with its reason.

use crate::{
    http::parse_form,
    intake::{Intake, SubmitError},
};
use prh_common::{
    application::Channel,
    bus::{Disposition, Handler, Incoming, Publisher},
};
use std::sync::Arc;

pub struct IntakeConsumer {
    pub intake: Arc<Intake>,
    pub max_body_bytes: usize,
}

impl Handler for IntakeConsumer {
    async fn handle(&self, msg: Incoming<'_>, _publisher: &Publisher) -> Disposition {
        if let Err(reason) = msg.check_schema(true) {
            return Disposition::Park(reason);
        }
        if msg.body.len() > self.max_body_bytes {
            return Disposition::Park(format!(
                "body_too_large: {} bytes, the limit is {}",
                msg.body.len(),
                self.max_body_bytes
            ));
        }
        let form = match parse_form(msg.body) {
            Ok(f) => f,
            Err(e) => {
                return Disposition::Park(format!("{}: {} at `{}`", e.code, e.message, e.field));
            }
        };
        // The message id is the idempotency key: without it a redelivery would become a
        // second application.
        let Some(key) = msg
            .message_id()
            .filter(|id| !id.trim().is_empty())
            .map(|id| format!("amqp:{id}"))
        else {
            return Disposition::Park(
                "missing_message_id: the message_id property is required; it is the idempotency key".into(),
            );
        };
        match self.intake.submit(&form, Some(&key), Channel::Amqp).await {
            Ok(_) => Disposition::Ack,
            Err(SubmitError::Invalid(errors)) => {
                let first = errors.first().map(|e| e.code.clone()).unwrap_or_default();
                let all = serde_json::to_string(&errors).unwrap_or_default();
                Disposition::Park(format!("{first}: {all}"))
            }
            Err(e @ SubmitError::KeyReused) => Disposition::Park(format!("idempotency_key_reused: {e}")),
            // An operator can fix the configuration; until the delivery limit, try again.
            Err(e @ SubmitError::NoPolicy(_)) => Disposition::Retry(e.to_string()),
            Err(e) if e.is_transient() => Disposition::Retry(e.to_string()),
            Err(e) => Disposition::Park(format!(
                "intake_error: {}",
                prh_common::id_number::redact(&e.to_string())
            )),
        }
    }
}
