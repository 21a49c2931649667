//! The one consumer runtime every pool runs on (department checks, the collector, AMQP
//! intake): supervised connection, prefetch, bounded concurrency, ack only after the
//! handler's effect, and parking of bad messages with their reason.

use super::{
    Health, Outgoing, Publisher, Topology, connect,
    message::{Incoming, header_u64},
    settle::{Pending, Settler},
};
use crate::{contract::headers, metrics as m};
use futures_lite::StreamExt;
use lapin::{
    Connection,
    message::Delivery,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What to do with a delivery once the handler is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The effect is committed (or confirmed by the broker): ack.
    Ack,
    /// The message can never succeed: park it in the dead-letter queue with this reason.
    Park(String),
    /// A transient fault: requeue after a pause; the queue's delivery limit stops a loop.
    Retry(String),
}

/// Handles one delivery. `publisher` belongs to the current connection.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, msg: Incoming<'_>, publisher: &Publisher) -> impl Future<Output = Disposition> + Send;
}

/// Which queue to consume and how hard.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Also the component name in logs, `/readyz` and the AMQP `app_id`.
    pub name: String,
    pub queue: String,
    pub prefetch: u16,
    pub concurrency: usize,
    /// How long deliveries in flight may take to finish once shutdown begins; past it
    /// they are abandoned unacknowledged, and the broker redelivers them.
    pub grace: Duration,
}

