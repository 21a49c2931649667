//! What a message costs the local RabbitMQ in CPU, by load pattern: persistent 1 KiB
//! messages with confirms through quorum queues, at full speed or at a paced rate.
//!
//! `prh bench` measures the broker at full speed through one queue; the pipeline offers it
//! a steadier, spread load over many queues. This probe shows how much of the difference
//! in the broker's CPU per message is the load pattern itself (docs/performance.md):
//!
//! ```sh
//! cargo run --release --example broker_cost -- --messages 40000                 # like the ceiling
//! cargo run --release --example broker_cost -- --messages 20000 --rate 4000 --queues 6 --headers
//! ```

use anyhow::{Context, bail};
use clap::Parser;
use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use prh::process;
use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    url: String,
    /// Messages in all.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Messages per second over all queues; none: as fast as the broker takes them.
    #[arg(long)]
    rate: Option<f64>,
    /// Quorum queues, each with its own publisher and consumer channel.
    #[arg(long, default_value_t = 1)]
    queues: usize,
    /// Consumer prefetch per queue.
    #[arg(long, default_value_t = 1000)]
    prefetch: u16,
    /// One `multiple` ack per this many deliveries (at most the prefetch).
    #[arg(long, default_value_t = 100)]
    ack_every: u16,
    /// Confirms outstanding per publisher.
    #[arg(long, default_value_t = 1000)]
    in_flight: usize,
    /// Properties like a finding's: six headers (trace context, key id, signature …),
    /// message and correlation ids, app and user id, type.
    #[arg(long)]
    headers: bool,
}

/// CPU seconds (user + system) the local `beam.smp` has used so far.
fn broker_cpu() -> anyhow::Result<f64> {
    process::all_pids()
        .find(|pid| process::comm(pid).as_deref() == Some("beam.smp"))
        .and_then(|pid| process::cpu_seconds(&pid))
        .context("no local RabbitMQ (beam.smp) to measure")
}

fn properties(headers: bool) -> BasicProperties {
    let props = BasicProperties::default().with_delivery_mode(2);
    if !headers {
        return props;
    }
    let mut table = FieldTable::default();
    for (k, v) in [
        ("x-prh-schema", "1"),
        ("x-prh-policy", "weihai-2026"),
        ("x-prh-department", "housing"),
        ("traceparent", "00-0190f1c2a3b4c5d6e7f8091a2b3c4d5e-0190f1c2a3b4c5d6-01"),
        ("x-prh-key-id", "housing-2026-3f9a1c"),
        ("x-prh-signature", &"A".repeat(86)),
    ] {
        table.insert(k.into(), AMQPValue::LongString(v.into()));
    }
    props
        .with_headers(table)
        .with_message_id(uuid::Uuid::now_v7().to_string().into())
        .with_correlation_id(uuid::Uuid::now_v7().to_string().into())
        .with_app_id("broker-cost".into())
        .with_user_id("guest".into())
        .with_type("finding.reported".into())
        .with_content_type("application/json".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.ack_every == 0 || args.ack_every > args.prefetch {
        bail!("--ack-every must be between 1 and --prefetch, or the consumer stalls");
    }
    let conn = Connection::connect(&args.url, ConnectionProperties::default()).await?;
    let setup = conn.create_channel().await?;
    let per_queue = args.messages / args.queues.max(1);
    let mut queues = Vec::new();
    for i in 0..args.queues.max(1) {
        let name = format!("prh-broker-cost-{}-{i}", std::process::id());
        let mut qargs = FieldTable::default();
        qargs.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        setup
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), qargs)
            .await?;
        queues.push(name);
    }

    let mut consumers = Vec::new();
    for name in &queues {
        let channel = conn.create_channel().await?;
        channel.basic_qos(args.prefetch, BasicQosOptions::default()).await?;
        let mut consumer = channel
            .basic_consume(
                name.as_str().into(),
                "broker-cost".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let every = u64::from(args.ack_every);
        consumers.push(tokio::spawn(async move {
            let mut got = 0u64;
            while (got as usize) < per_queue {
                let delivery = consumer.next().await.context("consumer ended")??;
                got += 1;
                if got.is_multiple_of(every) || got as usize == per_queue {
                    delivery.ack(BasicAckOptions { multiple: true }).await?;
                }
            }
            drop(channel);
            anyhow::Ok(())
        }));
    }

    let cpu_before = broker_cpu()?;
    let started = Instant::now();
    let mut publishers = Vec::new();
    for name in queues.clone() {
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let (rate, queue_count, in_flight, headers) = (args.rate, args.queues.max(1), args.in_flight, args.headers);
        publishers.push(tokio::spawn(async move {
            let body = vec![b'x'; 1024];
            let gap = rate.map(|r| Duration::from_secs_f64(queue_count as f64 / r));
            let t0 = tokio::time::Instant::now();
            let mut pending = VecDeque::new();
            for i in 0..per_queue {
                if let Some(gap) = gap {
                    tokio::time::sleep_until(t0 + gap * i as u32).await;
                }
                let options = BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                pending.push_back(
                    channel
                        .basic_publish("".into(), name.as_str().into(), options, &body, properties(headers))
                        .await?,
                );
                if pending.len() >= in_flight
                    && let Some(confirm) = pending.pop_front()
                {
                    confirm.await?;
                }
            }
            for confirm in pending {
                confirm.await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in publishers.into_iter().chain(consumers) {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = broker_cpu()? - cpu_before;
    let moved = per_queue * queues.len();
    println!(
        "{moved} messages, {} queue(s), rate {}, prefetch {}, ack every {}, headers {}: {:.0} messages/s, broker {:.2} cores, {:.0} µs of broker CPU per message",
        queues.len(),
        args.rate
            .map(|r| format!("{r:.0}/s"))
            .unwrap_or_else(|| "unpaced".into()),
        args.prefetch,
        args.ack_every,
        args.headers,
        moved as f64 / elapsed,
        cpu / elapsed,
        cpu * 1e6 / moved as f64
    );
    for name in &queues {
        setup
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    conn.close(200, "bye".into()).await?;
    Ok(())
}
