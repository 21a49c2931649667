//! The qualification certificate (承租资格确认书): its content, its canonical bytes, and
//! signing and verifying them. Signing is a pure function of the content.

use crate::{
    application::{Application, Benefit, Relation},
    contract::AssistanceCategory,
    department::Track,
    policy::{Decision, Policy},
    signing::{KeyPair, KeyRing, SignatureError},
};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// A household member as the certificate shows them: the ID number masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifiedPerson {
    pub name: String,
    pub id_number_masked: String,
    pub relation: Relation,
}

/// What the certificate states. Field order is the canonical order of the signed JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub number: String,
    pub application_id: Uuid,
    pub reference: String,
    pub applicant: CertifiedPerson,
    pub household: Vec<CertifiedPerson>,
    pub track: Track,
    pub priority_group: u8,
    pub assistance_category: AssistanceCategory,
    pub benefit: Benefit,
    pub monthly_subsidy_fen: Option<i64>,
    pub policy_version: String,
    /// Criterion code → the rule applied, with its threshold.
    pub thresholds: BTreeMap<String, String>,
    pub issued_on: NaiveDate,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub issuing_authority: String,
    pub key_id: String,
}

/// The signature block of a certificate file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureBlock {
    pub algorithm: String,
    pub key_id: String,
    /// base64 of the 64-byte Ed25519 signature over the canonical JSON of `certificate`.
    pub value: String,
}

/// A certificate with its signature: the content of a certificate file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedCertificate {
    pub certificate: Certificate,
    pub signature: SignatureBlock,
}

/// Who issues a certificate, with which key, on which day.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    pub authority: &'a str,
    pub key_id: &'a str,
    pub issued_on: NaiveDate,
}

/// The deterministic certificate number of an application reference:
/// `GZF-2026-000123` → `WHZG-2026-000123` (威海 资格).
pub fn number_for(reference: &str) -> String {
    format!("WHZG-{}", reference.trim_start_matches("GZF-"))
}

impl Certificate {
    /// The certificate for a qualified decision, or `None` for any other outcome.
    pub fn for_decision(
        application_id: Uuid,
        reference: &str,
        application: &Application,
        decision: &Decision,
        policy: &Policy,
        issuer: &Issuer<'_>,
    ) -> Option<Self> {
        let Issuer {
            authority,
            key_id,
            issued_on,
        } = *issuer;
        let award = decision.award.as_ref()?;
        let certified = |p: &crate::application::Person| CertifiedPerson {
            name: p.name.clone(),
            id_number_masked: p.id_number.masked(),
            relation: p.relation,
        };
        let valid_until = issued_on
            .checked_add_months(chrono::Months::new(12 * policy.certificate_validity_years))
            .and_then(|d| d.checked_sub_days(Days::new(1)))
            .unwrap_or(issued_on);
        Some(Self {
            number: number_for(reference),
            application_id,
            reference: reference.to_owned(),
            applicant: certified(application.applicant()),
            household: application.household.iter().map(certified).collect(),
            track: application.track,
            priority_group: award.priority_group,
            assistance_category: award.assistance_category,
            benefit: award.benefit,
            monthly_subsidy_fen: award.monthly_subsidy_fen.map(|f| f.0),
            policy_version: decision.policy_version.clone(),
            thresholds: decision
                .criteria
                .iter()
                .map(|c| (c.code.to_string(), c.threshold.clone()))
                .collect(),
            issued_on,
            valid_from: issued_on,
            valid_until,
            issuing_authority: authority.to_owned(),
            key_id: key_id.to_owned(),
        })
    }

    /// The bytes that are signed: compact JSON in field order, maps sorted by key.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a certificate always serializes")
    }

    pub fn sign(self, key: &KeyPair) -> SignedCertificate {
        let value = key.sign(&self.canonical_bytes());
        SignedCertificate {
            signature: SignatureBlock {
                algorithm: "Ed25519".into(),
                key_id: key.key_id().to_owned(),
                value,
            },
            certificate: self,
        }
    }
}

