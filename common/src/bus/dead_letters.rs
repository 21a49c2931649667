//! The parking queues, for operators: list what was parked and why, and replay parked
//! messages to the queue they came from once the cause is fixed.

use super::{PublishError, Publisher, Topology, message::header_str};
use crate::contract::headers;
use lapin::{
    BasicProperties, Channel, Connection,
    message::BasicGetMessage,
    options::{BasicAckOptions, BasicGetOptions},
    types::{FieldTable, ShortString},
};

/// One parked message, as `prh dead-letters list` shows it. No body: it may hold
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub parking_queue: String,
    /// The work queue it came from.
    pub origin: String,
    pub message_id: Option<String>,
    pub kind: Option<String>,
    pub correlation_id: Option<String>,
    /// PRH's reason, or the broker's (`delivery_limit`, `rejected`…) for messages it
    /// dead-lettered itself.
    pub reason: String,
    pub body_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("replaying a message failed: {0}")]
    Publish(#[from] PublishError),
    #[error("no work queue named `{0}`")]
    UnknownQueue(String),
}

fn short(v: &Option<ShortString>) -> Option<String> {
    v.as_ref().map(|s| s.as_str().to_owned())
}

fn describe(parking_queue: &str, m: &BasicGetMessage) -> Parked {
    let props = &m.delivery.properties;
    let reason = header_str(props, headers::DEAD_REASON)
        .or_else(|| header_str(props, "x-first-death-reason").map(|r| format!("{r} (by the broker)")))
        .unwrap_or_else(|| "unknown".into());
    let origin = header_str(props, headers::DEAD_QUEUE)
        .or_else(|| header_str(props, "x-first-death-queue"))
        .unwrap_or_default();
    Parked {
        parking_queue: parking_queue.to_owned(),
        origin,
        message_id: short(props.message_id()),
        kind: short(props.kind()),
        correlation_id: short(props.correlation_id()),
        reason,
        body_bytes: m.delivery.data.len(),
    }
}

/// Takes every message of `queue` without acknowledging it: closing `channel` puts them
/// all back.
async fn take_all(channel: &Channel, queue: &str) -> lapin::Result<Vec<BasicGetMessage>> {
    let mut out = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?
    {
        out.push(m);
    }
    Ok(out)
}

/// Opens a connection, runs `op` on it, closes it; retries a few times with backoff when
/// the broker fails (a quorum queue declared a moment ago may not be serving yet).
async fn with_broker<T, F, Fut>(amqp_url: &str, op: F) -> Result<T, DeadLetterError>
where
    F: Fn(Connection) -> Fut,
    Fut: std::future::Future<Output = (Connection, Result<T, DeadLetterError>)>,
{
    let mut attempt = 0;
    loop {
        let conn = Connection::connect(
            amqp_url,
            lapin::ConnectionProperties::default().with_connection_name("prh-dead-letters".into()),
        )
        .await?;
        let (conn, result) = op(conn).await;
        let _ = conn.close(200, "bye".into()).await;
        match result {
            Err(DeadLetterError::Broker(e)) if attempt < 5 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "broker error; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(300 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Every parked message of every parking queue, left where it is.
pub async fn list(amqp_url: &str, topology: &Topology) -> Result<Vec<Parked>, DeadLetterError> {
    with_broker(amqp_url, |conn| async move {
        let result = list_on(&conn, topology).await;
        (conn, result)
    })
    .await
}

async fn list_on(conn: &Connection, topology: &Topology) -> Result<Vec<Parked>, DeadLetterError> {
    let channel = conn.create_channel().await?;
    topology.declare(&channel).await?;
    let mut out = Vec::new();
    for queue in topology.work_queues() {
        let parking = topology.dead_queue(&queue);
        out.extend(
            take_all(&channel, &parking)
                .await?
                .iter()
                .map(|m| describe(&parking, m)),
        );
    }
    // Closing the channel returns every message taken, unacknowledged, to its queue.
    let _ = channel.close(200, "listed".into()).await;
    Ok(out)
}

/// Re-publishes parked messages to the work queue they came from: all of them, those of
/// one work queue, or one message by id. Returns how many were replayed. Each is
/// removed from its parking queue only after the broker confirmed the re-publish.
pub async fn replay(
    amqp_url: &str,
    topology: &Topology,
    work_queue: Option<&str>,
    message_id: Option<&str>,
) -> Result<usize, DeadLetterError> {
    with_broker(amqp_url, |conn| async move {
        let result = replay_on(&conn, topology, amqp_url, work_queue, message_id).await;
        (conn, result)
    })
    .await
}

async fn replay_on(
    conn: &Connection,
    topology: &Topology,
    amqp_url: &str,
    work_queue: Option<&str>,
    message_id: Option<&str>,
) -> Result<usize, DeadLetterError> {
    let queues = topology.work_queues();
    if let Some(q) = work_queue
        && !queues.iter().any(|w| w == q)
    {
        return Err(DeadLetterError::UnknownQueue(q.to_owned()));
    }
    let channel = conn.create_channel().await?;
    topology.declare(&channel).await?;
    let publisher = Publisher::open(conn, "prh-dead-letters", amqp_url).await?;
    let mut replayed = 0;
    for queue in queues.iter().filter(|q| work_queue.is_none_or(|w| w == q.as_str())) {
        let parking = topology.dead_queue(queue);
        for m in take_all(&channel, &parking).await? {
            let props = &m.delivery.properties;
            if message_id.is_some_and(|id| short(props.message_id()).as_deref() != Some(id)) {
                continue;
            }
            publisher
                .republish("", queue, &m.delivery.data, restored(props))
                .await?;
            m.delivery.ack(BasicAckOptions::default()).await?;
            replayed += 1;
        }
    }
    let _ = channel.close(200, "replayed".into()).await;
    let _ = publisher.channel().close(200, "replayed".into()).await;
    Ok(replayed)
}

/// The properties the message had before it was parked: parking headers and the
/// broker's death records removed, the original contract version put back.
fn restored(props: &BasicProperties) -> BasicProperties {
    let mut table = FieldTable::default();
    let original_schema = header_str(props, headers::ORIGINAL_SCHEMA);
    if let Some(existing) = props.headers().as_ref() {
        for (k, v) in existing.inner() {
            let name = k.as_str();
            let parking_header = [
                headers::DEAD_REASON,
                headers::DEAD_QUEUE,
                headers::ORIGINAL_SCHEMA,
                "x-death",
            ]
            .contains(&name)
                || name.starts_with("x-first-death-")
                || name.starts_with("x-last-death-");
            if !parking_header {
                table.insert(k.clone(), v.clone());
            }
        }
    }
    if let Some(schema) = original_schema {
        table.insert(
            headers::SCHEMA.into(),
            lapin::types::AMQPValue::LongString(schema.as_str().into()),
        );
    }
    props.clone().with_headers(table)
}