/// Runs `handler` over `spec.queue` until `shutdown`: reconnects with backoff whenever the
/// connection or the consumer ends, and on shutdown stops taking deliveries and finishes
/// those in flight before returning.
pub async fn run<H: Handler>(
    amqp_url: &str,
    topology: &Topology,
    spec: ConsumerSpec,
    handler: Arc<H>,
    health: Health,
    shutdown: CancellationToken,
) {
    health.register(&spec.name);
    while !shutdown.is_cancelled() {
        let Some(conn) = connect(amqp_url, &spec.name, &shutdown).await else {
            break;
        };
        match consume(&conn, amqp_url, topology, &spec, &handler, &health, &shutdown).await {
            Ok(()) => tracing::info!(consumer = %spec.name, "consumer stopped"),
            Err(e) => {
                tracing::warn!(consumer = %spec.name, error = %e, "consumer lost its connection; reconnecting")
            }
        }
        health.set(&spec.name, false);
        let _ = conn.close(200, "bye".into()).await;
        if !shutdown.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn consume<H: Handler>(
    conn: &Connection,
    amqp_url: &str,
    topology: &Topology,
    spec: &ConsumerSpec,
    handler: &Arc<H>,
    health: &Health,
    shutdown: &CancellationToken,
) -> lapin::Result<()> {
    let channel = conn.create_channel().await?;
    topology.declare(&channel).await?;
    channel.basic_qos(spec.prefetch, BasicQosOptions::default()).await?;
    let publisher = Publisher::open(conn, &spec.name, amqp_url).await?;
    let tag = format!("{}-{}", spec.name, Uuid::now_v7());
    let mut consumer = channel
        .basic_consume(
            spec.queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    health.set(&spec.name, true);
    tracing::info!(consumer = %spec.name, queue = %spec.queue, prefetch = spec.prefetch, concurrency = spec.concurrency, "consuming");

    let settler = Settler::start(channel.clone());
    let slots = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    let outcome = loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break Ok(()),
        };
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = shutdown.cancelled() => break Ok(()),
        };
        match next {
            Some(Ok(delivery)) => {
                let (pending, handler, publisher, topology, queue, name) = (
                    settler.pending(delivery.delivery_tag),
                    handler.clone(),
                    publisher.clone(),
                    topology.clone(),
                    spec.queue.clone(),
                    spec.name.clone(),
                );
                in_flight.spawn(async move {
                    let _permit = permit;
                    process(
                        delivery,
                        pending,
                        handler.as_ref(),
                        &publisher,
                        &topology,
                        &queue,
                        &name,
                    )
                    .await;
                });
            }
            Some(Err(e)) => break Err(e),
            // The broker cancelled the consumer (queue deleted, node restarted): resubscribe.
            None => break Ok(()),
        }
        while in_flight.try_join_next().is_some() {}
    };
    if shutdown.is_cancelled() {
        let _ = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
    }
    // Finish what was taken before giving the channel up, so nothing is half done; past
    // the grace period, abandon the rest unacknowledged (the broker redelivers them).
    let drained = tokio::time::timeout(spec.grace, async { while in_flight.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(consumer = %spec.name, left = in_flight.len(), "grace period over: abandoning deliveries in flight");
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
    }
    settler.finish().await;
    if outcome.is_ok() {
        let _ = publisher.channel().close(200, "bye".into()).await;
        let _ = channel.close(200, "bye".into()).await;
    }
    outcome
}

async fn process<H: Handler>(
    delivery: Delivery,
    pending: Pending,
    handler: &H,
    publisher: &Publisher,
    topology: &Topology,
    queue: &str,
    consumer: &str,
) {
    let delivery_count = header_u64(&delivery.properties, "x-delivery-count").unwrap_or(0);
    let label = [("consumer", consumer.to_owned())];
    metrics::counter!(m::DELIVERIES, &label).increment(1);
    if delivery.redelivered {
        metrics::counter!(m::REDELIVERIES, &label).increment(1);
        // Expected after a crash, a broker restart or a retry; effects are idempotent.
        tracing::info!(queue, delivery_count, "redelivered message");
    }
    let incoming = Incoming {
        body: &delivery.data,
        properties: &delivery.properties,
        routing_key: delivery.routing_key.as_str(),
        delivery_count,
    };
    let disposition = handler.handle(incoming, publisher).await;
    match disposition {
        Disposition::Ack => pending.ack(),
        Disposition::Park(reason) => {
            tracing::warn!(queue, reason = %reason, "parking message in the dead-letter queue");
            let code = reason.split(':').next().unwrap_or("unknown").to_owned();
            metrics::counter!(m::DEAD_LETTERS, "consumer" => consumer.to_owned(), "reason" => code).increment(1);
            match park(&delivery, publisher, topology, queue, &reason).await {
                Ok(()) => pending.ack(),
                Err(e) => {
                    tracing::warn!(queue, error = %e, "could not park; requeueing");
                    pending.requeue()
                }
            }
        }
        Disposition::Retry(reason) => {
            // Back off before handing the message back: 100 ms doubling to 5 s.
            let pause =
                Duration::from_millis(100u64.saturating_mul(1 << delivery_count.min(6))).min(Duration::from_secs(5));
            tracing::warn!(queue, reason = %reason, attempt = delivery_count + 1, ?pause, "transient failure; will retry");
            metrics::counter!(m::RETRIES, &label).increment(1);
            tokio::time::sleep(pause).await;
            pending.requeue()
        }
    }
}

/// Publishes the delivery's body, unchanged, to the parking queue with the reason in a header.
async fn park(
    delivery: &Delivery,
    publisher: &Publisher,
    topology: &Topology,
    queue: &str,
    reason: &str,
) -> Result<(), super::PublishError> {
    let props = &delivery.properties;
    // Every header is kept (as text); the original contract version is kept under its own
    // name, since the parked copy is re-published with this build's version.
    let mut headers_out: Vec<(String, String)> = props
        .headers()
        .as_ref()
        .map(|t| {
            t.inner()
                .iter()
                .map(|(k, v)| {
                    let name = if k.as_str() == headers::SCHEMA {
                        headers::ORIGINAL_SCHEMA
                    } else {
                        k.as_str()
                    };
                    let text = super::message::header_str(props, k.as_str()).unwrap_or_else(|| format!("{v:?}"));
                    (name.to_owned(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    headers_out.push((headers::DEAD_REASON.to_owned(), reason.to_owned()));
    headers_out.push((headers::DEAD_QUEUE.to_owned(), queue.to_owned()));
    let parse_uuid = |v: &Option<lapin::types::ShortString>| v.as_ref().and_then(|s| Uuid::parse_str(s.as_str()).ok());
    let msg = Outgoing {
        exchange: topology.dead_exchange(),
        routing_key: queue.to_owned(),
        kind: props.kind().as_ref().map(|k| k.as_str().to_owned()).unwrap_or_default(),
        message_id: parse_uuid(props.message_id()).unwrap_or_else(Uuid::now_v7),
        correlation_id: parse_uuid(props.correlation_id()),
        headers: headers_out,
        body: delivery.data.clone(),
    };
    publisher.publish(&msg).await
}
