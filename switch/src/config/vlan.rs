//! `vlan = { ... }` on a port: access or trunk, and the checks on its VLAN ids.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::problem::{key, problem, Problem};

/// A port's VLAN mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VlanMode {
    /// Untagged on the wire, in VLAN `tag` inside the switch.
    Access,
    /// Tagged frames of the `allowed` VLANs; untagged frames belong to `native`.
    Trunk,
}

/// `vlan = { ... }` on a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanConfig {
    /// Access or trunk.
    pub mode: VlanMode,
    /// Access VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u16>,
    /// Trunk: VLANs carried; omitted, every VLAN 1..=4094 (OVS's default for a port
    /// without a VLAN setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<u16>>,
    /// Trunk: the VLAN of untagged frames (carried even if `allowed` does not list it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<u16>,
}

impl VlanConfig {
    pub(super) fn validate(&self) -> Result<(), Problem> {
        let vid = |field: &str, v: u16| {
            if (1..=4094).contains(&v) {
                Ok(())
            } else {
                Err(problem(
                    vec![key(field)],
                    format!("VLAN {v} is out of range 1..=4094"),
                ))
            }
        };
        match self.mode {
            VlanMode::Access => {
                let tag = self
                    .tag
                    .ok_or_else(|| problem(vec![key("tag")], "is required in access mode"))?;
                vid("tag", tag)?;
                if self.allowed.is_some() || self.native.is_some() {
                    return Err(problem(
                        vec![key("mode")],
                        "access mode takes only `tag` (`allowed` and `native` are for trunks)",
                    ));
                }
            }
            VlanMode::Trunk => {
                if self.tag.is_some() {
                    return Err(problem(
                        vec![key("tag")],
                        "is for access mode; trunks use `allowed` and `native`",
                    ));
                }
                // `allowed` omitted: every VLAN 1..=4094. An empty list is a mistake.
                let allowed = self.allowed.as_deref().unwrap_or_default();
                if self.allowed.as_ref().is_some_and(Vec::is_empty) {
                    return Err(problem(
                        vec![key("allowed")],
                        "lists no VLAN (omit `allowed` for every VLAN)",
                    ));
                }
                let mut seen = HashSet::new();
                for &v in allowed {
                    vid("allowed", v)?;
                    if !seen.insert(v) {
                        return Err(problem(
                            vec![key("allowed")],
                            format!("VLAN {v} is listed twice"),
                        ));
                    }
                }
                // The native VLAN is carried whether or not `allowed` lists it (the issue's
                // own example has `allowed = [10, 20], native = 1`).
                if let Some(n) = self.native {
                    vid("native", n)?;
                }
            }
        }
        Ok(())
    }
}
