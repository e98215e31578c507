//! What the PMDs need to know of the underlay port (the one with an `ip`): its address,
//! subnet, gateway, MTU, and the MAC the switch uses on it.

use flowtable::{MacAddr, PortNo};
use tracing::debug;

use crate::config::{parse_cidr, PortConfig, PortType};
use crate::tunnel::{self, Underlay};

/// The underlay port `cfg`, numbered `no`, provides; `None` when it has no `ip`. The MAC is
/// the interface's own for AF_XDP, where the switch is the interface (read from sysfs with
/// [`ports::link`]); otherwise, or if it cannot be read, one derived from the address, since
/// the kernel side of a tap or the test side of a memory port has its own.
pub(super) fn underlay_of(cfg: &PortConfig, no: PortNo) -> Option<Underlay> {
    let (ip, prefix_len) = parse_cidr(cfg.ip.as_deref()?).ok()?;
    let interface_mac = match (cfg.kind, cfg.interface.as_deref()) {
        (PortType::Afxdp, Some(ifname)) => ports::link::mac(ifname)
            .inspect_err(|error| debug!(port = %cfg.name, %error, "using a derived MAC"))
            .ok(),
        _ => None,
    };
    let o = ip.octets();
    Some(Underlay {
        port: no,
        ip,
        prefix_len,
        gateway: cfg.gateway,
        mac: interface_mac.unwrap_or(MacAddr([0x02, 0x76, o[0], o[1], o[2], o[3]])),
        mtu: tunnel::underlay_mtu(cfg),
    })
}
