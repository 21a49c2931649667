//! Bad messages are parked with a clear reason while the good ones around them are
//! processed, and parked messages can be replayed once the cause is fixed.

mod common;

use common::{Backend, decided, isolated_settings};
use lapin::{
    BasicProperties,
    options::BasicPublishOptions,
    types::{AMQPValue, FieldTable},
};
use prh::local::{self, LocalPipeline};
use prh_common::{
    bus::{Health, Publisher, Topology, connect, dead_letters, topology::INTAKE_ROUTING_KEY},
    config::Settings,
    contract::headers as contract_headers,
    department::Department,
    signing::KeyPair,
};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Publishes raw bytes as a partner or a rogue component could, schema header optional.
/// Publishes `body` as it is, with schema header `schema` and, when `signed_by` is given,
/// a finding's key id and signature.
async fn publish_raw(
    publisher: &Publisher,
    exchange: &str,
    key: &str,
    body: &[u8],
    schema: Option<&str>,
    signed_by: Option<&KeyPair>,
) {
    let mut headers = FieldTable::default();
    if let Some(v) = schema {
        headers.insert("x-prh-schema".into(), AMQPValue::LongString(v.into()));
    }
    if let Some(signer) = signed_by {
        headers.insert(
            contract_headers::KEY_ID.into(),
            AMQPValue::LongString(signer.key_id().into()),
        );
        headers.insert(
            contract_headers::SIGNATURE.into(),
            AMQPValue::LongString(signer.sign(body).as_str().into()),
        );
    }
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(Uuid::now_v7().to_string().as_str().into())
        .with_headers(headers);
    let confirm = publisher
        .channel()
        .basic_publish(
            exchange.into(),
            key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            props,
        )
        .await
        .unwrap();
    confirm.await.unwrap();
}

/// Waits until the parking queues hold `n` messages; returns them.
async fn parked(settings: &Settings, n: usize) -> Vec<dead_letters::Parked> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = dead_letters::list(&settings.amqp.url, &settings.topology())
            .await
            .unwrap();
        if list.len() >= n {
            return list;
        }
        assert!(Instant::now() < deadline, "only {} parked: {list:#?}", list.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_are_parked_with_their_reason_and_good_ones_flow() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, 12, 21).await.unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let token = CancellationToken::new();
    let conn = connect(&settings.amqp.url, "test-poison", &token).await.unwrap();
    let publisher = Publisher::open(&conn, "test-poison", &settings.amqp.url).await.unwrap();
    let t: Topology = settings.topology();

    let mut good = serde_json::to_value(&samples[0].application).unwrap();
    let mut bad_id = good.clone();
    bad_id["applicant"]["id_number"] = json!("371002198001011231");
    let oversized = json!({ "track": "local_family", "phone": "1".repeat(70 * 1024) });
    let unknown_finding = json!({
        "application_id": Uuid::now_v7(), "department": "housing", "policy_version": "rules-md-defaults-1",
        "checked_at": "2026-11-26T00:00:00Z", "criteria": [], "facts": {
            "assistance_category": null, "verified_household_income_fen": null, "owned_residential_area": null }
    });
    // (exchange, routing key, body, x-prh-schema, the reason it must be parked with)
    type Poison<'a> = (String, String, Vec<u8>, Option<&'a str>, &'a str);
    let poison: Vec<Poison> = vec![
        (
            t.intake_exchange(),
            INTAKE_ROUTING_KEY.into(),
            b"{not json".to_vec(),
            None,
            "malformed_json",
        ),
        (
            t.intake_exchange(),
            INTAKE_ROUTING_KEY.into(),
            serde_json::to_vec(&oversized).unwrap(),
            None,
            "body_too_large",
        ),
        (
            t.intake_exchange(),
            INTAKE_ROUTING_KEY.into(),
            serde_json::to_vec(&bad_id).unwrap(),
            None,
            "id_checksum",
        ),
        (
            t.checks_exchange(),
            "public_security".into(),
            b"{}".to_vec(),
            Some("99"),
            "unknown_schema_version",
        ),
        (
            t.checks_exchange(),
            "housing".into(),
            b"[1,2".to_vec(),
            Some("1"),
            "malformed_body",
        ),
        (
            t.findings_exchange(),
            "finding.housing".into(),
            serde_json::to_vec(&unknown_finding).unwrap(),
            Some("1"),
            "unknown_application",
        ),
    ];
    // Each bad message sits between good applications. The finding is signed by the real
    // housing key: only its unknown application is wrong.
    let housing_key = settings.department_key(Department::Housing).unwrap();
    for (i, (exchange, key, body, schema, _)) in poison.iter().enumerate() {
        let signer = (*exchange == t.findings_exchange()).then_some(&housing_key);
        publish_raw(&publisher, exchange, key, body, *schema, signer).await;
        let sample = &samples[i + 1];
        let view = decided(
            &running.base_url,
            &serde_json::to_value(&sample.application).unwrap(),
            &format!("g-{i}"),
        )
        .await;
        assert_eq!(view["status"], sample.expected.as_str(), "{}", sample.scenario);
    }
    good["consent"] = json!(true);
    assert_eq!(
        decided(&running.base_url, &good, "g-last").await["status"],
        samples[0].expected.as_str()
    );

    let list = parked(&settings, poison.len()).await;
    for (_, _, _, _, reason) in &poison {
        let hit = list.iter().find(|p| p.reason.starts_with(reason));
        assert!(hit.is_some(), "nothing parked as {reason}: {list:#?}");
        assert!(
            !hit.unwrap().reason.contains("371002198001011231"),
            "a full ID number in a reason"
        );
    }
    assert_eq!(list.len(), poison.len(), "{list:#?}");

    let _ = conn.close(200, "bye".into()).await;
    running.stop().await.unwrap();
}

