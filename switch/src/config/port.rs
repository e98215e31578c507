//! `[[port]]`: a port as written (its type and the fields each type takes), and the checks
//! on one port alone: fields that apply to its type, the socket path, the interface name,
//! the underlay fields. Rules between ports are in `cross_port.rs`.

use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::problem::{key, problem, Problem};
use super::vlan::VlanConfig;

/// A port's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortType {
    /// An in-memory test port: frames are injected and collected in-process.
    Memory,
    /// A vhost-user socket a VM or DPDK virtio-user app attaches to.
    VhostUser,
    /// An AF_XDP socket on a kernel interface (the uplink).
    Afxdp,
    /// A kernel tap interface.
    Tap,
    /// A VXLAN tunnel over the uplink.
    Vxlan,
}

impl PortType {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            PortType::Memory => "memory",
            PortType::VhostUser => "vhost-user",
            PortType::Afxdp => "afxdp",
            PortType::Tap => "tap",
            PortType::Vxlan => "vxlan",
        }
    }
}

/// Which side of a vhost-user socket the switch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketMode {
    /// The switch creates the socket and the VM connects.
    Server,
    /// The VM creates the socket; the switch connects and reconnects.
    Client,
}

/// `[[port]]`: one port. Which optional fields apply depends on `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Unique name, used by flows (`in_port`, `output:`) and the API.
    pub name: String,
    /// The port type.
    #[serde(rename = "type")]
    pub kind: PortType,
    /// vhost-user: the socket path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// vhost-user: server (default) or client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SocketMode>,
    /// vhost-user, afxdp: number of queues (pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<u16>,
    /// afxdp, tap: the kernel interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// afxdp, tap, memory: this node's underlay address with prefix length, e.g.
    /// `198.18.0.1/24`. The port with an `ip` is the underlay VXLAN runs over (at most one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The underlay gateway (on the `ip` subnet), for VTEPs off that subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// The underlay MTU (largest outer IPv4 packet), 576..=9216 (`afxdp`: at most 3826).
    /// Default: the interface's own MTU (`afxdp`, `tap`; read when the port opens, clamped
    /// to what the port carries) or 1500 (`memory`). Inner frames too large for it are
    /// dropped and counted, never fragmented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    /// vxlan: the VNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// vxlan: the remote VTEP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<Ipv4Addr>,
    /// vxlan: the local VTEP (default: the uplink's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<Ipv4Addr>,
    /// VLAN mode; absent means the untagged domain only (tagged frames from the port are
    /// dropped, and `normal` sends it no VLAN's frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanConfig>,
}

impl PortConfig {
    /// Checks the fields that apply to this port's type, and that a vhost-user `socket` is
    /// an absolute path inside `socket_dir` (the switch's `switch.socket_dir`). Paths are
    /// relative to the port.
    pub fn validate(&self, socket_dir: &Path) -> Result<(), Problem> {
        validate_name(&self.name).map_err(|m| problem(vec![key("name")], m))?;
        let allowed: &[&str] = match self.kind {
            PortType::Memory => &["ip", "gateway", "mtu"],
            PortType::VhostUser => &["socket", "mode", "queues"],
            PortType::Afxdp => &["interface", "queues", "ip", "gateway", "mtu"],
            PortType::Tap => &["interface", "ip", "gateway", "mtu"],
            PortType::Vxlan => &["vni", "remote_ip", "local_ip"],
        };
        let present = [
            ("socket", self.socket.is_some()),
            ("mode", self.mode.is_some()),
            ("queues", self.queues.is_some()),
            ("interface", self.interface.is_some()),
            ("ip", self.ip.is_some()),
            ("gateway", self.gateway.is_some()),
            ("mtu", self.mtu.is_some()),
            ("vni", self.vni.is_some()),
            ("remote_ip", self.remote_ip.is_some()),
            ("local_ip", self.local_ip.is_some()),
        ];
        for (field, is_set) in present {
            if is_set && !allowed.contains(&field) {
                return Err(problem(
                    vec![key(field)],
                    format!("does not apply to a port of type {:?}", self.kind.as_str()),
                ));
            }
        }
        let required: &[(&str, bool)] = match self.kind {
            PortType::VhostUser => &[("socket", self.socket.is_some())],
            PortType::Afxdp | PortType::Tap => &[("interface", self.interface.is_some())],
            PortType::Vxlan => &[
                ("vni", self.vni.is_some()),
                ("remote_ip", self.remote_ip.is_some()),
            ],
            PortType::Memory => &[],
        };
        for (field, is_set) in required {
            if !is_set {
                return Err(problem(
                    vec![key(field)],
                    format!("is required for a port of type {:?}", self.kind.as_str()),
                ));
            }
        }
        if let Some(sock) = &self.socket {
            validate_socket(sock, socket_dir).map_err(|m| problem(vec![key("socket")], m))?;
        }
        if let Some(q) = self.queues {
            if q == 0 || q > 64 {
                return Err(problem(
                    vec![key("queues")],
                    format!("{q} is out of range 1..=64"),
                ));
            }
        }
        if let Some(vni) = self.vni {
            if flowtable::Vni::new(vni).is_none() {
                return Err(problem(
                    vec![key("vni")],
                    format!("{vni} does not fit in 24 bits"),
                ));
            }
        }
        self.validate_underlay()?;
        for (field, addr) in [("remote_ip", self.remote_ip), ("local_ip", self.local_ip)] {
            if let Some(a) = addr {
                if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
                    return Err(problem(
                        vec![key(field)],
                        format!("{a} is not a unicast address"),
                    ));
                }
            }
        }
        if let Some(ifname) = &self.interface {
            validate_ifname(ifname).map_err(|m| problem(vec![key("interface")], m))?;
        }
        if let Some(v) = &self.vlan {
            v.validate().map_err(|mut p| {
                p.path.insert(0, key("vlan"));
                p
            })?;
        }
        Ok(())
    }
}

