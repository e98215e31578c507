//! One AF_XDP socket bound to one interface queue, split into the half an rx queue owns (rx
//! ring + fill ring) and the half the tx queues share (tx ring + completion ring).
//!
//! Each socket has its own UMEM: the first [`RX_FRAMES`] frames cycle through fill -> rx ->
//! fill, the other [`TX_FRAMES`] through tx -> completion -> tx. The halves never exchange
//! frames, so neither needs to lock the other.

use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;

use xdpilone::{
    CompletionQueue, FillQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig,
};

use super::umem::{UmemArea, FRAME_SIZE};
use super::AfXdpError;

/// Frames (and fill/rx ring entries) per socket for receiving.
pub const RX_FRAMES: u32 = 4096;
/// Frames (and tx/completion ring entries) per socket for transmitting.
pub const TX_FRAMES: u32 = 1024;

/// `getsockopt(SOL_XDP, XDP_OPTIONS)` and its zero-copy bit (`<linux/if_xdp.h>`).
const SOL_XDP: libc::c_int = 283;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// The receive half: owned by one PMD through its rx queue.
pub(crate) struct RxSide {
    pub ring: RingRx,
    pub fill: FillQueue,
    /// Rx frames back from the rx ring, not yet on the fill ring (capacity [`RX_FRAMES`]).
    pub free: Vec<u64>,
    /// Descriptors the kernel gave that did not fit a frame or a packet (dropped).
    pub bad_desc: u64,
    /// Last: unmapped after the rings.
    pub area: Arc<UmemArea>,
}

/// The transmit half: shared by the tx queue handles of all PMDs, locked once per burst.
pub(crate) struct TxSide {
    pub ring: RingTx,
    pub comp: CompletionQueue,
    /// Tx frames owned by us (capacity [`TX_FRAMES`]).
    pub free: Vec<u64>,
    /// Frames too large for a UMEM frame (dropped).
    pub oversize: u64,
    /// Last: unmapped after the rings.
    pub area: Arc<UmemArea>,
}

/// An opened socket: its halves and how it ended up bound.
pub(crate) struct Xsk {
    pub rx: RxSide,
    pub tx: TxSide,
    pub fd: RawFd,
    pub zero_copy: bool,
}

impl RxSide {
    /// The socket fd, readable when the rx ring holds frames.
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is owned by the socket `self.ring` holds a reference to (an
        // `Arc<SocketFd>` inside xdpilone), so it stays open for as long as `self` is
        // borrowed.
        unsafe { BorrowedFd::borrow_raw(self.ring.as_raw_fd()) }
    }
}

fn step<'a>(
    interface: &'a str,
    queue: u32,
    what: &'static str,
) -> impl FnOnce(io::Error) -> AfXdpError + 'a {
    move |source| AfXdpError::Socket {
        interface: interface.to_string(),
        queue,
        what,
        source,
    }
}

fn errno(e: xdpilone::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.get_raw().abs())
}

/// The interface's index and name as xdpilone wants them.
pub(crate) fn if_info(interface: &str) -> Result<IfInfo, AfXdpError> {
    let bad = |source| AfXdpError::Interface {
        interface: interface.to_string(),
        source,
    };
    let name = CString::new(interface).map_err(|_| {
        bad(io::Error::new(
            io::ErrorKind::InvalidInput,
            "name contains NUL",
        ))
    })?;
    let mut info = IfInfo::invalid();
    info.from_name(&name).map_err(|e| bad(errno(e)))?;
    Ok(info)
}

