//! Group commit: work items that arrive while one transaction runs share the next one.
//! Under load many items share a commit (and SQLite's single writer); a lone item waits
//! for nobody. If a shared transaction fails, each item is tried in its own. A unit that
//! prepares its batches may have the next one prepared while the last one is written.

use super::write_gate::{Turn, WriteGate};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::{collections::HashSet, future::Future, sync::Arc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

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

    /// The record (an application, say) whose rows the job reads and writes, for a unit
    /// whose batches overlap: the next batch is gathered and prepared while the last one
    /// is written, but a job about a record that batch holds waits for a later one, so
    /// that no plan reads rows a transaction in flight is changing. `None`, the default:
    /// a batch is gathered only once the one before it has committed.
    fn record(&self, _job: &Self::Job) -> Option<Uuid> {
        None
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
type Item<U> = (<U as Unit>::Job, Reply<U>);

/// A handle to submit jobs to the group-commit task.
pub struct GroupCommit<U: Unit> {
    jobs: mpsc::Sender<Item<U>>,
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
        let (jobs, queue) = mpsc::channel::<Item<U>>(max_batch * 4);
        let gate = WriteGate::of(&db);
        let target = Arc::new(Target { name, db, gate });
        tokio::spawn(run_batches(target, unit, queue, max_batch));
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

/// A batch with its plan, ready to be written.
struct Prepared<U: Unit> {
    jobs: Vec<U::Job>,
    replies: Vec<Reply<U>>,
    plan: Option<U::Plan>,
    started: std::time::Instant,
}

/// The group-commit task: gathers, prepares and writes batches until every handle is gone.
async fn run_batches<U: Unit>(target: Arc<Target>, unit: Arc<U>, mut queue: mpsc::Receiver<Item<U>>, max_batch: usize) {
    let mut held: Vec<Item<U>> = Vec::new();
    let mut next: Option<Prepared<U>> = None;
    loop {
        let current = match next.take() {
            Some(p) => p,
            None => {
                let items = gather(unit.as_ref(), &mut queue, &mut held, max_batch, None).await;
                if items.is_empty() {
                    return;
                }
                prepare(&target, unit.as_ref(), items).await
            }
        };
        let records: Option<HashSet<Uuid>> = current.jobs.iter().map(|job| unit.record(job)).collect();
        let writing = tokio::spawn(write(target.clone(), unit.clone(), current));
        // While it is written, what has queued up meanwhile is prepared: the gate's wait,
        // the lock and the commit of one batch overlap the reads of the next.
        if let Some(busy) = records {
            let items = gather(unit.as_ref(), &mut queue, &mut held, max_batch, Some(&busy)).await;
            if !items.is_empty() {
                next = Some(prepare(&target, unit.as_ref(), items).await);
            }
        }
        // A panic in the unit drops the batch's replies: its jobs fail, the task goes on.
        let _ = writing.await;
    }
}

/// The next batch, at most `max` jobs: those held back first, then queued ones. With
/// `busy` (the records of the batch being written) only what is queued already is taken,
/// and a job about a busy record is held back for a later batch; without, it waits for a
/// first job, and returns none only once every handle is gone and nothing is held.
async fn gather<U: Unit>(
    unit: &U,
    queue: &mut mpsc::Receiver<Item<U>>,
    held: &mut Vec<Item<U>>,
    max: usize,
    busy: Option<&HashSet<Uuid>>,
) -> Vec<Item<U>> {
    let waits_for = |item: &Item<U>| busy.is_some_and(|b| unit.record(&item.0).is_some_and(|r| b.contains(&r)));
    let mut batch = Vec::with_capacity(max);
    let mut still_held = Vec::new();
    for item in held.drain(..) {
        if batch.len() < max && !waits_for(&item) {
            batch.push(item);
        } else {
            still_held.push(item);
        }
    }
    *held = still_held;
    let room = max - batch.len();
    let mut incoming = Vec::with_capacity(room);
    if busy.is_none() && batch.is_empty() {
        queue.recv_many(&mut incoming, room).await;
    } else {
        while incoming.len() < room {
            match queue.try_recv() {
                Ok(item) => incoming.push(item),
                Err(_) => break,
            }
        }
    }
    for item in incoming {
        if waits_for(&item) {
            held.push(item);
        } else {
            batch.push(item);
        }
    }
    batch
}

async fn prepare<U: Unit>(target: &Target, unit: &U, items: Vec<Item<U>>) -> Prepared<U> {
    let started = std::time::Instant::now();
    let (jobs, replies): (Vec<U::Job>, Vec<Reply<U>>) = items.into_iter().unzip();
    let plan = unit.prepare(&target.db, &jobs).await;
    Prepared {
        jobs,
        replies,
        plan,
        started,
    }
}

async fn write<U: Unit>(target: Arc<Target>, unit: Arc<U>, prepared: Prepared<U>) {
    let Prepared {
        jobs,
        replies,
        plan,
        started,
    } = prepared;
    let count = jobs.len();
    match in_transaction(&target, unit.as_ref(), &jobs, plan).await {
        Ok(outs) => {
            for (reply, out) in replies.into_iter().zip(outs) {
                let _ = reply.send(Ok(out));
            }
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(_) => retry_alone(&target, unit.as_ref(), &jobs, replies).await,
    }
    observe(target.name, count, started);
}

async fn retry_alone<U: Unit>(target: &Target, unit: &U, jobs: &[U::Job], replies: Vec<Reply<U>>) {
    // Alone, one job's failure (bad data, a lost race) does not fail the others.
    for (job, reply) in jobs.iter().zip(replies) {
        let out = in_transaction(target, unit, std::slice::from_ref(job), None)
            .await
            .and_then(|mut outs| {
                outs.pop()
                    .ok_or_else(|| DbErr::Custom("the unit returned no result".into()))
            });
        let _ = reply.send(out);
    }
}

/// Runs `jobs` in one transaction, with the plan prepared for exactly these jobs, if any
/// (a job retried alone is done wholly inside).
async fn in_transaction<U: Unit>(
    target: &Target,
    unit: &U,
    jobs: &[U::Job],
    plan: Option<U::Plan>,
) -> Result<Vec<U::Out>, DbErr> {
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
