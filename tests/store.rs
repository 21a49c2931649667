//! The storage layer's own promises, on a real SQLite file and a real PostgreSQL: a batch
//! of statements runs in order as one unit of its transaction and stores JSON as sea-orm does,
//! and writers queued at the write gate neither fail on SQLite's lock nor lose an update.

mod common;

use common::{Backend, isolated_settings, outbox_message};
use prh_common::{
    config::ResolvedDb,
    store::{
        self, audit,
        batch::Batch,
        outbox::{self, entity as rows},
        write_gate::WriteGate,
    },
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, Statement, TransactionTrait,
    sea_query::Expr,
};
use uuid::Uuid;

/// The first event of `application`'s audit trail.
fn submitted(application: Uuid) -> Vec<audit::Event> {
    vec![audit::Event {
        application_id: application,
        kind: "submitted",
        payload: serde_json::json!({}),
    }]
}

/// A migrated pipeline database of its own, and how to reach it again.
async fn pipeline(backend: Backend, dir: &tempfile::TempDir) -> (DatabaseConnection, ResolvedDb, common::Cleanup) {
    let settings = isolated_settings(backend, dir);
    let cleanup = common::Cleanup::of(&settings);
    let db = store::connect(&settings.pipeline_db()).await.unwrap();
    prh_migrations::migrate_pipeline(&db).await.unwrap();
    (db, settings.pipeline_db(), cleanup)
}

#[tokio::test]
async fn a_batch_runs_its_statements_in_order_and_fails_as_a_whole() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let (db, _, _cleanup) = pipeline(backend, &dir).await;
        let (first, second) = (outbox_message(1), outbox_message(2));

        // The update only finds the row if the insert before it in the batch ran first.
        let txn = db.begin().await.unwrap();
        let mut batch = Batch::new(&txn);
        outbox::enqueue_in(&mut batch, "intake", &[first.clone(), second.clone()]).unwrap();
        batch.push(
            &rows::Entity::update_many()
                .col_expr(rows::Column::RoutingKey, Expr::value("education"))
                .filter(rows::Column::MessageId.eq(second.message_id)),
        );
        let application = Uuid::now_v7();
        audit::start_in(&mut batch, chrono::Utc::now(), submitted(application));
        batch.run(&txn).await.unwrap();
        txn.commit().await.unwrap();
        let stored = rows::Entity::find().all(&db).await.unwrap();
        let keys: Vec<(Uuid, &str)> = stored.iter().map(|r| (r.message_id, r.routing_key.as_str())).collect();
        assert_eq!(
            keys,
            vec![(first.message_id, "housing"), (second.message_id, "education")],
            "{backend:?}"
        );
        assert_eq!(audit::chain(&db, application).await.unwrap().len(), 1, "{backend:?}");

        // A failing statement fails the batch, and its transaction keeps nothing of it.
        let txn = db.begin().await.unwrap();
        let mut batch = Batch::new(&txn);
        outbox::enqueue_in(&mut batch, "intake", &[outbox_message(3)]).unwrap();
        audit::start_in(&mut batch, chrono::Utc::now(), submitted(application));
        let refused = batch.run(&txn).await;
        assert!(refused.is_err(), "{backend:?}: a second first link must be refused");
        drop(txn);
        assert_eq!(rows::Entity::find().all(&db).await.unwrap().len(), 2, "{backend:?}");
    }
}

#[tokio::test]
async fn json_written_by_a_batch_is_stored_as_sea_orm_stores_it() {
    // Escapes, non-ASCII text and a number with an exponent: where two serializers of one
    // value could write different text.
    let headers = serde_json::json!([["x-prh-department", "住房"], ["quote", "a \"b\" \\ c"], ["n", 1.5e3]]);
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let (db, _, _cleanup) = pipeline(backend, &dir).await;
        let row = |body: &str| rows::ActiveModel {
            origin: Set("intake".into()),
            exchange: Set("prh.checks".into()),
            routing_key: Set("housing".into()),
            kind: Set("check.requested".into()),
            message_id: Set(Uuid::now_v7()),
            correlation_id: Set(None),
            headers: Set(headers.clone()),
            body: Set(body.into()),
            created_at: Set(chrono::Utc::now()),
            sent_at: Set(None),
            ..Default::default()
        };
        rows::Entity::insert(row("by sea-orm")).exec(&db).await.unwrap();
        let txn = db.begin().await.unwrap();
        let mut batch = Batch::new(&txn);
        batch.push(&rows::Entity::insert(row("first of a batch")));
        batch.push(&rows::Entity::insert(row("second of a batch")));
        batch.run(&txn).await.unwrap();
        txn.commit().await.unwrap();

        let as_text = match backend {
            Backend::Sqlite => "CAST(headers AS TEXT)",
            Backend::Postgres => "headers::text",
        };
        let stored: Vec<String> = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT {as_text} AS t FROM outbox ORDER BY id"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("", "t").unwrap())
            .collect();
        assert_eq!(stored.len(), 3, "{backend:?}");
        assert!(stored.iter().all(|t| *t == stored[0]), "{backend:?}: {stored:?}");
        let read = rows::Entity::find().all(&db).await.unwrap();
        assert!(read.iter().all(|r| r.headers == headers), "{backend:?}: {read:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_at_the_gate_neither_fail_nor_lose_updates() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let (db, resolved, _cleanup) = pipeline(backend, &dir).await;
        // A second pool on the same database, as intake and the collector have in one
        // process: its writers queue at the same gate. On SQLite it does not wait in
        // SQLite's busy handler at all, so a writer of it that met the other pool's
        // transaction there (no gate) would fail at once with "database is locked".
        let other = if resolved.is_sqlite() {
            impatient(&resolved.url).await
        } else {
            store::connect(&resolved).await.unwrap()
        };
        let counter = "CREATE TABLE gate_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)";
        db.execute_raw(Statement::from_string(db.get_database_backend(), counter))
            .await
            .unwrap();
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            "INSERT INTO gate_counter (id, n) VALUES (1, 0)",
        ))
        .await
        .unwrap();
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..40 {
            let db = if i % 2 == 0 { db.clone() } else { other.clone() };
            writers.spawn(async move {
                let gate = WriteGate::of(&db);
                // Read, then write what was read plus one: a deferred SQLite transaction
                // doing this fails when another writer commits in between.
                let (txn, _turn) = gate.begin(&db).await?;
                let backend = txn.get_database_backend();
                let lock = if backend == sea_orm::DbBackend::Postgres {
                    " FOR UPDATE"
                } else {
                    ""
                };
                let row = txn
                    .query_one_raw(Statement::from_string(
                        backend,
                        format!("SELECT n FROM gate_counter WHERE id = 1{lock}"),
                    ))
                    .await?
                    .expect("the counter row");
                let n: i32 = row.try_get("", "n")?;
                tokio::task::yield_now().await;
                txn.execute_raw(Statement::from_string(
                    backend,
                    format!("UPDATE gate_counter SET n = {} WHERE id = 1", n + 1),
                ))
                .await?;
                txn.commit().await?;
                Ok::<_, sea_orm::DbErr>(())
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap()
                .unwrap_or_else(|e| panic!("{backend:?}: a writer failed: {e}"));
        }
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT n FROM gate_counter WHERE id = 1",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<i32>("", "n").unwrap(), 40, "{backend:?}");
    }
}

/// A pool on the SQLite file at `url` whose connections never wait for the file's lock.
async fn impatient(url: &str) -> DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options.max_connections(4).map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::ZERO)
    });
    sea_orm::Database::connect(options).await.unwrap()
}
