//! What the API serves: the running switch, its persisted state and the API token. Every
//! change goes through [`App::change`], which applies it, writes the state, and undoes the
//! change if the state cannot be written, or [`App::change_persisted_first`], which writes
//! the state the change leads to before applying it (for changes that cannot be undone
//! exactly): either way an accepted change is a persisted change.
//!
//! # A PMD that does not confirm a change
//!
//! A switch call changes the control plane's tables, queues the change to every PMD, and
//! then waits (up to a timeout) for each PMD to confirm it has applied everything queued.
//! If a PMD does not answer in time ([`switch::SwitchError::PmdTimeout`]), the change is
//! not half made: the control plane holds it whole, and each PMD's queue holds it in order,
//! so a PMD applies it when it works through its queue (a PMD that never does again is
//! stuck for every later change too). Undoing it would not help: the undo would be one more
//! queued, unconfirmed change behind it. So such a change counts as *accepted*: it is
//! persisted like any other (the state file describes what the switch will do, and a
//! restart restores it), and the answer is a 503 whose message says it was accepted and
//! saved but not yet confirmed, so a client does not retry it blindly (a GET shows it). If
//! the state cannot be written either, the change is undone (queued behind it, so the PMD
//! ends up where the file says) and the answer is a 500 naming the state file.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use flowtable::RuleId;
use switch::config::{FlowConfig, SwitchConfig};
use switch::{Switch, SwitchError};
use tracing::{error, warn};

use crate::error::ApiError;
use crate::state::{State, Store, StoredFlow, STATE_VERSION};

/// How to take a change back when its state cannot be written.
pub enum Undo {
    /// Nothing to undo.
    Nothing,
    /// Delete the port that was added.
    DelPort(String),
    /// Delete the flows that were added.
    DelFlows(Vec<RuleId>),
    /// Re-install the flows that were deleted, with their ids.
    RestoreFlows(Vec<(RuleId, FlowConfig)>),
    /// Go back to these ports and flows (a change that failed part way, e.g. unconfirmed,
    /// whose exact undo is unknown): added flows and ports go, deleted flows come back.
    Back(State),
}

struct Ctl {
    store: Option<Store>,
    /// The `[switch]` settings as persisted (before `--pmd-cores`).
    switch_cfg: SwitchConfig,
}

/// The switch and its control-plane companions, shared by every request.
pub struct App {
    /// The running switch.
    pub switch: Switch,
    ctl: Mutex<Ctl>,
    token: Option<String>,
}

impl App {
    /// Wraps a started switch. `store` persists changes (none: changes live in memory only);
    /// `token` is the bearer token mutating calls need (none: no auth).
    pub fn new(
        switch: Switch,
        store: Option<Store>,
        switch_cfg: SwitchConfig,
        token: Option<String>,
    ) -> App {
        App {
            switch,
            ctl: Mutex::new(Ctl { store, switch_cfg }),
            token,
        }
    }

    /// `switch.socket_dir`: where vhost-user sockets may be.
    pub fn socket_dir(&self) -> std::path::PathBuf {
        self.lock().switch_cfg.socket_dir.clone()
    }

    /// The bearer token, when auth is on.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state as it would be persisted now.
    pub fn state(&self) -> State {
        let ctl = self.lock();
        self.snapshot(&ctl)
    }

    fn snapshot(&self, ctl: &Ctl) -> State {
        State {
            version: STATE_VERSION,
            switch: ctl.switch_cfg.clone(),
            ports: self.switch.ports().into_iter().map(|p| p.config).collect(),
            flows: self
                .switch
                .flow_configs()
                .iter()
                .map(|(id, f)| StoredFlow::new(id.0, f))
                .collect(),
            next_flow_id: self.switch.next_flow_id(),
        }
    }

    /// Writes the current state (at startup, to seed an empty state dir).
    pub fn persist(&self) -> Result<(), crate::state::StateError> {
        let ctl = self.lock();
        match &ctl.store {
            Some(store) => store.save(&self.snapshot(&ctl)),
            None => Ok(()),
        }
    }

