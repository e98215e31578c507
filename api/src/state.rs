//! Persisted state: the switch's ports and flows (with their ids) in `state.json` inside the
//! state directory, in the config file's model. Every accepted change rewrites the file
//! atomically (temporary file, fsync, rename, fsync of the directory), so a crash leaves
//! either the old or the new state, never a torn one.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switch::config::{FlowConfig, MatchValue, PortConfig, SwitchConfig, DEFAULT_PRIORITY};
use switch::Config;

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "state.json";
/// The version this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// The state file's content: the config model plus flow ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version ([`STATE_VERSION`]).
    pub version: u32,
    /// Datapath settings.
    pub switch: SwitchConfig,
    /// Ports in creation order.
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConfig>,
    /// Flows with their ids.
    #[serde(default, rename = "flow")]
    pub flows: Vec<StoredFlow>,
    /// The id the next new flow gets (ids are never reused).
    pub next_flow_id: u64,
}

/// A flow and its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredFlow {
    /// The flow's id.
    pub id: u64,
    /// Priority.
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Match fields.
    #[serde(rename = "match", default)]
    pub matches: BTreeMap<String, MatchValue>,
    /// Actions.
    pub actions: Vec<String>,
}

fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}

impl StoredFlow {
    /// The flow without its id.
    pub fn config(&self) -> FlowConfig {
        FlowConfig {
            priority: self.priority,
            matches: self.matches.clone(),
            actions: self.actions.clone(),
        }
    }

    /// A flow with its id.
    pub fn new(id: u64, f: &FlowConfig) -> StoredFlow {
        StoredFlow {
            id,
            priority: f.priority,
            matches: f.matches.clone(),
            actions: f.actions.clone(),
        }
    }
}

impl State {
    /// The state a config file describes (flow ids from 1 in file order).
    pub fn from_config(cfg: &Config) -> State {
        State {
            version: STATE_VERSION,
            switch: cfg.switch.clone(),
            ports: cfg.ports.clone(),
            flows: cfg
                .flows
                .iter()
                .enumerate()
                .map(|(i, f)| StoredFlow::new(i as u64 + 1, f))
                .collect(),
            next_flow_id: cfg.flows.len() as u64 + 1,
        }
    }

    /// The state as a config (flow ids dropped).
    pub fn to_config(&self) -> Config {
        Config {
            switch: self.switch.clone(),
            ports: self.ports.clone(),
            flows: self.flows.iter().map(StoredFlow::config).collect(),
        }
    }
}

/// Why the state could not be read or written. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid state.
    #[error(
        "{file}: corrupt state file (left in place; fix or move it away to start over): {message}"
    )]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the state directory.
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            file: dir.display().to_string(),
            source,
        })?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Reads and validates the state; `None` when the directory holds none yet.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let path = self.path();
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { file, source }),
        };
        let corrupt = |message: String| StateError::Corrupt {
            file: file.clone(),
            message,
        };
        let de = &mut serde_json::Deserializer::from_str(&text);
        let state: State = serde_path_to_error::deserialize(de)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    inner.to_string()
                } else {
                    format!("{path}: {inner}")
                }
            })
            .map_err(corrupt)?;
        if state.version != STATE_VERSION {
            return Err(corrupt(format!(
                "version {} (this build reads version {STATE_VERSION})",
                state.version
            )));
        }
        // Ports and flows must be valid (vhost-user sockets inside the state's own
        // `socket_dir`); the rest of `[switch]` is checked at start (with --pmd-cores
        // applied), since an offline CPU is not a corrupt file.
        let mut cfg = state.to_config();
        cfg.switch = SwitchConfig {
            socket_dir: state.switch.socket_dir.clone(),
            ..SwitchConfig::default()
        };
        cfg.validate().map_err(|p| corrupt(p.to_string()))?;
        Ok(Some(state))
    }

    /// Writes `state` atomically: a temporary file in the same directory, fsync, rename over
    /// the state file, fsync the directory.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let io = |file: &Path| {
            let file = file.display().to_string();
            move |source| StateError::Io { file, source }
        };
        let mut text = serde_json::to_string_pretty(state).map_err(|e| StateError::Io {
            file: path.display().to_string(),
            source: e.into(),
        })?;
        text.push('\n');
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

/// How `file` (a config file) differs from `state`, one line per difference; empty when they
/// describe the same switch.
pub fn differences(state: &Config, file: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if state.switch != file.switch {
        out.push(format!(
            "[switch] differs: state {:?}, config file {:?}",
            state.switch, file.switch
        ));
    }
    for p in &file.ports {
        match state.ports.iter().find(|s| s.name == p.name) {
            None => out.push(format!("port {:?} is in the config file only", p.name)),
            Some(s) if s != p => out.push(format!("port {:?} differs", p.name)),
            Some(_) => {}
        }
    }
    for s in &state.ports {
        if !file.ports.iter().any(|p| p.name == s.name) {
            out.push(format!("port {:?} is in the state only", s.name));
        }
    }
    let mut only_state: Vec<&FlowConfig> = state.flows.iter().collect();
    let mut only_file = Vec::new();
    for f in &file.flows {
        match only_state.iter().position(|s| *s == f) {
            Some(i) => {
                only_state.remove(i);
            }
            None => only_file.push(f),
        }
    }
    for f in only_file {
        out.push(format!("flow {} is in the config file only", flow_text(f)));
    }
    for f in only_state {
        out.push(format!("flow {} is in the state only", flow_text(f)));
    }
    out
}

fn flow_text(f: &FlowConfig) -> String {
    serde_json::to_string(f).unwrap_or_default()
}
