//! Helpers the end-to-end test binaries share: isolated settings on a real broker and
//! database, and waiting for a decision through the HTTP API.
#![allow(dead_code)]

use prh_common::{config::Settings, department::Department};
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn amqp_url() -> String {
    std::env::var("PRH_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Isolated settings: a temporary data folder, an own topology prefix and, on PostgreSQL,
/// own schemas for the pipeline and each registry.
pub fn isolated_settings(backend: Backend, dir: &tempfile::TempDir) -> Settings {
    let tag = Uuid::now_v7().simple().to_string()[20..].to_owned();
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    settings.amqp.url = amqp_url();
    settings.amqp.prefix = format!("prh-test-{tag}");
    settings.intake.relay_poll_ms = 100;
    // Certificates with the decision; the public notice has tests of its own (lifecycle.rs).
    prh::local::skip_public_notice(&mut settings, dir.path()).expect("writing the test policy");
    if let Backend::Postgres = backend {
        let url =
            std::env::var("PRH_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        settings.database.url = Some(url.clone());
        settings.database.schema = Some(format!("t{tag}_pipeline"));
        for d in Department::ALL {
            let r = settings.registries.get_mut(d);
            r.url = Some(url.clone());
            r.schema = Some(format!("t{tag}_{d}"));
        }
    }
    settings
}

/// Removes a test's broker topology and, on PostgreSQL, its schemas when dropped: at the
/// end of the test, and also when an assertion fails half-way, so that no run leaves
/// queues or schemas behind on the machine's shared services.
pub struct Cleanup(Settings);

impl Cleanup {
    /// Take it right after `isolated_settings`: the prefix and schemas are fixed by then.
    pub fn of(settings: &Settings) -> Self {
        Self(settings.clone())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let settings = self.0.clone();
        // Drop cannot await and may run on the test's own runtime, or while it unwinds:
        // a runtime of its own, on a thread of its own.
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                prh::local::remove_topology(&settings).await?;
                if !settings.pipeline_db().is_sqlite() {
                    prh_common::store::db::drop_schema(&settings.pipeline_db()).await?;
                    for d in Department::ALL {
                        prh_common::store::db::drop_schema(&settings.registry_db(d)).await?;
                    }
                }
                anyhow::Ok(())
            })
        })
        .join();
        match cleaned {
            Ok(Ok(())) => {}
            Ok(Err(e)) if !std::thread::panicking() => panic!("cleaning up after the test: {e:#}"),
            other => eprintln!("cleaning up after the failed test: {other:?}"),
        }
    }
}

/// Submits `body` and waits for its decision; returns the status view.
pub async fn decided(base: &str, body: &Value, key: &str) -> Value {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/v1/applications"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let receipt: Value = response.json().await.unwrap();
    wait_decided(base, receipt["application_id"].as_str().unwrap()).await
}

/// Waits (up to a minute) until application `id` has a decision; returns the status view.
pub async fn wait_decided(base: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view: Value = reqwest::get(format!("{base}/v1/applications/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !view["decision"].is_null() {
            return view;
        }
        assert!(Instant::now() < deadline, "undecided: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An outbox message to `prh.checks`/housing whose body carries `n`: for the storage tests.
pub fn outbox_message(n: usize) -> prh_common::bus::Outgoing {
    prh_common::bus::Outgoing {
        exchange: "prh.checks".into(),
        routing_key: "housing".into(),
        kind: "check.requested".into(),
        message_id: Uuid::now_v7(),
        correlation_id: Some(Uuid::now_v7()),
        headers: vec![],
        body: format!("{{\"n\":{n}}}").into_bytes(),
    }
}
