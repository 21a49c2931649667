//! Nothing lost, nothing twice: 2,000 applications flow through intake, the six pools and
//! two collectors — each its own process — while any of them is killed with SIGKILL at
//! random moments and restarted, and the broker is restarted once. Then every
//! application must be decided exactly once with its expected outcome, no certificate may
//! exist twice, every certificate must verify, and redeliveries must really have happened.
//!
//! It restarts the broker, so it lives in its own test binary: cargo runs test binaries
//! one after another, never beside it.

mod common;

use prh_common::{
    certificate::SignedCertificate,
    config::Settings,
    store::{
        self,
        pipeline::{applications, certificates, decisions},
    },
};
use rand::{RngExt, SeedableRng, rngs::StdRng, seq::SliceRandom};
use sea_orm::{EntityTrait, PaginatorTrait};
use std::{
    collections::{BTreeMap, HashSet},
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const APPLICATIONS: usize = 2_000;
const KILLS: usize = 24;

/// A component process that can be killed and started again.
struct Component {
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

struct Cluster {
    env: Vec<(String, String)>,
    components: Vec<Component>,
}

impl Cluster {
    fn spawn(&mut self, i: usize) {
        let c = &mut self.components[i];
        let log = OpenOptions::new().create(true).append(true).open(&c.log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prh"));
        cmd.args(&c.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c.child = Some(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.components[i].child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.components.len() {
            self.kill(i);
        }
    }
}

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

fn count_in_logs(dir: &Path, needle: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .matches(needle)
                .count()
        })
        .sum()
}

#[test]
fn nothing_lost_nothing_twice_under_kills_and_a_broker_restart() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut settings = common::isolated_settings(common::Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    settings.amqp.delivery_limit = 20;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let samples = runtime
        .block_on(prh::local::prepare(&settings, APPLICATIONS, 2026))
        .unwrap();

    let env: Vec<(String, String)> = [
        ("PRH__DATA_DIR", dir.path().display().to_string()),
        ("PRH__AMQP__URL", settings.amqp.url.clone()),
        ("PRH__AMQP__PREFIX", settings.amqp.prefix.clone()),
        ("PRH__AMQP__DELIVERY_LIMIT", "20".into()),
        ("PRH__INTAKE__LISTEN", format!("127.0.0.1:{port}")),
        ("PRH__INTAKE__RELAY_POLL_MS", "100".into()),
        // The test settings' policy: certificates with the decision, no public notice.
        (
            "PRH__POLICY__DIR",
            settings
                .policy
                .dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        ("RUST_LOG", "warn,prh_common::bus::consumer=info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut roles: Vec<Vec<String>> = vec![
        vec!["intake".into()],
        vec!["collector".into()],
        vec!["collector".into()],
    ];
    for d in prh_common::department::Department::ALL {
        roles.push(vec!["worker".into(), "--department".into(), d.to_string()]);
    }
    let components = roles
        .into_iter()
        .enumerate()
        .map(|(i, args)| Component {
            log: logs.join(format!("{i}-{}.log", args.join("-"))),
            args,
            child: None,
        })
        .collect();
    let mut cluster = Cluster { env, components };
    // The collector first, so the signing key exists before a second collector starts.
    cluster.spawn(1);
    std::thread::sleep(Duration::from_millis(500));
    for i in (0..cluster.components.len()).filter(|i| *i != 1) {
        cluster.spawn(i);
    }

    // Submit everything over HTTP, retrying with the same key until intake answers.
    let started = Instant::now();
    let submitting = runtime.spawn(submit_all(base.clone(), samples.clone()));
    let db = runtime.block_on(store::connect(&settings.pipeline_db())).unwrap();
    let decided = || runtime.block_on(prh_producer::status::decided_count(&db)).unwrap() as usize;

    // Chaos while the applications flow: kill a random pool or collector, start it again;
    // once, restart the broker under everyone.
    let mut rng = StdRng::seed_from_u64(7);
    let mut kills = 0;
    // Every component dies at least once (in a random order), then random ones.
    let mut order: Vec<usize> = (0..cluster.components.len()).collect();
    order.shuffle(&mut rng);
    let mut killed = vec![0usize; cluster.components.len()];
    let mut broker_restarted = false;
    let deadline = Instant::now() + Duration::from_secs(300);
    while decided() < APPLICATIONS {
        assert!(
            Instant::now() < deadline,
            "only {} of {APPLICATIONS} decided after 5 minutes",
            decided()
        );
        if kills < KILLS {
            // Intake too: its relay may die between publishing and marking rows sent, and
            // submitters retry with the same Idempotency-Key.
            let victim = order
                .get(kills)
                .copied()
                .unwrap_or_else(|| rng.random_range(0..cluster.components.len()));
            killed[victim] += 1;
            cluster.kill(victim);
            std::thread::sleep(Duration::from_millis(rng.random_range(50..300)));
            cluster.spawn(victim);
            kills += 1;
        }
        if !broker_restarted && (decided() >= APPLICATIONS / 3 || kills >= KILLS / 2) {
            rabbitmqctl(&["stop_app"]);
            std::thread::sleep(Duration::from_secs(2));
            // While the broker is away, intake says it is not ready.
            let ready = runtime.block_on(async {
                reqwest::get(format!("{base}/readyz"))
                    .await
                    .map(|r| r.status().as_u16())
            });
            assert_eq!(ready.ok(), Some(503), "/readyz must be false while the broker is away");
            std::thread::sleep(Duration::from_secs(1));
            rabbitmqctl(&["start_app"]);
            broker_restarted = true;
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(150..600)));
    }
    let elapsed = started.elapsed();
    let ids = runtime.block_on(submitting).unwrap();
    assert!(broker_restarted, "the broker restart never happened");
    assert!(
        killed.iter().all(|k| *k > 0),
        "every component is killed at least once: {killed:?}"
    );

    // Exactly once, nothing lost.
    let rows: BTreeMap<String, applications::Model> = runtime
        .block_on(applications::Entity::find().all(&db))
        .unwrap()
        .into_iter()
        .map(|r| (r.id.to_string(), r))
        .collect();
    assert_eq!(rows.len(), APPLICATIONS, "an application was lost or stored twice");
    assert_eq!(
        runtime.block_on(decisions::Entity::find().count(&db)).unwrap() as usize,
        APPLICATIONS
    );
    let mut qualified = 0;
    for (sample, id) in samples.iter().zip(&ids) {
        let row = &rows[id];
        assert_eq!(
            row.status,
            sample.expected.as_str(),
            "{} ({})",
            sample.scenario,
            row.reference.clone().unwrap_or_default()
        );
        qualified += usize::from(row.status == "qualified");
    }

    // One certificate per qualified application, each genuine.
    let certs = runtime.block_on(certificates::Entity::find().all(&db)).unwrap();
    assert_eq!(certs.len(), qualified, "certificates issued twice or missing");
    let distinct: HashSet<_> = certs.iter().map(|c| c.application_id).collect();
    assert_eq!(distinct.len(), certs.len());
    let keys = settings_keys(&settings);
    for c in &certs {
        SignedCertificate::verify_file(c.document.as_bytes(), &keys).unwrap_or_else(|e| panic!("{}: {e}", c.number));
    }

    // The chaos was real: deliveries came back after the kills and the restart.
    let redeliveries = count_in_logs(&logs, "redelivered message");
    assert!(redeliveries > 0, "no redelivery was logged");
    eprintln!(
        "fault test: {APPLICATIONS} applications decided in {:.1} s with {kills} kills and one broker restart; \
         {redeliveries} redeliveries logged; {qualified} certificates",
        elapsed.as_secs_f64()
    );

    drop(cluster);
}

fn settings_keys(settings: &Settings) -> prh_common::signing::KeyRing {
    settings.trusted_keys().unwrap()
}

async fn submit_all(base: String, samples: Vec<prh_workers::seed::SampleApplication>) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(samples.len());
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, sample) in samples.iter().enumerate() {
        let (client, slots, url, body) = (
            client.clone(),
            slots.clone(),
            format!("{base}/v1/applications"),
            sample.application.clone(),
        );
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let sent = client
                    .post(&url)
                    .header("idempotency-key", format!("fault-{i}"))
                    .json(&body)
                    .send()
                    .await;
                if let Ok(r) = sent
                    && r.status().as_u16() == 202
                {
                    let receipt: serde_json::Value = r.json().await.unwrap();
                    return (i, receipt["application_id"].as_str().unwrap().to_owned());
                }
                assert!(Instant::now() < deadline, "intake never accepted application {i}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    ids.resize(samples.len(), String::new());
    while let Some(joined) = tasks.join_next().await {
        let (i, id) = joined.unwrap();
        ids[i] = id;
    }
    ids
}
