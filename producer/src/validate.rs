//! Intake validation: turns an `ApplicationForm` into an `Application`, or into every
//! field-level error at once, each naming the field, a code and a message.

use chrono::NaiveDate;
use prh_common::{
    application::{Application, ApplicationForm, Benefit, Person, PersonForm, Relation},
    department::Track,
    id_number::{IdNumber, redact},
    money::Fen,
};
use serde::Serialize;
use std::collections::HashSet;
use utoipa::ToSchema;

/// One thing wrong with one field. Messages never repeat an ID number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `co_applicants[1].id_number`.
    pub field: String,
    /// Stable code, e.g. `id_checksum` or `consent_missing`.
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Limits intake enforces on top of the rules of the form.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_household: usize,
}

/// Parses a form received on `today` (the application date).
pub fn parse(form: &ApplicationForm, today: NaiveDate, limits: Limits) -> Result<Application, Vec<FieldError>> {
    let mut errors = Vec::new();

    if form.consent != Some(true) {
        errors.push(FieldError::new(
            "consent",
            "consent_missing",
            "the applicant must consent to the departments' checks (授权查询)",
        ));
    }
    let track = match form.track.as_deref() {
        None => {
            errors.push(FieldError::new("track", "required", "track is required"));
            None
        }
        Some(t) => t
            .parse::<Track>()
            .map_err(|m| errors.push(FieldError::new("track", "unknown_track", m)))
            .ok(),
    };
    let benefit = match form.benefit.as_deref() {
        Some("flat") => Some(Benefit::Flat),
        Some("rent_subsidy") => Some(Benefit::RentSubsidy),
        Some(other) => {
            errors.push(FieldError::new(
                "benefit",
                "unknown_benefit",
                format!("unknown benefit `{}`; expected flat or rent_subsidy", redact(other)),
            ));
            None
        }
        None => {
            errors.push(FieldError::new("benefit", "required", "benefit is required"));
            None
        }
    };
    let income = match form.declared_monthly_income_fen {
        Some(n) if n >= 0 => Some(Fen(n)),
        Some(_) => {
            errors.push(FieldError::new(
                "declared_monthly_income_fen",
                "negative_income",
                "income cannot be negative",
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                "declared_monthly_income_fen",
                "required",
                "declared monthly household income (fen) is required",
            ));
            None
        }
    };
    let phone = match form.phone.as_deref().map(str::trim) {
        Some(p) if p.len() == 11 && p.starts_with('1') && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.to_owned()),
        Some(_) => {
            errors.push(FieldError::new(
                "phone",
                "invalid_phone",
                "phone must be an 11-digit mainland mobile number",
            ));
            None
        }
        None => {
            errors.push(FieldError::new("phone", "required", "phone is required"));
            None
        }
    };
    let employer = form
        .employer
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    if employer.is_none() && matches!(track, Some(Track::NewEmployee | Track::MigrantWorker)) {
        errors.push(FieldError::new(
            "employer",
            "employer_required",
            "the declared employer is required on this track",
        ));
    }

    let mut household = Vec::new();
    match &form.applicant {
        None => errors.push(FieldError::new("applicant", "required", "applicant is required")),
        Some(a) => {
            if let Some(p) = person(a, "applicant", true, today, &mut errors) {
                household.push(p);
            }
        }
    }
    for (i, co) in form.co_applicants.iter().enumerate() {
        if let Some(p) = person(co, &format!("co_applicants[{i}]"), false, today, &mut errors) {
            household.push(p);
        }
    }
    let size = 1 + form.co_applicants.len();
    if size > limits.max_household {
        errors.push(FieldError::new(
            "co_applicants",
            "household_too_large",
            format!("a household has at most {} people", limits.max_household),
        ));
    }
    let mut seen = HashSet::new();
    for (i, p) in household.iter().enumerate() {
        if !seen.insert(p.id_number.clone()) {
            let field = if i == 0 {
                "applicant.id_number".to_owned()
            } else {
                format!("co_applicants[{}].id_number", i - 1)
            };
            errors.push(FieldError::new(
                field,
                "duplicate_person",
                format!("{} is listed twice", p.id_number.masked()),
            ));
        }
    }
    if household.iter().filter(|p| p.relation == Relation::Spouse).count() > 1 {
        errors.push(FieldError::new(
            "co_applicants",
            "several_spouses",
            "at most one co-applicant can be the spouse",
        ));
    }

    match (track, benefit, income, phone, errors.is_empty()) {
        (Some(track), Some(benefit), Some(income), Some(phone), true) => Ok(Application {
            track,
            household,
            declared_monthly_income_fen: income,
            benefit,
            phone,
            employer,
            application_date: today,
        }),
        _ => Err(errors),
    }
}

