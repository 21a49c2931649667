//! prh-common: what every PRH component shares — the domain types, the message contract,
//! the bus, storage, configuration and telemetry.

pub mod application;
pub mod audit;
pub mod bus;
pub mod calendar;
pub mod certificate;
pub mod clock;
pub mod config;
pub mod contract;
pub mod criteria;
pub mod dates;
pub mod department;
pub mod id_number;
pub mod metrics;
pub mod money;
pub mod policy;
pub mod policy_set;
pub mod records;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod time_limit;
pub mod trace;

/// Days in China's civil time zone (UTC+8, no daylight saving): the application date and
/// certificate dates are dates there.
pub fn china_today() -> chrono::NaiveDate {
    china_date(chrono::Utc::now())
}

pub fn china_date(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    let offset = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    at.with_timezone(&offset).date_naive()
}
