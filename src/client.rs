//! Subcommands for people at a terminal: submit a form, follow an application, verify a
//! certificate. They talk to the intake API (`client.intake_url`).

use anyhow::{Context, bail};
use prh_common::{certificate::SignedCertificate, config::Settings, signing::KeyRing};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::{path::Path, process::ExitCode};

fn url(settings: &Settings, path: &str) -> String {
    format!("{}{path}", settings.client.intake_url.trim_end_matches('/'))
}

pub async fn submit(settings: &Settings, file: &Path, key: Option<String>) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let key = key.unwrap_or_else(|| format!("file-{}", hex::encode(&Sha256::digest(&body)[..16])));
    let mut request = reqwest::Client::new()
        .post(url(settings, "/v1/applications"))
        .header("content-type", "application/json")
        .header("idempotency-key", key);
    if let Some(api_key) = &settings.client.api_key {
        request = request.header("x-api-key", api_key);
    }
    let response = request
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the intake API at {}", settings.client.intake_url))?;
    let status = response.status();
    let json: Value = response.json().await.unwrap_or(Value::Null);
    if status.as_u16() == 202 {
        println!(
            "accepted: {}  id {}",
            json["reference"].as_str().unwrap_or("?"),
            json["application_id"].as_str().unwrap_or("?")
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("refused ({status}):");
    match json["errors"].as_array() {
        Some(errors) => {
            for e in errors {
                eprintln!(
                    "  {}: {} ({})",
                    e["field"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or(""),
                    e["code"].as_str().unwrap_or("")
                );
            }
        }
        None => eprintln!("  {}", json["error"].as_str().unwrap_or("no details")),
    }
    Ok(ExitCode::from(1))
}

pub async fn status(settings: &Settings, id: &str, raw: bool) -> anyhow::Result<ExitCode> {
    let response = reqwest::get(url(settings, &format!("/v1/applications/{id}")))
        .await
        .with_context(|| format!("cannot reach the intake API at {}", settings.client.intake_url))?;
    if response.status().as_u16() == 404 {
        eprintln!("no application {id}");
        return Ok(ExitCode::from(1));
    }
    let view: Value = response.json().await.context("reading the answer")?;
    if raw {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render_status(&view));
    Ok(ExitCode::SUCCESS)
}

/// The status view as text for a terminal.
pub fn render_status(view: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{}  ({})\ntrack {}  status {}  submitted {}  deadline {}\n",
        s(&view["reference"]),
        s(&view["application_id"]),
        s(&view["track"]),
        s(&view["status"]),
        s(&view["submitted_at"]),
        s(&view["deadline"])
    );
    let clock = &view["clock"];
    if clock.is_object() {
        out.push_str(&format!(
            "clock {} of {} working days used{}\n",
            clock["working_days_used"],
            clock["decision_working_days"],
            if clock["paused"] == true {
                ", paused (补正)"
            } else {
                ""
            }
        ));
        for p in clock["pauses"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  asked for {} on {} by {}, {}\n",
                s(&p["asked_for"]),
                s(&p["from"]),
                s(&p["asked_by"]),
                p["until"]
                    .as_str()
                    .map_or("still waiting".to_owned(), |u| format!("received {u}"))
            ));
        }
    }
    out.push_str("\ndepartments:\n");
    for d in view["departments"].as_array().into_iter().flatten() {
        let mut line = if d["answered"].as_bool() == Some(true) {
            format!("answered {}", s(&d["received_at"]))
        } else {
            format!("waiting, due {}", s(&d["deadline"]))
        };
        if d["late"] == true {
            line.push_str("  LATE");
        }
        if let Some(n) = d["chases"].as_i64().filter(|n| *n > 0) {
            line.push_str(&format!("  asked again {n}×"));
        }
        out.push_str(&format!("  {:<18} {line}\n", s(&d["department"])));
    }
    let overdue: Vec<String> = view["overdue_departments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if !overdue.is_empty() {
        out.push_str(&format!(
            "referred: no answer within the limit from {}\n",
            overdue.join(", ")
        ));
    }
    match view["decision"].as_object() {
        None => out.push_str("\nno decision yet\n"),
        Some(d) => {
            out.push_str(&format!(
                "\ndecision: {}  (policy {}, {})\n",
                s(&d["outcome"]),
                s(&d["policy_version"]),
                s(&d["decided_at"])
            ));
            for c in d["criteria"].as_array().into_iter().flatten() {
                let outcome = s(&c["outcome"]);
                let mark = match outcome.as_str() {
                    "pass" => "✓",
                    "fail" => "✗",
                    _ => "?",
                };
                out.push_str(&format!(
                    "  {mark} {:<18} {:<5} {}",
                    s(&c["code"]),
                    outcome,
                    s(&c["observed"])
                ));
                if outcome != "pass" {
                    out.push_str(&format!("  — {} / {}", s(&c["message_en"]), s(&c["message_zh"])));
                }
                out.push('\n');
            }
            if let Some(award) = d["award"].as_object() {
                out.push_str(&format!("  priority group {}", award["priority_group"]));
                if let Some(fen) = award["monthly_subsidy_fen"].as_i64() {
                    out.push_str(&format!(", monthly subsidy {}", prh_common::money::Fen(fen)));
                }
                out.push('\n');
            }
        }
    }
    for r in view["reviews"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "reviewed: {} by {} at {}: {}\n",
            s(&r["outcome"]),
            s(&r["reviewer"]),
            s(&r["at"]),
            s(&r["reason"])
        ));
    }
    if let Some(notice) = view["notice"].as_object() {
        out.push_str(&format!(
            "public notice (公示) {} to {}: {}",
            s(&notice["starts_on"]),
            s(&notice["ends_on"]),
            s(&notice["status"])
        ));
        if let Some(objection) = notice["objection"].as_str() {
            out.push_str(&format!(" — objection: {objection}"));
        }
        out.push('\n');
    }
    if let Some(n) = view["certificate_number"].as_str() {
        out.push_str(&format!("certificate: {n}\n"));
    }
    out
}

