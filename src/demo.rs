//! `prh demo`: the whole pipeline in one process on SQLite, with sample applications
//! flowing from HTTP intake through all six pools and the collector to certificates.

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use prh::local::{self, LocalPipeline};
use prh_common::{
    certificate::SignedCertificate,
    config::Settings,
    store::{
        self,
        pipeline::{applications, certificates},
    },
};
use prh_workers::seed::SampleApplication;
use sea_orm::{DatabaseConnection, EntityTrait};
use std::{
    collections::BTreeMap,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

pub async fn run(mut settings: Settings, n: usize, dir: &Path) -> anyhow::Result<ExitCode> {
    if n == 0 {
        bail!("--applications must be at least 1");
    }
    local::throwaway(&mut settings, dir, "prh-demo")?;
    // The demo shows certificates at once, so it skips the public notice (公示).
    local::skip_public_notice(&mut settings, dir)?;
    settings.log.filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    prh_common::telemetry::init(&settings.log);

    println!(
        "PRH demo: {n} applications, data in {}, broker {}",
        dir.display(),
        settings.amqp.url
    );
    let samples = local::prepare(&settings, n, 2026).await?;
    println!("migrated every schema and seeded {n} households into the six registries");
    let pipeline = LocalPipeline::start(&settings).await?;
    let outcome = drive(&settings, &pipeline.base_url, &samples, dir).await;
    let stopped = pipeline.stop().await;
    local::remove_topology(&settings).await.ok();
    stopped?;
    outcome
}

async fn drive(settings: &Settings, base: &str, samples: &[SampleApplication], dir: &Path) -> anyhow::Result<ExitCode> {
    let bar = ProgressBar::new(samples.len() as u64 * 2);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("submitting");
    let counter = bar.clone();
    let ids: Vec<String> = local::submit_all(base, None, samples, 16, None, move || counter.inc(1))
        .await?
        .iter()
        .map(|id| id.to_string())
        .collect();

    bar.set_message("deciding");
    let db = store::connect(&settings.pipeline_db()).await?;
    let deadline = Instant::now() + Duration::from_secs(120 + samples.len() as u64 / 5);
    loop {
        let decided = prh_producer::status::decided_count(&db).await? as usize;
        bar.set_position((samples.len() + decided) as u64);
        if decided >= samples.len() {
            break;
        }
        if Instant::now() > deadline {
            bar.abandon();
            bail!("only {decided} of {} applications decided in time", samples.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish_with_message("done");
    summarize(settings, &db, samples, &ids, dir).await
}

/// Prints outcomes against expectations, throughput, latency and the certificates, all
/// read back from the database.
async fn summarize(
    settings: &Settings,
    db: &DatabaseConnection,
    samples: &[SampleApplication],
    ids: &[String],
    dir: &Path,
) -> anyhow::Result<ExitCode> {
    let rows: BTreeMap<String, applications::Model> = applications::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id.to_string(), r))
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut latencies = Vec::new();
    let (mut first, mut last) = (None, None);
    for (sample, id) in samples.iter().zip(ids) {
        let Some(row) = rows.get(id) else { continue };
        *counts.entry(row.status.clone()).or_default() += 1;
        if row.status != sample.expected.as_str() {
            let reference = row.reference.clone().unwrap_or_default();
            mismatches.push(format!(
                "{reference} ({}): expected {}, got {}",
                sample.scenario,
                sample.expected.as_str(),
                row.status
            ));
        }
        if let Some(decided) = row.decided_at {
            latencies.push((decided - row.submitted_at).num_milliseconds().max(0) as f64 / 1000.0);
            first = Some(first.map_or(row.submitted_at, |f: chrono::DateTime<chrono::Utc>| {
                f.min(row.submitted_at)
            }));
            last = last.max(Some(decided));
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| local::quantile(&latencies, p);
    let span = match (first, last) {
        (Some(a), Some(b)) => (b - a).num_milliseconds().max(1) as f64 / 1000.0,
        _ => 0.0,
    };

    let cert_dir = dir.join("certificates");
    std::fs::create_dir_all(&cert_dir)?;
    let keys = settings.trusted_keys()?;
    let mut written = Vec::new();
    let mut invalid = 0;
    for cert in certificates::Entity::find().all(db).await? {
        if SignedCertificate::verify_file(cert.document.as_bytes(), &keys).is_err() {
            invalid += 1;
        }
        let path = cert_dir.join(format!("{}.json", cert.number));
        std::fs::write(&path, cert.document.as_bytes())?;
        written.push(path);
    }

    // What `prh status` shows, for one rejected application.
    let rejected = rows.values().find(|r| r.status == "rejected").map(|r| r.id.to_string());
    if let Some(view) = match rejected {
        Some(id) => {
            let (calendar, policies) = (settings.calendar()?, settings.policies()?);
            let context = prh_producer::status::Context {
                calendar: &calendar,
                policies: &policies,
                today: settings.clock.today(),
            };
            prh_producer::status::application(db, &id, &context).await?
        }
        None => None,
    } {
        println!("\nOne rejected application, as `prh status` shows it:\n");
        print!("{}", crate::client::render_status(&serde_json::to_value(view)?));
    }

    println!();
    println!("applications   {}", samples.len());
    for outcome in ["qualified", "rejected", "referred"] {
        println!("  {outcome:<12} {}", counts.get(outcome).copied().unwrap_or(0));
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
        println!("verify one     prh verify {}", one.display());
    }
    for m in mismatches.iter().take(10) {
        println!("MISMATCH       {m}");
    }
    if !mismatches.is_empty() || invalid > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
