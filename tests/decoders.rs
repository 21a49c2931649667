//! Property tests of every decoder of outside input: application forms, check requests,
//! findings, certificate files and registry export lines. Whatever comes in, no decoder
//! panics, every rejection says what is wrong, and no error repeats a full ID number.
//! (Every single changed byte of a certificate is also tried in `common/src/certificate.rs`.)

use ed25519_dalek::SigningKey;
use prh_common::{
    application::{ApplicationForm, Benefit, PersonForm, Relation},
    certificate::{Certificate, CertifiedPerson, SignedCertificate},
    contract::{AssistanceCategory, CheckRequest, Finding},
    department::Department,
    department::Track,
    records::{Record, parse_line},
    signing::{KeyPair, KeyRing},
};
use prh_producer::validate::{self, Limits};
use prh_workers::seed::Generator;
use proptest::prelude::*;

/// A syntactically valid ID number (check digit included) for the values that must look
/// real, and arbitrary text for the rest.
fn id_number() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("37100219800101123X".to_owned())),
        "[0-9]{17}[0-9X]".prop_map(Some),
        ".{0,24}".prop_map(Some),
    ]
}

fn person() -> impl Strategy<Value = PersonForm> {
    (
        proptest::option::of(".{0,12}"),
        id_number(),
        proptest::option::of(prop_oneof![
            Just("spouse".to_owned()),
            Just("child".to_owned()),
            ".{0,8}"
        ]),
    )
        .prop_map(|(name, id_number, relation)| PersonForm {
            name,
            id_number,
            relation,
        })
}

fn form() -> impl Strategy<Value = ApplicationForm> {
    (
        proptest::option::of(prop_oneof![
            Just("local_family".to_owned()),
            Just("new_employee".to_owned()),
            ".{0,12}"
        ]),
        proptest::option::of(person()),
        proptest::collection::vec(person(), 0..12),
        proptest::option::of(any::<i64>()),
        proptest::option::of(prop_oneof![Just("flat".to_owned()), ".{0,8}"]),
        proptest::option::of("[0-9]{0,13}"),
        proptest::option::of(".{0,20}"),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(track, applicant, co_applicants, income, benefit, phone, employer, consent)| ApplicationForm {
                track,
                applicant,
                co_applicants,
                declared_monthly_income_fen: income,
                benefit,
                phone,
                employer,
                consent,
            },
        )
}

/// Every full ID number a form names.
fn ids_of(form: &ApplicationForm) -> Vec<String> {
    form.applicant
        .iter()
        .chain(&form.co_applicants)
        .filter_map(|p| p.id_number.clone())
        .filter(|id| id.len() == 18)
        .collect()
}

/// Valid export lines of every department, from the seed generator.
fn export_lines() -> Vec<(Department, String)> {
    let (records, _) = Generator::new(5, prh_common::china_today()).households(6);
    records
        .into_iter()
        .map(|r| match r {
            Record::PublicSecurity(x) => (Department::PublicSecurity, serde_json::to_string(&x)),
            Record::CivilAffairs(x) => (Department::CivilAffairs, serde_json::to_string(&x)),
            Record::HumanResources(x) => (Department::HumanResources, serde_json::to_string(&x)),
            Record::NaturalResources(x) => (Department::NaturalResources, serde_json::to_string(&x)),
            Record::Housing(x) => (Department::Housing, serde_json::to_string(&x)),
            Record::Education(x) => (Department::Education, serde_json::to_string(&x)),
        })
        .map(|(d, line)| (d, line.unwrap()))
        .collect()
}

