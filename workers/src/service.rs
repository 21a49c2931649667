//! Running a department pool or the collector as a service over the shared consumer
//! runtime, until shutdown.

use crate::{
    collector::{Collector, Decider},
    housing_closer::HousingCloser,
    pool::CheckHandler,
    trust::{Trust, TrustedSigners},
};
use anyhow::Context;
use prh_common::{
    bus::{ConsumerSpec, Health, consumer, grants::Principal},
    config::Settings,
    department::Department,
    signing::KeyPair,
    store::{self, outbox::Relay},
};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One department's pool: consumes `checks.<department>` and answers with findings.
pub async fn run_pool(
    settings: Settings,
    department: Department,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    prh_common::metrics::install();
    let registry = store::connect(&settings.registry_db(department)).await?;
    let probe_table = match department {
        Department::PublicSecurity => "ps_persons",
        Department::CivilAffairs => "ca_persons",
        Department::HumanResources => "hr_persons",
        Department::NaturalResources => "nr_persons",
        Department::Housing => "hs_persons",
        Department::Education => "ed_persons",
    };
    store::db::require_table(&registry, probe_table, &format!("{department} registry")).await?;
    let policies = Arc::new(settings.policies().context("loading the policy")?);
    let key = Arc::new(
        settings
            .department_key(department)
            .with_context(|| format!("the {department} finding key"))?,
    );
    tracing::info!(key_id = key.key_id(), "findings are signed with this key");
    let topology = settings.topology();
    let spec = ConsumerSpec {
        name: format!("pool-{department}"),
        queue: topology.check_queue(department),
        prefetch: settings.workers.prefetch,
        concurrency: settings.workers.concurrency,
        grace: settings.grace(),
    };
    let closer = (department == Department::Housing).then(|| {
        let spec = ConsumerSpec {
            name: "housing-closer".into(),
            queue: topology.housing_decisions_queue(),
            prefetch: settings.workers.prefetch,
            concurrency: 4,
            grace: settings.grace(),
        };
        let handler = Arc::new(HousingCloser {
            registry: registry.clone(),
        });
        let (url, topology, health, shutdown) = (
            settings.amqp.url.clone(),
            topology.clone(),
            health.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move { consumer::run(&url, &topology, spec, handler, health, shutdown).await })
    });
    let handler = Arc::new(CheckHandler::start(
        department,
        key,
        registry,
        policies,
        topology.clone(),
        settings.workers.concurrency,
    ));
    consumer::run(&settings.amqp.url, &topology, spec, handler, health, shutdown).await;
    if let Some(task) = closer {
        let _ = task.await;
    }
    Ok(())
}

/// The collector with its outbox relay for decision events.
pub async fn run_collector(settings: Settings, health: Health, shutdown: CancellationToken) -> anyhow::Result<()> {
    prh_common::metrics::install();
    let db = store::connect(&settings.pipeline_db()).await?;
    store::db::require_table(&db, "decisions", "pipeline database").await?;
    let policies = Arc::new(settings.policies().context("loading the policy")?);
    let key_file = settings.key_file();
    let key =
        Arc::new(KeyPair::load_or_generate(&key_file).with_context(|| format!("signing key {}", key_file.display()))?);
    tracing::info!(key_id = key.key_id(), "certificates are signed with this key");
    let topology = settings.topology();
    let relay = Relay::new(&settings, db.clone(), crate::collector::ORIGIN, health.clone());
    let notify = relay.notifier();
    let relay_stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
    let calendar = Arc::new(settings.calendar().context("loading the working-day calendar")?);
    prh_common::calendar::warn_if_uncovered(&calendar, settings.clock.today());
    let decider = Arc::new(Decider {
        db,
        policies,
        key,
        authority: settings.signing.authority.clone(),
        topology: topology.clone(),
        calendar,
        clock: settings.clock.clone(),
    });
    let lifecycle = &settings.lifecycle;
    let sweeper = crate::sweeper::Sweeper {
        decider: decider.clone(),
        chasing: crate::sweeper::Chasing {
            first_after: chrono::Duration::minutes(lifecycle.chase_after_minutes as i64),
            max_interval: chrono::Duration::minutes(lifecycle.chase_max_minutes as i64),
            warn_working_days: lifecycle.warn_working_days,
        },
        relay: notify.clone(),
    };
    let sweeper_stop = CancellationToken::new();
    let sweeper_task = tokio::spawn(sweeper.run(
        std::time::Duration::from_millis(lifecycle.sweep_ms.max(10)),
        sweeper_stop.clone(),
    ));
    let keys_dir = settings.findings_keys_dir();
    let signers = TrustedSigners::load(&keys_dir)
        .with_context(|| format!("the departments' public keys in {}", keys_dir.display()))?;
    let trust = Trust::start(
        signers,
        settings.amqp.component_users.then(|| {
            Department::ALL
                .into_iter()
                .map(|d| (d, Principal::Pool(d).username(&settings.amqp.prefix)))
                .collect()
        }),
    );
    let handler = Arc::new(Collector::start(decider, notify, settings.collector.concurrency, trust));
    let spec = ConsumerSpec {
        name: "collector".into(),
        queue: topology.collector_queue(),
        prefetch: settings.collector.prefetch,
        concurrency: settings.collector.concurrency,
        grace: settings.grace(),
    };
    consumer::run(&settings.amqp.url, &topology, spec, handler, health, shutdown).await;
    sweeper_stop.cancel();
    let _ = sweeper_task.await;
    // Only now, with every finding in flight committed, the relay's last flush.
    relay_stop.cancel();
    let _ = relay_task.await;
    Ok(())
}
