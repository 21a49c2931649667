//! The message contract on the bus: check requests projected per department, findings and
//! decision events, with the schema version and header names every component agrees on.

use crate::{
    application::{Application, Relation},
    criteria::{CriterionCode, CriterionResult, Owner},
    department::{Department, Track},
    id_number::IdNumber,
    money::{CentiSqm, Fen},
    policy::DecisionOutcome,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The contract version this build speaks; consumers dead-letter any other.
pub const SCHEMA_VERSION: &str = "1";

/// AMQP header names.
pub mod headers {
    pub const SCHEMA: &str = "x-prh-schema";
    pub const DEPARTMENT: &str = "x-prh-department";
    pub const POLICY: &str = "x-prh-policy";
    pub const TRACEPARENT: &str = "traceparent";
    /// On a finding: the id of the department key that signed the body.
    pub const KEY_ID: &str = "x-prh-key-id";
    /// On a finding: the Ed25519 signature (base64) over the exact body bytes.
    pub const SIGNATURE: &str = "x-prh-signature";
    /// Why a message was parked in a dead-letter queue.
    pub const DEAD_REASON: &str = "x-prh-dead-reason";
    /// The contract version a parked message arrived with.
    pub const ORIGINAL_SCHEMA: &str = "x-prh-original-schema";
    /// The queue a parked message came from.
    pub const DEAD_QUEUE: &str = "x-prh-dead-queue";
}

/// AMQP `type` property values.
pub mod kinds {
    pub const APPLICATION_SUBMITTED: &str = "application.submitted";
    pub const CHECK_REQUESTED: &str = "check.requested";
    pub const FINDING_REPORTED: &str = "finding.reported";
    pub const DECISION_MADE: &str = "decision.made";
    pub const CERTIFICATE_ISSUED: &str = "certificate.issued";
    pub const CERTIFICATE_REVOKED: &str = "certificate.revoked";
}

/// A person as public security and civil affairs see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPerson {
    pub name: String,
    pub id_number: IdNumber,
    pub relation: Relation,
}

/// The applicant as human resources and education see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedApplicant {
    pub name: String,
    pub id_number: IdNumber,
}

/// What one department is asked about: only the fields RULES.md lists for it. The variant
/// is the department, so a request cannot carry another department's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "department", rename_all = "snake_case", deny_unknown_fields)]
pub enum Subject {
    PublicSecurity {
        persons: Vec<NamedPerson>,
    },
    CivilAffairs {
        persons: Vec<NamedPerson>,
        declared_monthly_income_fen: Fen,
    },
    HumanResources {
        applicant: NamedApplicant,
        employer: Option<String>,
        application_month: i32,
    },
    NaturalResources {
        id_numbers: Vec<IdNumber>,
    },
    Housing {
        id_numbers: Vec<IdNumber>,
    },
    Education {
        applicant: NamedApplicant,
    },
}

impl Subject {
    /// Whether the request names nobody: such a request could only pass vacuously.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::PublicSecurity { persons } | Self::CivilAffairs { persons, .. } => persons.is_empty(),
            Self::NaturalResources { id_numbers } | Self::Housing { id_numbers } => id_numbers.is_empty(),
            Self::HumanResources { .. } | Self::Education { .. } => false,
        }
    }

    /// Every ID number the request names, the applicant first.
    pub fn id_numbers(&self) -> Vec<&IdNumber> {
        match self {
            Self::PublicSecurity { persons } | Self::CivilAffairs { persons, .. } => {
                persons.iter().map(|p| &p.id_number).collect()
            }
            Self::NaturalResources { id_numbers } | Self::Housing { id_numbers } => id_numbers.iter().collect(),
            Self::HumanResources { applicant, .. } | Self::Education { applicant } => vec![&applicant.id_number],
        }
    }

    pub fn department(&self) -> Department {
        match self {
            Self::PublicSecurity { .. } => Department::PublicSecurity,
            Self::CivilAffairs { .. } => Department::CivilAffairs,
            Self::HumanResources { .. } => Department::HumanResources,
            Self::NaturalResources { .. } => Department::NaturalResources,
            Self::Housing { .. } => Department::Housing,
            Self::Education { .. } => Department::Education,
        }
    }
}

