//! Trust between departments, on real parts: the collector counts only findings signed by
//! a key of the department they speak for; forged, unsigned and cross-signed findings are
//! parked with their reason and never change a decision. With per-component broker users,
//! a department reaches only its own queue and speaks only for itself.

mod common;

use common::{Backend, isolated_settings, wait_decided};
use ed25519_dalek::SigningKey;
use lapin::{
    options::{BasicConsumeOptions, BasicGetOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use prh::local::{self, LocalPipeline};
use prh_common::{
    bus::{Outgoing, Publisher, Topology, connect, dead_letters, grants::Principal},
    contract::{Finding, headers, kinds},
    criteria::{CriterionCode, CriterionResult, ReasonCode},
    department::Department,
    signing::KeyPair,
    store,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A failing public-security finding for `application_id`, published with `signature`
/// headers of the caller's choice.
fn forged(topology: &Topology, application_id: Uuid, policy: &str, signed_by: Option<&KeyPair>) -> Outgoing {
    let finding = Finding {
        application_id,
        department: Department::PublicSecurity,
        policy_version: policy.to_owned(),
        checked_at: chrono::Utc::now(),
        criteria: vec![CriterionResult::fail(
            CriterionCode::PsIdentity,
            vec![ReasonCode::IdentityMismatch],
            "forged",
            "",
        )],
        facts: Default::default(),
    };
    let body = serde_json::to_vec(&finding).unwrap();
    let mut headers = vec![
        (headers::DEPARTMENT.into(), Department::PublicSecurity.to_string()),
        (headers::POLICY.into(), policy.to_owned()),
    ];
    if let Some(key) = signed_by {
        headers.push((headers::KEY_ID.into(), key.key_id().to_owned()));
        headers.push((headers::SIGNATURE.into(), key.sign(&body)));
    }
    Outgoing {
        exchange: topology.findings_exchange(),
        routing_key: Topology::finding_routing_key(Department::PublicSecurity),
        kind: kinds::FINDING_REPORTED.into(),
        message_id: Uuid::now_v7(),
        correlation_id: Some(application_id),
        headers,
        body,
    }
}

/// The version of the policy in force today, which a finding must name.
fn policy_in_force(settings: &prh_common::config::Settings) -> String {
    let policies = settings.policies().unwrap();
    policies.in_force_on(prh_common::china_today()).unwrap().version.clone()
}

/// Waits until the parking queues hold a message for each of `ids`; returns their reasons
/// (the part before the colon), in the order of `ids`.
async fn parked_reasons(settings: &prh_common::config::Settings, ids: &[Uuid], per_id: usize) -> Vec<Vec<String>> {
    let topology = settings.topology();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let parked = dead_letters::list(&settings.amqp.url, &topology).await.unwrap();
        let reasons: Vec<Vec<String>> = ids
            .iter()
            .map(|id| {
                let mut r: Vec<String> = parked
                    .iter()
                    .filter(|p| p.correlation_id.as_deref() == Some(id.to_string().as_str()))
                    .map(|p| p.reason.split(':').next().unwrap().to_owned())
                    .collect();
                r.sort_unstable();
                r
            })
            .collect();
        if reasons.iter().all(|r| r.len() >= per_id) || Instant::now() > deadline {
            return reasons;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_findings_are_parked_and_never_counted() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, 20, 11).await.unwrap();
    let qualified = samples.iter().find(|s| s.scenario == "qualified").unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let topology = settings.topology();

    let response = reqwest::Client::new()
        .post(format!("{}/v1/applications", running.base_url))
        .json(&qualified.application)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let receipt: serde_json::Value = response.json().await.unwrap();
    let id: Uuid = receipt["application_id"].as_str().unwrap().parse().unwrap();
    let policy = policy_in_force(&settings);

    // Three forgeries that would reject the application if counted: unsigned; signed by a
    // key nobody trusts; signed by the real housing key but speaking for public security.
    let stranger = KeyPair::from_key(SigningKey::from_bytes(&[42; 32]));
    let housing = settings.department_key(Department::Housing).unwrap();
    let conn = connect(&settings.amqp.url, "forger", &CancellationToken::new())
        .await
        .unwrap();
    let publisher = Publisher::open(&conn, "forger", &settings.amqp.url).await.unwrap();
    for signer in [None, Some(&stranger), Some(&housing)] {
        publisher
            .publish(&forged(&topology, id, &policy, signer))
            .await
            .unwrap();
    }

    let view = wait_decided(&running.base_url, &id.to_string()).await;
    assert_eq!(view["status"], "qualified", "a forged finding was counted: {view}");

    // All three are parked, each with its reason, and none was stored.
    let reasons = parked_reasons(&settings, &[id], 3).await;
    assert_eq!(reasons[0], ["bad_signature", "bad_signature", "unsigned_finding"]);

    let db = store::connect(&settings.pipeline_db()).await.unwrap();
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let stored = store::pipeline::findings::Entity::find()
        .filter(store::pipeline::findings::Column::ApplicationId.eq(id))
        .filter(store::pipeline::findings::Column::Department.eq("public_security"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].payload.to_string().contains("forged"),
        "the stored public-security finding is a forgery: {}",
        stored[0].payload
    );

    let _ = conn.close(200, "bye".into()).await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn department_users_reach_only_their_own_queue_and_speak_only_for_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    local::prepare(&settings, 2, 3).await.unwrap();
    let made = prh::broker::setup(&settings).await.unwrap();
    let url_of = |who: Principal| made.iter().find(|c| c.principal == who).unwrap().url.clone();
    let topology = settings.topology();
    let token = CancellationToken::new();

    // Public security's login may consume its own queue, and not housing's.
    let ps_url = url_of(Principal::Pool(Department::PublicSecurity));
    let ps = connect(&ps_url, "ps", &token).await.unwrap();
    let consume = |queue: String| {
        let conn = &ps;
        async move {
            let channel = conn.create_channel().await.unwrap();
            channel
                .basic_consume(
                    queue.as_str().into(),
                    "probe".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map(|_| ())
        }
    };
    consume(topology.check_queue(Department::PublicSecurity))
        .await
        .expect("a pool may consume its own queue");
    let refused = consume(topology.check_queue(Department::Housing)).await.unwrap_err();
    assert!(refused.to_string().contains("ACCESS_REFUSED"), "{refused}");

    // With component users on, the collector takes a public-security finding only from
    // public security's login, even when it carries public security's own signature.
    settings.amqp.component_users = true;
    let running = LocalPipeline::start(&settings).await.unwrap();
    let policy = policy_in_force(&settings);
    let ps_key = settings.department_key(Department::PublicSecurity).unwrap();
    let housing = connect(&url_of(Principal::Pool(Department::Housing)), "housing", &token)
        .await
        .unwrap();
    let (from_housing, from_ps) = (Uuid::now_v7(), Uuid::now_v7());
    let housing_url = url_of(Principal::Pool(Department::Housing));
    Publisher::open(&housing, "housing", &housing_url)
        .await
        .unwrap()
        .publish(&forged(&topology, from_housing, &policy, Some(&ps_key)))
        .await
        .unwrap();
    Publisher::open(&ps, "ps", &ps_url)
        .await
        .unwrap()
        .publish(&forged(&topology, from_ps, &policy, Some(&ps_key)))
        .await
        .unwrap();
    // Neither names a real application: the one that passes both checks is parked only
    // for that.
    let reasons = parked_reasons(&settings, &[from_housing, from_ps], 1).await;
    assert_eq!(reasons, [vec!["wrong_sender"], vec!["unknown_application"]]);

    let _ = ps.close(200, "bye".into()).await;
    let _ = housing.close(200, "bye".into()).await;
    running.stop().await.unwrap();
    assert_eq!(prh::broker::remove_users(&settings).unwrap(), 8);
}

/// Every key path of a JSON value: `subject.persons[].name` and so on.
fn key_paths(value: &serde_json::Value, at: &str, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                out.insert(path.clone());
                key_paths(v, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                key_paths(v, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_department_receives_only_its_fields_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let samples = local::prepare(&settings, 60, 13).await.unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let topology = settings.topology();

    // A spy queue gets a copy of every check request.
    let token = CancellationToken::new();
    let conn = connect(&settings.amqp.url, "spy", &token).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let spy = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    for d in Department::ALL {
        channel
            .queue_bind(
                spy.name().as_str().into(),
                topology.checks_exchange().as_str().into(),
                d.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    // One application of each track with a co-applicant, so every department is asked.
    let mut submitted = Vec::new();
    for track in ["local_family", "new_employee", "migrant_worker"] {
        let sample = samples
            .iter()
            .find(|s| s.application.track.as_deref() == Some(track) && !s.application.co_applicants.is_empty())
            .unwrap_or_else(|| panic!("no {track} household with a co-applicant"));
        let view = common::decided(
            &running.base_url,
            &serde_json::to_value(&sample.application).unwrap(),
            track,
        )
        .await;
        submitted.push((sample, view));
    }

    let envelope = [
        "application_id",
        "track",
        "application_date",
        "criteria",
        "subject",
        "subject.department",
    ];
    let named_persons = [
        "subject.persons",
        "subject.persons[].name",
        "subject.persons[].id_number",
        "subject.persons[].relation",
    ];
    let applicant = [
        "subject.applicant",
        "subject.applicant.name",
        "subject.applicant.id_number",
    ];
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("public_security", named_persons.to_vec()),
        (
            "civil_affairs",
            [&named_persons[..], &["subject.declared_monthly_income_fen"]].concat(),
        ),
        (
            "human_resources",
            [&applicant[..], &["subject.employer", "subject.application_month"]].concat(),
        ),
        ("natural_resources", vec!["subject.id_numbers"]),
        ("housing", vec!["subject.id_numbers"]),
        ("education", applicant.to_vec()),
    ]);
    let mut seen = BTreeSet::new();
    while let Some(m) = channel
        .basic_get(spy.name().as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let department = m.delivery.routing_key.as_str().to_owned();
        let body: serde_json::Value = serde_json::from_slice(&m.delivery.data).unwrap();
        let mut paths = BTreeSet::new();
        key_paths(&body, "", &mut paths);
        let mut want: BTreeSet<String> = envelope.iter().map(|p| p.to_string()).collect();
        want.extend(expected[department.as_str()].iter().map(|p| p.to_string()));
        assert_eq!(paths, want, "{department} received other fields");
        // No phone number, and nobody's data a department is not entitled to.
        let text = String::from_utf8_lossy(&m.delivery.data);
        for (sample, _) in &submitted {
            let form = &sample.application;
            if let Some(phone) = &form.phone {
                assert!(!text.contains(phone.as_str()), "{department} received the phone number");
            }
            if ["human_resources", "education"].contains(&department.as_str()) {
                for co in &form.co_applicants {
                    let id = co.id_number.as_deref().unwrap_or_default();
                    assert!(!text.contains(id), "{department} received a co-applicant");
                }
            }
        }
        seen.insert(department);
    }
    assert_eq!(seen.len(), 6, "not every department was asked: {seen:?}");
    for (_, view) in &submitted {
        assert!(!view["decision"].is_null());
    }

    let _ = conn.close(200, "bye".into()).await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_channel_submits_with_its_own_key_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = isolated_settings(Backend::Sqlite, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    let (portal, window) = ("portal-key-for-the-test-0001", "window-key-for-the-test-0002");
    settings.intake.api_keys = BTreeMap::from([("portal".into(), portal.into()), ("window".into(), window.into())]);
    let samples = local::prepare(&settings, 4, 17).await.unwrap();
    let running = LocalPipeline::start(&settings).await.unwrap();
    let client = reqwest::Client::new();
    let post = |key: Option<&str>| {
        let mut request = client
            .post(format!("{}/v1/applications", running.base_url))
            .json(&samples[0].application);
        if let Some(k) = key {
            request = request.header("x-api-key", k);
        }
        request.send()
    };

    for (key, expected) in [
        (None, "X-Api-Key is required"),
        (Some("not-a-key-of-anybody"), "not the key"),
    ] {
        let refused = post(key).await.unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert!(body.to_string().contains(expected), "{body}");
    }
    let accepted = post(Some(window)).await.unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    let receipt: serde_json::Value = accepted.json().await.unwrap();
    let view = wait_decided(&running.base_url, receipt["application_id"].as_str().unwrap()).await;
    assert_eq!(view["channel"], "window", "{view}");

    running.stop().await.unwrap();
}
