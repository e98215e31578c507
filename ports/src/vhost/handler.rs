//! The vhost-user request handler: protocol state for one connection.
//!
//! The `vhost` crate parses and checks each message, then calls this module's `Handler` through
//! `VhostUserBackendReqHandlerMut`. The handler keeps what the frontend configured (features,
//! the memory table, per-vring size, addresses, base, fds, enable state) and, after every change,
//! brings each vring's run state in line (`Handler::sync`): it starts a validated
//! [`Virtqueue`] (split, or packed when VIRTIO_F_RING_PACKED was negotiated), moves a running
//! one onto a new memory table, or stops it and remembers where it stopped.
//!
//! Offered: VERSION_1, MRG_RXBUF, EVENT_IDX, INDIRECT_DESC, IN_ORDER, MQ (with more than
//! one queue pair), PROTOCOL_FEATURES, LOG_ALL; unless the port's options say not to,
//! RING_PACKED and the offloads (CSUM, GUEST_CSUM, HOST_TSO4/6, GUEST_TSO4/6, HOST_ECN,
//! GUEST_ECN: [`crate::offload`]); protocol features MQ, REPLY_ACK and LOG_SHMFD (dirty-page
//! logging for live migration: while LOG_ALL is acked, every byte written into guest memory is
//! marked in the frontend's log). Not offered, because the messages they enable are refused
//! here or by the crate: CONFIG, RARP, MTU, STATUS, INBAND_NOTIFICATIONS, ACCESS_PLATFORM,
//! INFLIGHT_SHMFD, CONFIGURE_MEM_SLOTS.

use std::fs::File;
use std::sync::Arc;

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVirtioFeatures,
    VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{
    Error as ProtoError, GpuBackend, Result as ProtoResult, VhostUserBackendReqHandlerMut,
};
use vhost::VhostUserMemoryRegionBase;

use super::fds::{self, FdError};
use super::memory::{DirtyLog, GuestMemoryTable, LogError, MemoryError};
use super::virtq::{QueueError, RingConfig, Virtqueue};
use super::{warn_limited, PortShared, VhostOptions};
use crate::offload::TxOffloads;

/// VIRTIO_NET_F_CSUM (virtio 1.2 §5.1.3): the device takes frames with a partial checksum.
pub const VIRTIO_NET_F_CSUM: u64 = 1 << 0;
/// VIRTIO_NET_F_GUEST_CSUM: the driver takes frames with a partial checksum.
pub const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
/// VIRTIO_NET_F_GUEST_TSO4: the driver takes TCP over IPv4 frames larger than the MTU.
pub const VIRTIO_NET_F_GUEST_TSO4: u64 = 1 << 7;
/// VIRTIO_NET_F_GUEST_TSO6: the same over IPv6.
pub const VIRTIO_NET_F_GUEST_TSO6: u64 = 1 << 8;
/// VIRTIO_NET_F_GUEST_ECN: the driver takes TSO frames with the ECN bit.
pub const VIRTIO_NET_F_GUEST_ECN: u64 = 1 << 9;
/// VIRTIO_NET_F_HOST_TSO4: the device takes TCP over IPv4 frames larger than the MTU.
pub const VIRTIO_NET_F_HOST_TSO4: u64 = 1 << 11;
/// VIRTIO_NET_F_HOST_TSO6: the same over IPv6.
pub const VIRTIO_NET_F_HOST_TSO6: u64 = 1 << 12;
/// VIRTIO_NET_F_HOST_ECN: the device takes TSO frames with the ECN bit.
pub const VIRTIO_NET_F_HOST_ECN: u64 = 1 << 13;
/// The checksum and TSO features, both directions, offered together
/// ([`super::VhostOptions::offloads`]).
pub const OFFLOAD_FEATURES: u64 = VIRTIO_NET_F_CSUM
    | VIRTIO_NET_F_GUEST_CSUM
    | VIRTIO_NET_F_GUEST_TSO4
    | VIRTIO_NET_F_GUEST_TSO6
    | VIRTIO_NET_F_GUEST_ECN
    | VIRTIO_NET_F_HOST_TSO4
    | VIRTIO_NET_F_HOST_TSO6
    | VIRTIO_NET_F_HOST_ECN;
