//! Flows: installing rules (new ones, or saved ones under their ids), removing them by id,
//! all at once or by match, and reading them with their hit counts summed over PMDs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use flowtable::{Classifier, FlowKey, Rule, RuleId};

use super::{FlowEntry, State, Switch, SwitchError};
use crate::config::{
    CompiledFlow, FlowConfig, MatchValue, PathSeg, Problem, ProblemKind, DEFAULT_PRIORITY,
};
use crate::pmd::{PmdCmd, RuleOp, RULE_OPS_PER_ITERATION};

/// A flow as the control plane knows it.
#[derive(Debug, Clone)]
pub struct FlowInfo {
    /// Its id.
    pub id: RuleId,
    /// As configured.
    pub config: FlowConfig,
    /// Frames that matched it, summed over PMDs.
    pub hits: u64,
}

/// The path of flow `i` of a request: its problems are reported under `flow[i]`.
fn flow_at(i: usize) -> [PathSeg; 2] {
    [PathSeg::Key("flow".into()), PathSeg::Index(i)]
}

/// The rule flow `id` compiles to.
fn rule(id: RuleId, c: CompiledFlow) -> Rule {
    Rule {
        id,
        priority: c.priority,
        matches: c.matches,
        actions: c.actions.into(),
    }
}

impl State {
    /// Compiles `f`, flow `i` of a request, against the ports there.
    fn compile(&self, i: usize, f: &FlowConfig) -> Result<CompiledFlow, Problem> {
        f.compile(&|name| self.port_no(name))
            .map_err(|p| p.within(flow_at(i)))
    }
}

