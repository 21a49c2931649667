//! The whole pipeline in one process — intake, the six department pools and the collector
//! as tasks — for `prh demo` and the end-to-end tests, plus the set-up they share.

use anyhow::{Context, bail};
use prh_common::{
    bus::{Health, connect},
    config::Settings,
    department::Department,
    store,
};
use prh_workers::seed::{Generator, SampleApplication};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Migrates every schema, seeds the registries with `households` synthetic households and
/// returns their sample applications.
pub async fn prepare(settings: &Settings, households: usize, seed: u64) -> anyhow::Result<Vec<SampleApplication>> {
    let db = store::connect(&settings.pipeline_db()).await?;
    prh_migrations::migrate_pipeline(&db)
        .await
        .context("migrating the pipeline schema")?;
    let registries = prh_workers::seed::open_registries(settings)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let (records, samples) = Generator::new(seed, settings.clock.today()).households(households);
    prh_workers::seed::load(records, &registries)
        .await
        .context("seeding the registries")?;
    Ok(samples)
}

/// Points `settings` at a fresh working folder (wiped first) with SQLite databases, a key
/// of its own and a topology prefix of its own: the demo's and the benchmark's setting.
pub fn throwaway(settings: &mut Settings, dir: &std::path::Path, prefix: &str) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    settings.data_dir = dir.to_path_buf();
    settings.database = Default::default();
    settings.registries = Default::default();
    settings.signing.key_file = None;
    settings.amqp.prefix = format!("{prefix}-{}", std::process::id());
    Ok(())
}

/// The default policy with no public notice period (公示): qualified households get their
/// certificates with the decision. The demo, the benchmark and the pipeline tests use it
/// (each says so); a real deployment keeps RULES.md's five working days.
pub fn policy_without_notice() -> String {
    include_str!("../policy/default.toml").replace("notice_working_days = 5", "notice_working_days = 0")
}

/// Points `settings` at [`policy_without_notice`], written into `dir`, unless a policy
/// folder is configured already.
pub fn skip_public_notice(settings: &mut Settings, dir: &std::path::Path) -> anyhow::Result<()> {
    if settings.policy.dir.is_some() {
        return Ok(());
    }
    let policies = dir.join("policy");
    std::fs::create_dir_all(&policies).with_context(|| format!("creating {}", policies.display()))?;
    std::fs::write(policies.join("default.toml"), policy_without_notice())?;
    settings.policy.dir = Some(policies);
    Ok(())
}

/// Submits every sample over HTTP (with `api_key` as `X-Api-Key` when given),
/// `concurrency` at a time and, with `rate`, no faster than that many per second; calls
/// `on_accepted` after each. Returns the application ids in sample order.
pub async fn submit_all(
    base: &str,
    api_key: Option<&str>,
    samples: &[SampleApplication],
    concurrency: usize,
    rate: Option<f64>,
    on_accepted: impl Fn() + Clone + Send + 'static,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    let client = reqwest::Client::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut ticker = rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001))));
    let mut tasks = JoinSet::new();
    let run = uuid::Uuid::now_v7().simple().to_string();
    for (i, sample) in samples.iter().enumerate() {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let permit = slots.clone().acquire_owned().await?;
        let (client, url, body, done, api_key) = (
            client.clone(),
            format!("{base}/v1/applications"),
            sample.application.clone(),
            on_accepted.clone(),
            api_key.map(str::to_owned),
        );
        let key = format!("{run}-{i}");
        tasks.spawn(async move {
            let _permit = permit;
            let mut request = client.post(url).header("idempotency-key", key);
            if let Some(api_key) = api_key {
                request = request.header("x-api-key", api_key);
            }
            let response = request.json(&body).send().await?;
            let status = response.status();
            let json: serde_json::Value = response.json().await?;
            if status.as_u16() != 202 {
                bail!("submission {i} refused ({status}): {json}");
            }
            done();
            Ok((
                i,
                uuid::Uuid::parse_str(json["application_id"].as_str().unwrap_or_default())?,
            ))
        });
    }
    let mut ids = vec![uuid::Uuid::nil(); samples.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, id) = joined??;
        ids[i] = id;
    }
    Ok(ids)
}

/// The `p` quantile (0 to 1) of `sorted` values, nearest rank; 0 when empty.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Running components and the means to stop them.
pub struct LocalPipeline {
    /// Base URL of the intake API, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    pub health: Health,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

/// Components that report readiness: intake's relay and AMQP consumer, six pools, the
/// collector and its relay, and the housing pool's decision subscriber.
const COMPONENTS: usize = 11;

impl LocalPipeline {
    /// Starts every component on `settings`, with intake on a free loopback port, and
    /// waits until all of them are connected.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        Self::start_without(settings, &[]).await
    }

    /// As `start`, without the pools of `absent`: departments that never answer.
    pub async fn start_without(settings: &Settings, absent: &[Department]) -> anyhow::Result<Self> {
        // The collector trusts the finding keys it finds at start; create them first.
        for d in Department::ALL {
            settings
                .department_key(d)
                .with_context(|| format!("the {d} finding key"))?;
        }
        let shutdown = CancellationToken::new();
        let health = Health::default();
        let mut tasks = JoinSet::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        tasks.spawn(prh_producer::service::run(
            settings.clone(),
            listener,
            health.clone(),
            shutdown.clone(),
        ));
        for d in Department::ALL.into_iter().filter(|d| !absent.contains(d)) {
            tasks.spawn(prh_workers::service::run_pool(
                settings.clone(),
                d,
                health.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(prh_workers::service::run_collector(
            settings.clone(),
            health.clone(),
            shutdown.clone(),
        ));
        let pipeline = Self {
            base_url,
            health,
            shutdown,
            tasks,
        };

        let deadline = Instant::now() + Duration::from_secs(60);
        let components = COMPONENTS - absent.len() - usize::from(absent.contains(&Department::Housing));
        while !(pipeline.health.is_ready() && pipeline.health.snapshot().len() >= components) {
            if Instant::now() > deadline {
                let snapshot = pipeline.health.snapshot();
                pipeline.stop().await.ok();
                bail!(
                    "components not ready after 60 s: {snapshot:?} (is RabbitMQ running at {}?)",
                    settings.amqp.url
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(pipeline)
    }

    /// Stops every component, letting work in flight finish; returns the first failure.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let (Err(e), None) = (result, &first_error) {
                first_error = Some(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Deletes the exchanges and queues of `settings.amqp.prefix` (throw-away topologies of
/// the demo and the tests).
pub async fn remove_topology(settings: &Settings) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let connecting = connect(&settings.amqp.url, "prh-cleanup", &token);
    let conn = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .ok()
        .flatten()
        .context("cannot reach the broker to remove the topology")?;
    let channel = conn.create_channel().await?;
    settings.topology().delete(&channel).await?;
    let _ = channel.close(200, "bye".into()).await;
    let _ = conn.close(200, "bye".into()).await;
    Ok(())
}
