//! Opening a database from settings: SQLite files get WAL, a busy timeout and their folder
//! created; PostgreSQL gets its schema created and put on the search path.

use crate::config::ResolvedDb;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbOpenError {
    #[error("cannot create the folder for {url}: {source}")]
    Folder { url: String, source: std::io::Error },
    #[error("cannot open database {url}: {source}")]
    Open { url: String, source: DbErr },
    #[error("schema name `{0}` must be letters, digits and underscores")]
    SchemaName(String),
    #[error("the {what} has no table `{table}`: run `prh migrate` first")]
    NotMigrated { what: String, table: String },
    #[error("cannot reach the {what}: {source}")]
    Unreachable { what: String, source: DbErr },
}

/// Connects to `db`, preparing what the backend needs first.
pub async fn connect(db: &ResolvedDb) -> Result<DatabaseConnection, DbOpenError> {
    let open_err = |source| DbOpenError::Open {
        url: db.redacted(),
        source,
    };
    let mut options = ConnectOptions::new(db.url.clone());
    options
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Duration::from_secs(300))
        .sqlx_logging(false);
    if db.is_sqlite() {
        if let Some(dir) = sqlite_path(&db.url).and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_owned()))
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(&dir).map_err(|source| DbOpenError::Folder {
                url: db.redacted(),
                source,
            })?;
        }
        // WAL lets readers run beside the one writer; the busy timeout makes writers queue
        // instead of failing with "database is locked".
        // A connection to a file cannot go stale: a ping before each use would only be
        // another round trip to sqlx's thread for the connection.
        options
            .test_before_acquire(false)
            .max_connections(db.max_connections.unwrap_or(4))
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30))
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            });
    } else {
        options
            .max_connections(db.max_connections.unwrap_or(10))
            .min_connections(1);
        if let Some(schema) = &db.schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.is_empty() {
                return Err(DbOpenError::SchemaName(schema.clone()));
            }
            let admin = Database::connect(&db.url).await.map_err(open_err)?;
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""),
                ))
                .await
                .map_err(open_err)?;
            admin.close().await.map_err(open_err)?;
            options.set_schema_search_path(schema.clone());
        }
    }
    Database::connect(options).await.map_err(open_err)
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// Drops a PostgreSQL schema and everything in it (test and demo clean-up).
pub async fn drop_schema(db: &ResolvedDb) -> Result<(), DbErr> {
    if let (false, Some(schema)) = (db.is_sqlite(), &db.schema) {
        let admin = Database::connect(&db.url).await?;
        admin
            .execute_raw(Statement::from_string(
                admin.get_database_backend(),
                format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
            ))
            .await?;
        admin.close().await?;
    }
    Ok(())
}

/// Fails with a clear message when `table` is missing, which means `prh migrate` has not
/// run against this database yet.
pub async fn require_table(db: &sea_orm::DatabaseConnection, table: &str, what: &str) -> Result<(), DbOpenError> {
    let probe = Statement::from_string(db.get_database_backend(), format!("SELECT 1 FROM {table} WHERE 1 = 0"));
    match db.query_one_raw(probe).await {
        Ok(_) => Ok(()),
        Err(source) if is_transient(&source) => Err(DbOpenError::Unreachable {
            what: what.into(),
            source,
        }),
        Err(_) => Err(DbOpenError::NotMigrated {
            what: what.into(),
            table: table.into(),
        }),
    }
}

/// Whether an error is worth retrying (the database is busy or away) rather than a bug or
/// bad data.
pub fn is_transient(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        other => {
            let text = other.to_string().to_ascii_lowercase();
            [
                "database is locked",
                "busy",
                "connection",
                "timed out",
                "deadlock",
                "could not serialize",
            ]
            .iter()
            .any(|needle| text.contains(needle))
        }
    }
}
