//! The `prh` binary as a user runs it: the demo ends with verified certificates, and
//! `prh verify` accepts a genuine certificate file and rejects one with a byte changed.

use std::{path::PathBuf, process::Command};

fn prh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prh"));
    if let Ok(url) = std::env::var("PRH_TEST_AMQP_URL") {
        cmd.env("PRH__AMQP__URL", url);
    }
    cmd
}

/// Runs `prh demo` with `applications` in `<dir>/demo` (returned) and `log_filter` as
/// RUST_LOG when given.
fn demo(dir: &std::path::Path, applications: usize, log_filter: Option<&str>) -> (std::process::Output, PathBuf) {
    let work = dir.join("demo");
    let mut cmd = prh();
    cmd.current_dir(dir)
        .args(["demo", "--applications", &applications.to_string(), "--dir"])
        .arg(&work);
    if let Some(filter) = log_filter {
        cmd.env("RUST_LOG", filter);
    }
    (cmd.output().unwrap(), work)
}

#[test]
fn demo_issues_certificates_that_verify_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (out, work) = demo(dir.path(), 24, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("as expected    24 of 24"), "{stdout}");

    let certs: Vec<_> = std::fs::read_dir(work.join("certificates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!certs.is_empty(), "{stdout}");
    let key = work.join("keys/signing.key.pub");
    let verify = |path: &std::path::Path| prh().arg("verify").arg(path).arg("--key").arg(&key).output().unwrap();
    let genuine = verify(&certs[0]);
    assert!(genuine.status.success(), "{}", String::from_utf8_lossy(&genuine.stdout));

    let mut bytes = std::fs::read(&certs[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, bytes).unwrap();
    let refused = verify(&tampered);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("NOT VALID"));
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "intake",
        "worker",
        "collector",
        "migrate",
        "seed",
        "submit",
        "status",
        "verify",
        "keys",
        "broker",
        "audit",
        "demo",
        "calendar",
        "report",
        "review",
        "supplement",
        "objection",
        "certificate",
    ] {
        let out = prh().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help failed");
        assert!(!out.stdout.is_empty());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET /metrics on a local port, with a bare HTTP/1.0 request.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The sum of every sample of `selector` (a metric name, optionally with the start of its
/// labels) in a Prometheus text exposition.
fn metric(text: &str, selector: &str) -> f64 {
    let (name, labels) = selector
        .split_once('{')
        .map_or((selector, ""), |(n, l)| (n, l.trim_end_matches('}')));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Child processes that are killed if the test fails half-way.
struct Processes(Vec<std::process::Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every component as its own process, configured only through PRH__ variables, driven
/// with `prh submit`, `prh status` and `prh verify` as an operator would; SIGTERM stops
/// each process cleanly.
#[test]
fn separate_processes_decide_what_prh_submit_sends() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prefix = format!("prh-cli-{}", std::process::id());
    let env = |cmd: &mut Command| {
        cmd.current_dir(dir.path())
            .env("PRH__DATA_DIR", dir.path().join("data"))
            .env("PRH__AMQP__PREFIX", &prefix)
            .env("PRH__INTAKE__LISTEN", format!("127.0.0.1:{port}"))
            .env("PRH__CLIENT__INTAKE_URL", format!("http://127.0.0.1:{port}"))
            .env("PRH__INTAKE__RELAY_POLL_MS", "100")
            .env("RUST_LOG", "warn");
    };
    let run = |args: &[&str]| {
        let mut cmd = prh();
        env(&mut cmd);
        let out = cmd.args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, _, err) = run(&["migrate"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&[
        "seed",
        "--catalogue",
        "--seed",
        "11",
        "--out",
        "samples.jsonl",
        "--forms-dir",
        "forms",
    ]);
    assert_eq!(code, Some(0), "{err}");

    let mut procs = Processes(Vec::new());
    // Every process serves /metrics: intake on its API port, the others on a probe port.
    let mut probe_ports = Vec::new();
    let mut spawn = |args: &[&str]| {
        let mut cmd = prh();
        env(&mut cmd);
        let probe = free_port();
        cmd.env("PRH__WORKERS__PROBE_LISTEN", format!("127.0.0.1:{probe}"))
            .env("PRH__COLLECTOR__PROBE_LISTEN", format!("127.0.0.1:{probe}"));
        probe_ports.push((args.join(" "), probe));
        procs.0.push(
            cmd.args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
    };
    spawn(&["collector"]);
    for d in [
        "public_security",
        "civil_affairs",
        "human_resources",
        "natural_resources",
        "housing",
        "education",
    ] {
        spawn(&["worker", "--department", d]);
    }
    spawn(&["intake"]);
    probe_ports.pop();
    probe_ports.push(("intake".into(), port));

    let samples: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut forms: Vec<_> = std::fs::read_dir(dir.path().join("forms"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    forms.sort();
    assert_eq!(forms.len(), samples.len());

    // Intake may still be starting: retry the first submission for a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut references = Vec::new();
    for form in &forms {
        let reference = loop {
            let (code, out, err) = run(&["submit", form.to_str().unwrap()]);
            if code == Some(0) {
                break out.split_whitespace().nth(1).unwrap().to_owned();
            }
            assert!(std::time::Instant::now() < deadline, "submit kept failing: {out} {err}");
            std::thread::sleep(std::time::Duration::from_millis(300));
        };
        references.push(reference);
    }
    // Submitting the same file again is harmless: same reference.
    let (_, again, _) = run(&["submit", forms[0].to_str().unwrap()]);
    assert!(again.contains(&references[0]), "{again}");

    for (reference, sample) in references.iter().zip(&samples) {
        let view: serde_json::Value = loop {
            let (code, out, err) = run(&["status", reference, "--json"]);
            assert_eq!(code, Some(0), "{err}");
            let view: serde_json::Value = serde_json::from_str(&out).unwrap();
            if !view["decision"].is_null() {
                break view;
            }
            assert!(
                std::time::Instant::now() < deadline + std::time::Duration::from_secs(60),
                "{reference} undecided: {view}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        // The default policy publishes a qualified household first (公示, 5 working days).
        let expected = match sample["expected"].as_str() {
            Some("qualified") => "in_notice",
            other => other.unwrap_or_default(),
        };
        assert_eq!(view["status"], expected, "{reference} ({}): {view}", sample["scenario"]);
        if expected == "in_notice" {
            assert!(view["notice"]["ends_on"].is_string(), "{view}");
        }
        let (_, text, _) = run(&["status", reference]);
        assert!(text.contains("decision:") && text.contains("public_security"), "{text}");
        if let Some(number) = view["certificate_number"].as_str() {
            let (code, out, _) = run(&["verify", number]);
            assert_eq!(code, Some(0), "{out}");
            assert!(out.starts_with("VALID"), "{out}");
        }
    }
    let (code, out, _) = run(&["verify", "WHZG-2026-999999"]);
    assert_eq!(code, Some(1), "{out}");

    // Every process's /metrics shows its counters moved with the applications.
    let total = forms.len() as f64;
    for (who, probe) in &probe_ports {
        let text = scrape(*probe);
        let (name, at_least) = match who.as_str() {
            "intake" => ("prh_applications_total{channel=\"http\"}", total),
            "collector" => ("prh_decisions_total", total),
            _ => ("prh_checks_total", 1.0),
        };
        let value = metric(&text, name);
        assert!(
            value >= at_least,
            "{who}: {name} is {value}, expected at least {at_least}\n{text}"
        );
        assert!(
            metric(&text, "prh_deliveries_total") > 0.0 || who == "intake",
            "{who}: no deliveries counted"
        );
        // Every application was a job of intake's and the collector's group commits, and
        // every pool checked in them too.
        let (unit, jobs) = match who.as_str() {
            "intake" => ("intake", total),
            "collector" => ("collector", total),
            pool => (pool.rsplit(' ').next().unwrap_or_default(), 1.0),
        };
        let committed = metric(&text, &format!("prh_group_commit_jobs_sum{{unit=\"{unit}\"}}"));
        assert!(
            committed >= jobs,
            "{who}: {committed} group-commit jobs, expected at least {jobs}\n{text}"
        );
        assert!(
            metric(&text, "prh_group_commit_seconds_count") > 0.0,
            "{who}: no transaction timed"
        );
    }

    // SIGTERM: every process finishes its work and exits 0.
    for child in &procs.0 {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    for child in &mut procs.0 {
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "a process did not stop cleanly");
    }
    procs.0.clear();

    let settings = prh_common::config::Settings {
        amqp: prh_common::config::AmqpSettings {
            prefix: prefix.clone(),
            url: std::env::var("PRH_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(prh::local::remove_topology(&settings))
        .unwrap();
}

#[test]
fn components_refuse_to_start_on_an_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["intake", "--listen", "127.0.0.1:0"][..],
        &["collector"],
        &["worker", "--department", "education"],
    ] {
        let out = prh()
            .current_dir(dir.path())
            .env("PRH__AMQP__PREFIX", "prh-unmigrated")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("run `prh migrate` first"), "{args:?}: {stderr}");
    }
}

#[test]
fn registry_import_reports_bad_lines_by_number_and_loads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("education.jsonl");
    let lines = [
        r#"{"record":"person","id_number":"11010519491231002X","name":"张三"}"#,
        r#"{"record":"degree","id_number":"11010519491231002X","level":"bachelor","graduated_on":"2024-07-01"}"#,
        r#"{"record":"degree","id_number":"110105194912310021","level":"bachelor","graduated_on":"2024-07-01"}"#,
        r#"{"record":"degree","id_number":"11010519491231002X","level":"bachelor","graduated_on":"2024-07-01","grade":"A"}"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = prh()
        .current_dir(dir.path())
        .args(["registry", "import", "--department", "education"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("line 3: not a valid ID number"), "{stdout}");
    assert!(stdout.contains("line 4: unknown field `grade`"), "{stdout}");
    assert!(stdout.contains("education: 2 record(s) loaded"), "{stdout}");
    assert!(
        !stdout.contains("110105194912310021"),
        "a full ID number in the report: {stdout}"
    );
}

#[test]
fn keys_are_generated_once_and_rotation_keeps_the_old_key_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = prh()
            .current_dir(dir.path())
            .env("PRH__DATA_DIR", dir.path())
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let key_id = |text: &str, department: &str| {
        text.lines()
            .find(|l| l.starts_with(department))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no {department} line in {text}"))
            .to_owned()
    };

    let first = run(&["keys", "generate"]);
    assert_eq!(first.lines().count(), 6, "one key per department: {first}");
    let again = run(&["keys", "generate", "--department", "housing"]);
    assert_eq!(
        key_id(&again, "housing"),
        key_id(&first, "housing"),
        "a key was replaced"
    );

    let rotated = run(&["keys", "generate", "--department", "housing", "--rotate"]);
    let (old, new) = (key_id(&first, "housing"), key_id(&rotated, "housing"));
    assert_ne!(old, new);
    let listed = run(&["keys", "list"]);
    let housing = listed.lines().find(|l| l.trim_start().starts_with("housing")).unwrap();
    assert!(
        housing.contains(&old) && housing.contains(&new),
        "both keys must be trusted: {listed}"
    );
}

/// Whether `text` holds something shaped like a full resident ID number: 17 digits and a
/// digit or X, not part of a longer run of digits.
fn holds_full_id_number(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let check_x = digits == 17 && matches!(bytes.get(i + 17), Some(b'X' | b'x'));
        if digits == 18 || check_x {
            return Some(text[i..i + 18].to_owned());
        }
        i += digits.max(1);
    }
    None
}

#[test]
fn a_whole_run_logs_no_full_id_number() {
    assert_eq!(
        holds_full_id_number("id 37100219800101123X seen").as_deref(),
        Some("37100219800101123X")
    );
    assert_eq!(
        holds_full_id_number("uuid 0123456789012345678901 and 3710****1234"),
        None
    );

    let dir = tempfile::tempdir().unwrap();
    let (out, _) = demo(dir.path(), 24, Some("debug"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    // The logs are there, at debug level, and cover every stage.
    for line in ["application accepted", "decided", "consuming"] {
        assert!(stderr.contains(line), "no `{line}` in the logs:\n{stderr}");
    }
    for (name, text) in [("stdout", &stdout), ("logs", &stderr)] {
        assert_eq!(holds_full_id_number(text), None, "a full ID number in the {name}");
    }
}

#[test]
fn an_edited_audit_trail_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (out, work) = demo(dir.path(), 6, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verify = || {
        let out = prh()
            .current_dir(dir.path())
            .env("PRH__DATA_DIR", &work)
            .args(["audit", "verify", "GZF-2026-000001"])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = verify();
    assert_eq!(code, Some(0), "{text}");
    for kind in ["submitted", "dispatched", "finding", "decision"] {
        assert!(text.contains(kind), "no {kind} event: {text}");
    }

    // Quietly rewrite what one department answered.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sea_orm::{ConnectionTrait, Statement};
        let url = format!("sqlite://{}?mode=rw", work.join("prh.db").display());
        let db = sea_orm::Database::connect(&url).await.unwrap();
        let edited = db
            .execute_raw(Statement::from_string(
                db.get_database_backend(),
                "UPDATE audit_events SET payload = replace(payload, 'key_id', 'kid') \
                 WHERE seq = 3 AND application_id = \
                 (SELECT id FROM applications WHERE reference = 'GZF-2026-000001')",
            ))
            .await
            .unwrap();
        assert_eq!(edited.rows_affected(), 1);
    });
    let (code, text) = verify();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("BROKEN: event 3 (finding) was altered"), "{text}");
}

/// `prh bench --json` on a small run: the report scripts read has its top-level figures,
/// and they are consistent with what was driven (speed itself is reported, not asserted).
#[test]
fn bench_reports_its_figures_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = prh()
        .current_dir(dir.path())
        .args([
            "bench",
            "--applications",
            "40",
            "--ceiling-messages",
            "2000",
            "--json",
            "--dir",
        ])
        .arg(dir.path().join("bench"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["applications"], 40, "{report}");
    let number = |field: &str| {
        report[field]
            .as_f64()
            .unwrap_or_else(|| panic!("no number {field}: {report}"))
    };
    assert!(number("applications_per_second") > 0.0, "{report}");
    let fraction = number("ceiling_fraction");
    assert!(fraction > 0.0 && fraction < 1.0, "{report}");
    // At least a check request and a finding for each of the four departments every
    // track asks, and the decision event.
    assert!(number("messages_per_application") >= 9.0, "{report}");
    assert_eq!(
        report["broker_ceiling_trials"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert!(
        report["cpu_seconds"]["all-in-one"].as_f64().unwrap_or_default() > 0.0,
        "{report}"
    );
    assert!(number("prh_cpu_ms_per_application") > 0.0, "{report}");
    assert!(
        report["group_commits"]["collector"]["transactions"]
            .as_f64()
            .unwrap_or_default()
            >= 1.0,
        "{report}"
    );
}
