//! One writer per SQLite file in this process: writing transactions queue for their turn
//! here, first come first served, before they take SQLite's write lock.
//!
//! SQLite lets one transaction write at a time. Left to SQLite, writers that find the lock
//! taken sleep in its busy handler (1, 2, 5, 10 … 100 ms between tries), so the lock sits
//! free while they sleep and a long sleeper can lose to newcomers again and again. In the
//! all-in-one process intake, the collector, the relays' markers and the outbox pruning all
//! write the pipeline file; queueing them here hands the lock on the moment it is free.
//! Other processes on the same file, and the rare office and sweeper writes, still meet in
//! the busy handler. PostgreSQL has row locks and needs no gate.

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
};
use tokio::sync::{Mutex as Queue, OwnedMutexGuard};

/// The gate of one database: none for PostgreSQL.
#[derive(Clone)]
pub struct WriteGate(Option<Arc<Queue<()>>>);

/// A writer's turn at the gate: keep it until its transaction has ended.
#[derive(Default)]
pub struct Turn(#[allow(dead_code)] Option<OwnedMutexGuard<()>>);

impl WriteGate {
    /// The gate of `db`'s file, shared by every connection pool of this process on it. The
    /// map of gates keeps one entry per file, for the process's lifetime.
    pub fn of(db: &DatabaseConnection) -> Self {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Self(None);
        }
        let file = db
            .get_sqlite_connection_pool()
            .connect_options()
            .get_filename()
            .to_owned();
        // An in-memory database is private to its connection: nothing to share.
        if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" {
            return Self(None);
        }
        let file = std::fs::canonicalize(&file).unwrap_or(file);
        static GATES: OnceLock<Mutex<HashMap<PathBuf, Arc<Queue<()>>>>> = OnceLock::new();
        let mut gates = match GATES.get_or_init(Default::default).lock() {
            Ok(gates) => gates,
            Err(poisoned) => poisoned.into_inner(),
        };
        Self(Some(gates.entry(file).or_default().clone()))
    }

    /// Waits for this process's turn, then begins a transaction that takes SQLite's write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred one that read first could not take
    /// the lock later if another writer had committed meanwhile.
    pub async fn begin(&self, db: &DatabaseConnection) -> Result<(DatabaseTransaction, Turn), DbErr> {
        let turn = self.turn().await;
        let txn = db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        Ok((txn, turn))
    }

    /// Waits for this process's turn without beginning a transaction: for a statement
    /// that commits on its own.
    pub async fn turn(&self) -> Turn {
        match &self.0 {
            Some(queue) => Turn(Some(queue.clone().lock_owned().await)),
            None => Turn(None),
        }
    }
}
