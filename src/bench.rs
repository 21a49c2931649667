//! `prh bench`: how fast PRH decides on this machine, next to what the broker alone can
//! carry. Everything reported is measured in the run; nothing is asserted.

use anyhow::{Context, bail};
use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Connection,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use prh::{
    local::{self, LocalPipeline},
    process,
};
use prh_common::{
    bus::connect,
    config::Settings,
    department::Department,
    store::{
        self, outbox,
        pipeline::{applications, findings},
    },
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

/// What `prh bench` was asked to do.
pub struct Options {
    pub applications: usize,
    pub rate: Option<f64>,
    pub json: bool,
    pub postgres: Option<String>,
    pub external: bool,
    pub ceiling_messages: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    applications: usize,
    applications_per_second: f64,
    ceiling_fraction: f64,
    /// The median of `broker_ceiling_trials`.
    broker_ceiling_messages_per_second: f64,
    broker_ceiling_trials: Vec<f64>,
    pipeline_messages_per_second: f64,
    messages_per_application: f64,
    offered_rate: Option<f64>,
    latency_seconds: Latency,
    checks_per_second: BTreeMap<String, f64>,
    /// Peak resident memory per process, in MiB: this process in all-in-one mode, every
    /// local `prh intake|worker|collector` process with `--external`.
    peak_rss_mib: BTreeMap<String, f64>,
    /// CPU (user + system) used while the applications were driven, in seconds, per
    /// process: the same processes as `peak_rss_mib`, `rabbitmq` when the broker runs on
    /// this machine and `postgresql` (every server process) when PostgreSQL does. On a
    /// machine whose cores are all busy this, not the waiting, is where the time goes.
    cpu_seconds: BTreeMap<String, f64>,
    /// PRH's CPU per application, in milliseconds (all-in-one mode includes the driver).
    prh_cpu_ms_per_application: Option<f64>,
    /// The local broker's CPU per pipeline message, in microseconds.
    broker_cpu_us_per_message: Option<f64>,
    /// The local broker's CPU per message of its ceiling trials, in microseconds: what a
    /// message costs it at full speed in one queue, next to what it costs in the pipeline.
    broker_ceiling_cpu_us_per_message: Option<f64>,
    /// Where the database time goes, per group-commit unit (intake, collector, each
    /// department's checks), from `/metrics` while the applications were driven: every
    /// unit in all-in-one mode, intake's with `--external`.
    group_commits: BTreeMap<String, GroupCommits>,
    database: String,
    mode: String,
    /// First submission to last decision.
    span_seconds: f64,
}

#[derive(Debug, Serialize)]
struct GroupCommits {
    transactions: f64,
    jobs_per_transaction: f64,
    mean_transaction_seconds: f64,
    /// Transaction time ÷ the run's span: near 1, the unit's one writer is what limits.
    busy_fraction: f64,
    /// Of the run, the share spent waiting to begin (SQLite's write lock): part of busy.
    waiting_fraction: f64,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
}

pub async fn run(mut settings: Settings, options: Options, dir: &Path) -> anyhow::Result<ExitCode> {
    if options.applications == 0 {
        bail!("--applications must be at least 1");
    }
    settings.log.filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    prh_common::telemetry::init(&settings.log);
    let mode = if options.external { "external" } else { "all-in-one" };
    if !options.external {
        local::throwaway(&mut settings, dir, "prh-bench")?;
        // Decisions and certificates at once, as before the public notice existed.
        local::skip_public_notice(&mut settings, dir)?;
        if let Some(url) = &options.postgres {
            let tag = format!("bench{}", std::process::id());
            settings.database.url = Some(url.clone());
            settings.database.schema = Some(format!("{tag}_pipeline"));
            for d in Department::ALL {
                let r = settings.registries.get_mut(d);
                r.url = Some(url.clone());
                r.schema = Some(format!("{tag}_{d}"));
            }
        }
    }
    let database = if settings.pipeline_db().is_sqlite() {
        "sqlite"
    } else {
        "postgresql"
    }
    .to_owned();

    eprintln!(
        "measuring the broker's ceiling: {CEILING_TRIALS} times {} persistent 1 KiB messages through a quorum queue…",
        options.ceiling_messages
    );
    // One short trial swings between runs by a factor of two on this machine; the median
    // of a few is steadier.
    let mut trials = Vec::with_capacity(CEILING_TRIALS);
    let broker_before = cpu_totals(false);
    for _ in 0..CEILING_TRIALS {
        let rate = broker_ceiling(&settings.amqp.url, options.ceiling_messages).await?;
        eprintln!("  {rate:.0} messages/s");
        trials.push(rate);
    }
    let mut sorted = trials.clone();
    sorted.sort_by(f64::total_cmp);
    let ceiling = local::quantile(&sorted, 0.5);
    let ceiling_cpu_us = cpu_since(&broker_before)
        .get(BROKER)
        .map(|s| s * 1e6 / (CEILING_TRIALS * options.ceiling_messages) as f64);

    eprintln!("seeding {} households…", options.applications);
    let samples = local::prepare(&settings, options.applications, 2026).await?;
    let pipeline = if options.external {
        None
    } else {
        Some(LocalPipeline::start(&settings).await?)
    };
    let base = match &pipeline {
        Some(p) => p.base_url.clone(),
        None => settings.client.intake_url.clone(),
    };

    eprintln!(
        "driving {} applications through {base} ({mode}, {database})…",
        options.applications
    );
    let db = store::connect(&settings.pipeline_db()).await?;
    // Applications from earlier runs (`--external`) have lower sequence numbers.
    let before = applications::Entity::find()
        .select_only()
        .column_as(applications::Column::Seq.max(), "max")
        .into_tuple::<Option<i64>>()
        .one(&db)
        .await?
        .flatten()
        .unwrap_or(0);
    let commits_before = group_commit_totals(&base).await;
    let cpu_before = cpu_totals(options.external);
    let ids = local::submit_all(
        &base,
        settings.client.api_key.as_deref(),
        &samples,
        32,
        options.rate,
        || {},
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        // A cheap count: polling by 20,000 ids would load the database it measures.
        let decided = applications::Entity::find()
            .filter(applications::Column::Seq.gt(before))
            .filter(applications::Column::DecidedAt.is_not_null())
            .count(&db)
            .await? as usize;
        if decided >= ids.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {decided} of {} decided in 10 minutes", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let cpu = cpu_since(&cpu_before);
    let mut report = measure(&db, &ids, ceiling, &options, database, mode).await?;
    let prh_cpu: f64 = cpu
        .iter()
        .filter(|(name, _)| ![BROKER, DATABASE_SERVER].contains(&name.as_str()))
        .map(|(_, s)| s)
        .sum();
    report.prh_cpu_ms_per_application = (prh_cpu > 0.0).then(|| prh_cpu * 1000.0 / ids.len() as f64);
    report.broker_cpu_us_per_message = cpu
        .get(BROKER)
        .map(|s| s * 1e6 / (report.pipeline_messages_per_second * report.span_seconds).max(1.0));
    report.cpu_seconds = cpu;
    report.broker_ceiling_trials = trials;
    report.broker_ceiling_cpu_us_per_message = ceiling_cpu_us;
    report.group_commits = group_commits(&commits_before, &group_commit_totals(&base).await, report.span_seconds);
    if let Some(p) = pipeline {
        p.stop().await?;
        local::remove_topology(&settings).await.ok();
        if options.postgres.is_some() {
            store::db::drop_schema(&settings.pipeline_db()).await.ok();
            for d in Department::ALL {
                store::db::drop_schema(&settings.registry_db(d)).await.ok();
            }
        }
    }
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// How many times the broker's ceiling is measured; the report uses the median.
const CEILING_TRIALS: usize = 3;

/// Publishes `n` persistent 1 KiB messages with confirms, pipelined, to a fresh quorum
/// queue while a consumer with manual acks drains it; messages per second end to end.
async fn broker_ceiling(url: &str, n: usize) -> anyhow::Result<f64> {
    let token = CancellationToken::new();
    let conn: Connection = connect(url, "prh-bench-ceiling", &token)
        .await
        .context("cannot reach the broker")?;
    let queue = format!("prh-bench-ceiling-{}", std::process::id());
    let setup = conn.create_channel().await?;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    setup
        .queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), args)
        .await?;

    let consumer_channel = conn.create_channel().await?;
    consumer_channel.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consuming = tokio::spawn(async move {
        let mut got = 0usize;
        while got < n {
            match consumer.next().await {
                Some(Ok(d)) => {
                    got += 1;
                    if got.is_multiple_of(100) || got == n {
                        d.ack(BasicAckOptions { multiple: true }).await?;
                    }
                }
                _ => break,
            }
        }
        // The consumer goes back with the count, so that it is dropped only after its
        // channel is closed.
        Ok::<_, lapin::Error>((got, consumer))
    });

    let publisher = conn.create_channel().await?;
    publisher.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = vec![b'x'; 1024];
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for _ in 0..n {
        let confirm = publisher
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        pending.push_back(confirm);
        // Keep at most 1,000 confirms outstanding, as a real publisher would.
        if pending.len() >= 1000
            && let Some(c) = pending.pop_front()
        {
            c.await?;
        }
    }
    for c in pending {
        c.await?;
    }
    let (got, consumer) = consuming.await??;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = consumer_channel.close(200, "done".into()).await;
    drop(consumer);
    setup
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    let _ = conn.close(200, "bye".into()).await;
    if got < n {
        bail!("the ceiling consumer stopped after {got} of {n} messages");
    }
    Ok(n as f64 / elapsed)
}

async fn measure(
    db: &sea_orm::DatabaseConnection,
    ids: &[uuid::Uuid],
    ceiling: f64,
    options: &Options,
    database: String,
    mode: &str,
) -> anyhow::Result<Report> {
    let rows = applications::Entity::find()
        .filter(applications::Column::Id.is_in(ids.to_vec()))
        .all(db)
        .await?;
    let mut latencies: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            r.decided_at
                .map(|d| (d - r.submitted_at).num_milliseconds().max(0) as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| local::quantile(&latencies, p);
    let first = rows.iter().map(|r| r.submitted_at).min();
    let last = rows.iter().filter_map(|r| r.decided_at).max();
    let span = match (first, last) {
        (Some(a), Some(b)) => ((b - a).num_milliseconds().max(1) as f64) / 1000.0,
        _ => bail!("nothing was decided"),
    };
    let n = ids.len() as f64;
    let apps_per_second = n / span;

    // Every message an application costs: its check requests and decision event (the
    // outbox rows) and its findings.
    let outbox_rows = outbox::entity::Entity::find()
        .filter(outbox::entity::Column::CorrelationId.is_in(ids.iter().map(|i| Some(*i)).collect::<Vec<_>>()))
        .count(db)
        .await? as f64;
    let finding_rows = findings::Entity::find()
        .filter(findings::Column::ApplicationId.is_in(ids.to_vec()))
        .all(db)
        .await?;
    let messages_per_application = (outbox_rows + finding_rows.len() as f64) / n;
    let mut checks_per_second = BTreeMap::new();
    for f in &finding_rows {
        *checks_per_second.entry(f.department.clone()).or_insert(0.0) += 1.0 / span;
    }
    let pipeline_mps = apps_per_second * messages_per_application;
    Ok(Report {
        span_seconds: span,
        group_commits: BTreeMap::new(),
        applications: ids.len(),
        applications_per_second: apps_per_second,
        ceiling_fraction: pipeline_mps / ceiling,
        broker_ceiling_messages_per_second: ceiling,
        broker_ceiling_trials: Vec::new(),
        pipeline_messages_per_second: pipeline_mps,
        messages_per_application,
        offered_rate: options.rate,
        latency_seconds: Latency {
            p50: pct(0.5),
            p95: pct(0.95),
            p99: pct(0.99),
        },
        checks_per_second,
        peak_rss_mib: if mode == "external" {
            local_prh_processes()
                .into_iter()
                .filter_map(|(name, pid)| Some((name, process::peak_rss_mib(&pid)?)))
                .collect()
        } else {
            own_rss()
        },
        cpu_seconds: BTreeMap::new(),
        prh_cpu_ms_per_application: None,
        broker_cpu_us_per_message: None,
        broker_ceiling_cpu_us_per_message: None,
        database,
        mode: mode.to_owned(),
    })
}

/// One unit's group-commit counters so far, as `/metrics` shows them.
#[derive(Debug, Default, Clone, Copy)]
struct CommitTotals {
    transactions: f64,
    jobs: f64,
    seconds: f64,
    waiting_seconds: f64,
}

/// Per unit, its counters so far, from the `prh_group_commit_*` sums and counts on
/// intake's `/metrics`; empty when it cannot be read.
async fn group_commit_totals(base: &str) -> BTreeMap<String, CommitTotals> {
    let text = match reqwest::get(format!("{base}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let mut totals: BTreeMap<String, CommitTotals> = BTreeMap::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once("{unit=\"") else {
            continue;
        };
        let Some((unit, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let entry = totals.entry(unit.to_owned()).or_default();
        match name {
            "prh_group_commit_jobs_count" => entry.transactions = value,
            "prh_group_commit_jobs_sum" => entry.jobs = value,
            "prh_group_commit_seconds_sum" => entry.seconds = value,
            "prh_group_commit_wait_seconds_sum" => entry.waiting_seconds = value,
            _ => {}
        }
    }
    totals
}

/// What each unit did between two readings of `group_commit_totals`.
fn group_commits(
    before: &BTreeMap<String, CommitTotals>,
    after: &BTreeMap<String, CommitTotals>,
    span: f64,
) -> BTreeMap<String, GroupCommits> {
    after
        .iter()
        .filter_map(|(unit, now)| {
            let then = before.get(unit).copied().unwrap_or_default();
            let transactions = now.transactions - then.transactions;
            let seconds = now.seconds - then.seconds;
            (transactions > 0.0).then(|| {
                let stats = GroupCommits {
                    transactions,
                    jobs_per_transaction: (now.jobs - then.jobs) / transactions,
                    mean_transaction_seconds: seconds / transactions,
                    busy_fraction: seconds / span,
                    waiting_fraction: (now.waiting_seconds - then.waiting_seconds) / span,
                };
                (unit.clone(), stats)
            })
        })
        .collect()
}

/// In all-in-one mode every component runs in this process.
fn own_rss() -> BTreeMap<String, f64> {
    process::peak_rss_mib("self")
        .map(|m| BTreeMap::from([("all-in-one".to_owned(), m)]))
        .unwrap_or_default()
}

/// Every `prh intake`, `prh worker …` and `prh collector` process on this machine: its
/// command line and pid. A PRH process is one of a program named `prh` or of this very
/// executable, whatever its file is called (`PRH_BIN=… deploy/scaling-run.sh`).
fn local_prh_processes() -> BTreeMap<String, String> {
    let own = std::env::current_exe().ok();
    let mut out = BTreeMap::new();
    for pid in process::all_pids() {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_prh = args.first().is_some_and(|a| a.ends_with("/prh") || a == "prh")
            || own.is_some() && std::fs::read_link(format!("/proc/{pid}/exe")).ok() == own;
        let role = args
            .iter()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .cloned()
            .unwrap_or_default();
        if is_prh && ["intake", "worker", "collector"].contains(&role.as_str()) {
            out.insert(format!("{} (pid {pid})", args[1..].join(" ")), pid);
        }
    }
    out
}

/// The processes whose CPU a run is charged, by name, with their pids: PRH's (this one in
/// all-in-one mode, every local PRH process with `--external`), a local RabbitMQ and a
/// local PostgreSQL (all its server processes together).
fn charged_processes(external: bool) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = if external {
        local_prh_processes()
            .into_iter()
            .map(|(name, pid)| (name, vec![pid]))
            .collect()
    } else {
        BTreeMap::from([("all-in-one".to_owned(), vec![std::process::id().to_string()])])
    };
    for pid in process::all_pids() {
        let Some(comm) = process::comm(&pid) else {
            continue;
        };
        let name = match comm.as_str() {
            "beam.smp" => BROKER,
            "postgres" => DATABASE_SERVER,
            _ => continue,
        };
        out.entry(name.to_owned()).or_default().push(pid);
    }
    out
}

/// The names the local broker's and database server's CPU are reported under.
const BROKER: &str = "rabbitmq";
const DATABASE_SERVER: &str = "postgresql";

/// CPU used by each process since `before` was taken with [`cpu_totals`]; a process that
/// ended meanwhile counts nothing.
fn cpu_since(before: &BTreeMap<String, Vec<(String, f64)>>) -> BTreeMap<String, f64> {
    before
        .iter()
        .map(|(name, pids)| {
            let used = pids
                .iter()
                .filter_map(|(pid, was)| Some(process::cpu_seconds(pid)? - was))
                .sum();
            (name.clone(), used)
        })
        .collect()
}

/// Each charged process's CPU so far, by pid.
fn cpu_totals(external: bool) -> BTreeMap<String, Vec<(String, f64)>> {
    charged_processes(external)
        .into_iter()
        .map(|(name, pids)| {
            let used = pids
                .into_iter()
                .filter_map(|pid| process::cpu_seconds(&pid).map(|s| (pid, s)))
                .collect();
            (name, used)
        })
        .collect()
}

fn print_table(r: &Report) {
    println!(
        "PRH bench — {} applications, {} mode, {}",
        r.applications, r.mode, r.database
    );
    if let Some(rate) = r.offered_rate {
        println!("offered load             {rate:.0} applications/s");
    }
    println!(
        "decided                  {:.1} applications/s",
        r.applications_per_second
    );
    println!(
        "latency (submit→decide)  p50 {:.3} s   p95 {:.3} s   p99 {:.3} s",
        r.latency_seconds.p50, r.latency_seconds.p95, r.latency_seconds.p99
    );
    println!("messages per application {:.2}", r.messages_per_application);
    println!(
        "pipeline                 {:.0} messages/s",
        r.pipeline_messages_per_second
    );
    let trials: Vec<String> = r.broker_ceiling_trials.iter().map(|t| format!("{t:.0}")).collect();
    println!(
        "broker ceiling           {:.0} messages/s (same run, median of {})",
        r.broker_ceiling_messages_per_second,
        trials.join(", ")
    );
    println!("fraction of ceiling      {:.1} %", r.ceiling_fraction * 100.0);
    for (d, rate) in &r.checks_per_second {
        println!("  {d:<18} {rate:.1} checks/s");
    }
    if !r.group_commits.is_empty() {
        println!("group commits            unit               txns  jobs/txn  ms/txn  busy  of it waiting");
        for (unit, g) in &r.group_commits {
            println!(
                "                         {unit:<18} {:>5.0} {:>9.1} {:>7.1} {:>4.0} % {:>4.0} %",
                g.transactions,
                g.jobs_per_transaction,
                g.mean_transaction_seconds * 1000.0,
                g.busy_fraction * 100.0,
                g.waiting_fraction * 100.0
            );
        }
    }
    for (process, rss) in &r.peak_rss_mib {
        println!("peak RSS                 {rss:.1} MiB  {process}");
    }
    for (process, cpu) in &r.cpu_seconds {
        println!("CPU while driving        {cpu:.1} s  {process}");
    }
    if let Some(ms) = r.prh_cpu_ms_per_application {
        println!("PRH CPU                  {ms:.2} ms per application");
    }
    if let Some(us) = r.broker_cpu_us_per_message {
        let ceiling = r
            .broker_ceiling_cpu_us_per_message
            .map(|c| format!(" (in its ceiling run: {c:.0} µs)"))
            .unwrap_or_default();
        println!("broker CPU               {us:.0} µs per message{ceiling}");
    }
}