fn person(
    form: &PersonForm,
    path: &str,
    is_applicant: bool,
    today: NaiveDate,
    errors: &mut Vec<FieldError>,
) -> Option<Person> {
    let name = match form.name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() && n.chars().count() <= 50 => Some(n.to_owned()),
        Some(_) => {
            errors.push(FieldError::new(
                format!("{path}.name"),
                "invalid_name",
                "name must be 1 to 50 characters",
            ));
            None
        }
        None => {
            errors.push(FieldError::new(format!("{path}.name"), "required", "name is required"));
            None
        }
    };
    let id = match form.id_number.as_deref().map(str::trim) {
        Some(raw) => match IdNumber::parse_on(raw, today) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(FieldError::new(
                    format!("{path}.id_number"),
                    e.code(),
                    format!("not a valid ID number: {e}"),
                ));
                None
            }
        },
        None => {
            errors.push(FieldError::new(
                format!("{path}.id_number"),
                "required",
                "id_number is required",
            ));
            None
        }
    };
    let relation = match (is_applicant, form.relation.as_deref()) {
        (true, None | Some("applicant")) => Some(Relation::Applicant),
        (true, Some(_)) => {
            errors.push(FieldError::new(
                format!("{path}.relation"),
                "unknown_relation",
                "the applicant's relation is `applicant` or omitted",
            ));
            None
        }
        (false, Some("spouse")) => Some(Relation::Spouse),
        (false, Some("child")) => Some(Relation::Child),
        (false, Some("parent")) => Some(Relation::Parent),
        (false, Some(other)) => {
            errors.push(FieldError::new(
                format!("{path}.relation"),
                "unknown_relation",
                format!("unknown relation `{}`; expected spouse, child or parent", redact(other)),
            ));
            None
        }
        (false, None) => {
            errors.push(FieldError::new(
                format!("{path}.relation"),
                "required",
                "relation is required for a co-applicant",
            ));
            None
        }
    };
    Some(Person {
        name: name?,
        id_number: id?,
        relation: relation?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    fn id(body: &str) -> String {
        IdNumber::from_body(body).unwrap().expose().to_owned()
    }

    fn good() -> ApplicationForm {
        ApplicationForm {
            track: Some("local_family".into()),
            applicant: Some(PersonForm {
                name: Some("王伟".into()),
                id_number: Some(id("37100219800101123")),
                relation: None,
            }),
            co_applicants: vec![PersonForm {
                name: Some("李娜".into()),
                id_number: Some(id("37100219820101124")),
                relation: Some("spouse".into()),
            }],
            declared_monthly_income_fen: Some(400_000),
            benefit: Some("rent_subsidy".into()),
            phone: Some("13806310000".into()),
            employer: None,
            consent: Some(true),
        }
    }

    fn codes(form: &ApplicationForm) -> Vec<(String, String)> {
        match parse(form, today(), Limits { max_household: 10 }) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    #[test]
    fn a_good_form_parses() {
        let app = parse(&good(), today(), Limits { max_household: 10 }).unwrap();
        assert_eq!(app.household_size(), 2);
        assert_eq!(app.applicant().relation, Relation::Applicant);
    }

    #[test]
    fn each_bad_field_is_named_with_its_code() {
        type Edit = fn(&mut ApplicationForm);
        let cases: Vec<(Edit, (&str, &str))> = vec![
            (|f| f.consent = None, ("consent", "consent_missing")),
            (|f| f.consent = Some(false), ("consent", "consent_missing")),
            (|f| f.track = Some("vip".into()), ("track", "unknown_track")),
            (|f| f.benefit = None, ("benefit", "required")),
            (|f| f.phone = Some("12345".into()), ("phone", "invalid_phone")),
            (
                |f| f.declared_monthly_income_fen = Some(-1),
                ("declared_monthly_income_fen", "negative_income"),
            ),
            (
                |f| f.applicant.as_mut().unwrap().id_number = Some("371002198001011231".into()),
                ("applicant.id_number", "id_checksum"),
            ),
            (
                |f| f.co_applicants[0].relation = Some("cousin".into()),
                ("co_applicants[0].relation", "unknown_relation"),
            ),
            (
                |f| f.co_applicants[0].id_number = f.applicant.as_ref().unwrap().id_number.clone(),
                ("co_applicants[0].id_number", "duplicate_person"),
            ),
            (
                |f| f.track = Some("migrant_worker".into()),
                ("employer", "employer_required"),
            ),
            (|f| f.applicant = None, ("applicant", "required")),
        ];
        for (edit, (field, code)) in cases {
            let mut form = good();
            edit(&mut form);
            let got = codes(&form);
            assert!(
                got.contains(&(field.to_owned(), code.to_owned())),
                "expected {field}/{code}, got {got:?}"
            );
        }
    }

    #[test]
    fn errors_never_carry_the_full_id_number() {
        let mut form = good();
        let raw = id("37100219820101124");
        form.co_applicants.push(PersonForm {
            name: Some("某".into()),
            id_number: Some(raw.clone()),
            relation: Some("child".into()),
        });
        let errors = parse(&form, today(), Limits { max_household: 10 }).unwrap_err();
        let text = serde_json::to_string(&errors).unwrap();
        assert!(text.contains("duplicate_person"));
        assert!(!text.contains(&raw), "{text}");
    }

    #[test]
    fn household_size_is_limited() {
        let mut form = good();
        form.co_applicants = (1..4)
            .map(|i| PersonForm {
                name: Some("子".into()),
                id_number: Some(id(&format!("37100220100{i}01123"))),
                relation: Some("child".into()),
            })
            .collect();
        let errors = parse(&form, today(), Limits { max_household: 3 }).unwrap_err();
        assert!(errors.iter().any(|e| e.code == "household_too_large"));
    }
}