/// A signed certificate file and the key ring that verifies it.
fn certificate_file() -> (Vec<u8>, KeyRing) {
    let key = KeyPair::from_key(SigningKey::from_bytes(&[3; 32]));
    let mut ring = KeyRing::default();
    ring.add(key.verifying_key());
    let person = CertifiedPerson {
        name: "张三".into(),
        id_number_masked: "3710**********123X".into(),
        relation: Relation::Applicant,
    };
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let certificate = Certificate {
        number: "WHZG-2026-000001".into(),
        application_id: uuid::Uuid::nil(),
        reference: "GZF-2026-000001".into(),
        applicant: person.clone(),
        household: vec![person],
        track: Track::LocalFamily,
        priority_group: 1,
        assistance_category: AssistanceCategory::None,
        benefit: Benefit::RentSubsidy,
        monthly_subsidy_fen: Some(60_000),
        policy_version: "v1".into(),
        thresholds: Default::default(),
        issued_on: day,
        valid_from: day,
        valid_until: day,
        issuing_authority: "威海市住房和城乡建设局".into(),
        key_id: key.key_id().into(),
    };
    (certificate.sign(&key).to_file_bytes(), ring)
}

/// `text` with the byte at `at` (modulo its length) replaced by `by`.
fn mutate(text: &str, at: usize, by: u8) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    if !bytes.is_empty() {
        let i = at % bytes.len();
        bytes[i] = by;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn application_forms_parse_or_name_every_fault(form in form()) {
        let today = prh_common::china_today();
        match validate::parse(&form, today, Limits { max_household: 10 }) {
            Ok(application) => prop_assert!(application.household.len() <= 10),
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(!e.field.is_empty() && !e.code.is_empty() && !e.message.is_empty(), "{e:?}");
                    for id in ids_of(&form) {
                        prop_assert!(!e.message.contains(&id) && !e.field.contains(&id), "an ID number in {e:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn any_bytes_are_a_form_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = serde_json::from_slice::<ApplicationForm>(&bytes) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn bus_messages_decode_or_say_where(bytes in proptest::collection::vec(any::<u8>(), 0..512), at in any::<usize>(), by in any::<u8>()) {
        // Arbitrary bytes, and a valid-looking message with one byte changed.
        let valid = r#"{"application_id":"01a21a8c-5813-7174-a337-b00724e03a9c","department":"housing","policy_version":"v1","checked_at":"2026-11-26T00:00:00Z","criteria":[],"facts":{"assistance_category":null,"verified_household_income_fen":null,"owned_residential_area":null}}"#;
        for input in [bytes.clone(), mutate(valid, at, by)] {
            if let Err(e) = serde_json::from_slice::<CheckRequest>(&input) {
                prop_assert!(e.to_string().contains("line"), "{e}");
            }
            if let Err(e) = serde_json::from_slice::<Finding>(&input) {
                prop_assert!(e.to_string().contains("line"), "{e}");
            }
        }
    }

    #[test]
    fn certificate_files_verify_only_unchanged(bytes in proptest::collection::vec(any::<u8>(), 0..512), at in any::<usize>(), by in any::<u8>()) {
        let (genuine, ring) = certificate_file();
        prop_assert!(SignedCertificate::verify_file(&genuine, &ring).is_ok());
        let mut changed = genuine.clone();
        let i = at % changed.len();
        changed[i] = by;
        for input in [bytes, changed] {
            match SignedCertificate::verify_file(&input, &ring) {
                Ok(_) => prop_assert_eq!(&input, &genuine, "a changed file verified"),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }

    #[test]
    fn export_lines_load_or_name_the_fault(at in any::<usize>(), by in any::<u8>(), which in any::<usize>(), text in ".{0,80}") {
        let lines = export_lines();
        let (department, line) = &lines[which % lines.len()];
        let changed = String::from_utf8_lossy(&mutate(line, at, by)).into_owned();
        for input in [changed, text] {
            if let Err(reason) = parse_line(*department, &input) {
                prop_assert!(!reason.is_empty());
                // The reason may quote the line's values, but never a whole ID number.
                for id in line.split('"').filter(|s| s.len() == 18 && s[..17].bytes().all(|b| b.is_ascii_digit())) {
                    prop_assert!(!reason.contains(id), "an ID number in {reason}");
                }
            }
        }
    }
}