    /// Runs one change: `apply` changes the switch and says how to undo it; then the state
    /// is written. Changes are serialized. If writing fails the change is undone and the
    /// caller gets a 500 naming the state file. A change no PMD confirmed in time is
    /// persisted and answered 503 "accepted, not yet confirmed" (see the module doc).
    pub fn change<T>(
        &self,
        apply: impl FnOnce(&Switch) -> Result<(T, Undo), ApiError>,
    ) -> Result<T, ApiError> {
        let ctl = self.lock();
        let Some(store) = &ctl.store else {
            return apply(&self.switch)
                .map(|(out, _)| out)
                .map_err(|e| accepted(e, false));
        };
        let before = self.snapshot(&ctl);
        let (result, undo) = match apply(&self.switch) {
            Ok((out, undo)) => (Ok(out), undo),
            Err(e) if e.unconfirmed => (Err(e), Undo::Back(before)),
            Err(e) => return Err(e),
        };
        let Err(e) = store.save(&self.snapshot(&ctl)) else {
            return result.map_err(|e| accepted(e, true));
        };
        error!("persisting state failed, undoing the change: {e}");
        if let Err(u) = self.undo(undo) {
            warn!("undoing the change failed too: {u}");
        }
        Err(ApiError::internal(format!("persisting state: {e}")))
    }

    fn undo(&self, undo: Undo) -> Result<(), SwitchError> {
        let sw = &self.switch;
        match undo {
            Undo::Nothing => Ok(()),
            Undo::DelPort(name) => sw.del_port(&name),
            Undo::DelFlows(ids) => ids.into_iter().try_for_each(|id| sw.del_flow(id)),
            Undo::RestoreFlows(flows) => sw.restore_flows(&flows, 0),
            Undo::Back(before) => {
                // Every step is tried even if one is not confirmed: each is queued in order.
                let mut first: Option<SwitchError> = None;
                let mut note = |r: Result<(), SwitchError>| {
                    if let Err(e) = r {
                        first.get_or_insert(e);
                    }
                };
                let had: BTreeSet<u64> = before.flows.iter().map(|f| f.id).collect();
                let now = sw.flow_configs();
                for (id, _) in &now {
                    if !had.contains(&id.0) {
                        note(sw.del_flow(*id));
                    }
                }
                let ports: BTreeSet<&str> = before.ports.iter().map(|p| p.name.as_str()).collect();
                for p in sw.ports() {
                    if !ports.contains(p.config.name.as_str()) {
                        note(sw.del_port(&p.config.name));
                    }
                }
                let have: BTreeSet<u64> = now.iter().map(|(id, _)| id.0).collect();
                let gone: Vec<(RuleId, FlowConfig)> = before
                    .flows
                    .iter()
                    .filter(|f| !have.contains(&f.id))
                    .map(|f| (RuleId(f.id), f.config()))
                    .collect();
                if !gone.is_empty() {
                    note(sw.restore_flows(&gone, 0));
                }
                first.map_or(Ok(()), Err)
            }
        }
    }

    /// Runs one change that cannot be undone exactly (deleting a port: re-creating it would
    /// give it a new number and move it to the end of the port order). `check` refuses the
    /// change or returns the state as it will be after it, given the state now; that state
    /// is written first, and only then does `apply` run. If writing fails nothing changed
    /// (500 naming the state file); if `apply` fails, the state the switch is then in is
    /// written back.
    pub fn change_persisted_first(
        &self,
        check: impl FnOnce(&Switch, State) -> Result<State, ApiError>,
        apply: impl FnOnce(&Switch) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let ctl = self.lock();
        let after = check(&self.switch, self.snapshot(&ctl))?;
        let Some(store) = &ctl.store else {
            return apply(&self.switch).map_err(|e| accepted(e, false));
        };
        if let Err(e) = store.save(&after) {
            error!("persisting state failed, the change was not applied: {e}");
            return Err(ApiError::internal(format!("persisting state: {e}")));
        }
        let applied = apply(&self.switch);
        if applied.is_err() {
            // The state the switch is in now: before the change if it failed, after it if it
            // was made but not confirmed.
            if let Err(e) = store.save(&self.snapshot(&ctl)) {
                warn!("the change failed, and writing back the state failed too: {e}");
            }
        }
        applied.map_err(|e| accepted(e, true))
    }
}

/// An unconfirmed change's error says it was accepted (and saved, if `saved`); other errors
/// pass as they are.
fn accepted(e: ApiError, saved: bool) -> ApiError {
    if !e.unconfirmed {
        return e;
    }
    let saved = if saved { " and saved" } else { "" };
    ApiError {
        unconfirmed: true,
        ..ApiError::new(
            e.status,
            format!(
                "the change was accepted{saved} but is not confirmed yet: {}; it takes effect \
                 when that PMD works through its queue (do not retry it: GET shows it)",
                e.body.error
            ),
            e.body.field.as_deref(),
        )
    }
}
