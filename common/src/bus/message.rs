//! Messages as PRH sends and receives them: the AMQP properties and headers of the contract
//! in one place, so every publisher sets them the same way.

use crate::contract::{SCHEMA_VERSION, headers};
use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, ShortString},
};
use uuid::Uuid;

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    /// The AMQP `type`, e.g. `check.requested`.
    pub kind: String,
    pub message_id: Uuid,
    pub correlation_id: Option<Uuid>,
    /// Extra headers beyond `x-prh-schema`, which is always set.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Outgoing {
    pub(crate) fn properties(&self, app_id: &str, user_id: Option<&str>) -> BasicProperties {
        let mut table = FieldTable::default();
        table.insert(headers::SCHEMA.into(), AMQPValue::LongString(SCHEMA_VERSION.into()));
        for (k, v) in &self.headers {
            table.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
        }
        let mut props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_message_id(self.message_id.to_string().into())
            .with_type(self.kind.as_str().into())
            .with_timestamp(chrono::Utc::now().timestamp() as u64)
            .with_app_id(app_id.into())
            .with_headers(table);
        if let Some(id) = self.correlation_id {
            props = props.with_correlation_id(id.to_string().into());
        }
        if let Some(user) = user_id {
            props = props.with_user_id(user.into());
        }
        props
    }
}

/// A received delivery as handlers see it.
pub struct Incoming<'a> {
    pub body: &'a [u8],
    pub properties: &'a BasicProperties,
    pub routing_key: &'a str,
    /// Earlier deliveries of this message (`x-delivery-count`).
    pub delivery_count: u64,
}

impl Incoming<'_> {
    pub fn header(&self, name: &str) -> Option<String> {
        header_str(self.properties, name)
    }

    pub fn message_id(&self) -> Option<&str> {
        self.properties.message_id().as_ref().map(ShortString::as_str)
    }

    /// Refuses any contract version but this build's. A missing header counts as the
    /// current version only where `allow_missing` (partner intake).
    pub fn check_schema(&self, allow_missing: bool) -> Result<(), String> {
        match self.header(headers::SCHEMA) {
            Some(v) if v == SCHEMA_VERSION => Ok(()),
            Some(v) => Err(format!(
                "unknown_schema_version: {} is `{v}`, this build speaks `{SCHEMA_VERSION}`",
                headers::SCHEMA
            )),
            None if allow_missing => Ok(()),
            None => Err(format!(
                "missing_schema_version: header {} is required",
                headers::SCHEMA
            )),
        }
    }
}

/// A string header, whichever AMQP string type the sender used.
pub fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    let value = props.headers().as_ref()?.inner().get(name)?;
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A numeric header such as `x-delivery-count`.
pub fn header_u64(props: &BasicProperties, name: &str) -> Option<u64> {
    match props.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}