/// VIRTIO_NET_F_MRG_RXBUF (virtio 1.1 §5.1.3).
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// VIRTIO_NET_F_MQ (§5.1.3).
pub const VIRTIO_NET_F_MQ: u64 = 1 << 22;
/// VIRTIO_F_RING_INDIRECT_DESC (§6).
pub const VIRTIO_F_RING_INDIRECT_DESC: u64 = 1 << 28;
/// VIRTIO_F_RING_EVENT_IDX (§6).
pub const VIRTIO_F_RING_EVENT_IDX: u64 = 1 << 29;
/// VIRTIO_F_VERSION_1 (§6).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// VIRTIO_F_RING_PACKED (§6): the packed virtqueue layout (§2.7, [`super::packed`]), which a
/// frontend asks for (testpmd's virtio-user `packed_vq=1`, QEMU's `packed=on`).
pub const VIRTIO_F_RING_PACKED: u64 = 1 << 34;
/// VIRTIO_F_IN_ORDER (§6): the device uses buffers in the order the driver made them
/// available. Our rings always do (both directions complete chains in avail order, one used
/// element each), so offering it costs nothing and lets drivers take their in-order paths
/// (DPDK's virtio PMD: no per-descriptor free-list bookkeeping).
pub const VIRTIO_F_IN_ORDER: u64 = 1 << 35;

/// Protocol features offered.
const OFFERED_PROTOCOL: VhostUserProtocolFeatures = VhostUserProtocolFeatures::MQ
    .union(VhostUserProtocolFeatures::REPLY_ACK)
    .union(VhostUserProtocolFeatures::LOG_SHMFD);

