//! The configuration model: one serde shape for the config file, the REST API and the state
//! directory. [`Config::from_toml`] parses and validates a whole file and reports the first
//! problem with its line, column and field path; nothing is applied until all of it is valid.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};

use flowtable::action::{parse_actions, Action, ActionError};
use flowtable::matching::{Field, Match};
use flowtable::PortNo;
use serde::{Deserialize, Serialize};

/// The priority a flow gets when the config does not say (OpenFlow's default).
pub const DEFAULT_PRIORITY: u32 = 32_768;
/// The highest priority a flow may have.
pub const MAX_PRIORITY: u32 = 65_535;
/// Where vhost-user sockets go unless `switch.socket_dir` says otherwise.
pub const DEFAULT_SOCKET_DIR: &str = "/run/vswitch";

/// A whole switch configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Datapath settings.
    #[serde(default)]
    pub switch: SwitchConfig,
    /// Ports, in the order they are created (and numbered, from 1).
    #[serde(default, rename = "port", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
    /// Flow rules.
    #[serde(default, rename = "flow", skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<FlowConfig>,
}

/// `[switch]`: datapath settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    /// CPUs that run PMD threads, one thread each (default: the last CPU).
    #[serde(default = "default_pmd_cores")]
    pub pmd_cores: Vec<usize>,
    /// Exact-match cache entries per PMD (a power of two).
    #[serde(default = "default_emc_entries")]
    pub emc_entries: usize,
    /// MAC learning table size per PMD.
    #[serde(default = "default_mac_table_size")]
    pub mac_table_size: usize,
    /// Seconds a learned MAC lives without traffic.
    #[serde(default = "default_mac_aging_secs")]
    pub mac_aging_secs: u64,
    /// Microseconds without traffic after which a PMD sleeps until a port signals traffic
    /// (0: never sleep, busy-poll like OVS-DPDK).
    #[serde(default = "default_pmd_sleep_after_us")]
    pub pmd_sleep_after_us: u64,
    /// The directory vhost-user sockets live in: a port's `socket`, server or client mode,
    /// must be an absolute path inside it (no `..`; a subdirectory that is a symlink out
    /// of it is refused too). `"/"` allows any absolute path. Default `/run/vswitch`.
    #[serde(default = "default_socket_dir")]
    pub socket_dir: PathBuf,
    /// The most guest memory (bytes, all regions together) one vhost-user frontend may
    /// share with a port; a larger memory table is refused. Default 4 TiB (4398046511104),
    /// more than any VM a compute node runs; 1 MiB at least.
    #[serde(default = "default_max_guest_memory")]
    pub max_guest_memory: u64,
}

fn default_pmd_cores() -> Vec<usize> {
    vec![online_cpus().last().copied().unwrap_or(0)]
}

/// The machine's online CPUs (from `/sys/devices/system/cpu/online`, e.g. `0-3,6`), whatever
/// this process's own affinity mask is; falls back to `0..available_parallelism`.
pub fn online_cpus() -> Vec<usize> {
    let parsed = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| parse_cpu_list(text.trim()));
    parsed.unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n).collect()
    })
}

/// Parses a kernel CPU list such as `0-3,6`.
fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}
fn default_emc_entries() -> usize {
    8192
}
fn default_mac_table_size() -> usize {
    65_536
}
fn default_mac_aging_secs() -> u64 {
    300
}
fn default_pmd_sleep_after_us() -> u64 {
    200
}
fn default_max_guest_memory() -> u64 {
    ports::vhost::memory::DEFAULT_MAX_GUEST_MEMORY
}
fn default_socket_dir() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET_DIR)
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            pmd_cores: default_pmd_cores(),
            emc_entries: default_emc_entries(),
            mac_table_size: default_mac_table_size(),
            mac_aging_secs: default_mac_aging_secs(),
            pmd_sleep_after_us: default_pmd_sleep_after_us(),
            socket_dir: default_socket_dir(),
            max_guest_memory: default_max_guest_memory(),
        }
    }
}

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

/// One step of a path into the config (`flow[2].match.ip_dst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A validation problem: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", render_path(path))]
pub struct Problem {
    /// Where in the config.
    pub path: Vec<PathSeg>,
    /// What is wrong.
    pub message: String,
    /// Whether the value is malformed, or well-formed but at odds with what exists.
    pub kind: ProblemKind,
}

/// What kind of problem a [`Problem`] is (the REST API answers 400, 404 and 409 for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProblemKind {
    /// The value is wrong whatever else exists.
    #[default]
    Invalid,
    /// The value names a port that does not exist (a flow's `in_port` or `output:`).
    NoSuchPort,
    /// The value clashes with another port (a second underlay, a VNI already carried to
    /// that remote).
    Conflict,
}

