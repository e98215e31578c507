//! AF_XDP uplink ports: one AF_XDP socket per interface queue, fed by our own XDP redirect
//! program.
//!
//! - [`umem`]: the frame area shared with the kernel (bounds-checked copies in and out);
//! - `socket`: opening and binding one socket (xdpilone rings: fill, completion, rx, tx);
//! - `xdp_prog`: the hand-encoded redirect program, its XSKMAP and the attach link (raw
//!   `bpf(2)`, no clang or libbpf);
//! - `queue`: the rx and tx burst paths.
//!
//! Frames are copied between UMEM frames and switch [`Packet`](crate::Packet)s, so the
//! switch never holds kernel-shared memory past a burst. Binding asks for zero-copy where the
//! driver supports it and falls back to copy mode (logged). The program is attached in the
//! driver's native mode when offered, else in generic (SKB) mode (logged). Dropping the port
//! detaches the program and closes the sockets.
//!
//! Limits: UMEM frames are 4 KiB, so in copy mode (the kernel keeps 256 bytes of headroom)
//! frames up to [`MAX_RX_FRAME`] (3840) bytes are received; larger ones are dropped by the
//! kernel (counted in [`XskStats`]). An underlay over AF_XDP therefore carries IPv4 packets
//! of at most [`MAX_MTU`] (3826) bytes. A frame handed to `tx_burst` that does not fit a
//! UMEM frame is not sent: it is moved behind the sent ones, so the caller counts it as
//! dropped, and logged (rate-limited).
//!
//! Queues: the program redirects only the frames of the queues that have a socket
//! (`0..queues`); the kernel stack gets the rest. When the interface has more rx queues than
//! the port binds, [`AfXdpPort::open`] logs a warning naming the interface, its rx queue
//! count and `queues`: RSS spreads flows (VXLAN's too, by their UDP source port) over every
//! queue, so most traffic would bypass the switch. It is a warning, not a refusal, because
//! the operator may have steered the traffic to the bound queues (`ethtool -L IF combined
//! N`, ntuple rules); see [`AfXdpPort::interface_rx_queues`].

mod queue;
#[allow(unsafe_code)]
mod socket;
#[allow(unsafe_code)]
pub mod umem;
#[allow(unsafe_code)]
mod xdp_prog;

use std::io;
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use crate::port::{Port, PortError, RxQueue, TxQueue};
use queue::{AfXdpRxq, AfXdpTxq, SharedTx};
pub use socket::XskStats;
use xdp_prog::{XdpLink, XdpProgram, XskMap, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};

/// The most queues a port binds.
pub const MAX_QUEUES: u16 = 64;

/// Headroom the kernel keeps in front of a received frame in a UMEM frame (the kernel's
/// `XDP_PACKET_HEADROOM`).
const XDP_PACKET_HEADROOM: u32 = 256;
/// The largest frame (Ethernet header included) a socket receives: a UMEM frame less the
/// kernel's headroom.
pub const MAX_RX_FRAME: usize = (umem::FRAME_SIZE - XDP_PACKET_HEADROOM) as usize;
/// The largest IPv4 packet (an underlay MTU) an AF_XDP port carries both ways: a
/// [`MAX_RX_FRAME`] less its 14-byte Ethernet header.
pub const MAX_MTU: u16 = (MAX_RX_FRAME - 14) as u16;

/// Where the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode if the driver offers it, else generic.
    Auto,
    /// The driver's native XDP hook (veth has one).
    Driver,
    /// Generic XDP in the kernel's receive path: works on any device, copy mode only.
    Skb,
}

