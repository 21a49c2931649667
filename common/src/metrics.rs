//! Prometheus metrics: the one recorder each process installs and serves on `/metrics`,
//! and the metric names. Labels are small fixed sets (department, outcome, channel…),
//! never an application id or an ID number.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const APPLICATIONS: &str = "prh_applications_total";
pub const SUBMISSIONS_REFUSED: &str = "prh_submissions_refused_total";
pub const DELIVERIES: &str = "prh_deliveries_total";
pub const REDELIVERIES: &str = "prh_redeliveries_total";
pub const RETRIES: &str = "prh_retries_total";
pub const DEAD_LETTERS: &str = "prh_dead_letters_total";
pub const CHECKS: &str = "prh_checks_total";
pub const CHECK_DURATION: &str = "prh_check_duration_seconds";
pub const CRITERIA: &str = "prh_criteria_total";
pub const FINDINGS: &str = "prh_findings_total";
pub const DECISIONS: &str = "prh_decisions_total";
pub const SUBMIT_TO_DECISION: &str = "prh_submit_to_decision_seconds";
pub const CERTIFICATES: &str = "prh_certificates_total";
pub const PUBLISHED: &str = "prh_published_total";
pub const OUTBOX_BACKLOG: &str = "prh_outbox_backlog";
pub const OUTBOX_PRUNED: &str = "prh_outbox_pruned_total";
pub const CHASES: &str = "prh_chases_total";
pub const DEADLINE_WARNINGS: &str = "prh_deadline_warnings_total";
pub const OVERDUE: &str = "prh_departments_overdue_total";
pub const OFFICE_ACTIONS: &str = "prh_office_actions_total";
pub const GROUP_COMMIT_JOBS: &str = "prh_group_commit_jobs";
pub const GROUP_COMMIT_SECONDS: &str = "prh_group_commit_seconds";
pub const GROUP_COMMIT_WAIT_SECONDS: &str = "prh_group_commit_wait_seconds";
pub const COLLECTOR_REPLANNED: &str = "prh_collector_replanned_total";

/// Latency buckets in seconds: from a fast check to a slow decision.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls return the same handle. `None`
/// only if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(GROUP_COMMIT_JOBS.into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                )
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric so far.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(APPLICATIONS, "Applications accepted, by intake channel");
    describe_counter!(
        COLLECTOR_REPLANNED,
        "Collector batches decided again under the write lock because what their plan read had changed"
    );
    describe_counter!(
        CHASES,
        "Check requests sent again to a silent department, by department"
    );
    describe_counter!(
        DEADLINE_WARNINGS,
        "Departments warned that their answer limit is near, by department"
    );
    describe_counter!(
        OVERDUE,
        "Cases referred because a department passed its limit, by department"
    );
    describe_histogram!(
        GROUP_COMMIT_JOBS,
        "Work items that shared one transaction, by unit (intake, collector, or the department whose checks)"
    );
    describe_histogram!(
        GROUP_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "How long one group-commit transaction took, by unit"
    );
    describe_histogram!(
        GROUP_COMMIT_WAIT_SECONDS,
        metrics::Unit::Seconds,
        "How long a group-commit transaction waited to begin (on SQLite, for the write lock), by unit"
    );
    describe_counter!(
        OFFICE_ACTIONS,
        "Office actions (review, pause, resume, objection, revocation, re-check), by action"
    );
    describe_counter!(SUBMISSIONS_REFUSED, "Submissions refused as invalid, by intake channel");
    describe_counter!(DELIVERIES, "Deliveries handled, by consumer");
    describe_counter!(REDELIVERIES, "Deliveries that had been delivered before, by consumer");
    describe_counter!(RETRIES, "Deliveries handed back after a transient failure, by consumer");
    describe_counter!(
        DEAD_LETTERS,
        "Messages parked in a dead-letter queue, by consumer and reason"
    );
    describe_counter!(CHECKS, "Check requests answered, by department");
    describe_histogram!(CHECK_DURATION, metrics::Unit::Seconds, "Time a department check took");
    describe_counter!(CRITERIA, "Criterion results reported, by department and outcome");
    describe_counter!(FINDINGS, "Findings stored by the collector, by department");
    describe_counter!(DECISIONS, "Decisions made, by outcome");
    describe_histogram!(
        SUBMIT_TO_DECISION,
        metrics::Unit::Seconds,
        "From submission to decision"
    );
    describe_counter!(CERTIFICATES, "Certificates issued");
    describe_counter!(PUBLISHED, "Outbox rows published and confirmed, by origin");
    describe_gauge!(OUTBOX_BACKLOG, "Outbox rows not yet confirmed by the broker, by origin");
    describe_counter!(
        OUTBOX_PRUNED,
        "Published outbox rows deleted after their retention, by origin"
    );
}