fn render_path(path: &[PathSeg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSeg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn problem(path: Vec<PathSeg>, message: impl Into<String>) -> Problem {
    Problem {
        path,
        message: message.into(),
        kind: ProblemKind::Invalid,
    }
}

/// A problem of kind `kind`.
fn problem_of(kind: ProblemKind, path: Vec<PathSeg>, message: impl Into<String>) -> Problem {
    Problem {
        kind,
        ..problem(path, message)
    }
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the model.
    #[error("{file}:{line}:{col}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What the parser said.
        message: String,
    },
    /// The file parsed but a value is wrong.
    #[error("{file}:{line}:{col}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line of the offending value (or its table).
        line: usize,
        /// 1-based column.
        col: usize,
        /// Field path and reason.
        problem: Problem,
    },
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

impl VlanConfig {
    fn validate(&self) -> Result<(), Problem> {
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

impl SwitchConfig {
    fn validate(&self) -> Result<(), Problem> {
        let cores = vec![key("pmd_cores")];
        if self.pmd_cores.is_empty() {
            return Err(problem(cores, "at least one PMD core is needed"));
        }
        let online = online_cpus();
        let mut seen = HashSet::new();
        for &c in &self.pmd_cores {
            if !online.contains(&c) {
                let list: Vec<String> = online.iter().map(|c| c.to_string()).collect();
                return Err(problem(
                    cores,
                    format!(
                        "CPU {c} does not exist or is offline (online: {})",
                        list.join(",")
                    ),
                ));
            }
            if !seen.insert(c) {
                return Err(problem(cores, format!("CPU {c} is listed twice")));
            }
        }
        if !self.emc_entries.is_power_of_two() || !(256..=1 << 20).contains(&self.emc_entries) {
            return Err(problem(
                vec![key("emc_entries")],
                format!(
                    "{} must be a power of two in 256..=1048576",
                    self.emc_entries
                ),
            ));
        }
        if !(1..=1 << 24).contains(&self.mac_table_size) {
            return Err(problem(
                vec![key("mac_table_size")],
                format!("{} is out of range 1..=16777216", self.mac_table_size),
            ));
        }
        if self.max_guest_memory < 1 << 20 {
            return Err(problem(
                vec![key("max_guest_memory")],
                format!("{} bytes is less than 1 MiB", self.max_guest_memory),
            ));
        }
        if self.mac_aging_secs == 0 {
            return Err(problem(vec![key("mac_aging_secs")], "must be at least 1"));
        }
        let dir = &self.socket_dir;
        if !dir.is_absolute() || dir.components().any(|c| c == Component::ParentDir) {
            return Err(problem(
                vec![key("socket_dir")],
                format!(
                    "{dir:?} must be an absolute path without `..` (\"/\" allows any socket path)"
                ),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Checks everything: switch settings, each port, unique port names, and that every flow
    /// compiles against the configured ports. The first problem wins.
    pub fn validate(&self) -> Result<(), Problem> {
        self.switch.validate().map_err(|mut p| {
            p.path.insert(0, key("switch"));
            p
        })?;
        let mut names = HashSet::new();
        for (i, port) in self.ports.iter().enumerate() {
            let at = |mut p: Problem| {
                p.path.splice(0..0, [key("port"), PathSeg::Index(i)]);
                p
            };
            port.validate(&self.switch.socket_dir).map_err(at)?;
            if !names.insert(port.name.as_str()) {
                return Err(at(problem(
                    vec![key("name")],
                    format!("{:?} is already the name of another port", port.name),
                )));
            }
            let earlier = &self.ports[..i];
            if port.ip.is_some() {
                if let Some(u) = earlier.iter().find(|p| p.ip.is_some()) {
                    return Err(at(problem_of(
                        ProblemKind::Conflict,
                        vec![key("ip")],
                        format!(
                            "port {:?} is already the underlay (only one port may have an ip)",
                            u.name
                        ),
                    )));
                }
            }
            if port.kind == PortType::Vxlan {
                if let Some(o) = earlier.iter().find(|p| {
                    p.kind == PortType::Vxlan && p.vni == port.vni && p.remote_ip == port.remote_ip
                }) {
                    return Err(at(problem_of(
                        ProblemKind::Conflict,
                        vec![key("vni")],
                        format!(
                            "port {:?} already carries this VNI to this remote_ip",
                            o.name
                        ),
                    )));
                }
            }
        }
        let resolve = |name: &str| {
            self.ports
                .iter()
                .position(|p| p.name == name)
                .map(|i| PortNo(i as u32 + 1))
        };
        for (i, flow) in self.flows.iter().enumerate() {
            flow.compile(&resolve).map_err(|mut p| {
                p.path.splice(0..0, [key("flow"), PathSeg::Index(i)]);
                p
            })?;
        }
        Ok(())
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ConfigError::Syntax {
                file: file.to_string(),
                line,
                col,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate().map_err(|problem| {
            let offset = span_of(text, &problem.path).unwrap_or(0);
            let (line, col) = line_col(text, offset);
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                col,
                problem,
            }
        })?;
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::from_toml(&text, &file)
    }
}

/// The byte offset of the deepest element of `path` present in the document.
fn span_of(text: &str, path: &[PathSeg]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best = doc.span().start;
    let mut cur: Option<&toml::de::DeValue<'_>> = None;
    let mut table = Some(doc.get_ref());
    for seg in path {
        let next = match (seg, cur, table) {
            (PathSeg::Key(k), None, Some(t)) => t.get(k.as_str()),
            (PathSeg::Key(k), Some(v), _) => v.get(k.as_str()),
            (PathSeg::Index(i), Some(v), _) => v.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        best = next.span().start;
        cur = Some(next.get_ref());
        table = None;
    }
    Some(best)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod test {
    use super::parse_cpu_list;

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

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-2,5,7-8"), Some(vec![0, 1, 2, 5, 7, 8]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }
}
