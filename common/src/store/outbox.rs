//! The transactional outbox: a state change and the message announcing it are written in
//! one transaction; the relay publishes pending rows with confirms and marks them sent only
//! after the broker's ack. A crash between the two re-publishes, which consumers tolerate.
//!
//! Marking is done beside publishing, by a marker task: on SQLite the mark waits for the
//! database's one write lock, which the collector holds most of the time under load, and
//! the relay publishes the next batch meanwhile instead of waiting with it.
//!
//! Published rows are deleted once they are older than the retention
//! (`intake.outbox_keep_hours`), a chunk at a time, by a task beside the relay.

use super::{batch::Batch, write_gate::WriteGate};
use crate::bus::{Health, Outgoing, Publisher, Topology, connect};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Which relay publishes the row: `intake` or `collector`.
        pub origin: String,
        pub exchange: String,
        pub routing_key: String,
        pub kind: String,
        pub message_id: Uuid,
        pub correlation_id: Option<Uuid>,
        #[sea_orm(column_type = "JsonBinary")]
        pub headers: Json,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub created_at: DateTimeUtc,
        pub sent_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Adds `msg` to the outbox inside the caller's transaction.
pub async fn enqueue<C: ConnectionTrait>(db: &C, origin: &str, msg: &Outgoing) -> Result<(), DbErr> {
    enqueue_all(db, origin, std::slice::from_ref(msg)).await
}

/// Adds several messages in one statement, inside the caller's transaction.
pub async fn enqueue_all<C: ConnectionTrait>(db: &C, origin: &str, msgs: &[Outgoing]) -> Result<(), DbErr> {
    let mut batch = Batch::new(db);
    enqueue_in(&mut batch, origin, msgs)?;
    batch.run(db).await
}