/// Why a certificate file is not genuine.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a certificate file: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("the file is not in canonical form (it was edited after signing)")]
    NotCanonical,
    #[error("unsupported signature algorithm `{0}`")]
    Algorithm(String),
    #[error("the signature's key id does not match the certificate's")]
    KeyIdMismatch,
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

impl SignedCertificate {
    /// The exact bytes of a certificate file: canonical JSON and one newline.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("a certificate always serializes");
        bytes.push(b'\n');
        bytes
    }

    /// Verifies a certificate file byte for byte: it must be canonical, and its signature
    /// must be by a trusted key over the canonical content. Any changed byte fails.
    pub fn verify_file(bytes: &[u8], keys: &KeyRing) -> Result<SignedCertificate, VerifyError> {
        let signed: SignedCertificate = serde_json::from_slice(bytes)?;
        if signed.to_file_bytes() != bytes {
            return Err(VerifyError::NotCanonical);
        }
        signed.verify(keys)?;
        Ok(signed)
    }

    /// Verifies the signature of an already parsed certificate.
    pub fn verify(&self, keys: &KeyRing) -> Result<(), VerifyError> {
        if self.signature.algorithm != "Ed25519" {
            return Err(VerifyError::Algorithm(self.signature.algorithm.clone()));
        }
        if self.signature.key_id != self.certificate.key_id {
            return Err(VerifyError::KeyIdMismatch);
        }
        keys.verify(
            &self.signature.key_id,
            &self.certificate.canonical_bytes(),
            &self.signature.value,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn sample(key: &KeyPair) -> SignedCertificate {
        let person = CertifiedPerson {
            name: "张三".into(),
            id_number_masked: "3710**********123X".into(),
            relation: Relation::Applicant,
        };
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        Certificate {
            number: number_for("GZF-2026-000123"),
            application_id: Uuid::nil(),
            reference: "GZF-2026-000123".into(),
            applicant: person.clone(),
            household: vec![person],
            track: Track::LocalFamily,
            priority_group: 1,
            assistance_category: AssistanceCategory::Dibao,
            benefit: Benefit::RentSubsidy,
            monthly_subsidy_fen: Some(60_000),
            policy_version: "v1".into(),
            thresholds: BTreeMap::from([("CA-INCOME".into(), "≤ 3580.00 元".into())]),
            issued_on: day,
            valid_from: day,
            valid_until: NaiveDate::from_ymd_opt(2027, 11, 25).unwrap(),
            issuing_authority: "威海市住房和城乡建设局".into(),
            key_id: key.key_id().into(),
        }
        .sign(key)
    }

    #[test]
    fn every_single_changed_byte_fails_verification() {
        let key = KeyPair::from_key(SigningKey::from_bytes(&[7; 32]));
        let mut ring = KeyRing::default();
        ring.add(key.verifying_key());
        let bytes = sample(&key).to_file_bytes();
        assert!(SignedCertificate::verify_file(&bytes, &ring).is_ok());
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x20] {
                let mut tampered = bytes.clone();
                tampered[i] ^= flip;
                assert!(
                    SignedCertificate::verify_file(&tampered, &ring).is_err(),
                    "byte {i} xor {flip:#x} still verified"
                );
            }
        }
    }

    #[test]
    fn signing_is_deterministic() {
        let key = KeyPair::from_key(SigningKey::from_bytes(&[9; 32]));
        assert_eq!(sample(&key).to_file_bytes(), sample(&key).to_file_bytes());
        assert_eq!(number_for("GZF-2026-000123"), "WHZG-2026-000123");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let key = KeyPair::from_key(SigningKey::from_bytes(&[7; 32]));
        let err = SignedCertificate::verify_file(&sample(&key).to_file_bytes(), &KeyRing::default()).unwrap_err();
        assert!(err.to_string().contains("no trusted public key"), "{err}");
    }
}
