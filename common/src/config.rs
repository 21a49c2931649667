//! The one configuration loader: built-in defaults, then `prh.toml` (or `--config FILE`),
//! then environment variables `PRH__SECTION__KEY`. Every knob is documented in the README.

use crate::department::Department;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where SQLite files and generated keys live unless their own settings say otherwise.
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub registries: RegistrySettings,
    pub amqp: AmqpSettings,
    pub intake: IntakeSettings,
    pub workers: PoolSettings,
    pub collector: PoolSettings,
    pub signing: SigningSettings,
    pub policy: PolicySettings,
    pub client: ClientSettings,
    pub log: LogSettings,
    pub shutdown: ShutdownSettings,
    pub calendar: CalendarSettings,
    pub lifecycle: LifecycleSettings,
    pub office: OfficeSettings,
    /// The time every component of this process reads: the system's, except in tests
    /// that must cross holidays and notice periods. Not configurable.
    #[serde(skip)]
    pub clock: crate::clock::Clock,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarSettings {
    /// Folder of yearly working-day calendars (`*.toml`) added to the official ones built
    /// in, e.g. next year's once the State Council announces it; a year here replaces the
    /// built-in one. Unset: the built-in years only.
    pub dir: Option<PathBuf>,
}

/// The statutory clocks' keeper (the collector's sweeper) and the yearly re-check.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// How often the sweeper looks for silent departments, ended notices and due
    /// re-checks, in milliseconds.
    pub sweep_ms: u64,
    /// A department that has not answered is first asked again this many minutes after
    /// the submission; each further time after twice the wait before, at most
    /// `chase_max_minutes`.
    pub chase_after_minutes: u64,
    pub chase_max_minutes: u64,
    /// Warn (log and metric) when a department has this many working days or fewer left.
    pub warn_working_days: u32,
    /// Start the yearly re-check (年审) this many days before a certificate expires;
    /// 0: re-checks only when asked for.
    pub recheck_days_before: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            sweep_ms: 60_000,
            chase_after_minutes: 240,
            chase_max_minutes: 24 * 60,
            warn_working_days: 1,
            recheck_days_before: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OfficeSettings {
    /// API key of each officer (reviewers, window staff) by name, e.g. from
    /// `PRH__OFFICE__API_KEYS__WANG_LI`: the office endpoints (reviews, 补正, objections,
    /// revocations, re-checks, reports) need one in `X-Api-Key`, and record the name as
    /// who acted. None set: the office endpoints are open and record `development`.
    pub api_keys: std::collections::BTreeMap<String, String>,
}

/// How a process stops on SIGTERM or SIGINT.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Seconds that work in flight (deliveries, the last outbox flush) may take to finish.
    pub grace_secs: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { grace_secs: 30 }
    }
}

/// A database: a URL (`sqlite://…` or `postgres://…`) and, for PostgreSQL, a schema.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Unset: a SQLite file under `data_dir`.
    pub url: Option<String>,
    /// PostgreSQL schema to work in (created if missing); ignored for SQLite.
    pub schema: Option<String>,
    pub max_connections: Option<u32>,
}

/// Each department's registry is its own database (or schema) with its own URL.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    pub public_security: DatabaseSettings,
    pub civil_affairs: DatabaseSettings,
    pub human_resources: DatabaseSettings,
    pub natural_resources: DatabaseSettings,
    pub housing: DatabaseSettings,
    pub education: DatabaseSettings,
}

impl RegistrySettings {
    pub fn get(&self, department: Department) -> &DatabaseSettings {
        match department {
            Department::PublicSecurity => &self.public_security,
            Department::CivilAffairs => &self.civil_affairs,
            Department::HumanResources => &self.human_resources,
            Department::NaturalResources => &self.natural_resources,
            Department::Housing => &self.housing,
            Department::Education => &self.education,
        }
    }

