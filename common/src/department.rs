//! The six departments that answer check requests, and which ones each track needs.
//! A `Department` is an enum so an unknown department cannot be routed to.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Department {
    /// 公安: identity, hukou, residence permits, vehicles.
    PublicSecurity,
    /// 民政: marriage, assistance status, verified income and assets.
    CivilAffairs,
    /// 人社: social insurance contributions.
    HumanResources,
    /// 自然资源和规划: real estate.
    NaturalResources,
    /// 住建: housing benefits, affordable-housing purchases, fraud bans.
    Housing,
    /// 教育: degrees.
    Education,
}

impl Department {
    pub const ALL: [Department; 6] = [
        Department::PublicSecurity,
        Department::CivilAffairs,
        Department::HumanResources,
        Department::NaturalResources,
        Department::Housing,
        Department::Education,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PublicSecurity => "public_security",
            Self::CivilAffairs => "civil_affairs",
            Self::HumanResources => "human_resources",
            Self::NaturalResources => "natural_resources",
            Self::Housing => "housing",
            Self::Education => "education",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Self::PublicSecurity => "公安局",
            Self::CivilAffairs => "民政局",
            Self::HumanResources => "人力资源和社会保障局",
            Self::NaturalResources => "自然资源和规划局",
            Self::Housing => "住房和城乡建设局",
            Self::Education => "教育局",
        }
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown department `{0}`; expected one of public_security, civil_affairs, human_resources, natural_resources, housing, education"
)]
pub struct UnknownDepartment(pub String);

impl FromStr for Department {
    type Err = UnknownDepartment;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Department::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownDepartment(s.to_owned()))
    }
}

/// The three application tracks of RULES.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    /// 本地住房困难家庭
    LocalFamily,
    /// 新就业无房职工
    NewEmployee,
    /// 外来务工人员
    MigrantWorker,
}

impl Track {
    pub const ALL: [Track; 3] = [Track::LocalFamily, Track::NewEmployee, Track::MigrantWorker];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LocalFamily => "local_family",
            Self::NewEmployee => "new_employee",
            Self::MigrantWorker => "migrant_worker",
        }
    }

    /// The departments whose answers this track's decision waits for.
    pub fn departments(self) -> &'static [Department] {
        use Department::*;
        match self {
            Self::LocalFamily => &[PublicSecurity, CivilAffairs, NaturalResources, Housing],
            Self::NewEmployee => &[
                PublicSecurity,
                CivilAffairs,
                HumanResources,
                NaturalResources,
                Housing,
                Education,
            ],
            Self::MigrantWorker => &[PublicSecurity, CivilAffairs, HumanResources, NaturalResources, Housing],
        }
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Track {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Track::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            let s = crate::id_number::redact(s);
            format!("unknown track `{s}`; expected local_family, new_employee or migrant_worker")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_ask_the_departments_of_rules_md() {
        assert_eq!(Track::LocalFamily.departments().len(), 4);
        assert!(!Track::LocalFamily.departments().contains(&Department::HumanResources));
        assert!(Track::NewEmployee.departments().contains(&Department::Education));
        assert!(!Track::MigrantWorker.departments().contains(&Department::Education));
    }

    #[test]
    fn department_names_round_trip() {
        for d in Department::ALL {
            assert_eq!(d.as_str().parse::<Department>().unwrap(), d);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        }
        assert!("police".parse::<Department>().is_err());
    }
}
