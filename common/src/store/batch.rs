//! Writes gathered into one round trip: on SQLite the statements go to the database as one
//! string, which sqlx runs in order, binding each statement its own parameters.
//!
//! Every statement on SQLite is a hand-off to sqlx's worker thread and back, and a writer
//! holds SQLite's one write lock across all of its hand-offs; on a busy machine each costs
//! a scheduling delay. PostgreSQL's extended protocol takes one statement with parameters
//! at a time, so there the statements run one after another.
//!
//! On SQLite a batch also binds JSON values as the text they are stored as. sea-orm's
//! driver clones every bound value each time it runs a statement, and a JSON value is a
//! tree: the clones of the payloads, findings and audit events written were about 2 % of
//! the all-in-one process (docs/performance.md, 2026-12-08, late). A string clones in one
//! copy, and sqlx stores a JSON value as exactly this text (compact `serde_json`).

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryTrait, Statement, Value};

/// Statements to run together, in the order they were added.
pub struct Batch {
    backend: DbBackend,
    statements: Vec<Statement>,
}

impl Batch {
    /// An empty batch for `db`'s backend.
    pub fn new(db: &impl ConnectionTrait) -> Self {
        Self {
            backend: db.get_database_backend(),
            statements: Vec::new(),
        }
    }

    /// Adds `query`'s statement.
    pub fn push(&mut self, query: &impl QueryTrait) {
        self.statements.push(json_as_text(query.build(self.backend)));
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs every statement added, in order, in one round trip on SQLite.
    pub async fn run<C: ConnectionTrait>(self, db: &C) -> Result<(), DbErr> {
        if self.backend != DbBackend::Sqlite || self.statements.len() < 2 {
            for statement in self.statements {
                db.execute_raw(statement).await?;
            }
            return Ok(());
        }
        let mut sql = String::new();
        let mut values: Vec<Value> = Vec::new();
        for statement in self.statements {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str(&statement.sql);
            values.extend(statement.values.map(|v| v.0).unwrap_or_default());
        }
        db.execute_raw(Statement::from_sql_and_values(self.backend, sql, values))
            .await?;
        Ok(())
    }
}

/// `statement` with its JSON values bound as text on SQLite (see the module's comment):
/// also for a statement with large JSON values run on its own.
pub fn json_as_text(mut statement: Statement) -> Statement {
    if statement.db_backend == DbBackend::Sqlite
        && let Some(values) = statement.values.as_mut()
    {
        for value in values.0.iter_mut() {
            if let Value::Json(json) = value {
                *value = Value::String(json.take().map(|j| j.to_string()));
            }
        }
    }
    statement
}