/// Why the handler refused a message. The frontend gets a NACK (with REPLY_ACK) and the
/// connection stays up, except after [`HandlerError::Log`]: the crate cannot answer a failed
/// `SET_LOG_BASE`, so the connection is closed instead of leaving the frontend waiting.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The memory table was refused.
    #[error("memory table refused: {0}")]
    Memory(#[from] MemoryError),
    /// The dirty log area was refused.
    #[error("dirty log refused: {0}")]
    Log(#[from] LogError),
    /// A vring index past the device's vrings.
    #[error("vring index {0} does not exist")]
    NoSuchVring(u32),
    /// Features we did not offer, or without VERSION_1.
    #[error("features {0:#x} were not offered (or lack VERSION_1)")]
    BadFeatures(u64),
    /// A message this device does not support.
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    /// A kick or call fd that is not an eventfd, or whose flags could not be set.
    #[error("{0}")]
    Fd(#[from] FdError),
}

impl HandlerError {
    /// True when the frontend sent something invalid.
    pub fn is_guest_fault(&self) -> bool {
        match self {
            HandlerError::Memory(e) => e.is_guest_fault(),
            HandlerError::Log(e) => e.is_guest_fault(),
            _ => true,
        }
    }
}

/// What the frontend configured for one vring.
#[derive(Debug, Default, Clone, Copy)]
struct VringConfig {
    num: u32,
    /// Frontend virtual addresses: descriptor table, used ring, avail ring.
    addrs: Option<(u64, u64, u64)>,
    base: u16,
    kicked: bool,
    enabled: bool,
}

/// Protocol state of one connection; dropped (after [`Handler::teardown`]) when it ends.
pub(crate) struct Handler {
    shared: Arc<PortShared>,
    features: u64,
    protocol: u64,
    mem: Option<Arc<GuestMemoryTable>>,
    log: Option<Arc<DirtyLog>>,
    vrings: Vec<VringConfig>,
    refused: bool,
    /// Feature sets logged on this connection: each new one is (DPDK's virtio-user acks a
    /// first set at setup and the offloads when its port starts), up to
    /// [`FEATURE_LOGS_PER_CONNECTION`] (the frontend controls how often it sends
    /// SET_FEATURES).
    features_logged: Vec<u64>,
}

/// How many distinct feature sets one connection gets logged.
const FEATURE_LOGS_PER_CONNECTION: usize = 4;

impl Handler {
    /// A fresh handler for a new connection.
    pub fn new(shared: Arc<PortShared>) -> Handler {
        let n = shared.vrings.len();
        Handler {
            shared,
            features: 0,
            protocol: 0,
            mem: None,
            log: None,
            vrings: vec![VringConfig::default(); n],
            refused: false,
            features_logged: Vec::new(),
        }
    }

    /// Virtio features offered to the frontend: VIRTIO_F_RING_PACKED and the offloads as the
    /// port's options say.
    pub fn offered_features(queue_pairs: u16, opts: &VhostOptions) -> u64 {
        let mq = if queue_pairs > 1 { VIRTIO_NET_F_MQ } else { 0 };
        let packed = if opts.packed_ring {
            VIRTIO_F_RING_PACKED
        } else {
            0
        };
        let offloads = if opts.offloads { OFFLOAD_FEATURES } else { 0 };
        VIRTIO_F_VERSION_1
            | offloads
            | VIRTIO_NET_F_MRG_RXBUF
            | VIRTIO_F_RING_EVENT_IDX
            | VIRTIO_F_RING_INDIRECT_DESC
            | VIRTIO_F_IN_ORDER
            | packed
            | mq
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
            | VhostUserVirtioFeatures::LOG_ALL.bits()
    }

    /// True (once) if the last request failed because this handler refused it, as opposed to a
    /// protocol or socket error in the crate: the connection can go on.
    pub fn take_refused(&mut self) -> bool {
        std::mem::take(&mut self.refused)
    }

    /// Stops every vring and forgets the connection's state (disconnect, RESET_OWNER).
    pub fn teardown(&mut self) {
        for i in 0..self.vrings.len() {
            let v = &self.shared.vrings[i];
            let (ring, kick, call) = {
                let mut run = v.run();
                let kick = v.set_kick(&mut run, None);
                (run.ring.take(), kick, run.call.take())
            };
            // Unmapping and closing happen here, outside the lock.
            drop((ring, kick, call));
        }
        self.vrings
            .iter_mut()
            .for_each(|c| *c = VringConfig::default());
        self.mem = None;
        self.log = None;
        self.features = 0;
        self.protocol = 0;
        self.shared.set_guest_offloads(TxOffloads::default());
    }

    fn refuse(&mut self, e: HandlerError) -> ProtoError {
        self.refused = true;
        self.shared
            .refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        warn_limited!(socket = %self.shared.socket.display(), "vhost-user request refused: {e}");
        ProtoError::ReqHandlerError(std::io::Error::other(e))
    }

    fn index(&mut self, index: u32) -> ProtoResult<usize> {
        let i = index as usize;
        if i < self.vrings.len() {
            Ok(i)
        } else {
            Err(self.refuse(HandlerError::NoSuchVring(index)))
        }
    }

    fn unsupported(&mut self, what: &'static str) -> ProtoError {
        self.refuse(HandlerError::Unsupported(what))
    }

    /// The frontend sent SET_VRING_ENABLE(`index`, `enable`) before SET_FEATURES, which the
    /// vhost crate refuses without passing it on (the connection loop peeked it). QEMU does
    /// this (its only enables, a replay of the guest's queue-pair state): apply it as if it
    /// had come later. An index past the device's vrings is refused like any other.
    pub fn enable_before_features(&mut self, index: u32, enable: bool) {
        if let Ok(i) = self.index(index) {
            self.vrings[i].enabled = enable;
            self.sync(i);
        }
    }

    /// Brings vring `i`'s run state in line with its configuration.
    fn sync(&mut self, i: usize) {
        let c = self.vrings[i];
        let protocol_features =
            self.features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() != 0;
        // vhost-user spec "Ring states": a ring starts when it gets a kick fd; with
        // PROTOCOL_FEATURES it also needs SET_VRING_ENABLE(1).
        let want = c.kicked && (c.enabled || !protocol_features) && c.addrs.is_some();
        let event_idx = self.features & VIRTIO_F_RING_EVENT_IDX != 0;
        let packed = self.features & VIRTIO_F_RING_PACKED != 0;
        let mrg = self.features & VIRTIO_NET_F_MRG_RXBUF != 0;
        let host_offloads = self.features & VIRTIO_NET_F_CSUM != 0;
        // Transmit queues are the odd vrings (virtio-net §5.1.2).
        let batch_used = self.features & VIRTIO_F_IN_ORDER != 0 && i % 2 == 1;
        let logging = self.features & VhostUserVirtioFeatures::LOG_ALL.bits() != 0;
        let log = self.log.clone().filter(|_| logging);
        let target = match (&self.mem, want) {
            (Some(mem), true) => Some((mem.clone(), self.ring_config(mem, &c, event_idx, packed))),
            _ => None,
        };
        let v = &self.shared.vrings[i];
        let mut run = v.run();
        run.mrg = mrg;
        let old = run.ring.take();
        let old_avail = old.as_ref().map(Virtqueue::last_avail);
        let mut stopped_at = None;
        let mut failed = None;
        let mut started = false;
        run.ring = match (old, target) {
            (None, None) => None,
            (Some(ring), None) => {
                stopped_at = Some(ring.last_avail());
                None
            }
            (old, Some((mem, cfg))) => {
                let built = cfg.and_then(|cfg| match old {
                    Some(ring) if ring.config() == cfg && ring.uses(&mem) => Ok(ring),
                    Some(ring) => {
                        started = true;
                        ring.remap(mem, cfg)
                    }
                    None => {
                        started = true;
                        Virtqueue::new(mem, cfg, c.base)
                    }
                });
                match built {
                    Ok(mut ring) => {
                        ring.set_log(log);
                        ring.set_tx_offloads(host_offloads);
                        ring.set_batch_used(batch_used);
                        Some(ring)
                    }
                    Err(e) => {
                        // A running ring that cannot move to the new configuration stops
                        // where it was, as after GET_VRING_BASE.
                        stopped_at = old_avail;
                        run.broken += 1;
                        self.shared
                            .rings_broken
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        failed = Some(e);
                        None
                    }
                }
            }
        };
        drop(run);
        // A ring built just now starts with kicks disabled: a sleeping PMD must look at it.
        if started && failed.is_none() {
            v.wake_pmd();
        }
        if let Some(base) = stopped_at {
            self.vrings[i].base = base;
        }
        if let Some(e) = failed {
            warn_limited!(socket = %self.shared.socket.display(), vring = i, "vring refused at start: {e}");
        }
    }

    /// Translates vring addresses (frontend virtual) into a ring configuration.
    fn ring_config(
        &self,
        mem: &GuestMemoryTable,
        c: &VringConfig,
        event_idx: bool,
        packed: bool,
    ) -> Result<RingConfig, QueueError> {
        let (desc, used, avail) = c.addrs.unwrap_or_default();
        let tr = |ring: &'static str, va: u64, len: u64| {
            mem.va_to_gpa(va, len)
                .ok_or(QueueError::RingOutsideMemory { ring, addr: va })
        };
        // Split: a power of two (§2.6); packed: any size (§2.7). Both at most 32768.
        if c.num == 0
            || c.num > u32::from(super::split::MAX_QUEUE_SIZE)
            || (!packed && !c.num.is_power_of_two())
        {
            return Err(QueueError::BadSize(c.num));
        }
        // The bytes of each part: split descriptor table, avail ring, used ring (§2.6); packed
        // descriptor ring and the two event suppression structures (§2.7).
        let size = c.num;
        let (desc_len, avail_len, used_len) = if packed {
            use super::packed::layout::{desc, event};
            (desc::ring_len(size), event::SIZE, event::SIZE)
        } else {
            use super::split::layout::{avail, desc, used};
            (
                desc::table_len(size),
                avail::ring_len(size),
                used::ring_len(size),
            )
        };
        Ok(RingConfig {
            size,
            desc: tr("descriptor", desc, desc_len)?,
            avail: tr("avail", avail, avail_len)?,
            used: tr("used", used, used_len)?,
            event_idx,
            packed,
        })
    }

    fn sync_all(&mut self) {
        for i in 0..self.vrings.len() {
            self.sync(i);
        }
    }
}

/// What a driver that acked `features` takes on its receive queues unfinished.
fn guest_offloads(features: u64) -> TxOffloads {
    let csum = features & VIRTIO_NET_F_GUEST_CSUM != 0;
    // §5.1.3.1: the TSO features require GUEST_CSUM (a frame too large to send is also one
    // whose checksum the device leaves partial), ECN requires TSO.
    let tso4 = csum && features & VIRTIO_NET_F_GUEST_TSO4 != 0;
    let tso6 = csum && features & VIRTIO_NET_F_GUEST_TSO6 != 0;
    TxOffloads {
        csum,
        tso4,
        tso6,
        ecn: (tso4 || tso6) && features & VIRTIO_NET_F_GUEST_ECN != 0,
    }
}

impl VhostUserBackendReqHandlerMut for Handler {
    fn set_owner(&mut self) -> ProtoResult<()> {
        Ok(())
    }

    fn reset_owner(&mut self) -> ProtoResult<()> {
        self.teardown();
        Ok(())
    }

    fn reset_device(&mut self) -> ProtoResult<()> {
        self.teardown();
        Ok(())
    }

    fn get_features(&mut self) -> ProtoResult<u64> {
        Ok(Handler::offered_features(
            self.shared.queue_pairs,
            &self.shared.opts,
        ))
    }

    fn set_features(&mut self, features: u64) -> ProtoResult<()> {
        let offered = Handler::offered_features(self.shared.queue_pairs, &self.shared.opts);
        if features & !offered != 0 || features & VIRTIO_F_VERSION_1 == 0 {
            return Err(self.refuse(HandlerError::BadFeatures(features)));
        }
        self.features = features;
        self.shared.set_guest_offloads(guest_offloads(features));
        if !self.features_logged.contains(&features)
            && self.features_logged.len() < FEATURE_LOGS_PER_CONNECTION
        {
            self.features_logged.push(features);
            tracing::info!(
                socket = %self.shared.socket.display(),
                ring = if features & VIRTIO_F_RING_PACKED != 0 { "packed" } else { "split" },
                mrg_rxbuf = features & VIRTIO_NET_F_MRG_RXBUF != 0,
                event_idx = features & VIRTIO_F_RING_EVENT_IDX != 0,
                csum = features & VIRTIO_NET_F_CSUM != 0,
                tso = features & (VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6) != 0,
                guest_csum = features & VIRTIO_NET_F_GUEST_CSUM != 0,
                guest_tso = features & (VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6) != 0,
                "vhost-user features acked: {features:#x}"
            );
        }
        self.sync_all();
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy_listening: Option<bool>,
    ) -> ProtoResult<Option<Vec<VhostUserMemoryRegionBase>>> {
        let max = self.shared.opts.max_guest_memory;
        let table = match GuestMemoryTable::map_limited(ctx, files, max) {
            Ok(t) => Arc::new(t),
            Err(e) => return Err(self.refuse(e.into())),
        };
        let old = self.mem.replace(table);
        self.sync_all();
        // The old mapping goes away here, after every ring has moved off it.
        drop(old);
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> ProtoResult<()> {
        let i = self.index(index)?;
        self.vrings[i].num = num;
        self.sync(i);
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> ProtoResult<()> {
        let i = self.index(index)?;
        self.vrings[i].addrs = Some((descriptor, used, available));
        self.sync(i);
        Ok(())
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> ProtoResult<()> {
        let i = self.index(index)?;
        // Split rings: a 16-bit avail index. Packed rings: the descriptor index in bits 0-14
        // and the wrap counter in bit 15 (what DPDK reads; QEMU also sends the used position
        // in bits 16-31, which equals it when the ring stopped cleanly).
        self.vrings[i].base = base as u16;
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> ProtoResult<VhostUserVringState> {
        // No reply can be sent for a bad index (the crate sends none on error), so this one
        // ends the connection instead of being refused.
        let i = index as usize;
        if i >= self.vrings.len() {
            return Err(ProtoError::InvalidParam);
        }
        // Stops the ring (vhost-user spec). `sync` takes the vring lock, so it returns only
        // once no PMD is inside the ring.
        self.vrings[i].kicked = false;
        self.sync(i);
        let v = &self.shared.vrings[i];
        let kick = {
            let mut run = v.run();
            v.set_kick(&mut run, None)
        };
        drop(kick);
        Ok(VhostUserVringState::new(
            index,
            u32::from(self.vrings[i].base),
        ))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> ProtoResult<()> {
        let i = self.index(u32::from(index))?;
        let fd = match fd.map(|f| fds::eventfd("kick", f)).transpose() {
            Ok(fd) => fd,
            Err(e) => return Err(self.refuse(e.into())),
        };
        let v = &self.shared.vrings[i];
        let old = {
            let mut run = v.run();
            v.set_kick(&mut run, fd)
        };
        drop(old);
        // No fd (the "invalid fd" flag) means the frontend wants us to poll: we do anyway.
        self.vrings[i].kicked = true;
        self.sync(i);
        Ok(())
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> ProtoResult<()> {
        let i = self.index(u32::from(index))?;
        let fd = match fd.map(|f| fds::eventfd("call", f)).transpose() {
            Ok(fd) => fd,
            Err(e) => return Err(self.refuse(e.into())),
        };
        // A frontend of this port once blocked a PMD through its call fd: the driver polls
        // from now on (the message is accepted, the fd closed).
        let fd = fd.filter(|_| !self.shared.calls_muted());
        let old = std::mem::replace(&mut self.shared.vrings[i].run().call, fd);
        drop(old);
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, _fd: Option<File>) -> ProtoResult<()> {
        self.index(u32::from(index))?;
        // We never report vring errors through this fd; closing it is allowed.
        Ok(())
    }

    fn get_protocol_features(&mut self) -> ProtoResult<VhostUserProtocolFeatures> {
        Ok(OFFERED_PROTOCOL)
    }

    fn set_protocol_features(&mut self, features: u64) -> ProtoResult<()> {
        if features & !OFFERED_PROTOCOL.bits() != 0 {
            return Err(self.refuse(HandlerError::BadFeatures(features)));
        }
        self.protocol = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> ProtoResult<u64> {
        // Queue pairs, as DPDK and QEMU's vhost-user-net read it.
        Ok(u64::from(self.shared.queue_pairs))
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> ProtoResult<()> {
        let i = self.index(index)?;
        self.vrings[i].enabled = enable;
        self.sync(i);
        Ok(())
    }

    fn get_config(
        &mut self,
        _offset: u32,
        _size: u32,
        _flags: VhostUserConfigFlags,
    ) -> ProtoResult<Vec<u8>> {
        Err(self.unsupported("GET_CONFIG"))
    }

    fn set_config(&mut self, _: u32, _: &[u8], _: VhostUserConfigFlags) -> ProtoResult<()> {
        Err(self.unsupported("SET_CONFIG"))
    }

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> ProtoResult<()> {
        Err(self.unsupported("GPU_SET_SOCKET"))
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> ProtoResult<File> {
        Err(self.unsupported("GET_SHARED_OBJECT"))
    }

    fn get_inflight_fd(
        &mut self,
        _inflight: &VhostUserInflight,
    ) -> ProtoResult<(VhostUserInflight, File)> {
        Err(self.unsupported("GET_INFLIGHT_FD"))
    }

    fn set_inflight_fd(&mut self, _: &VhostUserInflight, _: File) -> ProtoResult<()> {
        Err(self.unsupported("SET_INFLIGHT_FD"))
    }

    fn get_max_mem_slots(&mut self) -> ProtoResult<u64> {
        Err(self.unsupported("GET_MAX_MEM_SLOTS"))
    }

    fn add_mem_region(
        &mut self,
        _: &VhostUserSingleMemoryRegion,
        _: File,
        _: Option<bool>,
    ) -> ProtoResult<Option<VhostUserMemoryRegionBase>> {
        Err(self.unsupported("ADD_MEM_REG"))
    }

    fn remove_mem_region(&mut self, _: &VhostUserSingleMemoryRegion) -> ProtoResult<()> {
        Err(self.unsupported("REM_MEM_REG"))
    }

    fn set_device_state_fd(
        &mut self,
        _: VhostTransferStateDirection,
        _: VhostTransferStatePhase,
        _: File,
    ) -> ProtoResult<Option<File>> {
        Err(self.unsupported("SET_DEVICE_STATE_FD"))
    }

    fn check_device_state(&mut self) -> ProtoResult<()> {
        Err(self.unsupported("CHECK_DEVICE_STATE"))
    }

    fn get_shmem_config(&mut self) -> ProtoResult<VhostUserShMemConfig> {
        Err(self.unsupported("GET_SHMEM_CONFIG"))
    }

    fn set_log_base(&mut self, log: &VhostUserLog, file: File) -> ProtoResult<()> {
        // The crate sends no reply when this fails, and the frontend waits for one: a refusal
        // must end the connection (so `refused` is not set), or the frontend would hang.
        let (size, offset) = (log.mmap_size, log.mmap_offset);
        let log = DirtyLog::map(size, offset, file).map_err(|e| {
            let e = HandlerError::Log(e);
            warn_limited!(
                socket = %self.shared.socket.display(),
                "vhost-user request refused, dropping the connection: {e}"
            );
            ProtoError::ReqHandlerError(std::io::Error::other(e))
        })?;
        let old = self.log.replace(Arc::new(log));
        self.sync_all();
        drop(old);
        Ok(())
    }
}