impl Switch {
    /// Installs `flows`, all or nothing: if any is invalid, none is installed and the error
    /// names it (`flow[i]....`). Returns the new ids in order.
    pub fn add_flows(&self, flows: &[FlowConfig]) -> Result<Vec<RuleId>, SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let compiled = (flows.iter().enumerate())
            .map(|(i, f)| st.compile(i, f))
            .collect::<Result<Vec<_>, _>>()?;
        if flows.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(flows.len());
        let mut rules = Vec::with_capacity(flows.len());
        for (f, c) in flows.iter().zip(compiled) {
            let id = RuleId(st.next_rule);
            st.next_rule += 1;
            ids.push(id);
            rules.push(rule(id, c));
            st.flows.insert(id, FlowEntry { config: f.clone() });
        }
        self.insert_rules(&rules);
        self.confirm(st)?;
        Ok(ids)
    }

    /// Installs flows with given ids (restoring saved state), all or nothing, and makes the
    /// next new id at least `next_id` (and above every given id). An id in use is refused.
    pub fn restore_flows(
        &self,
        flows: &[(RuleId, FlowConfig)],
        next_id: u64,
    ) -> Result<(), SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let mut rules = Vec::with_capacity(flows.len());
        let mut seen = BTreeSet::new();
        for (i, (id, f)) in flows.iter().enumerate() {
            if id.0 == 0 || st.flows.contains_key(id) || !seen.insert(*id) {
                return Err(Problem {
                    path: vec![PathSeg::Key("id".into())],
                    message: format!("flow id {} is zero or already in use", id.0),
                    kind: ProblemKind::Conflict,
                }
                .within(flow_at(i))
                .into());
            }
            rules.push(rule(*id, st.compile(i, f)?));
        }
        let max = flows.iter().map(|(id, _)| id.0 + 1).max().unwrap_or(0);
        st.next_rule = st.next_rule.max(next_id).max(max);
        if flows.is_empty() {
            return Ok(());
        }
        for (id, f) in flows {
            st.flows.insert(*id, FlowEntry { config: f.clone() });
        }
        self.insert_rules(&rules);
        self.confirm(st)
    }

    /// Sends every PMD `rules` to insert; a change larger than a PMD applies at once is
    /// preceded by the room it needs, so that no table grows step by step under traffic.
    fn insert_rules(&self, rules: &[Rule]) {
        if rules.len() > RULE_OPS_PER_ITERATION {
            let per_mask: Arc<[(FlowKey, usize)]> = Classifier::masks_of(rules).into();
            self.broadcast(|| PmdCmd::Reserve(per_mask.clone()));
        }
        self.broadcast(|| {
            PmdCmd::Rules(
                rules
                    .iter()
                    .map(|r| RuleOp::Insert(Box::new(r.clone())))
                    .collect(),
            )
        });
    }

    /// Sends every PMD the removal of `ids`.
    fn remove_rules(&self, ids: &[RuleId]) {
        self.broadcast(|| PmdCmd::Rules(ids.iter().map(|&id| RuleOp::Remove(id)).collect()));
    }

    /// Removes one flow.
    pub fn del_flow(&self, id: RuleId) -> Result<(), SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        if st.flows.remove(&id).is_none() {
            return Err(SwitchError::NoSuchFlow(id.0));
        }
        self.remove_rules(&[id]);
        self.confirm(st)
    }

    /// Removes every flow.
    pub fn del_all_flows(&self) -> Result<(), SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let ids: Vec<RuleId> = st.flows.keys().copied().collect();
        st.flows.clear();
        self.remove_rules(&ids);
        self.confirm(st)
    }

    /// Removes every flow whose match equals `matches` (compared compiled, so
    /// `198.18.0.0/24` equals `198.18.0.0/255.255.255.0`) and, when given, whose priority is
    /// `priority`. Returns the removed ids (possibly none). An invalid match is an error
    /// whose path starts at `match`.
    pub fn del_flows_matching(
        &self,
        matches: &BTreeMap<String, MatchValue>,
        priority: Option<u32>,
    ) -> Result<Vec<RuleId>, SwitchError> {
        let _change = self.changing();
        let mut st = self.lock();
        let wanted = {
            let resolve = |name: &str| st.port_no(name);
            let probe = FlowConfig {
                priority: priority.unwrap_or(DEFAULT_PRIORITY),
                matches: matches.clone(),
                actions: vec!["drop".into()],
            };
            let c = probe.compile(&resolve)?;
            let ids: Vec<RuleId> = st
                .flows
                .iter()
                .filter(|(_, f)| priority.is_none_or(|p| p == f.config.priority))
                .filter(|(_, f)| {
                    // A flow naming a deleted port no longer compiles: it is not this match.
                    f.config
                        .compile(&resolve)
                        .is_ok_and(|fc| fc.matches == c.matches)
                })
                .map(|(&id, _)| id)
                .collect();
            ids
        };
        if wanted.is_empty() {
            return Ok(wanted);
        }
        for id in &wanted {
            st.flows.remove(id);
        }
        self.remove_rules(&wanted);
        self.confirm(st)?;
        Ok(wanted)
    }

    /// The number of installed flows (no PMD is asked).
    pub fn flow_count(&self) -> usize {
        self.lock().flows.len()
    }

    /// Every flow's id and config, in id order, without asking the PMDs.
    pub fn flow_configs(&self) -> Vec<(RuleId, FlowConfig)> {
        self.lock()
            .flows
            .iter()
            .map(|(&id, f)| (id, f.config.clone()))
            .collect()
    }

    /// The id the next added flow gets.
    pub fn next_flow_id(&self) -> u64 {
        self.lock().next_rule
    }

    /// All flows with their hit counts.
    pub fn flows(&self) -> Result<Vec<FlowInfo>, SwitchError> {
        let reports = self.ask(PmdCmd::Report)?;
        let mut hits: BTreeMap<RuleId, u64> = BTreeMap::new();
        for r in &reports {
            for &(id, h) in &r.rule_hits {
                *hits.entry(id).or_default() += h;
            }
        }
        let st = self.lock();
        Ok(st
            .flows
            .iter()
            .map(|(&id, f)| FlowInfo {
                id,
                config: f.config.clone(),
                hits: hits.get(&id).copied().unwrap_or(0),
            })
            .collect())
    }
}
