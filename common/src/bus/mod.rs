//! Everything that touches RabbitMQ: connecting with backoff, the topology, the one
//! publisher (confirms + mandatory) and the one consumer runtime all pools share.

pub mod connection;
pub mod consumer;
pub mod dead_letters;
pub mod grants;
pub mod health;
pub mod message;
pub mod publisher;
pub mod settle;
pub mod topology;

pub use connection::connect;
pub use consumer::{ConsumerSpec, Disposition, Handler};
pub use health::Health;
pub use message::{Incoming, Outgoing};
pub use publisher::{PublishError, Publisher};
pub use topology::Topology;
