//! Every version of the eligibility policy side by side, and which one is in force on a
//! date: an application is judged by the version in force on its application date.

use crate::policy::{Policy, PolicyError};
use chrono::NaiveDate;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct PolicySet {
    /// Sorted by effective date, oldest first; never empty.
    versions: Vec<Policy>,
}

impl PolicySet {
    /// Every `*.toml` policy file in `dir`, or the built-in defaults when no folder is
    /// configured. A bad file is an error naming the file, never skipped.
    pub fn load(dir: Option<&Path>) -> Result<Self, PolicyError> {
        let Some(dir) = dir else {
            return Self::new(vec![Policy::default()]);
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| PolicyError::Invalid(format!("cannot read the policy folder {}: {e}", dir.display())))?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut versions = Vec::new();
        for path in &paths {
            let policy =
                Policy::load(Some(path)).map_err(|e| PolicyError::Invalid(format!("{}: {e}", path.display())))?;
            versions.push(policy);
        }
        if versions.is_empty() {
            return Err(PolicyError::Invalid(format!(
                "the policy folder {} holds no .toml file",
                dir.display()
            )));
        }
        Self::new(versions)
    }

    /// A set of versions; versions and effective dates must each be unique.
    pub fn new(mut versions: Vec<Policy>) -> Result<Self, PolicyError> {
        versions.sort_by_key(|p| p.effective_from);
        for pair in versions.windows(2) {
            if pair[0].effective_from == pair[1].effective_from {
                return Err(PolicyError::Invalid(format!(
                    "versions {} and {} take effect on the same day {}",
                    pair[0].version, pair[1].version, pair[0].effective_from
                )));
            }
        }
        for (i, p) in versions.iter().enumerate() {
            if versions[..i].iter().any(|q| q.version == p.version) {
                return Err(PolicyError::Invalid(format!("version {} appears twice", p.version)));
            }
        }
        if versions.is_empty() {
            return Err(PolicyError::Invalid("no policy version".into()));
        }
        Ok(Self { versions })
    }

    /// The version in force on `date`: the latest one effective on or before it.
    pub fn in_force_on(&self, date: NaiveDate) -> Option<&Policy> {
        self.versions.iter().rev().find(|p| p.effective_from <= date)
    }

    /// A version by name, as recorded on an application.
    pub fn get(&self, version: &str) -> Option<&Policy> {
        self.versions.iter().find(|p| p.version == version)
    }

    pub fn versions(&self) -> &[Policy] {
        &self.versions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str, from: (i32, u32, u32)) -> Policy {
        Policy {
            version: name.into(),
            effective_from: NaiveDate::from_ymd_opt(from.0, from.1, from.2).unwrap(),
            ..Policy::default()
        }
    }

    #[test]
    fn the_version_in_force_is_the_latest_effective_one() {
        let set = PolicySet::new(vec![version("2027", (2027, 1, 1)), version("2026", (2026, 1, 1))]).unwrap();
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(set.in_force_on(d(2025, 12, 31)), None);
        assert_eq!(set.in_force_on(d(2026, 1, 1)).unwrap().version, "2026");
        assert_eq!(set.in_force_on(d(2026, 12, 31)).unwrap().version, "2026");
        assert_eq!(set.in_force_on(d(2027, 1, 1)).unwrap().version, "2027");
        assert_eq!(set.get("2026").unwrap().effective_from, d(2026, 1, 1));
    }

    #[test]
    fn clashing_versions_are_refused() {
        assert!(PolicySet::new(vec![version("a", (2026, 1, 1)), version("b", (2026, 1, 1))]).is_err());
        assert!(PolicySet::new(vec![version("a", (2026, 1, 1)), version("a", (2027, 1, 1))]).is_err());
        assert!(PolicySet::new(vec![]).is_err());
    }

    #[test]
    fn a_folder_loads_every_file_and_names_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("prh-policies-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let default = include_str!("../../policy/default.toml");
        std::fs::write(dir.join("2026.toml"), default).unwrap();
        let next = default
            .replace("version = \"rules-md-defaults-1\"", "version = \"weihai-2027\"")
            .replace("effective_from = \"2026-01-01\"", "effective_from = \"2027-01-01\"");
        std::fs::write(dir.join("2027.toml"), next).unwrap();
        let set = PolicySet::load(Some(&dir)).unwrap();
        assert_eq!(set.versions().len(), 2);
        std::fs::write(dir.join("broken.toml"), "version = 1").unwrap();
        let err = PolicySet::load(Some(&dir)).unwrap_err().to_string();
        assert!(err.contains("broken.toml"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
