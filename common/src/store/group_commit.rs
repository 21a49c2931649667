//! Group commit: work items that arrive while one transaction runs share the next one.
//! Under load many items share a commit (and SQLite's single writer); a lone item waits
//! for nobody. If a shared transaction fails, each item is tried in its own.

use super::write_gate::{Turn, WriteGate};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::{future::Future, sync::Arc};
use tokio::sync::{mpsc, oneshot};

/// One kind of work done inside a transaction, a batch at a time, so that a unit can write
/// a whole batch with a few statements instead of a few per item.
pub trait Unit: Send + Sync + 'static {
    type Job: Send + Sync + 'static;
    type Out: Send + 'static;
    /// What [`Unit::prepare`] worked out before the transaction; `()` for a unit that
    /// prepares nothing.
    type Plan: Send + 'static;

    /// Whether the unit writes: a writing unit waits its turn at the database's
    /// [`WriteGate`] and holds SQLite's write lock for its whole transaction.
    fn writes(&self) -> bool {
        true
    }

    /// Work on a batch done before its transaction begins, outside the write gate: reads
    /// and computation that `apply` may use once it has checked, under the lock, that
    /// what they read has not changed. `None`: nothing prepared.
    fn prepare<'a>(
        &'a self,
        _db: &'a DatabaseConnection,
        _jobs: &'a [Self::Job],
    ) -> impl Future<Output = Option<Self::Plan>> + Send + 'a {
        std::future::ready(None)
    }

    /// Does every job of `jobs` in `txn`, with the plan `prepare` made for exactly these
    /// jobs, if any; returns one result per job, in the same order.
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        jobs: &'a [Self::Job],
        plan: Option<Self::Plan>,
    ) -> impl Future<Output = Result<Vec<Self::Out>, DbErr>> + Send + 'a;
}

type Reply<U> = oneshot::Sender<Result<<U as Unit>::Out, DbErr>>;

/// A handle to submit jobs to the group-commit task.
pub struct GroupCommit<U: Unit> {
    jobs: mpsc::Sender<(U::Job, Reply<U>)>,
}

/// Records how many jobs shared a transaction and how long it took: the figures that tell
/// whether a unit is bound by its statements or by how much arrives at once.
fn observe(unit: &'static str, jobs: usize, started: std::time::Instant) {
    metrics::histogram!(crate::metrics::GROUP_COMMIT_JOBS, "unit" => unit).record(jobs as f64);
    metrics::histogram!(crate::metrics::GROUP_COMMIT_SECONDS, "unit" => unit).record(started.elapsed().as_secs_f64());
}

/// Where a unit's transactions begin: its database, and the gate writers queue at.
struct Target {
    name: &'static str,
    db: DatabaseConnection,
    gate: WriteGate,
}

impl<U: Unit> GroupCommit<U> {
    /// Starts the task; at most `max_batch` jobs share a transaction. `name` labels its
    /// metrics.
    pub fn start(name: &'static str, db: DatabaseConnection, unit: Arc<U>, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (jobs, mut queue) = mpsc::channel::<(U::Job, Reply<U>)>(max_batch * 4);
        let gate = WriteGate::of(&db);
        let target = Target { name, db, gate };
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            while queue.recv_many(&mut batch, max_batch).await > 0 {
                let (jobs, started) = (batch.len(), std::time::Instant::now());
                commit(&target, unit.as_ref(), std::mem::take(&mut batch)).await;
                observe(name, jobs, started);
            }
        });
        Self { jobs }
    }

    /// Runs `job` in the next transaction and returns its result once committed.
    pub async fn run(&self, job: U::Job) -> Result<U::Out, DbErr> {
        let stopping = || DbErr::Custom("the process is stopping".into());
        let (reply, result) = oneshot::channel();
        self.jobs.send((job, reply)).await.map_err(|_| stopping())?;
        result.await.map_err(|_| stopping())?
    }
}

async fn commit<U: Unit>(target: &Target, unit: &U, batch: Vec<(U::Job, Reply<U>)>) {
    let (jobs, replies): (Vec<U::Job>, Vec<Reply<U>>) = batch.into_iter().unzip();
    match in_transaction(target, unit, &jobs, true).await {
        Ok(outs) => {
            for (reply, out) in replies.into_iter().zip(outs) {
                let _ = reply.send(Ok(out));
            }
            return;
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
            return;
        }
        Err(_) => {}
    }
    // Alone, one job's failure (bad data, a lost race) does not fail the others.
    for (job, reply) in jobs.iter().zip(replies) {
        let out = in_transaction(target, unit, std::slice::from_ref(job), false)
            .await
            .and_then(|mut outs| {
                outs.pop()
                    .ok_or_else(|| DbErr::Custom("the unit returned no result".into()))
            });
        let _ = reply.send(out);
    }
}

/// Runs `jobs` in one transaction; with `prepared`, after the unit's preparation outside
/// it (a job retried alone is done wholly inside).
async fn in_transaction<U: Unit>(
    target: &Target,
    unit: &U,
    jobs: &[U::Job],
    prepared: bool,
) -> Result<Vec<U::Out>, DbErr> {
    let plan = if prepared {
        unit.prepare(&target.db, jobs).await
    } else {
        None
    };
    let waiting = std::time::Instant::now();
    // Held until the transaction has ended, by commit or by rollback on drop.
    let (txn, _turn) = if unit.writes() {
        target.gate.begin(&target.db).await?
    } else {
        (target.db.begin().await?, Turn::default())
    };
    metrics::histogram!(crate::metrics::GROUP_COMMIT_WAIT_SECONDS, "unit" => target.name)
        .record(waiting.elapsed().as_secs_f64());
    let outs = unit.apply(&txn, jobs, plan).await?;
    if outs.len() != jobs.len() {
        return Err(DbErr::Custom(format!(
            "the unit returned {} results for {} jobs",
            outs.len(),
            jobs.len()
        )));
    }
    txn.commit().await?;
    Ok(outs)
}
