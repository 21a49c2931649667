//! Which findings the collector believes: signed by a key of the department they speak for
//! and, with per-component broker users, published by that department's user.

use prh_common::{
    bus::{Disposition, Incoming},
    department::Department,
    signing::{self, DepartmentKeys, KeyError, SignatureError},
};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, oneshot};

/// At most this many signatures share one batch equation: a batch of 64 takes about a
/// millisecond of one core, which is as long as a task should hold a tokio worker.
const MAX_BATCH: usize = 64;

/// The collector's judge of findings. Signatures are checked on a task of their own, a
/// batch at a time: findings that arrive together share one batch equation.
pub struct Trust {
    checks: mpsc::Sender<Check>,
    /// With per-component broker users, each department's user: a finding must also have
    /// been published by its department's user, so a leaked key is no use from another
    /// department's account.
    department_users: Option<HashMap<Department, String>>,
}

/// One finding's signature to check, and where its answer goes.
struct Check {
    department: Department,
    key_id: String,
    signature: String,
    body: Vec<u8>,
    reply: oneshot::Sender<Result<(), Untrusted>>,
}

/// Why a finding's signature is not accepted.
#[derive(Debug)]
pub enum Untrusted {
    /// Not signed by a key of the department it speaks for: never counted.
    Bad(SignatureError),
    /// The key is unknown and the keys were re-read less than a second ago: try later.
    NotYet,
}

impl Trust {
    /// Starts the task that checks signatures against `signers`.
    pub fn start(signers: TrustedSigners, department_users: Option<HashMap<Department, String>>) -> Self {
        let (checks, queue) = mpsc::channel(MAX_BATCH * 16);
        tokio::spawn(check_batches(signers, queue));
        Self {
            checks,
            department_users,
        }
    }

    /// Whether the finding's publisher and signature are its department's; if not, what
    /// to do with it.
    pub async fn believe(
        &self,
        msg: &Incoming<'_>,
        department: Department,
        key_id: &str,
        signature: &str,
    ) -> Result<(), Disposition> {
        if let Some(users) = &self.department_users {
            let expected = users.get(&department).map(String::as_str).unwrap_or_default();
            let sender = msg.properties.user_id().as_ref().map(|u| u.as_str().to_owned());
            if sender.as_deref() != Some(expected) {
                return Err(Disposition::Park(format!(
                    "wrong_sender: a finding of {department} must come from broker user {expected}, not {}",
                    sender.as_deref().unwrap_or("an unnamed one")
                )));
            }
        }
        let (reply, answer) = oneshot::channel();
        let check = Check {
            department,
            key_id: key_id.to_owned(),
            signature: signature.to_owned(),
            body: msg.body.to_vec(),
            reply,
        };
        let stopping = || Disposition::Retry("the signature checks have stopped: the process is stopping".into());
        self.checks.send(check).await.map_err(|_| stopping())?;
        match answer.await.map_err(|_| stopping())? {
            Ok(()) => Ok(()),
            Err(Untrusted::Bad(e)) => Err(Disposition::Park(format!(
                "bad_signature: a finding of {department} not signed by {department}: {e}"
            ))),
            Err(Untrusted::NotYet) => Err(Disposition::Retry(format!(
                "unknown key {key_id}: the keys were re-read a moment ago"
            ))),
        }
    }
}

async fn check_batches(mut signers: TrustedSigners, mut queue: mpsc::Receiver<Check>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let results = signers.check_all(&batch);
        for (check, result) in batch.drain(..).zip(results) {
            let _ = check.reply.send(result);
        }
    }
}

/// The departments' public keys, read from their folder (`DepartmentKeys`) and read again
/// when a finding names a key not seen yet — a department that has just started or rotated
/// its key — at most once a second, so forged key ids cannot keep the collector busy.
pub struct TrustedSigners {
    dir: PathBuf,
    keys: DepartmentKeys,
    read_again_at: Option<Instant>,
}

impl TrustedSigners {
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        Ok(Self {
            dir: dir.to_owned(),
            keys: DepartmentKeys::load(dir)?,
            read_again_at: None,
        })
    }

    /// One result per check, in order.
    fn check_all(&mut self, checks: &[Check]) -> Vec<Result<(), Untrusted>> {
        let fresh = checks.iter().any(|c| !self.keys.knows(c.department, &c.key_id)) && self.read_again();
        let claims: Vec<_> = checks
            .iter()
            .map(|c| self.keys.claim(c.department, &c.key_id, &c.body, &c.signature))
            .collect();
        let parsed: Vec<signing::Claim<'_>> = claims.iter().filter_map(|c| c.as_ref().ok().copied()).collect();
        let mut checked = signing::check_all(&parsed).into_iter();
        claims
            .into_iter()
            .map(|claim| match claim {
                // Fails closed should the results ever be fewer than the claims.
                Ok(_) => checked
                    .next()
                    .unwrap_or(Err(SignatureError::Mismatch))
                    .map_err(Untrusted::Bad),
                Err(SignatureError::UnknownKey(_)) if !fresh => Err(Untrusted::NotYet),
                Err(e) => Err(Untrusted::Bad(e)),
            })
            .collect()
    }

    /// Reads the keys again unless they were read less than a second ago; whether they
    /// were.
    fn read_again(&mut self) -> bool {
        if self
            .read_again_at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        self.read_again_at = Some(Instant::now());
        match DepartmentKeys::load(&self.dir) {
            Ok(fresh) => {
                self.keys = fresh;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the departments' public keys");
                false
            }
        }
    }
}