/// `check.requested`: one department is asked to check one application.
/// The envelope fields (ids, track, date, criteria) are not personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub application_id: Uuid,
    pub track: Track,
    pub application_date: NaiveDate,
    /// The criteria this department must report for the track.
    pub criteria: Vec<CriterionCode>,
    pub subject: Subject,
}

impl CheckRequest {
    /// The `check.requested` message asking `department` about an application, as intake
    /// sends it first and the sweeper sends it again to a silent department.
    pub fn message(
        topology: &crate::bus::Topology,
        application_id: Uuid,
        application: &Application,
        department: Department,
        policy_version: &str,
    ) -> Result<crate::bus::Outgoing, serde_json::Error> {
        let request = Self::project(application_id, application, department);
        Ok(crate::bus::Outgoing {
            exchange: topology.checks_exchange(),
            routing_key: department.as_str().into(),
            kind: kinds::CHECK_REQUESTED.into(),
            message_id: Uuid::now_v7(),
            correlation_id: Some(application_id),
            headers: vec![
                (headers::DEPARTMENT.into(), department.to_string()),
                (headers::POLICY.into(), policy_version.to_owned()),
                (headers::TRACEPARENT.into(), crate::trace::traceparent(application_id)),
            ],
            body: serde_json::to_vec(&request)?,
        })
    }

    /// Projects an application onto what `department` may see.
    pub fn project(application_id: Uuid, application: &Application, department: Department) -> Self {
        let named = || {
            application
                .household
                .iter()
                .map(|p| NamedPerson {
                    name: p.name.clone(),
                    id_number: p.id_number.clone(),
                    relation: p.relation,
                })
                .collect()
        };
        let ids = || application.household.iter().map(|p| p.id_number.clone()).collect();
        let applicant = || NamedApplicant {
            name: application.applicant().name.clone(),
            id_number: application.applicant().id_number.clone(),
        };
        let subject = match department {
            Department::PublicSecurity => Subject::PublicSecurity { persons: named() },
            Department::CivilAffairs => Subject::CivilAffairs {
                persons: named(),
                declared_monthly_income_fen: application.declared_monthly_income_fen,
            },
            Department::HumanResources => Subject::HumanResources {
                applicant: applicant(),
                employer: application.employer.clone(),
                application_month: crate::dates::month_key(application.application_date),
            },
            Department::NaturalResources => Subject::NaturalResources { id_numbers: ids() },
            Department::Housing => Subject::Housing { id_numbers: ids() },
            Department::Education => Subject::Education { applicant: applicant() },
        };
        Self {
            application_id,
            track: application.track,
            application_date: application.application_date,
            criteria: CriterionCode::for_owner(Owner::Department(department), application.track),
            subject,
        }
    }
}

/// 特困, 低保, 低收入 or none: the applicant's assistance category (救助类别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssistanceCategory {
    None,
    /// 低收入
    LowIncome,
    /// 低保
    Dibao,
    /// 特困
    Tekun,
}

impl AssistanceCategory {
    /// 特困 and 低保 households are certified already: CA-INCOME passes for them.
    pub fn is_assisted(self) -> bool {
        matches!(self, Self::Dibao | Self::Tekun)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::LowIncome => "low_income",
            Self::Dibao => "dibao",
            Self::Tekun => "tekun",
        }
    }
}

/// Facts a department found that the collector needs for the award. Each field is
/// owned by one department; the others leave it empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// civil_affairs
    pub assistance_category: Option<AssistanceCategory>,
    /// civil_affairs: the sum of every person's verified monthly income.
    #[schema(value_type = Option<i64>)]
    pub verified_household_income_fen: Option<Fen>,
    /// natural_resources: residential floor area held now.
    #[schema(value_type = Option<i64>)]
    pub owned_residential_area: Option<CentiSqm>,
}

