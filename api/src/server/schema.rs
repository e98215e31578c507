//! OpenAPI schemas of the request bodies that are the config file's model
//! (`switch::config::PortConfig`, `FlowConfig` and their parts). The switch crate knows
//! nothing of OpenAPI, so these are field-for-field mirrors used only for the document; the
//! tests below hold them to the real types: a value with every field set serializes to the
//! same JSON through either, and the mirrors refuse fields the real types do not have. The
//! document serves exact versions of `PortConfig` and `FlowConfig` (one schema per port
//! type, one match shape per protocol, value patterns): see [`super::openapi`], which
//! replaces these under the same names.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A `[[port]]` table of the config file, as JSON. Which optional fields apply depends on
/// `type` (a field that does not apply is refused).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Unique name (letters, digits, `-`, `_`, `.`; 1 to 64), used by flows (`in_port`,
    /// `output:`) and the API.
    #[schema(example = "vm1")]
    pub name: String,
    /// The port type.
    #[serde(rename = "type")]
    pub kind: PortType,
    /// vhost-user: the socket path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "/run/vswitch/vm1.sock")]
    pub socket: Option<PathBuf>,
    /// vhost-user: server (default: the switch creates the socket) or client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SocketMode>,
    /// vhost-user, afxdp: number of queues (pairs), 1..=64, default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 64)]
    pub queues: Option<u16>,
    /// afxdp, tap: the kernel interface (a tap is created if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "eth1")]
    pub interface: Option<String>,
    /// afxdp, tap, memory: this node's underlay address with prefix length; the port with
    /// an `ip` is the underlay VXLAN runs over (at most one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "198.18.0.1/24")]
    pub ip: Option<String>,
    /// The underlay gateway (on the `ip` subnet), for VTEPs off that subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub gateway: Option<Ipv4Addr>,
    /// The underlay MTU, 576..=9216, default 1500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 576, maximum = 9216)]
    pub mtu: Option<u16>,
    /// vxlan: the VNI (24 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 16777215)]
    pub vni: Option<u32>,
    /// vxlan: the remote VTEP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub remote_ip: Option<Ipv4Addr>,
    /// vxlan: the local VTEP (default: the underlay's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Ipv4)]
    pub local_ip: Option<Ipv4Addr>,
    /// VLAN mode; absent: the untagged domain only (tagged frames arriving are dropped,
    /// `normal` sends it no VLAN's frames); `{"mode": "trunk"}` without `allowed` carries
    /// every VLAN. On a vxlan port it maps the VNI to a local VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanConfig>,
}

/// A port's type.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PortType {
    /// An in-memory test port.
    Memory,
    /// A vhost-user socket a VM or DPDK virtio-user attaches to.
    VhostUser,
    /// AF_XDP sockets on a kernel interface.
    Afxdp,
    /// A kernel tap interface.
    Tap,
    /// A VXLAN tunnel over the underlay.
    Vxlan,
}

/// Which side of a vhost-user socket the switch is.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SocketMode {
    /// The switch creates the socket and the VM connects.
    Server,
    /// The VM creates the socket; the switch connects and reconnects.
    Client,
}

/// `vlan = { ... }` on a port.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VlanConfig {
    /// Access or trunk.
    pub mode: VlanMode,
    /// Access: the port's VLAN, 1..=4094.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4094)]
    pub tag: Option<u16>,
    /// Trunk: the VLANs carried tagged (absent: every VLAN, 1..=4094).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<u16>>,
    /// Trunk: the VLAN of untagged frames (carried even if `allowed` does not list it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<u16>,
}

/// A port's VLAN mode.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VlanMode {
    /// Untagged on the wire, in VLAN `tag` inside the switch.
    Access,
    /// Tagged frames of the `allowed` VLANs; untagged frames belong to `native`.
    Trunk,
}