/// Why an AF_XDP port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// The interface does not exist (or its name is invalid).
    #[error("interface {interface:?}: {source}")]
    Interface {
        /// The interface name.
        interface: String,
        /// The error.
        source: io::Error,
    },
    /// A step of opening one queue's socket failed.
    #[error("interface {interface:?} queue {queue}: {what}: {source}")]
    Socket {
        /// The interface name.
        interface: String,
        /// The queue.
        queue: u32,
        /// The step.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Loading or attaching the XDP program failed.
    #[error("interface {interface:?}: {what}: {source}")]
    Xdp {
        /// The interface name.
        interface: String,
        /// The step.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The queue count is out of range.
    #[error("queues must be 1..={MAX_QUEUES}, not {0}")]
    BadQueues(u16),
}

impl From<AfXdpError> for PortError {
    fn from(e: AfXdpError) -> PortError {
        PortError::Os {
            what: "afxdp port",
            // Kept whole (same text), so a caller can reach the OS error inside it.
            source: io::Error::other(e),
        }
    }
}

/// An AF_XDP port on a kernel interface: rx queue `q` is the socket bound to the interface's
/// queue `q`; PMD `p` transmits on the socket of queue `p % queues`.
pub struct AfXdpPort {
    // Declared first so it is dropped first: detach the program before closing sockets.
    link: XdpLink,
    _prog: XdpProgram,
    _map: XskMap,
    interface: Arc<str>,
    rxqs: Vec<Option<AfXdpRxq>>,
    txs: Vec<SharedTx>,
    zero_copy: bool,
    interface_rx_queues: Option<u32>,
}

/// How many rx queues `interface` has (its `queues/rx-*` entries in sysfs); `None` if that
/// cannot be read. See [`crate::link::rx_queues`], which says why.
pub fn interface_rx_queues(interface: &str) -> Option<u32> {
    crate::link::rx_queues(interface).ok()
}

impl AfXdpPort {
    /// Opens `queues` sockets on `interface` queues `0..queues` and attaches the redirect
    /// program (native mode if available, else generic).
    pub fn open(interface: &str, queues: u16) -> Result<AfXdpPort, AfXdpError> {
        AfXdpPort::open_with_mode(interface, queues, XdpMode::Auto)
    }

    /// [`AfXdpPort::open`] with the XDP attach mode chosen.
    pub fn open_with_mode(
        interface: &str,
        queues: u16,
        mode: XdpMode,
    ) -> Result<AfXdpPort, AfXdpError> {
        if queues == 0 || queues > MAX_QUEUES {
            return Err(AfXdpError::BadQueues(queues));
        }
        let xdp_err = |what| {
            move |source| AfXdpError::Xdp {
                interface: interface.to_string(),
                what,
                source,
            }
        };
        let info = socket::if_info(interface)?;
        // Unreadable (no sysfs in this namespace, say): no warning can be given.
        let rx_queues = crate::link::rx_queues(interface).ok();
        if let Some(n) = rx_queues.filter(|&n| n > u32::from(queues)) {
            warn!(
                interface,
                rx_queues = n,
                queues,
                "afxdp: the interface has {n} rx queues but `queues` = {queues} binds only \
                 queues 0..{queues}: frames RSS puts on the others go to the kernel stack, not \
                 the switch. Set `queues = {n}`, or steer the traffic to the bound queues \
                 (e.g. `ethtool -L {interface} combined {queues}`)"
            );
        }
        let map = XskMap::new(u32::from(queues)).map_err(xdp_err("creating the XSKMAP"))?;
        let mut rxqs = Vec::new();
        let mut txs = Vec::new();
        let mut zero_copy = true;
        let name: Arc<str> = interface.into();
        let mut fds = Vec::new();
        for q in 0..u32::from(queues) {
            let xsk = open_retrying(interface, &info, q)?;
            zero_copy &= xsk.zero_copy;
            fds.push(xsk.fd);
            rxqs.push(Some(AfXdpRxq {
                rx: xsk.rx,
                interface: name.clone(),
            }));
            txs.push(Arc::new(Mutex::new(xsk.tx)));
        }
        let prog = XdpProgram::load(&map).map_err(xdp_err("loading the XDP program"))?;
        let link = match mode {
            XdpMode::Driver => XdpLink::attach(&prog, info.ifindex(), XDP_FLAGS_DRV_MODE)
                .map_err(xdp_err("attaching XDP in driver mode"))?,
            XdpMode::Skb => XdpLink::attach(&prog, info.ifindex(), XDP_FLAGS_SKB_MODE)
                .map_err(xdp_err("attaching XDP in generic (SKB) mode"))?,
            XdpMode::Auto => match XdpLink::attach(&prog, info.ifindex(), XDP_FLAGS_DRV_MODE) {
                Ok(link) => link,
                Err(e) => {
                    info!(interface, error = %e, "afxdp: no native XDP, using generic (SKB) mode");
                    XdpLink::attach(&prog, info.ifindex(), XDP_FLAGS_SKB_MODE)
                        .map_err(xdp_err("attaching XDP (driver and generic mode)"))?
                }
            },
        };
        for (q, fd) in fds.into_iter().enumerate() {
            map.set(q as u32, fd)
                .map_err(xdp_err("adding a socket to the XSKMAP"))?;
        }
        if !zero_copy {
            info!(
                interface,
                "afxdp: driver has no zero-copy AF_XDP; using copy mode"
            );
        }
        info!(
            interface,
            queues,
            zero_copy,
            xdp_mode = if link.mode == XDP_FLAGS_DRV_MODE {
                "driver"
            } else {
                "generic"
            },
            "afxdp port open"
        );
        Ok(AfXdpPort {
            link,
            _prog: prog,
            _map: map,
            interface: name,
            rxqs,
            txs,
            zero_copy,
            interface_rx_queues: rx_queues,
        })
    }

    /// The interface's rx queue count when the port was opened (`None` if sysfs did not
    /// say). More than [`Port::n_rxq`] means some traffic bypasses the switch (warned at
    /// open).
    pub fn interface_rx_queues(&self) -> Option<u32> {
        self.interface_rx_queues
    }

    /// True when every socket is bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The mode the program got attached in ([`XdpMode::Driver`] or [`XdpMode::Skb`]).
    pub fn xdp_mode(&self) -> XdpMode {
        if self.link.mode == XDP_FLAGS_DRV_MODE {
            XdpMode::Driver
        } else {
            XdpMode::Skb
        }
    }

    /// The kernel's counters of rx queue `q`'s socket, while the port still holds the
    /// queue (before [`Port::take_rxq`]); each queue logs its totals when dropped.
    pub fn kernel_stats(&self, q: usize) -> Option<XskStats> {
        self.rxqs.get(q)?.as_ref()?.kernel_stats().ok()
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }
}

/// Opens one socket, retrying for a while when the queue is busy: the kernel releases a
/// closed socket's hold on its queue from deferred work, so re-adding a port right after
/// deleting it can briefly see EBUSY.
fn open_retrying(
    interface: &str,
    info: &xdpilone::IfInfo,
    q: u32,
) -> Result<socket::Xsk, AfXdpError> {
    let mut tries = 0;
    loop {
        match socket::open(interface, info, q) {
            Err(AfXdpError::Socket { source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) && tries < BUSY_RETRIES =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// How often [`open_retrying`] retries a busy queue (20 ms apart).
const BUSY_RETRIES: u32 = 100;

impl Port for AfXdpPort {
    fn kind(&self) -> &'static str {
        "afxdp"
    }

    fn n_rxq(&self) -> usize {
        self.rxqs.len()
    }

    fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError> {
        match self.rxqs.get_mut(q).and_then(Option::take) {
            Some(rxq) => Ok(Box::new(rxq)),
            None => Err(PortError::NoSuchRxq(q)),
        }
    }

    fn txq(&mut self, pmd: usize) -> Result<Box<dyn TxQueue>, PortError> {
        // `open` made at least one socket.
        let tx = self.txs[pmd % self.txs.len()].clone();
        Ok(Box::new(AfXdpTxq {
            tx,
            interface: self.interface.clone(),
        }))
    }
}