/// Starts the six pools on `settings` with their own stop token.
fn start_pools(settings: &Settings, tasks: &mut JoinSet<anyhow::Result<()>>, stop: &CancellationToken) {
    for d in Department::ALL {
        tasks.spawn(prh_workers::service::run_pool(
            settings.clone(),
            d,
            Health::default(),
            stop.clone(),
        ));
    }
}

/// An operator error — pools deployed without the policy version intake applies — parks
/// every check request; once the pools have the version, a replay decides the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parked_check_requests_are_replayed_after_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut full = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&full);
    let (all_versions, old_versions) = (dir.path().join("policies"), dir.path().join("policies-old"));
    std::fs::create_dir_all(&all_versions).unwrap();
    std::fs::create_dir_all(&old_versions).unwrap();
    let default = &prh::local::policy_without_notice();
    std::fs::write(old_versions.join("a.toml"), default).unwrap();
    std::fs::write(all_versions.join("a.toml"), default).unwrap();
    let newer = default
        .replace("version = \"rules-md-defaults-1\"", "version = \"weihai-new\"")
        .replace(
            "effective_from = \"2026-01-01\"",
            &format!("effective_from = \"{}\"", prh_common::china_today()),
        );
    std::fs::write(all_versions.join("b.toml"), newer).unwrap();
    full.policy.dir = Some(all_versions);
    let mut stale = full.clone();
    stale.policy.dir = Some(old_versions);

    let samples = local::prepare(&full, 8, 4).await.unwrap();
    let sample = samples.iter().find(|s| s.scenario == "qualified").unwrap();
    let health = Health::default();
    let everything = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tasks.spawn(prh_producer::service::run(
        full.clone(),
        listener,
        health.clone(),
        everything.clone(),
    ));
    tasks.spawn(prh_workers::service::run_collector(
        full.clone(),
        health.clone(),
        everything.clone(),
    ));
    let stale_pools = CancellationToken::new();
    let mut stale_tasks = JoinSet::new();
    start_pools(&stale, &mut stale_tasks, &stale_pools);

    let client = reqwest::Client::new();
    let receipt: serde_json::Value = client
        .post(format!("{base}/v1/applications"))
        .json(&sample.application)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = receipt["application_id"].as_str().unwrap().to_owned();
    let departments = sample
        .application
        .track
        .as_deref()
        .unwrap()
        .parse::<prh_common::department::Track>()
        .unwrap()
        .departments()
        .len();
    let list = parked(&full, departments).await;
    assert!(
        list.iter().all(|p| p.reason.starts_with("unknown_policy_version")),
        "{list:#?}"
    );

    // The fix: the pools get the version. Then the operator replays. The old pools are
    // gone first: one still consuming would take a replayed request and park it again.
    stale_pools.cancel();
    while let Some(r) = stale_tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let fixed_pools = CancellationToken::new();
    start_pools(&full, &mut tasks, &fixed_pools);
    let replayed = dead_letters::replay(&full.amqp.url, &full.topology(), None, None)
        .await
        .unwrap();
    assert_eq!(replayed, departments);

    let view = common::wait_decided(&base, &id).await;
    assert_eq!(
        (view["status"].as_str(), view["decision"]["policy_version"].as_str()),
        (Some("qualified"), Some("weihai-new"))
    );
    assert!(
        dead_letters::list(&full.amqp.url, &full.topology())
            .await
            .unwrap()
            .is_empty(),
        "replayed messages left their parking queues"
    );

    everything.cancel();
    fixed_pools.cancel();
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
}

