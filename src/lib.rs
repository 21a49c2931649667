//! The `prh` package's library side: wiring shared by the CLI and the end-to-end tests.
//! No domain logic lives here; it only starts components the library crates provide.

pub mod broker;
pub mod local;
pub mod process;