/// A `[[flow]]` table of the config file, as JSON.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowConfig {
    /// 0..=65535, default 32768; the highest matching priority wins.
    #[serde(default = "default_priority")]
    #[schema(default = 32768, maximum = 65535)]
    pub priority: u32,
    /// Match fields by ovs-ofctl name (`in_port`, `eth_src`, `eth_dst`, `eth_type`,
    /// `vlan_vid`, `ip_src`, `ip_dst`, `ip_proto`, `tp_src`, `tp_dst`, `arp_op`, `tun_id`,
    /// ...); absent fields are wildcards; `in_port` names a port. Fields need their
    /// prerequisites (`ip_dst` needs `eth_type = "0x0800"`).
    #[serde(rename = "match", default)]
    #[schema(example = json!({"in_port": "vm1", "eth_type": "0x0800", "ip_dst": "198.18.0.0/24"}))]
    pub matches: BTreeMap<String, MatchValue>,
    /// Actions in order: `output:PORT`, `normal`, `drop` (alone), `push_vlan:VID`,
    /// `pop_vlan`, `set_tunnel:VNI`.
    #[schema(example = json!(["output:vm2"]))]
    pub actions: Vec<String>,
}

fn default_priority() -> u32 {
    switch::config::DEFAULT_PRIORITY
}

/// A match value: a number (`tp_dst: 53`) or text (`ip_dst: "198.18.0.0/24"`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MatchValue {
    /// A number.
    Int(u64),
    /// Text.
    Text(String),
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use switch::config as real;

    /// Through the real type and through the mirror, `v` serializes the same.
    fn same<Real, Mirror>(v: Value)
    where
        Real: serde::de::DeserializeOwned + serde::Serialize,
        Mirror: serde::de::DeserializeOwned + serde::Serialize,
    {
        let real: Real = serde_json::from_value(v.clone()).expect("the real type takes it");
        let real = serde_json::to_value(real).unwrap();
        assert_eq!(real, v, "the test value is not in the real type's form");
        let mirror: Mirror = serde_json::from_value(real.clone())
            .unwrap_or_else(|e| panic!("the mirror refuses {real}: {e}"));
        assert_eq!(serde_json::to_value(mirror).unwrap(), real);
    }

    #[test]
    fn mirrors_match_the_config_model() {
        same::<real::PortConfig, super::PortConfig>(json!({
            "name": "p", "type": "vhost-user", "socket": "/s", "mode": "client", "queues": 2,
            "interface": "eth1", "ip": "198.18.0.1/24", "gateway": "198.18.0.254",
            "mtu": 1500, "vni": 5, "remote_ip": "198.18.0.2", "local_ip": "198.18.0.1",
            "vlan": {"mode": "trunk", "tag": 3, "allowed": [1, 2], "native": 4}
        }));
        for kind in ["memory", "vhost-user", "afxdp", "tap", "vxlan"] {
            same::<real::PortConfig, super::PortConfig>(json!({"name": "p", "type": kind}));
        }
        same::<real::PortConfig, super::PortConfig>(json!({
            "name": "p", "type": "memory", "mode": "server", "vlan": {"mode": "access"}
        }));
        same::<real::FlowConfig, super::FlowConfig>(json!({
            "priority": 7, "match": {"in_port": "a", "tp_dst": 53}, "actions": ["drop"]
        }));
        // Fields the real types do not have are refused by the mirrors too.
        for bad in [
            json!({"name": "p", "type": "memory", "colour": 1}),
            json!({"name": "p", "type": "memory", "vlan": {"mode": "access", "x": 1}}),
        ] {
            assert!(serde_json::from_value::<real::PortConfig>(bad.clone()).is_err());
            assert!(serde_json::from_value::<super::PortConfig>(bad).is_err());
        }
        let bad = json!({"actions": ["drop"], "prio": 1});
        assert!(serde_json::from_value::<real::FlowConfig>(bad.clone()).is_err());
        assert!(serde_json::from_value::<super::FlowConfig>(bad).is_err());
    }
}
