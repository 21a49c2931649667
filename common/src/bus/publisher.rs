//! The one publisher: persistent messages, `mandatory`, publisher confirms. A publish
//! counts as sent only when the broker acked it and did not return it.

use super::{connection::login_of, message::Outgoing};
use lapin::{
    Channel, Confirmation, Connection, PublisherConfirm,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker error while publishing: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker returned the message as unroutable ({0})")]
    Returned(String),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("the channel is not in confirm mode, so the publish cannot be trusted")]
    Unconfirmed,
}

/// A confirm-mode channel that publishes `Outgoing` messages.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    app_id: String,
    user_id: Option<String>,
}

impl Publisher {
    /// Opens a channel in confirm mode. `app_id` names the component; `user_id` is set to
    /// the broker login so that consumers can rely on it (RabbitMQ validates it).
    pub async fn open(conn: &Connection, app_id: &str, amqp_url: &str) -> Result<Self, lapin::Error> {
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Self {
            channel,
            app_id: app_id.to_owned(),
            user_id: login_of(amqp_url),
        })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes one message and waits for its confirm.
    pub async fn publish(&self, msg: &Outgoing) -> Result<(), PublishError> {
        let confirm = self.start(msg).await?;
        settle(confirm.await?)
    }

    /// Publishes a message with the properties it already has (replaying a parked one),
    /// with `mandatory` and a confirm like every other publish.
    pub async fn republish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: lapin::BasicProperties,
    ) -> Result<(), PublishError> {
        // RabbitMQ checks user_id against the login: the replayer's, not the original's.
        let properties = match &self.user_id {
            Some(user) => properties.with_user_id(user.as_str().into()),
            None => properties,
        };
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                properties,
            )
            .await?;
        settle(confirm.await?)
    }

    /// Publishes all messages pipelined, then waits for every confirm. The result for each
    /// message is in the same order as `msgs`.
    pub async fn publish_all(&self, msgs: &[Outgoing]) -> Vec<Result<(), PublishError>> {
        let mut pending = Vec::with_capacity(msgs.len());
        for msg in msgs {
            pending.push(self.start(msg).await);
        }
        let mut results = Vec::with_capacity(msgs.len());
        for started in pending {
            results.push(match started {
                Ok(confirm) => confirm.await.map_err(PublishError::from).and_then(settle),
                Err(e) => Err(e.into()),
            });
        }
        results
    }

    async fn start(&self, msg: &Outgoing) -> lapin::Result<PublisherConfirm> {
        self.channel
            .basic_publish(
                msg.exchange.as_str().into(),
                msg.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &msg.body,
                msg.properties(&self.app_id, self.user_id.as_deref()),
            )
            .await
    }
}

fn settle(confirmation: Confirmation) -> Result<(), PublishError> {
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(PublishError::Returned(returned.reply_text.to_string())),
        Confirmation::Nack(_) => Err(PublishError::Nacked),
        Confirmation::NotRequested => Err(PublishError::Unconfirmed),
    }
}