    pub fn get_mut(&mut self, department: Department) -> &mut DatabaseSettings {
        match department {
            Department::PublicSecurity => &mut self.public_security,
            Department::CivilAffairs => &mut self.civil_affairs,
            Department::HumanResources => &mut self.human_resources,
            Department::NaturalResources => &mut self.natural_resources,
            Department::Housing => &mut self.housing,
            Department::Education => &mut self.education,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    pub url: String,
    /// Prefix of every exchange and queue name, so several installations (or tests) can
    /// share one broker.
    pub prefix: String,
    /// Deliveries of one message before the broker parks it in the dead-letter queue.
    pub delivery_limit: u32,
    /// Each component logs in as its own broker user (`prh broker setup`): components do
    /// not declare the topology, and the collector accepts a finding only from its
    /// department's user. Off: one login for everything (development).
    pub component_users: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSettings {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Largest accepted request or AMQP message body, in bytes.
    pub max_body_bytes: usize,
    /// Largest household (applicant and co-applicants).
    pub max_household: usize,
    /// Prefetch and concurrency of the AMQP intake consumer.
    pub prefetch: u16,
    pub concurrency: usize,
    /// Outbox rows published per relay round.
    pub relay_batch: u64,
    /// How often the relay looks for rows written by other processes, in milliseconds.
    pub relay_poll_ms: u64,
    /// How long published outbox rows are kept, in hours, before the relay deletes them:
    /// they hold the check requests' personal data, and the audit trail keeps their
    /// message ids. 0 keeps them for ever.
    pub outbox_keep_hours: u64,
    /// API key of each intake channel (`app`, `portal`, `window`, `partner`), e.g. from
    /// `PRH__INTAKE__API_KEYS__PORTAL`. When any is set, every HTTP submission must carry
    /// one in `X-Api-Key`, and the application records the channel it belongs to. None
    /// set: submissions are taken without a key, as channel `http` (development).
    pub api_keys: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    /// Unacknowledged deliveries the broker may send one consumer.
    pub prefetch: u16,
    /// Deliveries handled at the same time by one process.
    pub concurrency: usize,
    /// Address for `/livez`, `/readyz`; unset: no probe server.
    pub probe_listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningSettings {
    /// Ed25519 key file (base64); generated on first run if missing. Unset: under data_dir.
    pub key_file: Option<PathBuf>,
    /// Extra trusted public key files (`.pub`), e.g. keys rotated out.
    pub trusted_keys: Vec<PathBuf>,
    pub authority: String,
    /// Folder of the departments' finding keys, `<dir>/<department>/current.key` and the
    /// trusted `*.pub` files beside it. Unset: `keys/findings` under data_dir.
    pub findings_keys_dir: Option<PathBuf>,
    /// A worker's department key as base64 (e.g. from a secret in the environment,
    /// `PRH__SIGNING__DEPARTMENT_KEY`); unset: the key file, generated on first run.
    pub department_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// Folder of policy files (`*.toml`), one per version, each with its effective date;
    /// unset: the built-in defaults of RULES.md.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// Intake API used by `prh submit`, `prh status` and `prh verify NUMBER`.
    pub intake_url: String,
    /// The channel's API key `prh submit` and `prh bench --external` send (`X-Api-Key`),
    /// e.g. from `PRH__CLIENT__API_KEY`, where intake requires one.
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
    /// tracing filter, e.g. `info` or `prh_workers=debug,info`; `RUST_LOG` wins.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database: DatabaseSettings::default(),
            registries: RegistrySettings::default(),
            amqp: AmqpSettings::default(),
            intake: IntakeSettings::default(),
            workers: PoolSettings {
                prefetch: 64,
                concurrency: 32,
                probe_listen: None,
            },
            // Concurrency is also the largest group commit: findings waiting together share
            // one transaction. A batch's findings wait in their handlers until it commits,
            // so the next batch can only gather what the other handlers hold: with 64, about
            // 32 per transaction under load; with 256, about 110 (docs/performance.md).
            collector: PoolSettings {
                prefetch: 1024,
                concurrency: 256,
                probe_listen: None,
            },
            signing: SigningSettings::default(),
            policy: PolicySettings::default(),
            client: ClientSettings::default(),
            log: LogSettings::default(),
            shutdown: ShutdownSettings::default(),
            calendar: CalendarSettings::default(),
            lifecycle: LifecycleSettings::default(),
            office: OfficeSettings::default(),
            clock: crate::clock::Clock::system(),
        }
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "prh".into(),
            delivery_limit: 10,
            component_users: false,
        }
    }
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            max_household: 10,
            prefetch: 32,
            concurrency: 8,
            relay_batch: 256,
            relay_poll_ms: 500,
            outbox_keep_hours: 72,
            api_keys: Default::default(),
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            prefetch: 64,
            concurrency: 32,
            probe_listen: None,
        }
    }
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            key_file: None,
            trusted_keys: Vec::new(),
            authority: "威海市住房和城乡建设局".into(),
            findings_keys_dir: None,
            department_key: None,
        }
    }
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            intake_url: "http://127.0.0.1:8080".into(),
            api_key: None,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration is invalid: {0}")]
    Invalid(#[from] config::ConfigError),
}