/// Creates a socket with its own UMEM, binds it to `interface` queue `queue` (zero-copy if
/// the driver offers it, copy otherwise) with need_wakeup, and fills the fill ring.
pub(crate) fn open(interface: &str, info: &IfInfo, queue: u32) -> Result<Xsk, AfXdpError> {
    let area = Arc::new(UmemArea::new(RX_FRAMES + TX_FRAMES).map_err(step(
        interface,
        queue,
        "mapping the UMEM",
    ))?);
    let config = UmemConfig {
        fill_size: RX_FRAMES,
        complete_size: TX_FRAMES,
        frame_size: FRAME_SIZE,
        headroom: 0,
        flags: 0,
    };
    // SAFETY: the area is page aligned (a fresh mmap) and stays mapped while any ring of this
    // socket exists: both halves hold an `Arc` to it and drop it after their rings. The
    // `Umem` value itself is dropped at the end of this function; the registration lives on
    // in the socket fd the rings share.
    let umem = unsafe { Umem::new(config, area.as_slice_ptr()) }
        .map_err(|e| step(interface, queue, "registering the UMEM")(errno(e)))?;
    let mut info = *info;
    info.set_queue(queue);
    let sock = Socket::with_shared(&info, &umem)
        .map_err(|e| step(interface, queue, "creating the socket")(errno(e)))?;
    let device = umem
        .fq_cq(&sock)
        .map_err(|e| step(interface, queue, "mapping the fill/completion rings")(errno(e)))?;
    let rings = SocketConfig {
        rx_size: NonZeroU32::new(RX_FRAMES),
        tx_size: NonZeroU32::new(TX_FRAMES),
        // Neither COPY nor ZEROCOPY: the kernel tries zero-copy and falls back to copy.
        bind_flags: SocketConfig::XDP_BIND_NEED_WAKEUP,
    };
    let user = umem
        .rx_tx(&sock, &rings)
        .map_err(|e| step(interface, queue, "sizing the rx/tx rings")(errno(e)))?;
    let rx_ring = user
        .map_rx()
        .map_err(|e| step(interface, queue, "mapping the rx ring")(errno(e)))?;
    let tx_ring = user
        .map_tx()
        .map_err(|e| step(interface, queue, "mapping the tx ring")(errno(e)))?;
    umem.bind(&user)
        .map_err(|e| step(interface, queue, "binding (is the queue index valid?)")(errno(e)))?;
    let fd = user.as_raw_fd();
    let zero_copy = xdp_options(fd).map_err(step(interface, queue, "reading XDP_OPTIONS"))?
        & XDP_OPTIONS_ZEROCOPY
        != 0;
    let (mut fill, comp) = device.into_parts();

    // Every rx frame goes on the fill ring now; the ring has exactly RX_FRAMES slots.
    let mut w = fill.fill(RX_FRAMES);
    let n = w.insert((0..RX_FRAMES).map(|i| u64::from(i) * u64::from(FRAME_SIZE)));
    w.commit();
    drop(w);
    let mut rx_free = Vec::with_capacity(RX_FRAMES as usize);
    rx_free.extend((n..RX_FRAMES).map(|i| u64::from(i) * u64::from(FRAME_SIZE)));
    let mut tx_free = Vec::with_capacity(TX_FRAMES as usize);
    tx_free
        .extend((RX_FRAMES..RX_FRAMES + TX_FRAMES).map(|i| u64::from(i) * u64::from(FRAME_SIZE)));
    Ok(Xsk {
        rx: RxSide {
            ring: rx_ring,
            fill,
            free: rx_free,
            bad_desc: 0,
            area: area.clone(),
        },
        tx: TxSide {
            ring: tx_ring,
            comp,
            free: tx_free,
            oversize: 0,
            area,
        },
        fd,
        zero_copy,
    })
}

/// The kernel's per-socket counters (`struct xdp_statistics`, Linux 5.9+ layout).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for reasons other than invalid descriptors.
    pub rx_dropped: u64,
    /// Invalid rx descriptors.
    pub rx_invalid_descs: u64,
    /// Invalid tx descriptors.
    pub tx_invalid_descs: u64,
    /// Frames dropped because the rx ring was full (the PMD did not keep up).
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when a frame arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the tx ring was empty when the kernel looked.
    pub tx_ring_empty_descs: u64,
}

const XDP_STATISTICS: libc::c_int = 7;

/// `getsockopt(fd, SOL_XDP, XDP_STATISTICS)`.
pub(crate) fn statistics(fd: RawFd) -> io::Result<XskStats> {
    let mut st = XskStats::default();
    let mut len = std::mem::size_of::<XskStats>() as libc::socklen_t;
    // SAFETY: `st` is a live `#[repr(C)]` struct of six u64 and `len` its size; the kernel
    // writes at most `len` bytes (fewer on kernels with the older, shorter layout).
    let r = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_STATISTICS,
            (&mut st as *mut XskStats).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// `getsockopt(fd, SOL_XDP, XDP_OPTIONS)`.
fn xdp_options(fd: RawFd) -> io::Result<u32> {
    let mut opts: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `opts` and `len` are live locals of the sizes given; the kernel writes at most
    // `len` bytes into `opts`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut opts as *mut u32).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(opts)
}
