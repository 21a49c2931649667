//! Who may do what on the broker: one user per component (intake, the collector, each
//! department's pool), allowed to read only its own queues and write only where it must.

use super::Topology;
use crate::department::Department;

/// A component that logs in to the broker as its own user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Intake,
    Collector,
    Pool(Department),
}

impl Principal {
    /// Every component, intake and the collector first.
    pub fn all() -> Vec<Principal> {
        let mut all = vec![Principal::Intake, Principal::Collector];
        all.extend(Department::ALL.into_iter().map(Principal::Pool));
        all
    }

    /// The broker user of this component under `prefix`, e.g. `prh-housing`.
    pub fn username(self, prefix: &str) -> String {
        format!("{prefix}-{}", self.name())
    }

    /// `intake`, `collector` or the department, as in `prh worker --department`.
    pub fn name(self) -> &'static str {
        match self {
            Principal::Intake => "intake",
            Principal::Collector => "collector",
            Principal::Pool(d) => d.as_str(),
        }
    }
}

/// RabbitMQ permissions of one user: regular expressions over exchange and queue names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub configure: String,
    pub write: String,
    pub read: String,
}

impl Topology {
    /// What `who` may do. Nobody may configure (the topology is set up once by an
    /// administrator); each reads only its own queue and publishes only where its work
    /// goes, plus the parking exchange.
    pub fn grant(&self, who: Principal) -> Grant {
        let name = |n: String| format!("^{}$", escape(&n));
        let either = |names: Vec<String>| names.into_iter().map(name).collect::<Vec<_>>().join("|");
        let (write, read) = match who {
            Principal::Intake => (
                vec![self.checks_exchange(), self.dead_exchange()],
                vec![self.intake_queue()],
            ),
            Principal::Collector => (
                vec![self.decisions_exchange(), self.dead_exchange()],
                vec![self.collector_queue()],
            ),
            Principal::Pool(d) => {
                let mut read = vec![self.check_queue(d)];
                if d == Department::Housing {
                    read.push(self.housing_decisions_queue());
                }
                (vec![self.findings_exchange(), self.dead_exchange()], read)
            }
        };
        Grant {
            configure: "^$".into(),
            write: either(write),
            read: either(read),
        }
    }
}

/// Escapes the characters RabbitMQ's regular expressions treat specially.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_component_reads_only_its_own_queues() {
        let t = Topology::new("weihai", 10);
        let ps = t.grant(Principal::Pool(Department::PublicSecurity));
        assert_eq!(ps.read, r"^weihai\.checks\.public_security$");
        assert_eq!(ps.write, r"^weihai\.findings$|^weihai\.dead$");
        assert_eq!(ps.configure, "^$");
        let housing = t.grant(Principal::Pool(Department::Housing));
        assert_eq!(housing.read, r"^weihai\.checks\.housing$|^weihai\.housing\.decisions$");
        assert_eq!(t.grant(Principal::Collector).read, r"^weihai\.collector$");
        assert_eq!(t.grant(Principal::Intake).write, r"^weihai\.checks$|^weihai\.dead$");
        assert_eq!(
            Principal::Pool(Department::Housing).username("weihai"),
            "weihai-housing"
        );
        assert_eq!(Principal::all().len(), 8);
    }
}
