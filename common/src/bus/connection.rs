//! Opening a connection to the broker, retried with exponential backoff and jitter until it
//! succeeds or the process is asked to stop.

use backon::{ExponentialBuilder, Retryable};
use lapin::{Connection, ConnectionProperties};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Connects to `url`, retrying transient failures forever with backoff (200 ms doubling to
/// 5 s, jittered). Returns `None` when `shutdown` fires first.
pub async fn connect(url: &str, name: &str, shutdown: &CancellationToken) -> Option<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let attempt = || Connection::connect(url, props.clone());
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times();
    let retried = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .notify(|err, wait| tracing::warn!(error = %err, ?wait, "broker unreachable; retrying"));
    tokio::select! {
        conn = retried => conn.ok(),
        _ = shutdown.cancelled() => None,
    }
}

/// The broker login an AMQP URL logs in with (percent-decoded, as lapin sends it), which
/// RabbitMQ checks against the `user_id` property.
pub fn login_of(url: &str) -> Option<String> {
    url.parse::<lapin::uri::AMQPUri>()
        .ok()
        .map(|uri| uri.authority.userinfo.username)
}

#[cfg(test)]
mod tests {
    #[test]
    fn login_is_read_from_the_url() {
        assert_eq!(
            super::login_of("amqp://guest:guest@127.0.0.1:5672/%2f").as_deref(),
            Some("guest")
        );
        assert_eq!(
            super::login_of("amqp://prh%2Dintake:pw@127.0.0.1").as_deref(),
            Some("prh-intake")
        );
        assert_eq!(super::login_of("not a url"), None);
    }
}