impl Facts {
    /// Combines the departments' facts; each field comes from the one department owning it.
    pub fn merged<'a>(all: impl Iterator<Item = &'a Facts>) -> Facts {
        all.fold(Facts::default(), |acc, f| Facts {
            assistance_category: acc.assistance_category.or(f.assistance_category),
            verified_household_income_fen: acc.verified_household_income_fen.or(f.verified_household_income_fen),
            owned_residential_area: acc.owned_residential_area.or(f.owned_residential_area),
        })
    }
}

/// `finding.reported`: one department's answer for one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub application_id: Uuid,
    pub department: Department,
    pub policy_version: String,
    pub checked_at: DateTime<Utc>,
    pub criteria: Vec<CriterionResult>,
    pub facts: Facts,
}

/// `decision.made`: announced on `prh.decisions` with routing key `decision.<outcome>`.
/// Carries no personal data: subscribers fetch details over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionEvent {
    pub application_id: Uuid,
    pub reference: String,
    pub outcome: DecisionOutcome,
    pub policy_version: String,
    pub decided_at: DateTime<Utc>,
    pub reasons: Vec<crate::criteria::ReasonCode>,
    pub certificate_number: Option<String>,
}

impl DecisionEvent {
    /// The `decision.made` message, routed `decision.<outcome>`, as the collector sends it
    /// for an automatic decision and intake for a reviewer's.
    pub fn message(
        &self,
        topology: &crate::bus::Topology,
        traceparent: &str,
    ) -> Result<crate::bus::Outgoing, serde_json::Error> {
        Ok(crate::bus::Outgoing {
            exchange: topology.decisions_exchange(),
            routing_key: format!("decision.{}", self.outcome.as_str()),
            kind: kinds::DECISION_MADE.into(),
            message_id: Uuid::now_v7(),
            correlation_id: Some(self.application_id),
            headers: vec![
                (headers::POLICY.into(), self.policy_version.clone()),
                (headers::TRACEPARENT.into(), traceparent.to_owned()),
            ],
            body: serde_json::to_vec(self)?,
        })
    }
}

/// What happened to a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateChange {
    Issued,
    Revoked,
}

/// A certificate issued (at the decision, when its public notice ends, or by a yearly
/// re-check) or revoked, so an intake service learns of it without polling. Like the
/// decision event it carries no personal data and no free text: subscribers fetch the
/// certificate and any revocation reason over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateEvent {
    pub number: String,
    /// The application the certificate was issued on.
    pub application_id: Uuid,
    pub change: CertificateChange,
    pub at: DateTime<Utc>,
    /// When issued: the last day it is valid.
    pub valid_until: Option<NaiveDate>,
    /// When issued by a yearly re-check: the certificate it replaces.
    pub renews: Option<String>,
}

impl CertificateEvent {
    /// `number`, issued on `application_id`, valid until `valid_until`; `renews` names the
    /// certificate a yearly re-check replaces.
    pub fn issued(
        number: &str,
        application_id: Uuid,
        at: DateTime<Utc>,
        valid_until: NaiveDate,
        renews: Option<&str>,
    ) -> Self {
        Self {
            number: number.to_owned(),
            application_id,
            change: CertificateChange::Issued,
            at,
            valid_until: Some(valid_until),
            renews: renews.map(str::to_owned),
        }
    }

    /// `number`, issued on `application_id`, revoked `at`.
    pub fn revoked(number: &str, application_id: Uuid, at: DateTime<Utc>) -> Self {
        Self {
            number: number.to_owned(),
            application_id,
            change: CertificateChange::Revoked,
            at,
            valid_until: None,
            renews: None,
        }
    }

