//! Matches: values + masks over a [`FlowKey`]. (Stub: the match helper fills this in.)

use crate::key::FlowKey;
use crate::types::PortNo;

/// A field a rule can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `in_port`
    InPort,
}

impl Field {
    /// Looks a field up by name (stub).
    pub fn from_name(name: &str) -> Option<Field> {
        (name == "in_port").then_some(Field::InPort)
    }
}

/// Why a match was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// `unknown field {0:?}`
    #[error("unknown match field {0:?}")]
    UnknownField(String),
}

/// What a rule matches: `key & mask == value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Match {
    value: FlowKey,
    mask: FlowKey,
}

impl Match {
    /// The match that matches everything.
    pub fn any() -> Match {
        Match::default()
    }
    /// The (already masked) values.
    pub fn value(&self) -> &FlowKey {
        &self.value
    }
    /// The mask.
    pub fn mask(&self) -> &FlowKey {
        &self.mask
    }
    /// A match from values and a mask.
    pub fn from_parts(value: FlowKey, mask: FlowKey) -> Match {
        Match { value: value.masked(&mask), mask }
    }
    /// Matches frames that arrived on `port`.
    pub fn set_in_port(&mut self, port: PortNo) {
        self.value.set_in_port(port);
        self.mask.set_in_port_raw(u32::MAX);
    }
    /// Sets `field` from its text form (e.g. `"10.0.0.0/24"`, `"0x0800"`).
    pub fn set(&mut self, field: Field, text: &str) -> Result<(), MatchError> {
        let _ = (field, text);
        Ok(())
    }
    /// Checks OpenFlow-style prerequisites (IP fields need `eth_type`, ports need `ip_proto`).
    pub fn check_prerequisites(&self) -> Result<(), MatchError> {
        Ok(())
    }
    /// True when `key` matches.
    pub fn matches(&self, key: &FlowKey) -> bool {
        key.matches(&self.value, &self.mask)
    }
}
