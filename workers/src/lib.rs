//! prh-workers: the department pools (one check module per department over the shared
//! consumer runtime), the collector, and the synthetic registry data generator.

pub mod collector;
pub mod departments;
pub mod housing_closer;
pub mod import;
pub mod pool;
pub mod seed;
pub mod service;
pub mod sweeper;
pub mod trust;
