//! End to end, on real parts: applications go in over HTTP and over AMQP, through intake,
//! the six department pools and the collector (as tasks) on a real RabbitMQ, on SQLite
//! and on PostgreSQL; every outcome is checked against what the data was built for and
//! every certificate is verified.

mod common;

use common::{Backend, decided, isolated_settings};
use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions},
};
use prh::local::{self, LocalPipeline};
use prh_common::{
    bus::{Outgoing, Publisher, connect, message::header_str, topology::INTAKE_ROUTING_KEY},
    certificate::SignedCertificate,
    config::Settings,
    contract::headers,
    department::Department,
    store,
};
use prh_workers::seed::SampleApplication;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Pipeline {
    settings: Settings,
    base: String,
    running: LocalPipeline,
    samples: Vec<SampleApplication>,
    _cleanup: common::Cleanup,
    _dir: tempfile::TempDir,
}

async fn start(backend: Backend, households: usize) -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(backend, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, households, 7).await.unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    Pipeline {
        base: running.base_url.clone(),
        settings,
        running,
        samples,
        _cleanup,
        _dir: dir,
    }
}

impl Pipeline {
    async fn stop(self) {
        self.running.stop().await.unwrap();
        local::remove_topology(&self.settings).await.unwrap();
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/v1/applications", self.base))
            .json(body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

/// An application form as a partner system publishes it to the intake exchange.
fn partner_message(topology: &prh_common::bus::Topology, form: &Value) -> Outgoing {
    Outgoing {
        exchange: topology.intake_exchange(),
        routing_key: INTAKE_ROUTING_KEY.into(),
        kind: "application.submitted".into(),
        message_id: Uuid::now_v7(),
        correlation_id: None,
        headers: vec![],
        body: serde_json::to_vec(form).unwrap(),
    }
}

async fn pipeline_decides_every_application(backend: Backend) {
    let p = start(backend, 36).await;
    let token = CancellationToken::new();
    let conn = connect(&p.settings.amqp.url, "test-partner", &token).await.unwrap();
    let publisher = Publisher::open(&conn, "test-partner", &p.settings.amqp.url)
        .await
        .unwrap();
    let topology = p.settings.topology();

    // Two thirds over HTTP, one third over AMQP as a partner system would send them.
    let mut submitted: Vec<(usize, Option<String>)> = Vec::new();
    for (i, sample) in p.samples.iter().enumerate() {
        let body = serde_json::to_value(&sample.application).unwrap();
        if i % 3 == 2 {
            publisher.publish(&partner_message(&topology, &body)).await.unwrap();
            submitted.push((i, None));
        } else {
            let (code, receipt) = p.post(&body, Some(&format!("k-{i}"))).await;
            assert_eq!(code, 202, "{receipt}");
            assert!(receipt["reference"].as_str().unwrap().starts_with("GZF-"));
            submitted.push((i, receipt["application_id"].as_str().map(str::to_owned)));
        }
    }

    // A retry with the same key is the same application; a reused key with another body is refused.
    let first = serde_json::to_value(&p.samples[0].application).unwrap();
    let (code, again) = p.post(&first, Some("k-0")).await;
    assert_eq!(
        (code, again["application_id"].as_str()),
        (202, submitted[0].1.as_deref())
    );
    let other = serde_json::to_value(&p.samples[1].application).unwrap();
    assert_eq!(p.post(&other, Some("k-0")).await.0, 409);

    // Bad input is refused with the field named, and parked with its reason over AMQP.
    let mut bad = first.clone();
    bad["applicant"]["id_number"] = json!("371002198001011231");
    let (code, errors) = p.post(&bad, None).await;
    assert_eq!(code, 422);
    assert_eq!(errors["errors"][0]["field"], "applicant.id_number");
    assert!(
        !errors.to_string().contains("371002198001011231"),
        "the full ID number leaked: {errors}"
    );
    let mut no_consent = first.clone();
    no_consent["consent"] = json!(false);
    publisher
        .publish(&partner_message(&topology, &no_consent))
        .await
        .unwrap();
    // A partner message without a message_id could not be made idempotent: parked too.
    publisher
        .channel()
        .basic_publish(
            topology.intake_exchange().as_str().into(),
            INTAKE_ROUTING_KEY.into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&first).unwrap(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    // Wait for every decision.
    let db = store::connect(&p.settings.pipeline_db()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let decided = prh_producer::status::decided_count(&db).await.unwrap() as usize;
        if decided >= p.samples.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {decided} of {} decided",
            p.samples.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every application (found by id, or by reference for AMQP ones) has its expected outcome.
    use sea_orm::EntityTrait;
    let rows = store::pipeline::applications::Entity::find().all(&db).await.unwrap();
    assert_eq!(
        rows.len(),
        p.samples.len(),
        "one application per submission, none twice, the refused one absent"
    );
    let keys = p.settings.trusted_keys().unwrap();
    let mut certificates = 0;
    for row in &rows {
        let app: prh_common::application::Application = serde_json::from_value(row.payload.clone()).unwrap();
        let sample = p
            .samples
            .iter()
            .find(|s| {
                s.application.applicant.as_ref().unwrap().id_number.as_deref()
                    == Some(app.applicant().id_number.expose())
            })
            .unwrap();
        let (code, view) = p
            .get(&format!("/v1/applications/{}", row.reference.as_deref().unwrap()))
            .await;
        assert_eq!(code, 200);
        assert_eq!(view["status"], sample.expected.as_str(), "{}: {view}", sample.scenario);
        assert!(
            view["departments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["answered"] == true),
            "{view}"
        );
        if let Some(reason) = sample.expected_reason {
            let reasons = view["decision"]["reasons"].as_array().unwrap();
            assert!(
                reasons.contains(&json!(reason.as_str())),
                "{} expected {reason:?}: {view}",
                sample.scenario
            );
        }
        if let Some(number) = view["certificate_number"].as_str() {
            let (code, cert) = p.get(&format!("/v1/certificates/{number}")).await;
            assert_eq!((code, cert["valid"].as_bool()), (200, Some(true)), "{cert}");
            let signed: SignedCertificate = serde_json::from_value(cert["certificate"].clone()).unwrap();
            SignedCertificate::verify_file(&signed.to_file_bytes(), &keys).unwrap();
            certificates += 1;
        }
        assert_eq!(
            view["certificate_number"].is_string(),
            sample.expected.as_str() == "qualified"
        );
    }
    assert!(certificates > 0, "the sample has qualified households");

    // decision.made went out once per application and certificate.issued once per
    // certificate, and the bad message is parked with its reason.
    let events = p.samples.len() + certificates;
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = ch
            .queue_declare(topology.decisions_queue().as_str().into(), passive, Default::default())
            .await
            .unwrap();
        if q.message_count() as usize >= events {
            assert_eq!(q.message_count() as usize, events);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} decision and certificate events",
            q.message_count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut reasons = Vec::new();
    let dead_queue = topology.dead_queue(&topology.intake_queue());
    let deadline = Instant::now() + Duration::from_secs(30);
    while reasons.len() < 2 {
        assert!(Instant::now() < deadline, "parked so far: {reasons:?}");
        match ch
            .basic_get(dead_queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            Some(dead) => reasons.push(header_str(&dead.delivery.properties, headers::DEAD_REASON).unwrap()),
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    reasons.sort();
    assert!(reasons[0].starts_with("consent_missing"), "{reasons:?}");
    assert!(reasons[1].starts_with("missing_message_id"), "{reasons:?}");

    // The trace follows the application: a decision event's trace id is its application id.
    let event = ch
        .basic_get(
            topology.decisions_queue().as_str().into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("decision events are queued");
    let application_id = event.delivery.properties.correlation_id().as_ref().unwrap().to_string();
    let traceparent = header_str(&event.delivery.properties, headers::TRACEPARENT).unwrap();
    let expected_trace = Uuid::parse_str(&application_id).unwrap().simple().to_string();
    assert_eq!(prh_common::trace::trace_id(&traceparent), Some(expected_trace.as_str()));
    let _ = conn.close(200, "bye".into()).await;
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_on_sqlite() {
    pipeline_decides_every_application(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_on_postgres() {
    pipeline_decides_every_application(Backend::Postgres).await;
}

/// Thresholds are data: a new policy file changes decisions after a restart, with no
/// rebuild, and an application is judged by the version in force on its date.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policy_versions_decide_by_application_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    settings.policy.dir = Some(policies.clone());
    let default = &prh::local::policy_without_notice();
    let today = prh_common::china_today();
    // A version no adult can meet (adult_age 120), under another name and date.
    let impossible = |version: &str, from: chrono::NaiveDate| {
        default
            .replace("version = \"rules-md-defaults-1\"", &format!("version = \"{version}\""))
            .replace(
                "effective_from = \"2026-01-01\"",
                &format!("effective_from = \"{from}\""),
            )
            .replace("adult_age = 18", "adult_age = 120")
    };
    std::fs::write(policies.join("a-current.toml"), default).unwrap();
    std::fs::write(
        policies.join("b-next.toml"),
        impossible("next-year", today + chrono::Days::new(1)),
    )
    .unwrap();

    let samples = local::prepare(&settings, 40, 3).await.unwrap();
    let mut qualified = samples.iter().filter(|s| s.expected.as_str() == "qualified");
    let (first, second) = (qualified.next().unwrap(), qualified.next().unwrap());

    let decide = |sample: &SampleApplication, settings: &Settings| {
        let (settings, body) = (settings.clone(), serde_json::to_value(&sample.application).unwrap());
        async move {
            let running = LocalPipeline::start(&settings).await.unwrap();
            let client = reqwest::Client::new();
            let url = format!("{}/v1/applications", running.base_url);
            let receipt: Value = client.post(url).json(&body).send().await.unwrap().json().await.unwrap();
            let id = receipt["application_id"].as_str().unwrap().to_owned();
            let deadline = Instant::now() + Duration::from_secs(60);
            let view = loop {
                let url = format!("{}/v1/applications/{id}", running.base_url);
                let view: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
                if !view["decision"].is_null() {
                    break view;
                }
                assert!(Instant::now() < deadline, "undecided: {view}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            running.stop().await.unwrap();
            view
        }
    };

    // The stricter version takes effect tomorrow: today's application is judged by today's.
    let view = decide(first, &settings).await;
    assert_eq!(
        (view["status"].as_str(), view["decision"]["policy_version"].as_str()),
        (Some("qualified"), Some("rules-md-defaults-1"))
    );

    // An operator adds a version in force today: after a restart it decides, no rebuild.
    std::fs::write(policies.join("c-today.toml"), impossible("from-today", today)).unwrap();
    let view = decide(second, &settings).await;
    assert_eq!(
        (view["status"].as_str(), view["decision"]["policy_version"].as_str()),
        (Some("rejected"), Some("from-today"))
    );
    assert!(
        view["decision"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("applicant_minor")),
        "{view}"
    );
}

/// Departments load their exports through `import`; then one application per scenario
/// and track — each built to sit at, just inside or just past one threshold of RULES.md —
/// gets exactly the outcome and the reason it was built for, read through the HTTP API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_reason_code_through_imported_registries() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let db = store::connect(&settings.pipeline_db()).await.unwrap();
    prh_migrations::migrate_pipeline(&db).await.unwrap();
    let registries = prh_workers::seed::open_registries(&settings).await.unwrap();
    let (records, samples) = prh_workers::seed::Generator::new(5, prh_common::china_today()).catalogue();
    for department in Department::ALL {
        let mut export: String = records
            .iter()
            .filter(|r| r.department() == department)
            .map(|r| r.to_line() + "\n")
            .collect();
        // A bad line in the middle of an export is reported by number and skipped.
        export.push_str("{\"record\":\"nonsense\"}\n");
        let expected_lines = export.lines().count();
        let report = prh_workers::import::import(&registries[&department], department, &export, false)
            .await
            .unwrap();
        assert_eq!(report.loaded + 1, expected_lines, "{department}");
        assert_eq!(report.rejected.len(), 1, "{department}: {:?}", report.rejected);
        assert_eq!(report.rejected[0].0, expected_lines, "the bad line's number");
    }

    let running = LocalPipeline::start(&settings).await.unwrap();
    let mut failures = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let view = decided(
            &running.base_url,
            &serde_json::to_value(&sample.application).unwrap(),
            &format!("c-{i}"),
        )
        .await;
        let track = sample.application.track.clone().unwrap_or_default();
        if view["status"] != sample.expected.as_str() {
            failures.push(format!(
                "{} on {track}: expected {}, got {}: {}",
                sample.scenario,
                sample.expected.as_str(),
                view["status"],
                view["decision"]["reasons"]
            ));
        }
        if let Some(reason) = sample.expected_reason
            && !view["decision"]["reasons"]
                .as_array()
                .unwrap()
                .contains(&json!(reason.as_str()))
        {
            failures.push(format!(
                "{} on {track}: no {} in {}",
                sample.scenario,
                reason.as_str(),
                view["decision"]["reasons"]
            ));
        }
    }
    running.stop().await.unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} samples wrong:\n{}",
        failures.len(),
        samples.len(),
        failures.join("\n")
    );
}

/// HS-DUPLICATE: an application still open blocks a second one for the same people; once
/// decided (qualified or rejected) it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_are_open_applications_only() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, 40, 9).await.unwrap();
    let qualified = samples.iter().find(|s| s.scenario == "qualified").unwrap();
    let referred = samples.iter().find(|s| s.expected.as_str() == "referred").unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let base = running.base_url.clone();

    let q = serde_json::to_value(&qualified.application).unwrap();
    assert_eq!(decided(&base, &q, "q-1").await["status"], "qualified");
    // The housing pool learns of the decision asynchronously; the second application must
    // still not count the first as open once it has.
    let housing = store::connect(&settings.registry_db(Department::Housing))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let open = store::registry::hs_application_members::Entity::find()
            .filter(store::registry::hs_application_members::Column::Closed.eq(false))
            .count(&housing)
            .await
            .unwrap();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the decided application is still open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        decided(&base, &q, "q-2").await["status"],
        "qualified",
        "a decided application blocked a new one"
    );

    let f = serde_json::to_value(&referred.application).unwrap();
    assert_eq!(decided(&base, &f, "f-1").await["status"], "referred");
    let second = decided(&base, &f, "f-2").await;
    assert_eq!(second["status"], "rejected");
    assert!(
        second["decision"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("duplicate_application")),
        "{second}"
    );

    running.stop().await.unwrap();
}
