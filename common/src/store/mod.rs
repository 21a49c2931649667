//! Storage: connecting to SQLite or PostgreSQL, the pipeline's entities, the department
//! registries' entities, the transactional outbox with its relay, and how writes share
//! transactions and statements.

pub mod audit;
pub mod batch;
pub mod clocks;
pub mod db;
pub mod group_commit;
pub mod in_list;
pub mod outbox;
pub mod pipeline;
pub mod registry;
pub mod write_gate;

pub use db::connect;