/// Stopping (what SIGTERM does) finishes the work in flight and flushes the outbox; after
/// a restart every application is decided, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_stop_flushes_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, 60, 33).await.unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let client = reqwest::Client::new();
    let mut submits = JoinSet::new();
    for (i, sample) in samples.iter().enumerate() {
        let (client, url, body) = (
            client.clone(),
            format!("{}/v1/applications", running.base_url),
            sample.application.clone(),
        );
        submits.spawn(async move {
            let r = client
                .post(url)
                .header("idempotency-key", format!("s-{i}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202);
        });
    }
    while let Some(r) = submits.join_next().await {
        r.unwrap();
    }
    running.stop().await.unwrap();

    let db = prh_common::store::connect(&settings.pipeline_db()).await.unwrap();
    assert_eq!(
        prh_common::store::outbox::backlog(&db, "intake").await.unwrap(),
        0,
        "the outbox was not flushed"
    );

    let running = LocalPipeline::start(&settings).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (prh_producer::status::decided_count(&db).await.unwrap() as usize) < samples.len() {
        assert!(Instant::now() < deadline, "applications were lost across the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await.unwrap();
}

/// A consumer the broker cancels (here: its queue deleted under it) subscribes again,
/// declaring what it needs, and the pipeline keeps deciding.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_consumer_subscribes_again() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, 6, 41).await.unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let token = CancellationToken::new();
    let conn = connect(&settings.amqp.url, "test-cancel", &token).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    for d in Department::ALL {
        let queue = settings.topology().check_queue(d);
        channel
            .queue_delete(queue.as_str().into(), lapin::options::QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    let _ = conn.close(200, "bye".into()).await;
    // Give the pools a moment to notice and come back; then everything still flows.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, sample) in samples.iter().enumerate() {
        let view = decided(
            &running.base_url,
            &serde_json::to_value(&sample.application).unwrap(),
            &format!("c-{i}"),
        )
        .await;
        assert_eq!(view["status"], sample.expected.as_str(), "{}", sample.scenario);
    }
    running.stop().await.unwrap();
}

/// Signing is a pure function of the committed rows: rebuilding a certificate from the
/// stored application and decision gives the stored file byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_rebuilt_from_its_rows_is_byte_identical() {
    use prh_common::{
        application::Application,
        certificate::{Certificate, Issuer},
        policy::Decision,
        store::pipeline::{applications, certificates, decisions},
    };
    use sea_orm::EntityTrait;

    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, 10, 51).await.unwrap();
    let sample = samples.iter().find(|s| s.expected.as_str() == "qualified").unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let view = decided(
        &running.base_url,
        &serde_json::to_value(&sample.application).unwrap(),
        "cert",
    )
    .await;
    running.stop().await.unwrap();

    let db = prh_common::store::connect(&settings.pipeline_db()).await.unwrap();
    let number = view["certificate_number"].as_str().unwrap().to_owned();
    let stored = certificates::Entity::find_by_id(number)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let app_row = applications::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.id == stored.application_id)
        .unwrap();
    let decision_row = decisions::Entity::find_by_id(stored.application_id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    let application: Application = serde_json::from_value(app_row.payload).unwrap();
    let decision: Decision = serde_json::from_value(decision_row.payload).unwrap();
    let policies = settings.policies().unwrap();
    let policy = policies.get(&decision.policy_version).unwrap();
    let key = KeyPair::load_or_generate(&settings.key_file()).unwrap();
    let issuer = Issuer {
        authority: &settings.signing.authority,
        key_id: key.key_id(),
        issued_on: prh_common::china_date(decision_row.decided_at),
    };
    let rebuilt = Certificate::for_decision(
        app_row.id,
        app_row.reference.as_deref().unwrap(),
        &application,
        &decision,
        policy,
        &issuer,
    )
    .unwrap()
    .sign(&key);
    assert_eq!(rebuilt.to_file_bytes(), stored.document.as_bytes());
}

/// Published outbox rows past their retention are deleted, a chunk at a time; rows not
/// yet published stay however old, and so do recent ones and another origin's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_outbox_rows_are_pruned_after_their_retention() {
    use prh_common::{bus::Outgoing, store::outbox};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr};
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(backend, &dir);
        let _cleanup = common::Cleanup::of(&settings);
        let db = prh_common::store::connect(&settings.pipeline_db()).await.unwrap();
        prh_migrations::migrate_pipeline(&db).await.unwrap();
        let message = common::outbox_message;
        let rows: Vec<Outgoing> = (0..7).map(message).collect();
        outbox::enqueue_all(&db, "intake", &rows).await.unwrap();
        outbox::enqueue_all(&db, "collector", &[message(7)]).await.unwrap();
        let ids_left = || async {
            outbox::entity::Entity::find()
                .order_by_asc(outbox::entity::Column::Id)
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<i64>>()
        };
        let ids = ids_left().await;
        assert_eq!(ids.len(), 8);
        let now = chrono::Utc::now();
        let sent = |which: Vec<i64>, at: chrono::DateTime<chrono::Utc>| {
            let db = db.clone();
            async move {
                outbox::entity::Entity::update_many()
                    .col_expr(outbox::entity::Column::SentAt, Expr::value(at))
                    .filter(outbox::entity::Column::Id.is_in(which))
                    .exec(&db)
                    .await
                    .unwrap();
            }
        };
        // Intake: five sent four days ago, one sent an hour ago, one never sent.
        // The collector's one was sent four days ago too.
        let (intake, collector) = (&ids[..7], ids[7]);
        sent(intake[..5].to_vec(), now - chrono::Duration::days(4)).await;
        sent(vec![intake[5]], now - chrono::Duration::hours(1)).await;
        sent(vec![collector], now - chrono::Duration::days(4)).await;

        // Chunks of two: three statements for the five old ones.
        let deleted = outbox::prune(&db, "intake", now - chrono::Duration::hours(72), 2)
            .await
            .unwrap();
        assert_eq!(deleted, 5, "{backend:?}");
        let left = ids_left().await;
        assert_eq!(left, vec![intake[5], intake[6], collector], "{backend:?}");
        assert_eq!(outbox::backlog(&db, "intake").await.unwrap(), 1, "{backend:?}");
    }
}