impl Settings {
    /// Loads defaults, then `file` (or `./prh.toml` when present), then `PRH__…` variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::Config::try_from(&Settings::default())?);
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml)),
            None => {
                builder = builder.add_source(config::File::new("prh.toml", config::FileFormat::Toml).required(false))
            }
        }
        let settings = builder
            .add_source(
                config::Environment::with_prefix("PRH")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("signing.trusted_keys"),
            )
            .build()?
            .try_deserialize()?;
        Ok(settings)
    }

    /// The pipeline database, defaulting to `<data_dir>/prh.db`.
    pub fn pipeline_db(&self) -> ResolvedDb {
        self.resolve(&self.database, "prh.db")
    }

    /// A department's registry, defaulting to `<data_dir>/registry/<department>.db`.
    ///
    /// On SQLite two connections by default: a pool checks one batch at a time (its group
    /// commit), and every connection keeps its own page cache, up to 2 MiB of the
    /// registry, in the worker's memory — with four, a worker's memory grew past 50 MiB
    /// once the registries held 20,000 households.
    pub fn registry_db(&self, department: Department) -> ResolvedDb {
        let mut db = self.resolve(self.registries.get(department), &format!("registry/{department}.db"));
        if db.is_sqlite() {
            db.max_connections = db.max_connections.or(Some(REGISTRY_SQLITE_CONNECTIONS));
        }
        db
    }

    fn resolve(&self, db: &DatabaseSettings, default_file: &str) -> ResolvedDb {
        let url = db
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join(default_file).display()));
        ResolvedDb {
            url,
            schema: db.schema.clone(),
            max_connections: db.max_connections,
        }
    }

    /// The public keys certificates are verified with: the authority key's `.pub` file
    /// (when it exists yet) and every configured trusted key.
    pub fn trusted_keys(&self) -> Result<crate::signing::KeyRing, crate::signing::KeyError> {
        let mut ring = crate::signing::KeyRing::default();
        let own = crate::signing::public_key_path(&self.key_file());
        if own.exists() {
            ring.add_file(&own)?;
        }
        for path in &self.signing.trusted_keys {
            ring.add_file(path)?;
        }
        Ok(ring)
    }

    /// Every policy version configured.
    pub fn calendar(&self) -> Result<crate::calendar::WorkCalendar, crate::calendar::CalendarError> {
        crate::calendar::WorkCalendar::load(self.calendar.dir.as_deref())
    }

    pub fn policies(&self) -> Result<crate::policy_set::PolicySet, crate::policy::PolicyError> {
        crate::policy_set::PolicySet::load(self.policy.dir.as_deref())
    }

    pub fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown.grace_secs)
    }

    pub fn topology(&self) -> crate::bus::Topology {
        let mut topology = crate::bus::Topology::new(&self.amqp.prefix, self.amqp.delivery_limit);
        topology.declare_on_connect = !self.amqp.component_users;
        topology
    }

    pub fn key_file(&self) -> PathBuf {
        self.signing
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys/signing.key"))
    }

    pub fn findings_keys_dir(&self) -> PathBuf {
        self.signing
            .findings_keys_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys/findings"))
    }

    /// The key `department`'s findings are signed with: `signing.department_key` when set,
    /// else its key file (generated, with its public half, on first run).
    pub fn department_key(
        &self,
        department: crate::department::Department,
    ) -> Result<crate::signing::KeyPair, crate::signing::KeyError> {
        match &self.signing.department_key {
            Some(text) => crate::signing::KeyPair::from_base64(text).ok_or(crate::signing::KeyError::Malformed {
                path: PathBuf::from("signing.department_key"),
            }),
            None => crate::signing::KeyPair::load_or_generate(&crate::signing::DepartmentKeys::key_file(
                &self.findings_keys_dir(),
                department,
            )),
        }
    }
}

/// Connections of a department's SQLite registry unless configured (`registry_db`).
const REGISTRY_SQLITE_CONNECTIONS: u32 = 2;

/// A database with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDb {
    pub url: String,
    pub schema: Option<String>,
    pub max_connections: Option<u32>,
}

impl ResolvedDb {
    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// The URL without credentials, for logs and errors.
    pub fn redacted(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***{}", &self.url[..scheme], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_then_environment() {
        let dir = std::env::temp_dir().join(format!("prh-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("prh.toml");
        std::fs::write(
            &file,
            "data_dir = \"/srv/prh\"\n[amqp]\nprefix = \"weihai\"\n[workers]\nprefetch = 5\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(s.amqp.prefix, "weihai");
        assert_eq!(s.workers.prefetch, 5);
        assert_eq!(s.workers.concurrency, 32);
        assert_eq!(s.pipeline_db().url, "sqlite:///srv/prh/prh.db?mode=rwc");
        assert_eq!(
            s.registry_db(Department::Housing).url,
            "sqlite:///srv/prh/registry/housing.db?mode=rwc"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sqlite_registries_default_to_two_connections() {
        let mut s = Settings::default();
        // (registry URL, configured connections, expected)
        let cases = [
            (None, None, Some(2)),
            (None, Some(6), Some(6)),
            (Some("postgres://h/db"), None, None),
            (Some("postgres://h/db"), Some(3), Some(3)),
        ];
        for (url, configured, expected) in cases {
            let r = s.registries.get_mut(Department::Education);
            r.url = url.map(str::to_owned);
            r.max_connections = configured;
            assert_eq!(
                s.registry_db(Department::Education).max_connections,
                expected,
                "{url:?} with {configured:?}"
            );
        }
        assert_eq!(
            s.pipeline_db().max_connections,
            None,
            "the pipeline keeps its own default"
        );
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        assert!(matches!(
            Settings::load(Some(Path::new("/nonexistent/prh.toml"))),
            Err(ConfigError::MissingFile(_))
        ));
        let dir = std::env::temp_dir().join(format!("prh-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("prh.toml");
        std::fs::write(&file, "[amqp]\nprefixx = \"typo\"\n").unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("prefixx"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn credentials_are_redacted() {
        let db = ResolvedDb {
            url: "postgres://u:secret@h/db".into(),
            schema: None,
            max_connections: None,
        };
        assert_eq!(db.redacted(), "postgres://***@h/db");
    }
}