/// Adds the statement that enqueues `msgs` to `batch`, which the caller runs in its
/// transaction.
pub fn enqueue_in(batch: &mut Batch, origin: &str, msgs: &[Outgoing]) -> Result<(), DbErr> {
    if msgs.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now();
    let rows = msgs
        .iter()
        .map(|msg| {
            let body =
                String::from_utf8(msg.body.clone()).map_err(|_| DbErr::Custom("outbox bodies are JSON text".into()))?;
            let headers = serde_json::to_value(&msg.headers).map_err(|e| DbErr::Custom(e.to_string()))?;
            Ok(entity::ActiveModel {
                origin: Set(origin.to_owned()),
                exchange: Set(msg.exchange.clone()),
                routing_key: Set(msg.routing_key.clone()),
                kind: Set(msg.kind.clone()),
                message_id: Set(msg.message_id),
                correlation_id: Set(msg.correlation_id),
                headers: Set(headers),
                body: Set(body),
                created_at: Set(now),
                sent_at: Set(None),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    batch.push(&entity::Entity::insert_many(rows));
    Ok(())
}

fn to_outgoing(row: entity::Model) -> Outgoing {
    Outgoing {
        exchange: row.exchange,
        routing_key: row.routing_key,
        kind: row.kind,
        message_id: row.message_id,
        correlation_id: row.correlation_id,
        headers: serde_json::from_value(row.headers).unwrap_or_default(),
        body: row.body.into_bytes(),
    }
}

/// Rows not yet confirmed by the broker, for one origin.
pub async fn backlog(db: &DatabaseConnection, origin: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    entity::Entity::find()
        .filter(entity::Column::Origin.eq(origin))
        .filter(entity::Column::SentAt.is_null())
        .count(db)
        .await
}

/// Deletes `origin`'s rows published before `before`, at most `chunk` per statement so
/// that no delete holds SQLite's one write lock for long; returns how many went. Rows not
/// published yet stay, however old.
pub async fn prune(
    db: &DatabaseConnection,
    origin: &str,
    before: chrono::DateTime<chrono::Utc>,
    chunk: u64,
) -> Result<u64, DbErr> {
    let chunk = chunk.max(1);
    let gate = WriteGate::of(db);
    let mut deleted = 0;
    loop {
        let ids: Vec<i64> = entity::Entity::find()
            .select_only()
            .column(entity::Column::Id)
            .filter(entity::Column::Origin.eq(origin))
            .filter(entity::Column::SentAt.is_not_null())
            .filter(entity::Column::SentAt.lt(before))
            .order_by_asc(entity::Column::Id)
            .limit(chunk)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(deleted);
        }
        let full = ids.len() as u64 >= chunk;
        let turn = gate.turn().await;
        deleted += entity::Entity::delete_many()
            .filter(entity::Column::Id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
        drop(turn);
        if !full {
            return Ok(deleted);
        }
        // Let the writers that keep the pipeline moving take the lock between chunks.
        tokio::task::yield_now().await;
    }
}

/// How often the relay's pruning task deletes rows past their retention.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Rows deleted per statement when pruning.
const PRUNE_CHUNK: u64 = 5_000;

/// Prunes `origin`'s published rows older than `keep` every [`PRUNE_EVERY`] until
/// `shutdown`; a failure is logged and tried again next time.
async fn prune_until(db: DatabaseConnection, origin: String, keep: Duration, shutdown: CancellationToken) {
    let Ok(keep) = chrono::Duration::from_std(keep) else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        match prune(&db, &origin, chrono::Utc::now() - keep, PRUNE_CHUNK).await {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!(crate::metrics::OUTBOX_PRUNED, "origin" => origin.clone()).increment(n);
                tracing::info!(origin = %origin, rows = n, "deleted published outbox rows past their retention");
            }
            Err(e) => tracing::warn!(origin = %origin, error = %e, "could not prune the outbox; trying again later"),
        }
    }
}

/// Publishes one origin's outbox rows. Wake it with `notifier()` after a commit; it also
/// polls, so rows written by other processes go out too.
pub struct Relay {
    pub db: DatabaseConnection,
    pub origin: String,
    pub amqp_url: String,
    pub topology: Topology,
    pub batch: u64,
    pub poll: Duration,
    pub notify: Arc<Notify>,
    pub health: Health,
    /// How long the last flush may take at shutdown.
    pub grace: Duration,
    /// How long published rows are kept; `None`: for ever.
    pub keep: Option<Duration>,
}

impl Relay {
    /// A relay for `origin`'s rows, configured from `settings` (batch size, poll interval,
    /// broker and topology).
    pub fn new(settings: &crate::config::Settings, db: DatabaseConnection, origin: &str, health: Health) -> Self {
        Self {
            db,
            origin: origin.to_owned(),
            amqp_url: settings.amqp.url.clone(),
            topology: settings.topology(),
            batch: settings.intake.relay_batch,
            poll: Duration::from_millis(settings.intake.relay_poll_ms),
            notify: Arc::new(Notify::new()),
            health,
            grace: settings.grace(),
            keep: (settings.intake.outbox_keep_hours > 0)
                .then(|| Duration::from_secs(settings.intake.outbox_keep_hours.saturating_mul(3600))),
        }
    }

    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Runs until `shutdown`, then publishes what is pending one last time and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let name = format!("{}-relay", self.origin);
        self.health.register(&name);
        let (marks, marking) = Marker::start(self.db.clone());
        let pruning = self.keep.map(|keep| {
            tokio::spawn(prune_until(
                self.db.clone(),
                self.origin.clone(),
                keep,
                shutdown.clone(),
            ))
        });
        self.relay(&name, &marks, &shutdown).await;
        if let Some(pruning) = pruning {
            pruning.abort();
        }
        // The last batches' marks, within the grace period; an unmarked row is published
        // again at the next start, which consumers tolerate.
        drop(marks.queue);
        if tokio::time::timeout(self.grace, marking).await.is_err() {
            tracing::warn!(relay = %name, "grace period over before every published row was marked sent");
        }
    }

    async fn relay(&self, name: &str, marks: &Marks, shutdown: &CancellationToken) {
        loop {
            let Some(conn) = connect(&self.amqp_url, name, shutdown).await else {
                break;
            };
            let ready = async {
                let ch = conn.create_channel().await?;
                self.topology.declare(&ch).await?;
                Publisher::open(&conn, name, &self.amqp_url).await
            };
            let publisher = match ready.await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(relay = %name, error = %e, "relay could not open a channel; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            self.health.set(name, true);
            let stopped = self.pump(&publisher, marks, shutdown).await;
            self.health.set(name, false);
            let _ = conn.close(200, "bye".into()).await;
            if stopped {
                break;
            }
        }
    }

    /// Publishes until shutdown (returns true) or a broker failure (returns false).
    async fn pump(&self, publisher: &Publisher, marks: &Marks, shutdown: &CancellationToken) -> bool {
        loop {
            match self.drain_once(publisher, marks).await {
                Ok(n) if n as u64 == self.batch => {
                    if let Ok(left) = backlog(&self.db, &self.origin).await {
                        metrics::gauge!(crate::metrics::OUTBOX_BACKLOG, "origin" => self.origin.clone())
                            .set(left as f64);
                    }
                    continue;
                }
                Ok(_) => metrics::gauge!(crate::metrics::OUTBOX_BACKLOG, "origin" => self.origin.clone()).set(0.0),
                Err(RelayError::Broker(e)) => {
                    tracing::warn!(relay = %self.origin, error = %e, "publishing failed; reconnecting");
                    return false;
                }
                Err(RelayError::Db(e)) => {
                    tracing::warn!(relay = %self.origin, error = %e, "outbox read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            if shutdown.is_cancelled() {
                // Flush everything committed before the shutdown began, batch after batch,
                // within the grace period; then stop.
                let flush = async {
                    while let Ok(n) = self.drain_once(publisher, marks).await {
                        if (n as u64) < self.batch {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(self.grace, flush).await;
                return true;
            }
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// Publishes up to one batch; returns how many rows it published.
    async fn drain_once(&self, publisher: &Publisher, marks: &Marks) -> Result<usize, RelayError> {
        // Rows published but not marked yet are still unsent in the table: read past them.
        // When the marker falls behind by several batches, wait for it rather than read
        // ever more rows only to skip them.
        while marks.in_flight() as u64 > 4 * self.batch {
            // Bounded: a mark committed between the check and the wait wakes nobody.
            let _ = tokio::time::timeout(Duration::from_millis(50), marks.marked.notified()).await;
        }
        let mut pending = entity::Entity::find()
            .filter(entity::Column::Origin.eq(self.origin.as_str()))
            .filter(entity::Column::SentAt.is_null());
        let skip = marks.snapshot();
        if !skip.is_empty() {
            let skip = super::in_list::padded(skip.into_iter().collect());
            pending = pending.filter(entity::Column::Id.is_not_in(skip));
        }
        let rows: Vec<entity::Model> = pending
            .order_by_asc(entity::Column::Id)
            .limit(self.batch)
            .all(&self.db)
            .await
            .map_err(RelayError::Db)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let msgs: Vec<Outgoing> = rows.into_iter().map(to_outgoing).collect();
        let results = publisher.publish_all(&msgs).await;
        let sent: Vec<i64> = ids
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(id, _)| *id)
            .collect();
        metrics::counter!(crate::metrics::PUBLISHED, "origin" => self.origin.clone()).increment(sent.len() as u64);
        let published = sent.len();
        marks.mark(sent);
        if let Some(err) = results.into_iter().find_map(Result::err) {
            return Err(RelayError::Broker(err.to_string()));
        }
        Ok(published)
    }
}

/// The relay's side of the marker: rows confirmed by the broker and queued to be marked
/// sent, which the relay must not read as pending meanwhile.
struct Marks {
    queue: mpsc::UnboundedSender<Vec<i64>>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
    /// Woken whenever a mark is committed.
    marked: Arc<Notify>,
}

impl Marks {
    fn mark(&self, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        self.lock().extend(ids.iter().copied());
        // The marker ends only after this sender is dropped, so the send cannot fail; if
        // it did, the rows would stay pending and be published again.
        let _ = self.queue.send(ids);
    }

    fn snapshot(&self) -> HashSet<i64> {
        self.lock().clone()
    }

    fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        // The set holds plain ids; one a panicking holder left behind is still right.
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How long the marker gathers published rows before it marks them sent.
const MARK_LINGER: Duration = Duration::from_millis(25);

/// Marks published rows sent, merging whatever queued up during the last update into the
/// next one; a failed update is retried until it succeeds (the rows stay in flight).
struct Marker;

impl Marker {
    fn start(db: DatabaseConnection) -> (Marks, tokio::task::JoinHandle<()>) {
        let (queue, mut batches) = mpsc::unbounded_channel::<Vec<i64>>();
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let marked = Arc::new(Notify::new());
        let marks = Marks {
            queue,
            in_flight: in_flight.clone(),
            marked: marked.clone(),
        };
        let gate = WriteGate::of(&db);
        let task = tokio::spawn(async move {
            while let Some(mut ids) = batches.recv().await {
                // Every mark is a turn at the database's one writer, which the collector
                // and intake need; gathering a moment's batches into one update costs
                // nothing but a later mark (the rows are skipped as in flight meanwhile).
                tokio::time::sleep(MARK_LINGER).await;
                while let Ok(more) = batches.try_recv() {
                    ids.extend(more);
                }
                let mut pause = Duration::from_millis(100);
                loop {
                    let turn = gate.turn().await;
                    let update = entity::Entity::update_many()
                        .col_expr(entity::Column::SentAt, Expr::value(chrono::Utc::now()))
                        .filter(entity::Column::Id.is_in(super::in_list::padded(ids.clone())))
                        .exec(&db)
                        .await;
                    drop(turn);
                    match update {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, rows = ids.len(), "could not mark published outbox rows sent; retrying");
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                let mut set = in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for id in &ids {
                    set.remove(id);
                }
                drop(set);
                marked.notify_waiters();
            }
        });
        (marks, task)
    }
}

enum RelayError {
    Broker(String),
    Db(DbErr),
}
