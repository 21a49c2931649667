//! Names and declaration of every exchange and queue, under one prefix so installations
//! and tests can share a broker. Work queues are quorum queues with a delivery limit and
//! a dead-letter queue each.

use crate::department::Department;
use lapin::{
    Channel, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};

/// Deliveries a parked message survives: effectively unlimited.
const PARKING_DELIVERY_LIMIT: i32 = 1_000_000;

/// Routing key of applications published to the intake exchange.
pub const INTAKE_ROUTING_KEY: &str = "application";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub prefix: String,
    pub delivery_limit: u32,
    /// Whether components declare the topology on every connect. Off where it is set up
    /// once by `prh broker setup` and components log in as users without the right to
    /// configure anything.
    pub declare_on_connect: bool,
}

impl Topology {
    pub fn new(prefix: &str, delivery_limit: u32) -> Self {
        Self {
            prefix: prefix.to_owned(),
            delivery_limit,
            declare_on_connect: true,
        }
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// Exchange and queue where partner systems publish applications.
    pub fn intake_exchange(&self) -> String {
        self.name("intake")
    }
    pub fn intake_queue(&self) -> String {
        self.name("intake")
    }
    pub fn checks_exchange(&self) -> String {
        self.name("checks")
    }
    pub fn check_queue(&self, d: Department) -> String {
        self.name(&format!("checks.{d}"))
    }
    pub fn findings_exchange(&self) -> String {
        self.name("findings")
    }
    pub fn finding_routing_key(d: Department) -> String {
        format!("finding.{d}")
    }
    pub fn collector_queue(&self) -> String {
        self.name("collector")
    }
    pub fn decisions_exchange(&self) -> String {
        self.name("decisions")
    }
    /// The default subscriber queue of decision events (intake services read it).
    pub fn decisions_queue(&self) -> String {
        self.name("decisions")
    }
    /// The housing pool's own subscription to decisions: a decided application is no
    /// longer "open" for HS-DUPLICATE.
    pub fn housing_decisions_queue(&self) -> String {
        self.name("housing.decisions")
    }
    pub fn dead_exchange(&self) -> String {
        self.name("dead")
    }
    /// The parking queue of `queue`.
    pub fn dead_queue(&self, queue: &str) -> String {
        let suffix = queue.strip_prefix(&format!("{}.", self.prefix)).unwrap_or(queue);
        self.name(&format!("dead.{suffix}"))
    }

    /// Every work queue: each has a parking queue.
    pub fn work_queues(&self) -> Vec<String> {
        let mut queues = vec![
            self.intake_queue(),
            self.collector_queue(),
            self.decisions_queue(),
            self.housing_decisions_queue(),
        ];
        queues.extend(Department::ALL.iter().map(|&d| self.check_queue(d)));
        queues
    }

    /// Declares everything when `declare_on_connect`; idempotent, so every process does
    /// it on each (re)connect.
    pub async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        if self.declare_on_connect {
            self.setup(ch).await
        } else {
            Ok(())
        }
    }

    /// Declares every exchange, queue and binding, whatever `declare_on_connect` says.
    pub async fn setup(&self, ch: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let exchanges = [
            (self.intake_exchange(), ExchangeKind::Direct),
            (self.checks_exchange(), ExchangeKind::Direct),
            (self.findings_exchange(), ExchangeKind::Topic),
            (self.decisions_exchange(), ExchangeKind::Topic),
            (self.dead_exchange(), ExchangeKind::Direct),
        ];
        for (name, kind) in exchanges {
            ch.exchange_declare(name.as_str().into(), kind, durable, FieldTable::default())
                .await?;
        }

        let mut bindings = vec![
            (
                self.intake_queue(),
                self.intake_exchange(),
                INTAKE_ROUTING_KEY.to_owned(),
            ),
            (self.collector_queue(), self.findings_exchange(), "finding.*".to_owned()),
            (
                self.decisions_queue(),
                self.decisions_exchange(),
                "decision.#".to_owned(),
            ),
            (
                self.decisions_queue(),
                self.decisions_exchange(),
                "certificate.#".to_owned(),
            ),
            // Referred cases stay open until a person decides them.
            (
                self.housing_decisions_queue(),
                self.decisions_exchange(),
                "decision.qualified".to_owned(),
            ),
            (
                self.housing_decisions_queue(),
                self.decisions_exchange(),
                "decision.rejected".to_owned(),
            ),
        ];
        for d in Department::ALL {
            bindings.push((self.check_queue(d), self.checks_exchange(), d.as_str().to_owned()));
        }
        for (queue, exchange, key) in bindings {
            self.declare_work_queue(ch, &queue).await?;
            ch.queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }

    async fn declare_work_queue(&self, ch: &Channel, queue: &str) -> lapin::Result<()> {
        let dead = self.dead_queue(queue);
        // A parking queue keeps what it holds however often it is read (`dead-letters list`
        // returns messages unacknowledged); RabbitMQ 4 would otherwise apply its default
        // delivery limit of 20 and drop them, since a parking queue has nowhere to send them.
        let mut parking = quorum_args();
        parking.insert("x-delivery-limit".into(), AMQPValue::LongInt(PARKING_DELIVERY_LIMIT));
        ch.queue_declare(dead.as_str().into(), QueueDeclareOptions::durable(), parking)
            .await?;
        ch.queue_bind(
            dead.as_str().into(),
            self.dead_exchange().as_str().into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

        let mut args = quorum_args();
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(self.delivery_limit as i32),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_exchange().as_str().into()),
        );
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(queue.into()));
        // At-least-once dead-lettering: the broker keeps a message until the parking queue
        // confirms it. It requires reject-publish overflow.
        args.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        ch.queue_declare(queue.into(), QueueDeclareOptions::durable(), args)
            .await?;
        Ok(())
    }

    /// Deletes every queue and exchange of this prefix (demo and test clean-up).
    pub async fn delete(&self, ch: &Channel) -> lapin::Result<()> {
        for queue in self.work_queues() {
            ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
            ch.queue_delete(self.dead_queue(&queue).as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        for ex in [
            self.intake_exchange(),
            self.checks_exchange(),
            self.findings_exchange(),
            self.decisions_exchange(),
            self.dead_exchange(),
        ] {
            ch.exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_prefix() {
        let t = Topology::new("weihai", 5);
        assert_eq!(t.check_queue(Department::Housing), "weihai.checks.housing");
        assert_eq!(
            t.dead_queue(&t.check_queue(Department::Housing)),
            "weihai.dead.checks.housing"
        );
        assert_eq!(t.dead_queue(&t.collector_queue()), "weihai.dead.collector");
        assert_eq!(t.work_queues().len(), 10);
    }
}
