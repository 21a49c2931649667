//! Subcommands that start a long-running component or change the databases.

use anyhow::Context;
use prh_common::{bus::Health, config::Settings, department::Department, store, telemetry};
use std::{path::Path, process::ExitCode};
use tokio_util::sync::CancellationToken;

/// Cancels `token` on SIGINT or SIGTERM.
pub fn stop_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing work in flight");
        token.cancel();
    });
}

/// Serves `/livez` and `/readyz` on `listen` when configured.
async fn probes(listen: Option<&str>, health: Health, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(addr) = listen else { return Ok(()) };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding probes to {addr}"))?;
    let app = prh_producer::http::probes::<()>(health);
    tokio::spawn(async move { axum_serve(listener, app, shutdown).await });
    Ok(())
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router, shutdown: CancellationToken) {
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
}

pub async fn intake(settings: Settings, listen: Option<String>) -> anyhow::Result<ExitCode> {
    telemetry::init(&settings.log);
    let addr = listen.unwrap_or_else(|| settings.intake.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone());
    prh_producer::service::run(settings, listener, Health::default(), shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn worker(settings: Settings, department: Department) -> anyhow::Result<ExitCode> {
    telemetry::init(&settings.log);
    let (shutdown, health) = (CancellationToken::new(), Health::default());
    stop_on_signal(shutdown.clone());
    probes(
        settings.workers.probe_listen.as_deref(),
        health.clone(),
        shutdown.clone(),
    )
    .await?;
    prh_workers::service::run_pool(settings, department, health, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn collector(settings: Settings) -> anyhow::Result<ExitCode> {
    telemetry::init(&settings.log);
    let (shutdown, health) = (CancellationToken::new(), Health::default());
    stop_on_signal(shutdown.clone());
    probes(
        settings.collector.probe_listen.as_deref(),
        health.clone(),
        shutdown.clone(),
    )
    .await?;
    prh_workers::service::run_collector(settings, health, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let pipeline = settings.pipeline_db();
    let db = store::connect(&pipeline).await?;
    prh_migrations::migrate_pipeline(&db)
        .await
        .context("migrating the pipeline schema")?;
    println!("pipeline schema up to date ({})", pipeline.redacted());
    for d in Department::ALL {
        let target = settings.registry_db(d);
        let db = store::connect(&target).await?;
        prh_migrations::migrate_registry(d, &db)
            .await
            .with_context(|| format!("migrating the {d} registry"))?;
        println!("{d} registry up to date ({})", target.redacted());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn seed(
    settings: &Settings,
    citizens: Option<usize>,
    seed: Option<u64>,
    out: &Path,
    forms_dir: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let seed = seed.unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
    let registries = prh_workers::seed::open_registries(settings)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let generator = prh_workers::seed::Generator::new(seed, prh_common::china_today());
    let (records, samples) = match citizens {
        Some(n) => generator.generate(n),
        None => generator.catalogue(),
    };
    let persons = records
        .iter()
        .filter(|r| {
            matches!(
                r,
                prh_common::records::Record::PublicSecurity(prh_common::records::PublicSecurityRecord::Person { .. })
            )
        })
        .count();
    prh_workers::seed::load(records, &registries)
        .await
        .context("writing the registries")?;
    let mut lines = String::new();
    for s in &samples {
        lines.push_str(&serde_json::to_string(s)?);
        lines.push('\n');
    }
    std::fs::write(out, lines).with_context(|| format!("writing {}", out.display()))?;
    if let Some(dir) = forms_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, s) in samples.iter().enumerate() {
            let path = dir.join(format!("{:04}-{}.json", i + 1, s.scenario));
            std::fs::write(&path, serde_json::to_vec_pretty(&s.application)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    println!(
        "seeded {persons} persons in {} households (seed {seed}); sample applications in {}{}",
        samples.len(),
        out.display(),
        forms_dir
            .map(|d| format!(", one form per file in {}", d.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn policy_check(files: &[std::path::PathBuf]) -> anyhow::Result<ExitCode> {
    use prh_common::{policy::Policy, policy_set::PolicySet};
    let mut ok = Vec::new();
    let mut failed = false;
    for file in files {
        match Policy::load(Some(file)) {
            Ok(p) => {
                println!(
                    "ok    {}: version {} in force from {}; income ≤ {} per person, vehicles ≤ {} × {}, area ≤ {} per person",
                    file.display(),
                    p.version,
                    p.effective_from,
                    p.income_limit_fen,
                    p.vehicle_max_count,
                    p.vehicle_max_value_fen,
                    p.area_limit_per_person
                );
                ok.push(p);
            }
            Err(e) => {
                println!("error {}: {e}", file.display());
                failed = true;
            }
        }
    }
    if ok.len() > 1
        && let Err(e) = PolicySet::new(ok)
    {
        println!("error the files do not form one set of versions: {e}");
        failed = true;
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub async fn registry_import(
    settings: &Settings,
    department: Department,
    file: &Path,
    replace: bool,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let target = settings.registry_db(department);
    let db = store::connect(&target).await?;
    prh_migrations::migrate_registry(department, &db)
        .await
        .with_context(|| format!("migrating the {department} registry"))?;
    let report = prh_workers::import::import(&db, department, &text, replace)
        .await
        .context("loading the records")?;
    for (line, reason) in &report.rejected {
        println!("line {line}: {reason}");
    }
    println!(
        "{department}: {} record(s) loaded{}, {} line(s) refused ({})",
        report.loaded,
        if replace { " replacing the previous content" } else { "" },
        report.rejected.len(),
        target.redacted()
    );
    Ok(if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub async fn dead_letters_list(settings: &Settings) -> anyhow::Result<ExitCode> {
    let parked = prh_common::bus::dead_letters::list(&settings.amqp.url, &settings.topology()).await?;
    if parked.is_empty() {
        println!("no parked messages");
    }
    for p in &parked {
        println!(
            "{}  from {}  type {}  id {}  application {}  {} bytes\n    reason: {}",
            p.parking_queue,
            p.origin,
            p.kind.as_deref().unwrap_or("-"),
            p.message_id.as_deref().unwrap_or("-"),
            p.correlation_id.as_deref().unwrap_or("-"),
            p.body_bytes,
            p.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn dead_letters_replay(
    settings: &Settings,
    queue: Option<&str>,
    message_id: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let replayed =
        prh_common::bus::dead_letters::replay(&settings.amqp.url, &settings.topology(), queue, message_id).await?;
    println!("replayed {replayed} message(s)");
    Ok(ExitCode::SUCCESS)
}

/// `prh broker setup`: prints each component's user and environment file.
pub async fn broker_setup(settings: &Settings) -> anyhow::Result<ExitCode> {
    let made = prh::broker::setup(settings).await?;
    println!(
        "topology {}.* declared; one broker user per component:",
        settings.amqp.prefix
    );
    for c in &made {
        println!(
            "  {:<18} {:<28} {}",
            c.principal.name(),
            c.username,
            c.env_file.display()
        );
    }
    println!(
        "Start each component with its file's variables (e.g. `env $(cat {}) prh collector`).",
        made.iter()
            .find(|c| c.principal.name() == "collector")
            .map(|c| c.env_file.display().to_string())
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `prh broker remove-users`.
pub fn broker_remove_users(settings: &Settings) -> anyhow::Result<ExitCode> {
    let removed = prh::broker::remove_users(settings)?;
    println!("removed {removed} broker users of prefix {}", settings.amqp.prefix);
    Ok(ExitCode::SUCCESS)
}