impl PortConfig {
    /// `ip`, `gateway`, `mtu`: the underlay fields.
    fn validate_underlay(&self) -> Result<(), Problem> {
        let Some(ip) = &self.ip else {
            if self.gateway.is_some() || self.mtu.is_some() {
                let field = if self.gateway.is_some() {
                    "gateway"
                } else {
                    "mtu"
                };
                return Err(problem(
                    vec![key(field)],
                    "applies only to the underlay port: set `ip` too",
                ));
            }
            return Ok(());
        };
        let (addr, len) = parse_cidr(ip).map_err(|m| problem(vec![key("ip")], m))?;
        if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() || len == 0 {
            return Err(problem(
                vec![key("ip")],
                format!("{ip:?} must be a unicast address with a prefix length of 1..=32"),
            ));
        }
        if let Some(gw) = self.gateway {
            let mask = u32::MAX << (32 - u32::from(len));
            if gw == addr || (u32::from(gw) ^ u32::from(addr)) & mask != 0 {
                return Err(problem(
                    vec![key("gateway")],
                    format!("{gw} is not another address on {ip}'s subnet"),
                ));
            }
        }
        if let Some(mtu) = self.mtu {
            let range = crate::tunnel::MTU_RANGE;
            if !range.contains(&mtu) {
                return Err(problem(
                    vec![key("mtu")],
                    format!("{mtu} is out of range {}..={}", range.start(), range.end()),
                ));
            }
            let cap = ports::afxdp::MAX_MTU;
            if self.kind == PortType::Afxdp && mtu > cap {
                return Err(problem(
                    vec![key("mtu")],
                    format!(
                        "{mtu} is more than an afxdp port carries: its 4 KiB UMEM frames hold \
                         frames of at most {} bytes, so its MTU is at most {cap}",
                        ports::afxdp::MAX_RX_FRAME
                    ),
                ));
            }
        }
        if self.vlan.is_some() {
            return Err(problem(
                vec![key("vlan")],
                "does not apply to the underlay port (the one with `ip`): it is not a bridge port",
            ));
        }
        Ok(())
    }
}

/// A vhost-user socket path: absolute, without `..`, inside `dir` (component-wise, so
/// `/run/vswitchx` is not inside `/run/vswitch`). When both exist, the socket's directory is
/// resolved too, so a symlink inside `dir` pointing out of it does not let a socket escape;
/// a path that does not exist yet is judged on its text (binding it fails anyway).
fn validate_socket(path: &Path, dir: &Path) -> Result<(), String> {
    let outside = || format!("{path:?} is outside switch.socket_dir {dir:?}");
    if !path.is_absolute() {
        return Err(format!(
            "{path:?} must be an absolute path (inside switch.socket_dir {dir:?})"
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{path:?} must not contain `..`"));
    }
    if !path.starts_with(dir) {
        return Err(outside());
    }
    let Some(parent) = path.parent().filter(|_| path != dir) else {
        return Err(format!(
            "{path:?} is switch.socket_dir itself, not a socket inside it"
        ));
    };
    if let (Ok(real_dir), Ok(real_parent)) =
        (std::fs::canonicalize(dir), std::fs::canonicalize(parent))
    {
        if !real_parent.starts_with(&real_dir) {
            return Err(format!(
                "{} (its directory {parent:?} resolves to {real_parent:?})",
                outside()
            ));
        }
    }
    Ok(())
}

/// A Linux interface name: 1 to 15 printable ASCII characters other than space, '/', ':'
/// and '%', not "." or "..". (The kernel takes any bytes but the first three; names beyond
/// printable ASCII trip up the tools that show them, and would make the limit one of bytes,
/// not characters; a '%' makes the name a template such as `tap%d` for the kernel to fill.)
fn validate_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "{name:?} must be 1 to 15 characters (a Linux interface name)"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | ':' | '%') || !c.is_ascii_graphic())
    {
        return Err(format!(
            "{name:?} must not contain {c:?} (printable ASCII other than space, '/', ':' and '%')"
        ));
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("{name:?} must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "{name:?} may contain only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Parses `a.b.c.d/len`.
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let (addr, len) = text.split_once('/').ok_or_else(|| {
        format!("{text:?} must be an IPv4 address with a prefix length, e.g. 198.18.0.1/24")
    })?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{text:?}: {addr:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("{text:?}: prefix length must be 0..=32"))?;
    Ok((addr, len))
}

#[cfg(test)]
mod test {
    #[test]
    fn interface_names() {
        use super::validate_ifname;
        assert!(validate_ifname("eth1").is_ok());
        assert!(validate_ifname("veth-a.10").is_ok());
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("sixteen-chars-xx").is_err());
        assert!(validate_ifname("a/b").unwrap_err().contains("'/'"));
        assert!(validate_ifname("a b").is_err());
        assert!(validate_ifname("eth0:1").is_err());
        assert!(validate_ifname("..").is_err());
        assert!(validate_ifname("eth\u{e9}").is_err());
        assert!(validate_ifname("a\tb").is_err());
        assert!(validate_ifname("a\u{1}").is_err());
        assert!(validate_ifname("tap%d").is_err());
    }
}
