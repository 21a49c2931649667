//! The `prh` binary as a user runs it: the demo ends with verified certificates, and
//! `prh verify` accepts a genuine certificate file and rejects one with a byte changed.

use std::process::Command;

fn prh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prh"));
    if let Ok(url) = std::env::var("PRH_TEST_AMQP_URL") {
        cmd.env("PRH__AMQP__URL", url);
    }
    cmd
}

#[test]
fn demo_issues_certificates_that_verify_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let out = prh()
        .current_dir(dir.path())
        .args(["demo", "--applications", "24", "--dir"])
        .arg(&work)
        .output()
        .unwrap();
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
        "demo",
    ] {
        let out = prh().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help failed");
        assert!(!out.stdout.is_empty());
    }
}
