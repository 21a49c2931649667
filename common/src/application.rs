//! An application for public rental housing: the wire form an intake service sends and the
//! parsed `Application` that the rest of PRH works with.

use crate::{department::Track, id_number::IdNumber, money::Fen};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a household member relates to the applicant (与申请人关系).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The applicant (申请人) themself.
    Applicant,
    /// 配偶
    Spouse,
    /// 子女
    Child,
    /// 父母
    Parent,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applicant => "applicant",
            Self::Spouse => "spouse",
            Self::Child => "child",
            Self::Parent => "parent",
        }
    }
}

/// What the household asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Benefit {
    /// 实物配租: a flat.
    Flat,
    /// 租赁补贴: a monthly rent subsidy.
    RentSubsidy,
}

/// Through which intake channel an application arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The 爱山东 app, with its intake API key.
    App,
    /// The government web portal (政务服务网), with its key.
    Portal,
    /// A service window (服务窗口), with its key.
    Window,
    /// A partner system over HTTP, with its key.
    Partner,
    /// The HTTP API where no API keys are configured (development).
    Http,
    /// The `prh.intake` AMQP queue (partner systems, known by their broker login).
    Amqp,
    /// A yearly re-check (年审) PRH starts itself for a certificate holder.
    Recheck,
}

impl Channel {
    /// The channels that submit over HTTP with an API key of their own.
    pub const KEYED: [Channel; 4] = [Channel::App, Channel::Portal, Channel::Window, Channel::Partner];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Portal => "portal",
            Self::Window => "window",
            Self::Partner => "partner",
            Self::Http => "http",
            Self::Amqp => "amqp",
            Self::Recheck => "recheck",
        }
    }
}

/// A household member as PRH knows them after intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub name: String,
    #[schema(value_type = String, example = "37100219900307123X")]
    pub id_number: IdNumber,
    pub relation: Relation,
}

/// A parsed application: every field valid, consent given, no person twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Application {
    pub track: Track,
    /// The applicant first, then the co-applicants (同租人) in the order given.
    pub household: Vec<Person>,
    #[schema(value_type = i64)]
    pub declared_monthly_income_fen: Fen,
    pub benefit: Benefit,
    pub phone: String,
    pub employer: Option<String>,
    pub application_date: NaiveDate,
}

impl Application {
    pub fn applicant(&self) -> &Person {
        &self.household[0]
    }

    pub fn household_size(&self) -> usize {
        self.household.len()
    }
}

/// The form as an intake service sends it (JSON). Every field is optional here so that a
/// missing one is reported by name with the others, not as the first serde error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationForm {
    /// `local_family`, `new_employee` or `migrant_worker`.
    #[schema(example = "local_family")]
    pub track: Option<String>,
    pub applicant: Option<PersonForm>,
    /// 同租人: spouse, children, parents living with the applicant.
    #[serde(default)]
    pub co_applicants: Vec<PersonForm>,
    /// Declared monthly household income in fen (分).
    #[schema(example = 420000)]
    pub declared_monthly_income_fen: Option<i64>,
    /// `flat` (实物配租) or `rent_subsidy` (租赁补贴).
    #[schema(example = "rent_subsidy")]
    pub benefit: Option<String>,
    /// Mainland mobile number, 11 digits.
    #[schema(example = "13806310000")]
    pub phone: Option<String>,
    /// Declared employer; required on the new_employee and migrant_worker tracks.
    pub employer: Option<String>,
    /// The applicant's consent to the departments' checks (授权查询). Must be true.
    pub consent: Option<bool>,
}

/// One household member on the form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonForm {
    pub name: Option<String>,
    pub id_number: Option<String>,
    /// `spouse`, `child` or `parent` for co-applicants; omitted for the applicant.
    pub relation: Option<String>,
}
