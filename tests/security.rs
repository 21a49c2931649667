//! Trust between departments, on real parts: the collector counts only findings signed by
//! a key of the department they speak for; forged, unsigned and cross-signed findings are
//! parked with their reason and never change a decision.

mod common;

use common::{Backend, isolated_settings, wait_decided};
use ed25519_dalek::SigningKey;
use prh::local::{self, LocalPipeline};
use prh_common::{
    bus::{Outgoing, Publisher, Topology, connect, dead_letters},
    contract::{Finding, headers, kinds},
    criteria::{CriterionCode, CriterionResult, ReasonCode},
    department::Department,
    signing::KeyPair,
    store,
};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_findings_are_parked_and_never_counted() {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(Backend::Sqlite, &dir);
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
    let policy = settings
        .policies()
        .unwrap()
        .in_force_on(prh_common::china_today())
        .unwrap()
        .version
        .clone();

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
    let deadline = Instant::now() + Duration::from_secs(30);
    let parked = loop {
        let parked: Vec<_> = dead_letters::list(&settings.amqp.url, &topology)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.correlation_id.as_deref() == Some(id.to_string().as_str()))
            .collect();
        if parked.len() >= 3 || Instant::now() > deadline {
            break parked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut reasons: Vec<&str> = parked.iter().map(|p| p.reason.split(':').next().unwrap()).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        ["bad_signature", "bad_signature", "unsigned_finding"],
        "{parked:?}"
    );
    assert!(
        parked.iter().all(|p| p.origin == topology.collector_queue()),
        "{parked:?}"
    );

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
    local::remove_topology(&settings).await.unwrap();
}
