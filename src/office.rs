//! The officer's subcommands: the manual-review queue and its decisions, 补正 requests,
//! objections, revocations, re-checks and the deadline report, through intake's office API.
//!
//! Each call sends `client.api_key` as the officer's key (`office.api_keys`); the service
//! records the officer it belongs to. A refusal prints the service's reason and exits 1.

use anyhow::Context;
use serde_json::{Value, json};
use std::process::ExitCode;

use prh_common::config::Settings;

/// A reviewer's verdict, as `prh review decide --outcome` takes it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Outcome {
    Qualified,
    Rejected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Qualified => "qualified",
            Self::Rejected => "rejected",
        }
    }
}

/// One office request: `body` is sent as JSON with a POST, none means a GET. Gives the
/// answer when it is a success, and prints the refusal (exit status 1) otherwise.
async fn call(settings: &Settings, path: &str, body: Option<Value>) -> anyhow::Result<Result<Value, ExitCode>> {
    let url = format!("{}{path}", settings.client.intake_url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut request = match body {
        Some(body) => client.post(&url).json(&body),
        None => client.get(&url),
    };
    if let Some(key) = &settings.client.api_key {
        request = request.header("x-api-key", key);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the intake API at {}", settings.client.intake_url))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(Ok(answer));
    }
    let why = answer["error"].as_str().unwrap_or("no details");
    let hint = if status.as_u16() == 401 {
        " (set client.api_key, e.g. PRH__CLIENT__API_KEY, to your office key)"
    } else {
        ""
    };
    eprintln!("refused ({status}): {why}{hint}");
    Ok(Err(ExitCode::from(1)))
}

/// Prints what an action did: the case's new status and who is recorded as doing it.
async fn act(settings: &Settings, what: &str, path: &str, body: Value) -> anyhow::Result<ExitCode> {
    Ok(match call(settings, path, Some(body)).await? {
        Ok(done) => {
            println!(
                "{what}: status {}  (recorded as {})",
                done["status"].as_str().unwrap_or("?"),
                done["by"].as_str().unwrap_or("?")
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    })
}

/// `prh review list`: every referred case, oldest first, with what sent it to review.
pub async fn review_list(settings: &Settings, raw: bool) -> anyhow::Result<ExitCode> {
    let cases = match call(settings, "/v1/reviews", None).await? {
        Ok(cases) => cases,
        Err(code) => return Ok(code),
    };
    if raw {
        println!("{}", serde_json::to_string_pretty(&cases)?);
        return Ok(ExitCode::SUCCESS);
    }
    let cases = cases.as_array().cloned().unwrap_or_default();
    if cases.is_empty() {
        println!("no referred case waits for review");
    }
    for case in &cases {
        print!("{}", render_case(case));
    }
    Ok(ExitCode::SUCCESS)
}

/// One referred case for the review list: who, since when, and every criterion that did
/// not pass with its observed value and reason; the objection or overdue departments.
pub fn render_case(case: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{}  ({})  track {}  submitted {}\n",
        s(&case["reference"]),
        s(&case["application_id"]),
        s(&case["track"]),
        s(&case["submitted_at"])
    );
    let overdue: Vec<String> = case["overdue_departments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if !overdue.is_empty() {
        out.push_str(&format!("  no answer in time from: {}\n", overdue.join(", ")));
    }
    if let Some(objection) = case["notice"]["objection"].as_str() {
        out.push_str(&format!("  objection during the public notice: {objection}\n"));
    }
    for c in case["decision"]["criteria"].as_array().into_iter().flatten() {
        if c["outcome"] == "pass" {
            continue;
        }
        out.push_str(&format!(
            "  {} {:<18} {}  — {}\n",
            if c["outcome"] == "fail" { "✗" } else { "?" },
            s(&c["code"]),
            s(&c["observed"]),
            s(&c["message_en"])
        ));
    }
    out
}

/// `prh review decide`: settle a referred case with a written reason.
pub async fn review_decide(settings: &Settings, id: &str, outcome: Outcome, reason: &str) -> anyhow::Result<ExitCode> {
    let body = json!({ "outcome": outcome.as_str(), "reason": reason });
    act(settings, id, &format!("/v1/applications/{id}/review"), body).await
}

/// `prh supplement request`: ask the applicant for a document (补正); the clock stops.
pub async fn supplement_request(settings: &Settings, id: &str, asked_for: &str) -> anyhow::Result<ExitCode> {
    let body = json!({ "asked_for": asked_for });
    act(settings, id, &format!("/v1/applications/{id}/supplement-request"), body).await
}

/// `prh supplement received`: the document arrived; the clock runs again.
pub async fn supplement_received(settings: &Settings, id: &str, note: Option<&str>) -> anyhow::Result<ExitCode> {
    let body = json!({ "note": note });
    act(settings, id, &format!("/v1/applications/{id}/supplement"), body).await
}

/// `prh objection`: an objection received during the public notice (公示) refers the case.
pub async fn object(settings: &Settings, id: &str, objection: &str) -> anyhow::Result<ExitCode> {
    let body = json!({ "objection": objection });
    act(settings, id, &format!("/v1/applications/{id}/objections"), body).await
}

/// `prh certificate revoke`: withdraw a valid certificate, with the reason.
pub async fn revoke(settings: &Settings, number: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let body = json!({ "reason": reason });
    act(settings, number, &format!("/v1/certificates/{number}/revoke"), body).await
}

/// `prh certificate recheck`: start the yearly re-check (年审) of a certificate now.
pub async fn recheck(settings: &Settings, number: &str) -> anyhow::Result<ExitCode> {
    Ok(
        match call(settings, &format!("/v1/certificates/{number}/recheck"), Some(json!({}))).await? {
            Ok(receipt) => {
                println!(
                    "re-check of {number} submitted: {}  id {}",
                    receipt["reference"].as_str().unwrap_or("?"),
                    receipt["application_id"].as_str().unwrap_or("?")
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    )
}

/// `prh report deadlines`: per department, answered in time, late, silent past the limit,
/// pending, and the mean working days taken; a table or the API's JSON.
pub async fn report_deadlines(settings: &Settings, raw: bool) -> anyhow::Result<ExitCode> {
    let body = match call(settings, "/v1/reports/deadlines", None).await? {
        Ok(body) => body,
        Err(code) => return Ok(code),
    };
    if raw {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<18} {:>6} {:>8} {:>5} {:>15} {:>8} {:>10}",
        "department", "asked", "in time", "late", "silent, overdue", "pending", "mean days"
    );
    for row in body.as_array().into_iter().flatten() {
        let n = |k: &str| row[k].as_u64().unwrap_or_default();
        println!(
            "{:<18} {:>6} {:>8} {:>5} {:>15} {:>8} {:>10}",
            row["department"].as_str().unwrap_or_default(),
            n("asked"),
            n("answered_in_time"),
            n("answered_late"),
            n("silent_overdue"),
            n("pending"),
            row["mean_working_days"]
                .as_f64()
                .map_or("—".to_owned(), |d| format!("{d:.1}"))
        );
    }
    Ok(ExitCode::SUCCESS)
}