    /// The `certificate.issued` or `certificate.revoked` message, routed by its kind on the
    /// decisions exchange. The trace id is the application id, as for every message.
    pub fn message(&self, topology: &crate::bus::Topology) -> Result<crate::bus::Outgoing, serde_json::Error> {
        let kind = match self.change {
            CertificateChange::Issued => kinds::CERTIFICATE_ISSUED,
            CertificateChange::Revoked => kinds::CERTIFICATE_REVOKED,
        };
        Ok(crate::bus::Outgoing {
            exchange: topology.decisions_exchange(),
            routing_key: kind.into(),
            kind: kind.into(),
            message_id: Uuid::now_v7(),
            correlation_id: Some(self.application_id),
            headers: vec![(
                headers::TRACEPARENT.into(),
                crate::trace::child(None, self.application_id),
            )],
            body: serde_json::to_vec(self)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_events_are_routed_by_their_change_and_read_back() {
        let topology = crate::bus::Topology::new("prh", 10);
        let id = Uuid::now_v7();
        let at = DateTime::parse_from_rfc3339("2026-12-03T02:00:00Z").unwrap().to_utc();
        let until = NaiveDate::from_ymd_opt(2027, 12, 2).unwrap();
        let cases = [
            (
                CertificateEvent::issued("WHZG-2026-000001", id, at, until, None),
                "certificate.issued",
            ),
            (
                CertificateEvent::issued("WHZG-2027-000009", id, at, until, Some("WHZG-2026-000001")),
                "certificate.issued",
            ),
            (
                CertificateEvent::revoked("WHZG-2026-000001", id, at),
                "certificate.revoked",
            ),
        ];
        for (event, key) in cases {
            let message = event.message(&topology).unwrap();
            assert_eq!((message.routing_key.as_str(), message.kind.as_str()), (key, key));
            assert_eq!(message.exchange, "prh.decisions");
            assert_eq!(message.correlation_id, Some(id));
            let back: CertificateEvent = serde_json::from_slice(&message.body).unwrap();
            assert_eq!(back, event);
        }
    }
    use crate::application::{Benefit, Person};

    fn sample() -> Application {
        let p = |body: &str, name: &str, relation| Person {
            name: name.into(),
            id_number: IdNumber::from_body(body).unwrap(),
            relation,
        };
        Application {
            track: Track::NewEmployee,
            household: vec![
                p("37100219950101123", "王一", Relation::Applicant),
                p("37100219960101124", "李二", Relation::Spouse),
            ],
            declared_monthly_income_fen: Fen::yuan(6000),
            benefit: Benefit::RentSubsidy,
            phone: "13806310000".into(),
            employer: Some("威海某公司".into()),
            application_date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        }
    }

    /// The JSON keys each department receives, and that the phone number never travels.
    #[test]
    fn each_department_receives_only_its_fields() {
        let app = sample();
        let expected: &[(Department, &[&str])] = &[
            (Department::PublicSecurity, &["department", "persons"]),
            (
                Department::CivilAffairs,
                &["declared_monthly_income_fen", "department", "persons"],
            ),
            (
                Department::HumanResources,
                &["applicant", "application_month", "department", "employer"],
            ),
            (Department::NaturalResources, &["department", "id_numbers"]),
            (Department::Housing, &["department", "id_numbers"]),
            (Department::Education, &["applicant", "department"]),
        ];
        for (department, keys) in expected {
            let request = CheckRequest::project(Uuid::nil(), &app, *department);
            let json = serde_json::to_value(&request).unwrap();
            let mut got: Vec<_> = json["subject"].as_object().unwrap().keys().cloned().collect();
            got.sort();
            assert_eq!(&got, keys, "{department}");
            let wire = serde_json::to_string(&request).unwrap();
            assert!(!wire.contains("13806310000"), "{department} saw the phone number");
            if matches!(department, Department::Education | Department::HumanResources) {
                assert!(!wire.contains("李二"), "{department} saw a co-applicant");
            }
        }
    }

    #[test]
    fn a_request_round_trips_and_rejects_foreign_fields() {
        let request = CheckRequest::project(Uuid::nil(), &sample(), Department::Housing);
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<CheckRequest>(&json).unwrap(), request);
        let smuggled = json.replace(
            "\"department\":\"housing\"",
            "\"department\":\"housing\",\"phone\":\"1\"",
        );
        assert!(serde_json::from_str::<CheckRequest>(&smuggled).is_err());
    }
}
