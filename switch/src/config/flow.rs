//! `[[flow]]`: a rule as written (priority, match fields, action strings), and its compilation
//! into a `flowtable` match and actions against a set of port names.

use std::collections::BTreeMap;

use flowtable::action::{parse_actions, Action, ActionError};
use flowtable::matching::{Field, Match};
use flowtable::PortNo;
use serde::{Deserialize, Serialize};

use super::problem::{key, problem, problem_of, PathSeg, Problem, ProblemKind};

/// The priority a flow gets when the config does not say (OpenFlow's default).
pub const DEFAULT_PRIORITY: u32 = 32_768;
/// The highest priority a flow may have.
pub const MAX_PRIORITY: u32 = 65_535;

/// A match value as written: TOML strings and integers are both accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatchValue {
    /// An integer, e.g. `tp_dst = 80`.
    Int(u64),
    /// Text, e.g. `ip_dst = "10.0.0.0/24"`.
    Text(String),
}

impl MatchValue {
    fn text(&self) -> String {
        match self {
            MatchValue::Int(v) => v.to_string(),
            MatchValue::Text(s) => s.clone(),
        }
    }
}

/// `[[flow]]`: one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// Higher wins; 0..=65535, default 32768.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Field name -> value; absent fields are wildcards. `in_port` takes a port name.
    #[serde(rename = "match", default)]
    pub matches: BTreeMap<String, MatchValue>,
    /// Actions in order: `output:PORT`, `normal`, `drop`, `push_vlan:VID`, `pop_vlan`,
    /// `set_tunnel:VNI`.
    pub actions: Vec<String>,
}

fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}

/// A flow compiled against a set of port numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFlow {
    /// Priority.
    pub priority: u32,
    /// The match.
    pub matches: Match,
    /// The actions (empty: drop).
    pub actions: Vec<Action>,
}

impl FlowConfig {
    /// Compiles the text form into a match and actions, resolving port names with `port`.
    /// Errors carry paths relative to the flow (`match.ip_dst`, `actions[1]`).
    pub fn compile(&self, port: &dyn Fn(&str) -> Option<PortNo>) -> Result<CompiledFlow, Problem> {
        if self.priority > MAX_PRIORITY {
            return Err(problem(
                vec![key("priority")],
                format!("{} is out of range 0..={MAX_PRIORITY}", self.priority),
            ));
        }
        let mut m = Match::any();
        for (name, value) in &self.matches {
            let path = vec![key("match"), key(name)];
            let field = Field::from_name(name).ok_or_else(|| {
                problem(
                    path.clone(),
                    flowtable::matching::MatchError::UnknownField(name.clone()).to_string(),
                )
            })?;
            if field == Field::InPort {
                let text = value.text();
                let no = port(&text).ok_or_else(|| {
                    problem_of(
                        ProblemKind::NoSuchPort,
                        path.clone(),
                        format!("no port named {text:?}"),
                    )
                })?;
                m.set_in_port(no);
                continue;
            }
            m.set(field, &value.text())
                .map_err(|e| problem(path.clone(), e.to_string()))?;
        }
        m.check_prerequisites()
            .map_err(|e| problem(vec![key("match")], e.to_string()))?;
        // An `output:` whose port the resolver does not know fails its entry at once: when
        // the parse fails after such a miss, the miss is why.
        let missed = std::cell::Cell::new(false);
        let tracking = |name: &str| {
            let no = port(name);
            missed.set(no.is_none());
            no
        };
        let actions = parse_actions(&self.actions, &tracking).map_err(|e| match e {
            ActionError::Invalid {
                index,
                text,
                reason,
            } => problem_of(
                if missed.get() {
                    ProblemKind::NoSuchPort
                } else {
                    ProblemKind::Invalid
                },
                vec![key("actions"), PathSeg::Index(index)],
                format!("{text:?}: {reason}"),
            ),
            ActionError::Empty => problem(vec![key("actions")], e.to_string()),
        })?;
        Ok(CompiledFlow {
            priority: self.priority,
            matches: m,
            actions,
        })
    }
}
