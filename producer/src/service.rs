//! Running intake as a service: the HTTP API, the AMQP intake consumer and the outbox
//! relay for check requests, all stopped together on shutdown.

use crate::{
    amqp::IntakeConsumer,
    channels::ChannelKeys,
    http::{ApiState, router},
    intake::{Intake, ORIGIN, Writer},
    validate::Limits,
};
use anyhow::Context;
use prh_common::{
    bus::{ConsumerSpec, Health, consumer},
    config::Settings,
    store::{self, group_commit::GroupCommit, outbox::Relay},
};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves intake on `listener` until `shutdown`, then drains and returns.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    prh_common::metrics::install();
    let db = store::connect(&settings.pipeline_db()).await?;
    store::db::require_table(&db, "applications", "pipeline database").await?;
    let policies = Arc::new(settings.policies().context("loading the policy")?);
    let calendar = Arc::new(settings.calendar().context("loading the working-day calendar")?);
    prh_common::calendar::warn_if_uncovered(&calendar, settings.clock.today());
    let channels = Arc::new(ChannelKeys::from_settings(&settings.intake.api_keys)?);
    if !channels.required() {
        tracing::warn!("no intake.api_keys: submissions are taken without a key (development only)");
    }
    let officers = Arc::new(crate::office_api::OfficerKeys::from_settings(
        &settings.office.api_keys,
    )?);
    if !officers.required() {
        tracing::warn!("no office.api_keys: the office endpoints are open (development only)");
    }
    let topology = settings.topology();
    let relay = Relay::new(&settings, db.clone(), ORIGIN, health.clone());
    let intake = Arc::new(Intake {
        db: db.clone(),
        topology: topology.clone(),
        policies,
        limits: Limits {
            max_household: settings.intake.max_household,
        },
        relay: relay.notifier(),
        commits: GroupCommit::start(
            "intake",
            db.clone(),
            Arc::new(Writer),
            settings.intake.concurrency.max(32),
        ),
        calendar,
        clock: settings.clock.clone(),
    });
    let relay_stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
    let rechecks = tokio::spawn(start_due_rechecks(
        intake.clone(),
        settings.lifecycle.clone(),
        shutdown.clone(),
    ));

    let spec = ConsumerSpec {
        name: "intake-amqp".into(),
        queue: topology.intake_queue(),
        prefetch: settings.intake.prefetch,
        concurrency: settings.intake.concurrency,
        grace: settings.grace(),
    };
    let handler = Arc::new(IntakeConsumer {
        intake: intake.clone(),
        max_body_bytes: settings.intake.max_body_bytes,
    });
    let amqp_url = settings.amqp.url.clone();
    let consumer_task = {
        let (health, shutdown) = (health.clone(), shutdown.clone());
        tokio::spawn(async move { consumer::run(&amqp_url, &topology, spec, handler, health, shutdown).await })
    };

    let max_body = settings.intake.max_body_bytes;
    let app = router(
        ApiState {
            intake,
            channels,
            settings: Arc::new(settings),
            health,
            officers,
        },
        max_body,
    );
    tracing::info!(addr = %listener.local_addr()?, "intake API listening");
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    let _ = consumer_task.await;
    let _ = rechecks.await;
    // Only now, with no request or delivery left to commit, the relay's last flush.
    relay_stop.cancel();
    let _ = relay_task.await;
    Ok(())
}

/// Starts the yearly re-check (年审) of certificates nearing expiry, once per sweep period.
async fn start_due_rechecks(
    intake: Arc<Intake>,
    lifecycle: prh_common::config::LifecycleSettings,
    shutdown: CancellationToken,
) {
    if lifecycle.recheck_days_before == 0 {
        return;
    }
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(lifecycle.sweep_ms.max(10)));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match intake.recheck_due(lifecycle.recheck_days_before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(started = n, "yearly re-checks started"),
            Err(e) => {
                tracing::warn!(error = %prh_common::id_number::redact(&e.to_string()), "starting re-checks failed")
            }
        }
    }
}
