//! `prh demo`: the whole pipeline in one process on SQLite, with sample applications
//! flowing from HTTP intake through all six pools and the collector to certificates.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use prh_common::{
    bus::{Health, connect},
    certificate::SignedCertificate,
    config::Settings,
    department::Department,
    store::{
        self,
        pipeline::{applications, certificates},
    },
};
use prh_workers::seed::{Generator, SampleApplication};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::{
    collections::BTreeMap,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

pub async fn run(mut settings: Settings, n: usize, dir: &Path) -> anyhow::Result<ExitCode> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    settings.data_dir = dir.to_path_buf();
    settings.database = Default::default();
    settings.registries = Default::default();
    settings.signing.key_file = None;
    settings.amqp.prefix = format!("prh-demo-{}", std::process::id());
    settings.log.filter =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,lapin::channels=off".into());
    prh_common::telemetry::init(&settings.log);

    println!(
        "PRH demo: {n} applications, data in {}, broker {}",
        dir.display(),
        settings.amqp.url
    );
    crate::run::migrate(&settings).await?;
    let registries = prh_workers::seed::open_registries(&settings)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let (records, samples) = Generator::new(2026, prh_common::china_today()).households(n);
    let persons = records.ps_persons.len();
    prh_workers::seed::load(records, &registries)
        .await
        .context("seeding the registries")?;
    println!("seeded {persons} persons in {n} households");

    let shutdown = CancellationToken::new();
    let health = Health::default();
    let mut tasks = JoinSet::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tasks.spawn(prh_producer::service::run(
        settings.clone(),
        listener,
        health.clone(),
        shutdown.clone(),
    ));
    for d in Department::ALL {
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

    let outcome = drive(&settings, &base, &samples, &health, dir).await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    remove_topology(&settings).await;
    outcome
}

async fn drive(
    settings: &Settings,
    base: &str,
    samples: &[SampleApplication],
    health: &Health,
    dir: &Path,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    while !health.is_ready() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "components not ready after 60 s: {:?} (is RabbitMQ running at {}?)",
                health.snapshot(),
                settings.amqp.url
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let bar = ProgressBar::new(samples.len() as u64 * 2);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("submitting");
    let client = reqwest::Client::new();
    let slots = Arc::new(Semaphore::new(16));
    let mut submits = JoinSet::new();
    for (i, sample) in samples.iter().enumerate() {
        let (client, slots, url, body, bar) = (
            client.clone(),
            slots.clone(),
            format!("{base}/v1/applications"),
            sample.application.clone(),
            bar.clone(),
        );
        submits.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let response = client
                .post(url)
                .header("idempotency-key", format!("demo-{i}"))
                .json(&body)
                .send()
                .await?;
            bar.inc(1);
            let status = response.status();
            let json: serde_json::Value = response.json().await?;
            if status.as_u16() != 202 {
                anyhow::bail!("submission {i} refused ({status}): {json}");
            }
            Ok::<_, anyhow::Error>((
                i,
                json["application_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ))
        });
    }
    let mut ids = vec![String::new(); samples.len()];
    while let Some(joined) = submits.join_next().await {
        let (i, id) = joined??;
        ids[i] = id;
    }

    bar.set_message("deciding");
    let db = store::connect(&settings.pipeline_db()).await?;
    let deadline = Instant::now() + Duration::from_secs(120 + samples.len() as u64 / 5);
    loop {
        let decided = applications::Entity::find()
            .filter(applications::Column::DecidedAt.is_not_null())
            .all(&db)
            .await?
            .len();
        bar.set_position((samples.len() + decided) as u64);
        if decided >= samples.len() {
            break;
        }
        if Instant::now() > deadline {
            bar.abandon();
            bail!(
                "only {decided} of {} applications decided in time",
                samples.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish_with_message("done");

    // Summary from the database: outcomes, expected vs. actual, latency, certificates.
    let rows: BTreeMap<String, applications::Model> = applications::Entity::find()
        .all(&db)
        .await?
        .into_iter()
        .map(|r| (r.id.to_string(), r))
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut latencies = Vec::new();
    let (mut first, mut last) = (None, None);
    for (sample, id) in samples.iter().zip(&ids) {
        let Some(row) = rows.get(id) else { continue };
        *counts.entry(row.status.clone()).or_default() += 1;
        if row.status != sample.expected.as_str() {
            mismatches.push(format!(
                "{} ({}): expected {}, got {}",
                row.reference.clone().unwrap_or_default(),
                sample.scenario,
                sample.expected.as_str(),
                row.status
            ));
        }
        if let Some(decided) = row.decided_at {
            latencies.push((decided - row.submitted_at).num_milliseconds().max(0) as f64 / 1000.0);
            first = first.min(Some(row.submitted_at)).or(Some(row.submitted_at));
            last = last.max(Some(decided));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let span = match (first, last) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(1) as f64 / 1000.0,
        _ => 0.0,
    };

    let cert_dir = dir.join("certificates");
    std::fs::create_dir_all(&cert_dir)?;
    let keys = settings.trusted_keys()?;
    let mut written = Vec::new();
    let mut invalid = 0;
    for cert in certificates::Entity::find().all(&db).await? {
        if SignedCertificate::verify_file(cert.document.as_bytes(), &keys).is_err() {
            invalid += 1;
        }
        let path = cert_dir.join(format!("{}.json", cert.number));
        std::fs::write(&path, cert.document.as_bytes())?;
        written.push(path);
    }

    println!();
    println!("applications   {}", samples.len());
    for outcome in ["qualified", "rejected", "referred"] {
        println!(
            "  {outcome:<12} {}",
            counts.get(outcome).copied().unwrap_or(0)
        );
    }
    println!(
        "as expected    {} of {}",
        samples.len() - mismatches.len(),
        samples.len()
    );
    println!(
        "throughput     {:.1} applications/s (first submission to last decision, {span:.2} s)",
        samples.len() as f64 / span.max(0.001)
    );
    println!(
        "latency        p50 {:.3} s, p95 {:.3} s, p99 {:.3} s (submitted → decided)",
        pct(0.5),
        pct(0.95),
        pct(0.99)
    );
    println!(
        "certificates   {} issued, {} verified, written to {}",
        written.len(),
        written.len() - invalid,
        cert_dir.display()
    );
    if let Some(one) = written.first() {
        println!("try            prh verify {}", one.display());
    }
    if let Some(id) = ids.first() {
        println!(
            "status         the demo's intake stops with it; see `prh status {id}` against a running `prh intake`"
        );
    }
    for m in mismatches.iter().take(10) {
        println!("MISMATCH       {m}");
    }
    if !mismatches.is_empty() || invalid > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The demo's exchanges and queues are its own; remove them so nothing piles up.
async fn remove_topology(settings: &Settings) {
    let token = CancellationToken::new();
    let connecting = connect(&settings.amqp.url, "prh-demo-cleanup", &token);
    if let Ok(Some(conn)) = tokio::time::timeout(Duration::from_secs(5), connecting).await {
        if let Ok(ch) = conn.create_channel().await {
            let _ = settings.topology().delete(&ch).await;
        }
        let _ = conn.close(200, "bye".into()).await;
    }
}
