//! Opening a port from its config: the one place that turns a `[[port]]` into an open
//! `ports` port (a memory pair, a vhost-user socket, an AF_XDP or tap uplink), or says that
//! there is nothing to open (a vxlan port has no queues).

use std::path::Path;

use ports::afxdp::AfXdpPort;
use ports::mem::{self, MemPeer};
use ports::tap::TapPort;
use ports::vhost::{VhostOptions, VhostUserPort};
use ports::{Port, PortError};

use crate::config::{PortConfig, PortType, SocketMode};

/// What opening a port's config gives.
pub(super) enum Opened {
    /// A port with queues to attach; for a memory port, with its test side.
    Port(Box<dyn Port>, Option<MemPeer>),
    /// A virtual port (vxlan): no queues, nothing opened.
    Virtual,
}

/// Opens the port `cfg` describes (validated: the fields its type needs are set). A
/// vhost-user port gets the limits in `vhost`.
pub(super) fn open(cfg: &PortConfig, vhost: VhostOptions) -> Result<Opened, PortError> {
    // `validate` guarantees the interface is set for the types that use it.
    let interface = || cfg.interface.as_deref().unwrap_or("");
    Ok(match cfg.kind {
        PortType::Memory => {
            let (port, peer) = mem::pair(mem::DEFAULT_QUEUE_LEN)?;
            Opened::Port(Box::new(port), Some(peer))
        }
        PortType::VhostUser => Opened::Port(Box::new(open_vhost_user(cfg, vhost)?), None),
        PortType::Afxdp => {
            let port = AfXdpPort::open(interface(), cfg.queues.unwrap_or(1))?;
            Opened::Port(Box::new(port), None)
        }
        PortType::Tap => Opened::Port(Box::new(TapPort::open(interface())?), None),
        PortType::Vxlan => Opened::Virtual,
    })
}

/// Opens a vhost-user port: the switch owns the socket (server, the default) or connects to
/// the VM's (client, retried forever so a restarted switch finds its VMs again).
fn open_vhost_user(cfg: &PortConfig, opts: VhostOptions) -> Result<VhostUserPort, PortError> {
    // `validate` guarantees the socket is set for this type.
    let path = cfg.socket.as_deref().unwrap_or(Path::new(""));
    let queues = cfg.queues.unwrap_or(1);
    let port = match cfg.mode.unwrap_or(SocketMode::Server) {
        SocketMode::Server => VhostUserPort::server_with(path, queues, opts),
        SocketMode::Client => VhostUserPort::client_with(path, queues, opts),
    };
    port.map_err(PortError::from)
}
