//! `prh keys`: the departments' finding keys and the authority's certificate key — create,
//! rotate and list them.

use anyhow::Context;
use prh_common::{
    config::Settings,
    department::Department,
    signing::{DepartmentKeys, KeyPair, KeyRing, public_key_path},
};
use std::process::ExitCode;

/// Creates each department's key where missing; with `rotate`, replaces it with a new one
/// while the old public key stays trusted (as `<key id>.pub`) until the operator removes
/// it, so findings signed before the switch are still accepted.
pub fn generate(settings: &Settings, departments: &[Department], rotate: bool) -> anyhow::Result<ExitCode> {
    let dir = settings.findings_keys_dir();
    let departments = if departments.is_empty() {
        &Department::ALL[..]
    } else {
        departments
    };
    for &department in departments {
        let file = DepartmentKeys::key_file(&dir, department);
        let mut retired = None;
        if rotate && file.exists() {
            let old = KeyPair::load_or_generate(&file).with_context(|| format!("reading {}", file.display()))?;
            let kept = file.with_file_name(format!("{}.pub", old.key_id()));
            std::fs::rename(public_key_path(&file), &kept)
                .with_context(|| format!("keeping the old public key as {}", kept.display()))?;
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
            retired = Some(old.key_id().to_owned());
        }
        let existed = file.exists();
        let key = KeyPair::load_or_generate(&file).with_context(|| format!("creating {}", file.display()))?;
        let what = match (&retired, existed) {
            (Some(old), _) => format!("new key (the old one, {old}, stays trusted until its .pub file is removed)"),
            (None, true) => "existing key".to_owned(),
            (None, false) => "new key".to_owned(),
        };
        println!("{department:<18} {}  {}  {what}", key.key_id(), file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every key the collector and verifiers trust, by owner.
pub fn list(settings: &Settings) -> anyhow::Result<ExitCode> {
    let dir = settings.findings_keys_dir();
    println!("finding keys under {}:", dir.display());
    for department in Department::ALL {
        let mut ring = KeyRing::default();
        let folder = dir.join(department.as_str());
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "pub") {
                ring.add_file(&entry.path())?;
            }
        }
        let ids: Vec<&String> = ring.public_keys().map(|(id, _)| id).collect();
        let shown = if ids.is_empty() {
            "none (the pool creates its key on first start)".to_owned()
        } else {
            ids.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        };
        println!("  {department:<18} {shown}");
    }
    let certificates = settings.trusted_keys()?;
    let ids: Vec<&String> = certificates.public_keys().map(|(id, _)| id).collect();
    println!(
        "certificate keys: {}",
        if ids.is_empty() {
            "none yet (the collector creates its key on first start)".to_owned()
        } else {
            ids.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
