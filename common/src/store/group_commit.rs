//! Group commit: work items that arrive while one transaction runs share the next one.
//! Under load many items share a commit (and SQLite's single writer); a lone item waits
//! for nobody. If a shared transaction fails, each item is tried in its own.

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::{future::Future, sync::Arc};
use tokio::sync::{mpsc, oneshot};

/// One kind of work done inside a transaction.
pub trait Unit: Send + Sync + 'static {
    type Job: Send + Sync + 'static;
    type Out: Send + 'static;

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        job: &'a Self::Job,
    ) -> impl Future<Output = Result<Self::Out, DbErr>> + Send + 'a;
}

type Reply<U> = oneshot::Sender<Result<<U as Unit>::Out, DbErr>>;

/// A handle to submit jobs to the group-commit task.
pub struct GroupCommit<U: Unit> {
    jobs: mpsc::Sender<(U::Job, Reply<U>)>,
}

impl<U: Unit> GroupCommit<U> {
    /// Starts the task; at most `max_batch` jobs share a transaction.
    pub fn start(db: DatabaseConnection, unit: Arc<U>, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (jobs, mut queue) = mpsc::channel::<(U::Job, Reply<U>)>(max_batch * 4);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                commit(&db, unit.as_ref(), batch).await;
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

async fn commit<U: Unit>(db: &DatabaseConnection, unit: &U, batch: Vec<(U::Job, Reply<U>)>) {
    if batch.len() > 1 {
        let together = async {
            let txn = db.begin().await?;
            let mut outs = Vec::with_capacity(batch.len());
            for (job, _) in &batch {
                outs.push(unit.apply(&txn, job).await?);
            }
            txn.commit().await?;
            Ok::<_, DbErr>(outs)
        };
        if let Ok(outs) = together.await {
            for ((_, reply), out) in batch.into_iter().zip(outs) {
                let _ = reply.send(Ok(out));
            }
            return;
        }
    }
    for (job, reply) in batch {
        let alone = async {
            let txn = db.begin().await?;
            let out = unit.apply(&txn, &job).await?;
            txn.commit().await?;
            Ok(out)
        };
        let _ = reply.send(alone.await);
    }
}
