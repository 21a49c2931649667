//! The evidence trail (留痕): an append-only, hash-chained log of what happened to each
//! application. Each event's hash covers the previous event's hash and its own content,
//! so editing, removing or reordering an event breaks the chain from there on.

use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `prev_hash` of an application's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Kinds of event.
pub mod kinds {
    pub const SUBMITTED: &str = "submitted";
    pub const DISPATCHED: &str = "dispatched";
    pub const FINDING: &str = "finding";
    pub const DECISION: &str = "decision";
    pub const CERTIFICATE: &str = "certificate";
    /// A silent department asked again (the sweeper).
    pub const CHASED: &str = "chased";
    /// The clock stopped for a missing document (补正), and started again.
    pub const PAUSED: &str = "paused";
    pub const RESUMED: &str = "resumed";
    /// A reviewer's decision on a referred case.
    pub const REVIEWED: &str = "reviewed";
    /// The public notice (公示) began, was objected to, or ended.
    pub const NOTICE_STARTED: &str = "notice_started";
    pub const OBJECTED: &str = "objected";
    pub const REVOKED: &str = "revoked";
    /// A yearly re-check began for this application's certificate.
    pub const RECHECK: &str = "recheck";
}

/// One link of an application's chain, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub application_id: Uuid,
    /// 0, 1, 2… per application.
    pub seq: i32,
    pub kind: String,
    pub at: DateTime<Utc>,
    /// JSON text, hashed as stored.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Timestamps are hashed to the microsecond, which every backend stores exactly.
pub fn at_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// The hash of an event with these contents after `prev_hash`.
pub fn hash(prev_hash: &str, application_id: Uuid, seq: i32, kind: &str, at: DateTime<Utc>, payload: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &application_id.to_string(),
        &seq.to_string(),
        kind,
        &at_precision(at).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        payload,
    ] {
        // Length-prefixed, so no two different events hash the same text.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The link after `last` (the application's latest, or none yet).
pub fn next(last: Option<(i32, &str)>, application_id: Uuid, kind: &str, at: DateTime<Utc>, payload: String) -> Link {
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash.to_owned()),
        None => (0, GENESIS.to_owned()),
    };
    let at = at_precision(at);
    Link {
        hash: hash(&prev_hash, application_id, seq, kind, at, &payload),
        application_id,
        seq,
        kind: kind.to_owned(),
        at,
        payload,
        prev_hash,
    }
}

/// The first broken link of a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("the log has no event")]
    Empty,
    #[error("event {seq} is missing (found {found} where {seq} belongs)")]
    Missing { seq: i32, found: i32 },
    #[error("event {seq} ({kind}) does not follow event {prev}: its prev_hash is not that event's hash")]
    Unlinked { seq: i32, kind: String, prev: i32 },
    #[error("event {seq} ({kind}) was altered: its content does not give its hash")]
    Altered { seq: i32, kind: String },
}

/// Checks an application's links in `seq` order; returns how many there are.
pub fn verify(links: &[Link]) -> Result<usize, Broken> {
    if links.is_empty() {
        return Err(Broken::Empty);
    }
    let mut prev_hash = GENESIS;
    for (expected, link) in (0..).zip(links) {
        if link.seq != expected {
            return Err(Broken::Missing {
                seq: expected,
                found: link.seq,
            });
        }
        if link.prev_hash != prev_hash {
            return Err(Broken::Unlinked {
                seq: link.seq,
                kind: link.kind.clone(),
                prev: expected - 1,
            });
        }
        let recomputed = hash(
            &link.prev_hash,
            link.application_id,
            link.seq,
            &link.kind,
            link.at,
            &link.payload,
        );
        if recomputed != link.hash {
            return Err(Broken::Altered {
                seq: link.seq,
                kind: link.kind.clone(),
            });
        }
        prev_hash = &link.hash;
    }
    Ok(links.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Vec<Link> {
        let id = Uuid::nil();
        let at = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
        let mut links: Vec<Link> = Vec::new();
        for (kind, payload) in [
            (kinds::SUBMITTED, r#"{"channel":"portal"}"#),
            (kinds::FINDING, r#"{"department":"housing"}"#),
            (kinds::DECISION, r#"{"outcome":"qualified"}"#),
        ] {
            let last = links.last().map(|l| (l.seq, l.hash.as_str()));
            links.push(next(last, id, kind, at, payload.into()));
        }
        links
    }

    #[test]
    fn any_edit_names_the_first_broken_link() {
        assert_eq!(verify(&chain()), Ok(3));
        // (what is done to the chain, the verdict)
        type Case = (&'static str, fn(&mut Vec<Link>), Result<usize, Broken>);
        let cases: Vec<Case> = vec![
            (
                "payload edited",
                |c| c[1].payload = r#"{"department":"education"}"#.into(),
                Err(Broken::Altered {
                    seq: 1,
                    kind: "finding".into(),
                }),
            ),
            (
                "kind edited",
                |c| c[2].kind = "certificate".into(),
                Err(Broken::Altered {
                    seq: 2,
                    kind: "certificate".into(),
                }),
            ),
            (
                "time edited",
                |c| c[0].at += chrono::Duration::microseconds(1),
                Err(Broken::Altered {
                    seq: 0,
                    kind: "submitted".into(),
                }),
            ),
            (
                "event removed",
                |c| {
                    c.remove(1);
                },
                Err(Broken::Missing { seq: 1, found: 2 }),
            ),
            (
                "last removed",
                |c| {
                    c.pop();
                },
                Ok(2),
            ),
            (
                "rehashed alone",
                |c| {
                    c[1].payload = "{}".into();
                    c[1].hash = hash(&c[1].prev_hash, c[1].application_id, 1, &c[1].kind, c[1].at, "{}");
                },
                Err(Broken::Unlinked {
                    seq: 2,
                    kind: "decision".into(),
                    prev: 1,
                }),
            ),
            ("emptied", |c| c.clear(), Err(Broken::Empty)),
        ];
        for (what, edit, verdict) in cases {
            let mut c = chain();
            edit(&mut c);
            assert_eq!(verify(&c), verdict, "{what}");
        }
    }
}
