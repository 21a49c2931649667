//! `prh`: the command line of PRH. Each subcommand starts one component or does one
//! operator task; the logic lives in the library crates.

mod audit;
mod bench;
mod client;
mod demo;
mod keys;
mod office;
mod run;

use clap::{Parser, Subcommand};
use prh_common::{config::Settings, department::Department};
use std::{path::PathBuf, process::ExitCode};

// Under load much of PRH's CPU went to glibc's malloc and free across threads (measured
// with perf during `prh bench`; see docs/performance.md); mimalloc spends far less. It is
// built without transparent huge pages (feature `no_thp`): with them a worker process
// peaked at 43–66 MiB instead of 27–43 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "prh",
    version,
    about = "PRH — public rental housing (公租房) review: one form, one submission, a decision in time."
)]
struct Cli {
    /// Configuration file (TOML). Default: ./prh.toml when present. Environment variables
    /// PRH__SECTION__KEY override both.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the intake HTTP API and consume the AMQP intake queue; relay check requests.
    Intake {
        /// Address to listen on (default: intake.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run one department's worker pool.
    Worker {
        /// public_security, civil_affairs, human_resources, natural_resources, housing or education.
        #[arg(long)]
        department: Department,
    },
    /// Gather findings, decide, sign certificates and announce decisions.
    Collector,
    /// Create or update the pipeline schema and every department registry schema.
    Migrate,
    /// Fill the department registries with synthetic households and write sample
    /// applications (JSON Lines) whose expected outcomes are known. Registry dates are
    /// relative to today, so the expected outcomes hold for applications submitted today.
    Seed {
        /// How many persons to create (households are made until this many exist).
        #[arg(long, default_value_t = 1000)]
        citizens: usize,
        /// Random seed; the same seed gives the same data.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the sample applications (one JSON object a line: scenario,
        /// expected outcome and reason, and the form).
        #[arg(long, default_value = "sample-applications.jsonl")]
        out: PathBuf,
        /// Also write each form on its own, as `<DIR>/0001-<scenario>.json`, ready for
        /// `prh submit`.
        #[arg(long)]
        forms_dir: Option<PathBuf>,
        /// Instead of a random mix, one household per scenario and track: every threshold
        /// at, just inside and just past its limit, and every reason code.
        #[arg(long, conflicts_with = "citizens")]
        catalogue: bool,
    },
    /// Submit an application form (JSON) to the intake API.
    Submit {
        file: PathBuf,
        /// Idempotency key; default: derived from the file's content, so resubmitting the
        /// same file is harmless.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show an application's progress per department and its decision with reasons.
    Status {
        /// Application id or reference (GZF-…).
        id: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a certificate file offline, or a certificate number online. Exit status 0
    /// only for a genuine, valid certificate.
    Verify {
        /// A certificate file, or a certificate number (WHZG-…).
        target: String,
        /// Trust this public key file (base64) instead of the configured keys.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// The evidence trail of an application: a hash chain of what happened to it.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The working-day calendar (工作日历): check a yearly file before adding it to
    /// calendar.dir.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// Reports from the intake API (with client.api_key as an officer's key).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The manual-review queue (人工复核): list referred cases, decide one with a written
    /// reason. Officer commands send client.api_key (PRH__CLIENT__API_KEY) as the
    /// officer's key; the service records who decided.
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Ask an applicant for a missing document (补正) — the statutory clock stops — and
    /// record its arrival, when the clock runs again. Officer command.
    Supplement {
        #[command(subcommand)]
        command: SupplementCommand,
    },
    /// Record an objection received during a case's public notice (公示): the case goes
    /// back to manual review. Officer command.
    Objection {
        /// Application id or reference (GZF-…).
        id: String,
        /// What the objection says.
        #[arg(long)]
        text: String,
    },
    /// A certificate's life: revoke it, or start its yearly re-check (年审) now. Officer
    /// commands.
    Certificate {
        #[command(subcommand)]
        command: CertificateCommand,
    },
    /// Per-component broker users: declare the topology with amqp.url (an
    /// administrator), create one user per component with only the rights it needs, and
    /// write each component's environment to <data_dir>/broker/<component>.env.
    Broker {
        #[command(subcommand)]
        command: BrokerCommand,
    },
    /// The departments' finding keys: create, rotate, list.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect and replay messages parked in the dead-letter queues.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// Load a department's registry export (JSON Lines, docs/registry-format.md).
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Check eligibility policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Measure: the broker's raw ceiling, then N applications through intake, the pools
    /// and the collector; applications/s, latency, messages per application, the
    /// fraction of the ceiling reached, per-department check rates, peak memory.
    Bench {
        #[arg(long, default_value_t = 20_000)]
        applications: usize,
        /// Offer a fixed load (applications per second) instead of as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Database of the all-in-one run.
        #[arg(long, value_enum, default_value_t = BenchDatabase::Sqlite)]
        database: BenchDatabase,
        /// PostgreSQL to use with `--database postgres` (a schema per run, dropped after).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
        postgres_url: String,
        /// Drive running processes instead: seed the configured registries, submit to
        /// `client.intake_url`, read decisions from the configured database.
        #[arg(long)]
        external: bool,
        /// Messages for the broker-ceiling measurement.
        #[arg(long, default_value_t = 20_000)]
        ceiling_messages: usize,
        /// Working folder of the all-in-one run (wiped at start).
        #[arg(long, default_value = "prh-bench")]
        dir: PathBuf,
    },
    /// Run the whole pipeline locally on SQLite: migrate, seed, start every component in
    /// one process, push sample applications through and print a summary.
    Demo {
        #[arg(long, default_value_t = 200)]
        applications: usize,
        /// Working folder (wiped at start).
        #[arg(long, default_value = "prh-demo")]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchDatabase {
    Sqlite,
    Postgres,
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// List every parked message with its origin and reason (bodies are not shown: they
    /// may hold personal data). Nothing is removed.
    List,
    /// Re-publish parked messages to the queue they came from, after the cause is fixed.
    /// Each leaves its parking queue only once the broker confirmed the re-publish.
    Replay {
        /// Only messages parked from this work queue, e.g. `prh.checks.housing`.
        #[arg(long)]
        queue: Option<String>,
        /// Only the message with this message_id.
        #[arg(long)]
        message_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Validate every line of FILE, report bad lines by number and reason, and load the
    /// rest into the department's own registry in one transaction. Exit status 1 when any
    /// line was refused.
    Import {
        #[arg(long)]
        department: Department,
        file: PathBuf,
        /// Delete the department's previous records first (a full export).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Parse and check yearly calendar files; print each year's holidays and make-up
    /// working days. Exit status 0 only when every file is sound.
    Check { files: Vec<PathBuf> },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Per department: answered in time, late, silent past the limit, pending, and the
    /// mean working days taken (GET /v1/reports/deadlines).
    Deadlines {
        /// Print the JSON as the API returns it.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// Every referred case, oldest first, with each criterion that did not pass, the
    /// departments that did not answer in time and any objection (GET /v1/reviews).
    List {
        /// Print the JSON as the API returns it.
        #[arg(long)]
        json: bool,
    },
    /// Qualify or reject a referred case; the reason is required and recorded with the
    /// officer and the time.
    Decide {
        /// Application id or reference (GZF-…).
        id: String,
        #[arg(long, value_enum)]
        outcome: office::Outcome,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum SupplementCommand {
    /// Ask the applicant for a document; the case's clocks stop until it arrives.
    Request {
        /// Application id or reference (GZF-…).
        id: String,
        /// The document asked for, e.g. "the labour contract".
        #[arg(long)]
        document: String,
    },
    /// The document arrived; the clocks run again and the paused days move the deadlines.
    Received {
        /// Application id or reference (GZF-…).
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Subcommand)]
enum CertificateCommand {
    /// Withdraw a valid certificate, with the reason; `prh verify` then refuses it.
    Revoke {
        /// Certificate number (WHZG-…).
        number: String,
        #[arg(long)]
        reason: String,
    },
    /// Start the yearly re-check now: the departments check the household again, and
    /// the certificate is renewed or revoked by the outcome.
    Recheck {
        /// Certificate number (WHZG-…).
        number: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the chain and name the first broken link. Exit status 0 only when it is
    /// whole.
    Verify {
        /// Application id or reference (GZF-…).
        id: String,
    },
}

#[derive(Subcommand)]
enum BrokerCommand {
    /// Declare the topology and create (or re-key) every component's user.
    Setup,
    /// Delete every component user of amqp.prefix; the topology stays.
    RemoveUsers,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create the finding key of each department (all when none is named) where missing,
    /// under signing.findings_keys_dir; print each key id.
    Generate {
        #[arg(long)]
        department: Vec<Department>,
        /// Replace the key with a new one; the old public key stays trusted until removed.
        #[arg(long)]
        rotate: bool,
    },
    /// Show the key ids trusted for findings, by department, and for certificates.
    List,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policy files (each alone, then together as one set of versions) and show
    /// what each sets. Exit status 0 only when all are usable.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("prh: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("prh: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Intake { listen } => run::intake(settings, listen).await,
            Command::Worker { department } => run::worker(settings, department).await,
            Command::Collector => run::collector(settings).await,
            Command::Migrate => run::migrate(&settings).await,
            Command::Seed {
                citizens,
                seed,
                out,
                forms_dir,
                catalogue,
            } => {
                let size = if catalogue { None } else { Some(citizens) };
                run::seed(&settings, size, seed, &out, forms_dir.as_deref()).await
            }
            Command::Submit { file, idempotency_key } => client::submit(&settings, &file, idempotency_key).await,
            Command::Status { id, json } => client::status(&settings, &id, json).await,
            Command::Verify { target, key } => client::verify(&settings, &target, key.as_deref()).await,
            Command::Audit {
                command: AuditCommand::Verify { id },
            } => audit::verify(&settings, &id).await,
            Command::Calendar {
                command: CalendarCommand::Check { files },
            } => Ok(client::check_calendars(&files)),
            Command::Report {
                command: ReportCommand::Deadlines { json },
            } => office::report_deadlines(&settings, json).await,
            Command::Review {
                command: ReviewCommand::List { json },
            } => office::review_list(&settings, json).await,
            Command::Review {
                command: ReviewCommand::Decide { id, outcome, reason },
            } => office::review_decide(&settings, &id, outcome, &reason).await,
            Command::Supplement {
                command: SupplementCommand::Request { id, document },
            } => office::supplement_request(&settings, &id, &document).await,
            Command::Supplement {
                command: SupplementCommand::Received { id, note },
            } => office::supplement_received(&settings, &id, note.as_deref()).await,
            Command::Objection { id, text } => office::object(&settings, &id, &text).await,
            Command::Certificate {
                command: CertificateCommand::Revoke { number, reason },
            } => office::revoke(&settings, &number, &reason).await,
            Command::Certificate {
                command: CertificateCommand::Recheck { number },
            } => office::recheck(&settings, &number).await,
            Command::Broker {
                command: BrokerCommand::Setup,
            } => run::broker_setup(&settings).await,
            Command::Broker {
                command: BrokerCommand::RemoveUsers,
            } => run::broker_remove_users(&settings),
            Command::Keys {
                command: KeysCommand::Generate { department, rotate },
            } => keys::generate(&settings, &department, rotate),
            Command::Keys {
                command: KeysCommand::List,
            } => keys::list(&settings),
            Command::DeadLetters {
                command: DeadLetterCommand::List,
            } => run::dead_letters_list(&settings).await,
            Command::DeadLetters {
                command: DeadLetterCommand::Replay { queue, message_id },
            } => run::dead_letters_replay(&settings, queue.as_deref(), message_id.as_deref()).await,
            Command::Registry {
                command:
                    RegistryCommand::Import {
                        department,
                        file,
                        replace,
                    },
            } => run::registry_import(&settings, department, &file, replace).await,
            Command::Policy {
                command: PolicyCommand::Check { files },
            } => run::policy_check(&files).await,
            Command::Bench {
                applications,
                rate,
                json,
                database,
                postgres_url,
                external,
                ceiling_messages,
                dir,
            } => {
                let postgres = matches!(database, BenchDatabase::Postgres).then_some(postgres_url);
                let options = bench::Options {
                    applications,
                    rate,
                    json,
                    postgres,
                    external,
                    ceiling_messages,
                };
                bench::run(settings, options, &dir).await
            }
            Command::Demo { applications, dir } => demo::run(settings, applications, &dir).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("prh: {}", prh_common::id_number::redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
