//! 限时办结 end to end, on a settable clock shared by intake, the pools, the collector and
//! its sweeper: deadlines across 中秋, 国庆 and their make-up working days; a department
//! that never answers is chased, then the case is referred naming it; a 补正 pause moves
//! the deadline; manual qualify and reject; an objection during the public notice; the
//! certificate issued when the notice ends, revoked, renewed by the yearly re-check (年审)
//! or revoked by it after the household bought a home, and expired. Officers act through
//! the `prh` CLI (review, 补正, objection, revocation, report) and the HTTP API; the whole
//! timeline runs on SQLite and on PostgreSQL.

mod common;

use chrono::{DateTime, Utc};
use common::{Backend, isolated_settings};
use prh::local::{self, LocalPipeline};
use prh_common::{
    clock::Clock,
    department::{Department, Track},
    store::{self, registry::nr_properties},
};
use prh_workers::seed::SampleApplication;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// 10:00 in Weihai (UTC+8) on `date`.
fn at(date: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{date}T10:00:00+08:00"))
        .unwrap()
        .to_utc()
}

struct Office {
    base: String,
    client: reqwest::Client,
    /// The working folder of `prh` runs (no prh.toml there).
    dir: std::path::PathBuf,
}

/// What a `prh` run printed and how it ended.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Office {
    /// Runs `prh ARGS` against this pipeline's intake as officer wang_li.
    async fn prh(&self, args: &[&str]) -> Run {
        self.prh_as(Some("key-of-wang-li-0001"), args).await
    }

    async fn prh_as(&self, key: Option<&str>, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_prh"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env("PRH__CLIENT__INTAKE_URL", &self.base)
            .env_remove("PRH__CLIENT__API_KEY");
        if let Some(key) = key {
            cmd.env("PRH__CLIENT__API_KEY", key);
        }
        let out = cmd.output().await.unwrap();
        Run {
            code: out.status.code(),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("x-api-key", "key-of-wang-li-0001")
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("x-api-key", "key-of-wang-li-0001")
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn submit(&self, sample: &SampleApplication) -> String {
        let response = self
            .client
            .post(format!("{}/v1/applications", self.base))
            .json(&sample.application)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let receipt: Value = response.json().await.unwrap();
        receipt["application_id"].as_str().unwrap().to_owned()
    }

    /// Waits (up to a minute) until application `id`'s view satisfies `done`.
    async fn wait(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let view = self.get(&format!("/v1/applications/{id}")).await;
            if done(&view) {
                return view;
            }
            assert!(Instant::now() < deadline, "waiting for {what}: {view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait(id, status, |v| v["status"] == status).await
    }
}

/// The certificate events in the default subscriber queue, waiting (up to 30 s) until
/// there are at least `at_least` of them.
async fn certificate_events(
    settings: &prh_common::config::Settings,
    at_least: usize,
) -> Vec<(String, prh_common::contract::CertificateEvent)> {
    use lapin::options::BasicGetOptions;
    let token = tokio_util::sync::CancellationToken::new();
    let conn = prh_common::bus::connect(&settings.amqp.url, "test-subscriber", &token)
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = settings.topology().decisions_queue();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while events.len() < at_least && Instant::now() < deadline {
        match channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            Some(message) => {
                let kind = message.delivery.properties.kind().as_ref().unwrap().to_string();
                if kind.starts_with("certificate.") {
                    events.push((kind, serde_json::from_slice(&message.delivery.data).unwrap()));
                }
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let _ = conn.close(200, "bye".into()).await;
    events
}

fn department<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["department"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statutory_clocks_reviews_notices_and_the_certificates_life_on_sqlite() {
    timeline(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statutory_clocks_reviews_notices_and_the_certificates_life_on_postgres() {
    timeline(Backend::Postgres).await;
}

async fn timeline(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = isolated_settings(backend, &dir);
    let _cleanup = common::Cleanup::of(&settings);
    // RULES.md's own time limits: 15 and 5 working days, a notice of 5.
    settings.policy.dir = None;
    settings.clock = Clock::manual(at("2026-09-18"));
    settings.lifecycle.sweep_ms = 100;
    settings
        .office
        .api_keys
        .insert("wang_li".into(), "key-of-wang-li-0001".into());
    let clock = settings.clock.clone();

    let samples = local::prepare(&settings, 60, 7).await.unwrap();
    let pick = |track: Track, nth: usize| {
        samples
            .iter()
            .filter(|s| s.expected.as_str() == "qualified" && s.application.track.as_deref() == Some(track.as_str()))
            .nth(nth)
            .unwrap_or_else(|| panic!("the sample has {} qualified {track:?} households", nth + 1))
    };
    // Education's pool never runs: new employees' checks wait for it.
    let running = LocalPipeline::start_without(&settings, &[Department::Education])
        .await
        .unwrap();
    let office = Office {
        base: running.base_url.clone(),
        client: reqwest::Client::new(),
        dir: dir.path().to_path_buf(),
    };

    // Every office endpoint is in the published interface, with its request body.
    let api = office.get("/openapi.json").await;
    for path in [
        "/v1/reviews",
        "/v1/applications/{id}/review",
        "/v1/applications/{id}/supplement-request",
        "/v1/applications/{id}/supplement",
        "/v1/applications/{id}/objections",
        "/v1/certificates/{number}/revoke",
        "/v1/certificates/{number}/recheck",
        "/v1/reports/deadlines",
    ] {
        assert!(api["paths"][path].is_object(), "{path} is not in /openapi.json");
    }
    assert!(api["components"]["schemas"]["ReviewRequest"].is_object(), "{api}");

    // Friday 18 September 2026. A and B need education; C, D and E do not.
    let a = office.submit(pick(Track::NewEmployee, 0)).await;
    let b = office.submit(pick(Track::NewEmployee, 1)).await;
    let c = office.submit(pick(Track::LocalFamily, 0)).await;
    let d_sample = pick(Track::LocalFamily, 1);
    let d = office.submit(d_sample).await;
    let e = office.submit(pick(Track::LocalFamily, 2)).await;

    // Deadlines count the make-up Sunday 20 September and skip 中秋 (25–27 September) and
    // 国庆 (1–7 October); the make-up Saturday 10 October counts.
    let view = office
        .wait(&a, "every department but education", |v| {
            v["departments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["answered"] == false)
                .count()
                == 1
        })
        .await;
    assert_eq!(view["status"], "checking");
    assert_eq!(view["deadline"], "2026-10-15", "{view}");
    assert_eq!(department(&view, "education")["deadline"], "2026-09-24");
    assert_eq!(view["clock"]["working_days_used"], 0);

    // C qualifies and is published (公示) for 5 working days: the make-up Sunday 20 and
    // 21–24 September.
    let view = office.wait_status(&c, "in_notice").await;
    assert_eq!(view["notice"]["ends_on"], "2026-09-24", "{view}");
    assert!(view["certificate_number"].is_null());
    office.wait_status(&d, "in_notice").await;
    office.wait_status(&e, "in_notice").await;

    // B's applicant is asked for a missing document (补正): its clock stops.
    let (code, body) = office
        .post(
            &format!("/v1/applications/{b}/supplement-request"),
            json!({ "asked_for": " " }),
        )
        .await;
    assert_eq!(code, 422, "an empty request is refused: {body}");
    let run = office
        .prh(&["supplement", "request", &b, "--document", "the labour contract"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.err);
    assert!(
        run.out.contains("status awaiting_documents") && run.out.contains("wang_li"),
        "{}",
        run.out
    );

    // Five hours on, education is asked again for A, not for the paused B.
    clock.set(at("2026-09-18") + chrono::Duration::hours(5));
    office
        .wait(&a, "a chase", |v| department(v, "education")["chases"] == 1)
        .await;
    // An objection to C during its notice: back to review.
    let run = office
        .prh(&["objection", &c, "--text", "a neighbour reports the family owns a shop"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.err);
    assert!(run.out.contains("status referred"), "{}", run.out);
    let view = office.get(&format!("/v1/applications/{b}")).await;
    assert_eq!(
        (view["status"].as_str(), view["clock"]["paused"].as_bool()),
        (Some("awaiting_documents"), Some(true))
    );
    assert_eq!(department(&view, "education")["chases"], 0, "{view}");

    // Monday 28 September: A's education answer is 6 working days late → referred,
    // naming education.
    clock.set(at("2026-09-28"));
    let view = office.wait_status(&a, "referred").await;
    assert_eq!(view["overdue_departments"], json!(["education"]), "{view}");
    let graduate = view["decision"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "ED-GRADUATE")
        .unwrap();
    assert!(
        graduate["reasons"].to_string().contains("department_no_answer"),
        "{graduate}"
    );
    assert!(
        graduate["observed"].as_str().unwrap().contains("education"),
        "{graduate}"
    );
    assert_eq!(department(&view, "education")["late"], true);
    let run = office.prh(&["status", &a]).await;
    assert!(
        run.out.contains("LATE") && run.out.contains("no answer within the limit from education"),
        "{}",
        run.out
    );
    assert_eq!(
        office.get(&format!("/v1/applications/{b}")).await["status"],
        "awaiting_documents"
    );

    // B's document arrives: 6 paused working days move its deadlines.
    let run = office
        .prh(&["supplement", "received", &b, "--note", "contract received"])
        .await;
    assert!(
        run.code == Some(0) && run.out.contains("status checking"),
        "{} {}",
        run.out,
        run.err
    );
    let view = office.get(&format!("/v1/applications/{b}")).await;
    assert_eq!(view["status"], "checking");
    assert_eq!(view["deadline"], "2026-10-23", "{view}");
    assert_eq!(department(&view, "education")["deadline"], "2026-10-10");
    assert_eq!(
        view["clock"]["pauses"][0]["from"]
            .as_str()
            .zip(view["clock"]["pauses"][0]["until"].as_str()),
        Some(("2026-09-18", "2026-09-28"))
    );

    // The review queue holds A (overdue) and C (objected), for officers only. Manual
    // decisions need a reason.
    let anonymous = reqwest::get(format!("{}/v1/reviews", office.base)).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let queue = office.get("/v1/reviews").await;
    let queued: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["application_id"].as_str())
        .collect();
    assert!(queued.contains(&a.as_str()) && queued.contains(&c.as_str()), "{queue}");
    // The same queue on the command line, with why each case is there.
    let run = office.prh(&["review", "list"]).await;
    assert_eq!(run.code, Some(0), "{}", run.err);
    assert!(
        run.out.contains(&a)
            && run.out.contains(&c)
            && run.out.contains("no answer in time from: education")
            && run
                .out
                .contains("objection during the public notice: a neighbour reports"),
        "{}",
        run.out
    );
    let run = office.prh_as(None, &["review", "list"]).await;
    assert!(run.code == Some(1) && run.err.contains("401"), "{}", run.err);
    let (code, _) = office
        .post(
            &format!("/v1/applications/{a}/review"),
            json!({ "outcome": "qualified", "reason": "" }),
        )
        .await;
    assert_eq!(code, 422);
    let run = office
        .prh(&["review", "decide", &a, "--outcome", "qualified", "--reason", " "])
        .await;
    assert!(run.code == Some(1) && run.err.contains("422"), "{}", run.err);
    let run = office
        .prh(&[
            "review",
            "decide",
            &a,
            "--outcome",
            "qualified",
            "--reason",
            "degree certificate seen at the window",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.err);
    assert!(run.out.contains("status in_notice"), "{}", run.out);
    let (code, body) = office
        .post(
            &format!("/v1/applications/{c}/review"),
            json!({ "outcome": "rejected", "reason": "the shop is the family's: assets exceed" }),
        )
        .await;
    assert_eq!((code, body["status"].as_str()), (200, Some("rejected")), "{body}");
    let view = office.get(&format!("/v1/applications/{c}")).await;
    assert_eq!(view["reviews"][0]["reviewer"], "wang_li");
    assert_eq!(view["notice"]["status"], "objected");
    assert!(view["certificate_number"].is_null());
    // A second review of a decided case is refused.
    let (code, _) = office
        .post(
            &format!("/v1/applications/{c}/review"),
            json!({ "outcome": "qualified", "reason": "x" }),
        )
        .await;
    assert_eq!(code, 409);

    // D's and E's notices ended on the 24th → certificates.
    let d_number = office
        .wait(&d, "D's certificate", |v| v["certificate_number"].is_string())
        .await["certificate_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let e_number = office
        .wait(&e, "E's certificate", |v| v["certificate_number"].is_string())
        .await["certificate_number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        office.get(&format!("/v1/applications/{d}")).await["status"],
        "qualified"
    );
    // A's notice (29, 30 September, 8, 9, 10 October) is not over yet.
    let view = office.get(&format!("/v1/applications/{a}")).await;
    assert_eq!(
        (view["status"].as_str(), view["notice"]["ends_on"].as_str()),
        (Some("in_notice"), Some("2026-10-10"))
    );

    // Sunday 11 October: A's certificate; then it is revoked, with the reason shown.
    clock.set(at("2026-10-11"));
    let a_number = office
        .wait(&a, "A's certificate", |v| v["certificate_number"].is_string())
        .await["certificate_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let cert = office.get(&format!("/v1/certificates/{a_number}")).await;
    assert_eq!(
        (cert["valid"].as_bool(), cert["status"].as_str()),
        (Some(true), Some("valid")),
        "{cert}"
    );
    let run = office
        .prh(&[
            "certificate",
            "revoke",
            &a_number,
            "--reason",
            "false employment record",
        ])
        .await;
    assert!(
        run.code == Some(0) && run.out.contains("status revoked"),
        "{} {}",
        run.out,
        run.err
    );
    let run = office.prh(&["verify", &a_number]).await;
    assert!(run.code == Some(1) && run.out.contains("NOT VALID"), "{}", run.out);
    let cert = office.get(&format!("/v1/certificates/{a_number}")).await;
    assert_eq!(
        (cert["valid"].as_bool(), cert["status"].as_str()),
        (Some(false), Some("revoked"))
    );
    assert_eq!(cert["revocation"]["reason"], "false employment record");
    let (code, _) = office
        .post(
            &format!("/v1/certificates/{a_number}/revoke"),
            json!({ "reason": "again" }),
        )
        .await;
    assert_eq!(code, 409, "a revoked certificate is not revoked twice");
    let run = office.prh(&["certificate", "recheck", &a_number]).await;
    assert!(
        run.code == Some(1) && run.err.contains("409"),
        "a revoked certificate is not re-checked: {}",
        run.err
    );

    // In January 2027 D's applicant buys a 90 m² home.
    let registries = prh_workers::seed::open_registries(&settings).await.unwrap();
    let applicant = serde_json::to_value(&d_sample.application).unwrap()["applicant"]["id_number"]
        .as_str()
        .unwrap()
        .to_owned();
    nr_properties::Entity::insert(nr_properties::ActiveModel {
        id_number: Set(applicant),
        usage: Set("residential".into()),
        area_centi_sqm: Set(9000),
        acquired_on: Set(chrono::NaiveDate::from_ymd_opt(2027, 1, 10).unwrap()),
        transferred_on: Set(None),
        transfer_cause: Set(None),
        ..Default::default()
    })
    .exec(&registries[&Department::NaturalResources])
    .await
    .unwrap();

    // 1 September 2027, within 30 days of expiry: the yearly re-checks start by themselves.
    // D now owns a home → its certificate is revoked; E still qualifies → renewed.
    clock.set(at("2027-09-01"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (d_cert, e_cert) = (
            office.get(&format!("/v1/certificates/{d_number}")).await,
            office.get(&format!("/v1/certificates/{e_number}")).await,
        );
        if d_cert["status"] == "revoked" && e_cert["status"] == "renewed" {
            let reason = d_cert["revocation"]["reason"].as_str().unwrap();
            assert!(
                reason.contains("yearly re-check") && reason.contains("housing_area_exceeds"),
                "{reason}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "re-checks not done: {d_cert} {e_cert}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Expiry: the original certificates ran until 28 September 2027; E's renewal until
    // 31 August 2028, after which it has expired.
    clock.set(at("2028-09-01"));
    // B never heard from education either: past its moved limit it was referred too.
    let view = office.wait_status(&b, "referred").await;
    assert_eq!(view["overdue_departments"], json!(["education"]), "{view}");
    let report = office.get("/v1/reports/deadlines").await;
    let row = |name: &str| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["department"] == name)
            .cloned()
            .unwrap()
    };
    let education = row("education");
    assert_eq!(
        (
            education["asked"].as_u64(),
            education["silent_overdue"].as_u64(),
            education["answered_in_time"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{report}"
    );
    let run = office.prh(&["report", "deadlines"]).await;
    let line = run.out.lines().find(|l| l.starts_with("education")).unwrap_or_default();
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns.get(1..5), Some(&["2", "0", "0", "2"][..]), "{}", run.out);
    // Five applications and two re-checks asked public security, which always answered at once.
    let police = row("public_security");
    assert_eq!(
        (police["asked"].as_u64(), police["answered_in_time"].as_u64()),
        (Some(7), Some(7)),
        "{report}"
    );
    assert_eq!(
        office.get(&format!("/v1/applications/{e}")).await["status"],
        "qualified"
    );
    let e_recheck_number = {
        let db = store::connect(&settings.pipeline_db()).await.unwrap();
        let renewal = store::pipeline::renewals::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.certificate_number == e_number)
            .unwrap();
        let view = office
            .get(&format!("/v1/applications/{}", renewal.application_id))
            .await;
        assert_eq!(view["rechecks_certificate"], e_number.as_str());
        view["certificate_number"].as_str().unwrap().to_owned()
    };
    let cert = office.get(&format!("/v1/certificates/{e_recheck_number}")).await;
    assert_eq!(
        (cert["valid"].as_bool(), cert["status"].as_str()),
        (Some(false), Some("expired")),
        "{cert}"
    );

    // Every step is on the trail, unbroken.
    let db = store::connect(&settings.pipeline_db()).await.unwrap();
    for id in [&a, &b, &c, &d, &e] {
        let links = store::audit::chain(&db, id.parse().unwrap()).await.unwrap();
        prh_common::audit::verify(&links).unwrap_or_else(|e| panic!("trail of {id}: {e}"));
        let kinds: Vec<&str> = links.iter().map(|l| l.kind.as_str()).collect();
        assert!(kinds.contains(&"decision"), "{id}: {kinds:?}");
    }

    // Every certificate issued or revoked was announced to the subscribers' queue.
    let mut expected: Vec<(&str, &str)> = [&a_number, &d_number, &e_number, &e_recheck_number]
        .into_iter()
        .map(|n| ("certificate.issued", n.as_str()))
        .collect();
    expected.extend([&a_number, &d_number].map(|n| ("certificate.revoked", n.as_str())));
    let announced = certificate_events(&settings, expected.len()).await;
    for (kind, number) in &expected {
        assert!(
            announced.iter().any(|(k, e)| k == kind && e.number == *number),
            "no {kind} of {number} in {announced:?}"
        );
    }
    let renewal = announced.iter().find(|(_, e)| e.number == e_recheck_number).unwrap();
    assert_eq!(renewal.1.renews.as_deref(), Some(e_number.as_str()));

    running.stop().await.unwrap();
}
