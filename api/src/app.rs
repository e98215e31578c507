//! What the API serves: the running switch, its persisted state and the API token. Every
//! change goes through [`App::change`], which applies it, writes the state, and undoes the
//! change if the state cannot be written, or [`App::change_persisted_first`], which writes
//! the state the change leads to before applying it (for changes that cannot be undone
//! exactly): either way an accepted change is a persisted change.

use std::sync::{Mutex, MutexGuard};

use flowtable::RuleId;
use switch::config::{FlowConfig, SwitchConfig};
use switch::Switch;
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
    /// caller gets a 500 naming the state file.
    pub fn change<T>(
        &self,
        apply: impl FnOnce(&Switch) -> Result<(T, Undo), ApiError>,
    ) -> Result<T, ApiError> {
        let ctl = self.lock();
        let (out, undo) = apply(&self.switch)?;
        let Some(store) = &ctl.store else {
            return Ok(out);
        };
        let Err(e) = store.save(&self.snapshot(&ctl)) else {
            return Ok(out);
        };
        error!("persisting state failed, undoing the change: {e}");
        let undone = match undo {
            Undo::Nothing => Ok(()),
            Undo::DelPort(name) => self.switch.del_port(&name),
            Undo::DelFlows(ids) => ids.into_iter().try_for_each(|id| self.switch.del_flow(id)),
            Undo::RestoreFlows(flows) => self.switch.restore_flows(&flows, 0),
        };
        if let Err(u) = undone {
            warn!("undoing the change failed too: {u}");
        }
        Err(ApiError::internal(format!("persisting state: {e}")))
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
            return apply(&self.switch);
        };
        if let Err(e) = store.save(&after) {
            error!("persisting state failed, the change was not applied: {e}");
            return Err(ApiError::internal(format!("persisting state: {e}")));
        }
        let applied = apply(&self.switch);
        if applied.is_err() {
            if let Err(e) = store.save(&self.snapshot(&ctl)) {
                warn!("the change failed, and writing back the state failed too: {e}");
            }
        }
        applied
    }
}
