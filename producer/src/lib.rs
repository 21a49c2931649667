//! prh-producer: intake. Validates applications, serves the HTTP API, consumes the AMQP
//! intake queue, and writes applications with their check requests to the outbox.

pub mod amqp;
pub mod channels;
pub mod http;
pub mod intake;
pub mod office;
pub mod office_api;
pub mod report;
pub mod service;
pub mod status;
pub mod validate;