pub async fn verify(settings: &Settings, target: &str, key: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut keys = KeyRing::default();
    match key {
        Some(path) => {
            keys.add_file(path)?;
        }
        None => keys = settings.trusted_keys()?,
    }
    let path = Path::new(target);
    let (bytes, online_valid) = if path.exists() {
        (
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            None,
        )
    } else {
        let response = reqwest::get(url(settings, &format!("/v1/certificates/{target}")))
            .await
            .with_context(|| {
                format!(
                    "{target} is not a file, and the intake API at {} cannot be reached",
                    settings.client.intake_url
                )
            })?;
        if response.status().as_u16() == 404 {
            println!("NOT VALID: no certificate numbered {target}");
            return Ok(ExitCode::from(1));
        }
        let view: Value = response.json().await.context("reading the answer")?;
        if keys.is_empty() {
            // No local key: fall back to the keys the service publishes.
            let listed: Value = reqwest::get(url(settings, "/v1/keys")).await?.json().await?;
            for k in listed["keys"].as_array().into_iter().flatten() {
                keys.add_base64(k["public_key"].as_str().unwrap_or(""));
            }
        }
        let signed: SignedCertificate =
            serde_json::from_value(view["certificate"].clone()).context("the service sent no certificate")?;
        (signed.to_file_bytes(), view["valid"].as_bool())
    };
    if keys.is_empty() {
        bail!("no trusted public key: pass --key FILE or configure signing.key_file / signing.trusted_keys");
    }
    match SignedCertificate::verify_file(&bytes, &keys) {
        Ok(signed) if online_valid != Some(false) => {
            let c = &signed.certificate;
            let today = prh_common::china_today();
            if today < c.valid_from || today > c.valid_until {
                println!(
                    "NOT VALID: {} is genuine but valid only {} to {}",
                    c.number, c.valid_from, c.valid_until
                );
                return Ok(ExitCode::from(1));
            }
            println!(
                "VALID: {} for {} ({}), {} person(s), valid until {}, signed by key {}",
                c.number,
                c.applicant.name,
                c.applicant.id_number_masked,
                c.household.len(),
                c.valid_until,
                c.key_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(signed) => {
            println!(
                "NOT VALID: {} has been withdrawn by the issuer",
                signed.certificate.number
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            println!("NOT VALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `prh calendar check`: each file parsed and checked, with what it holds.
pub fn check_calendars(files: &[std::path::PathBuf]) -> ExitCode {
    let mut sound = !files.is_empty();
    if files.is_empty() {
        eprintln!("name one or more calendar files, e.g. calendar/2026.toml");
    }
    for file in files {
        match prh_common::calendar::WorkCalendar::read_file(file) {
            Ok(year) => {
                println!(
                    "{}: {}{} — {} holiday days, {} make-up working days ({})",
                    file.display(),
                    year.year,
                    if year.provisional {
                        " PROVISIONAL (statutory holidays only, no 调休 yet)"
                    } else {
                        ""
                    },
                    year.holidays.len(),
                    year.workdays.len(),
                    year.source
                );
                let mut names: Vec<(&chrono::NaiveDate, &String)> = year.holidays.iter().collect();
                names.dedup_by(|a, b| a.1 == b.1);
                for (first, name) in names {
                    let last = year.holidays.iter().filter(|(_, n)| *n == name).map(|(d, _)| d).max();
                    println!("  {name}: {first} to {}", last.unwrap_or(first));
                }
                for day in &year.workdays {
                    println!("  worked: {day} ({})", day.format("%a"));
                }
            }
            Err(e) => {
                eprintln!("{e}");
                sound = false;
            }
        }
    }
    if sound { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
