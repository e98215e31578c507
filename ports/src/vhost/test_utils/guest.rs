//! A guest and its VMM in one: a `vhost` crate `Frontend` that negotiates with a
//! `VhostUserPort` over its socket, shares a memfd as guest memory, starts every vring and
//! then drives them as a virtio-net driver would ([`super::DriverRing`] per vring, or
//! [`super::PackedDriverRing`] when the features include [`super::PACKED`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use nix::sys::memfd::{memfd_create, MFdFlags};
use vhost::vhost_user::message::{
    VhostUserHeaderFlag, VhostUserProtocolFeatures, VhostUserVirtioFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::packed::PackedDriverRing;
use super::ring::DriverRing;
use super::{EVENT_IDX, PACKED};
use crate::vhost::split::layout::USED_F_NO_NOTIFY;

/// The packed ring's `RING_EVENT_FLAGS_DISABLE` (§2.8.10).
const EVENT_FLAGS_DISABLE: u16 = 1;
use crate::offload::VirtioNetHdr;
use crate::vhost::handler::VIRTIO_F_VERSION_1;
use crate::vhost::net::NET_HDR_LEN;
use crate::vhost::split::layout::Descriptor;

/// Guest memory size.
pub const MEM_SIZE: u64 = 4 << 20;
/// Where guest memory appears in the "VMM's" virtual address space (any value works: the
/// backend only translates it).
pub const VA_BASE: u64 = 0x7f00_0000_0000;
/// Each vring's rings live in their own 64 KiB at `vring * RING_AREA`.
pub const RING_AREA: u64 = 0x1_0000;
/// Buffers are allocated from here.
pub const BUF_BASE: u64 = 1 << 20;
/// Queue size used by default.
pub const QSIZE: u16 = 256;

/// A temp dir holding a socket path.
pub struct SockDir {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Default for SockDir {
    fn default() -> SockDir {
        SockDir::new()
    }
}

impl SockDir {
    /// A fresh temporary directory.
    pub fn new() -> SockDir {
        SockDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The path of `name` inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A memfd of `size` bytes, sealable (as the port requires of guest memory).
pub fn memfd(size: u64) -> File {
    let fd = memfd_create(c"vswitch-test-guest", MFdFlags::MFD_ALLOW_SEALING).unwrap();
    let f = File::from(fd);
    f.set_len(size).unwrap();
    f
}

/// A memory table entry for `file`.
pub fn region(file: &File, gpa: u64, size: u64, va: u64, off: u64) -> VhostUserMemoryRegionInfo {
    VhostUserMemoryRegionInfo {
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: va,
        mmap_offset: off,
        mmap_handle: file.as_raw_fd(),
    }
}

/// A connected guest: memory, frontend, eventfds.
pub struct Guest {
    /// Guest memory as the guest sees it ([`MEM_SIZE`] bytes at guest address 0).
    pub mem: GuestMemoryMmap,
    /// The file behind it.
    pub memfd: File,
    /// The frontend (the VMM's end of the socket).
    pub fe: Frontend,
    /// Kick eventfds, per vring.
    pub kicks: Vec<EventFd>,
    /// Call eventfds, per vring.
    pub calls: Vec<EventFd>,
    /// The driver side of each vring (split rings; empty when packed).
    pub rings: Vec<DriverRing>,
    /// The driver side of each vring when the packed ring was negotiated ([`PACKED`];
    /// empty otherwise). [`Guest::add_chain`], [`Guest::publish`] and [`Guest::take_used`]
    /// drive whichever is there; the packed ring's own methods are in `guest_packed.rs`.
    pub packed: Vec<PackedDriverRing>,
    /// The features acked.
    pub features: u64,
    next_buf: u64,
}

impl Guest {
    /// Connects to a server-mode port at `path` (retrying while the socket appears).
    pub fn connect(path: &Path, pairs: u16, features: u64) -> Guest {
        Guest::connect_with_memory(path, pairs, features, memfd(MEM_SIZE))
    }

    /// [`Guest::connect`] with guest memory in `memfd` (of [`MEM_SIZE`] bytes).
    pub fn connect_with_memory(path: &Path, pairs: u16, features: u64, memfd: File) -> Guest {
        let deadline = Instant::now() + Duration::from_secs(5);
        let fe = loop {
            match Frontend::connect(path, 2 * u64::from(pairs)) {
                Ok(fe) => break fe,
                Err(e) if Instant::now() > deadline => panic!("connect: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        Guest::setup_with_memory(fe, pairs, features, memfd)
    }

    /// Negotiates and starts all vrings on an already connected frontend.
    pub fn setup(fe: Frontend, pairs: u16, features: u64) -> Guest {
        Guest::setup_with_memory(fe, pairs, features, memfd(MEM_SIZE))
    }

    /// [`Guest::setup`] with guest memory in `memfd`.
    pub fn setup_with_memory(mut fe: Frontend, pairs: u16, features: u64, memfd: File) -> Guest {
        fe.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
        let offered = fe.get_features().unwrap();
        assert_eq!(offered & VIRTIO_F_VERSION_1, VIRTIO_F_VERSION_1);
        let pf = fe.get_protocol_features().unwrap();
        let want = VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::LOG_SHMFD;
        assert_eq!(pf, want, "exactly what the port implements");
        fe.set_protocol_features(want).unwrap();
        // Not GET_QUEUE_NUM: the vhost crate's frontend takes the answer as a vring count, QEMU
        // and DPDK as queue pairs (which we report); `queue_num_is_pairs` checks it alone.
        fe.set_owner().unwrap();
        let features =
            features | VIRTIO_F_VERSION_1 | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
        fe.set_features(features).unwrap();

        let mem = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(0),
            MEM_SIZE as usize,
            Some(FileOffset::new(memfd.try_clone().unwrap(), 0)),
        )])
        .unwrap();
        fe.set_mem_table(&[region(&memfd, 0, MEM_SIZE, VA_BASE, 0)])
            .unwrap();
        let mut g = Guest {
            mem,
            memfd,
            fe,
            kicks: Vec::new(),
            calls: Vec::new(),
            rings: Vec::new(),
            packed: Vec::new(),
            features,
            next_buf: BUF_BASE,
        };
        for v in 0..2 * usize::from(pairs) {
            g.kicks.push(EventFd::new(libc::EFD_NONBLOCK).unwrap());
            g.calls.push(EventFd::new(libc::EFD_NONBLOCK).unwrap());
            if features & PACKED != 0 {
                let r = PackedDriverRing::at(v, QSIZE, v as u64 * RING_AREA);
                g.packed.push(r.clone());
                g.start_packed_vring(&r);
                continue;
            }
            let r = DriverRing::at(v, QSIZE, v as u64 * RING_AREA);
            g.rings.push(r.clone());
            g.start_vring(&r);
        }
        g
    }

    /// SET_VRING_NUM/ADDR/BASE/CALL/KICK/ENABLE for `r` (addresses as the VMM's VAs).
    pub fn start_vring(&mut self, r: &DriverRing) {
        self.start_vring_at(r, VA_BASE + r.desc, VA_BASE + r.avail, VA_BASE + r.used)
            .unwrap();
    }

    /// [`Guest::start_vring`] with the rings at the given VMM addresses (any values: hostile
    /// tests use bad ones).
    pub fn start_vring_at(
        &mut self,
        r: &DriverRing,
        desc_va: u64,
        avail_va: u64,
        used_va: u64,
    ) -> vhost::Result<()> {
        self.start_ring(r.vring, r.size, [desc_va, avail_va, used_va], r.next_avail)
    }

    /// SET_VRING_NUM, ADDR (`[descriptors, avail, used]` as the VMM's VAs; a packed ring
    /// sends its driver and device event areas as avail and used), BASE, CALL, KICK and
    /// ENABLE for vring `v` of `size` entries.
    pub(super) fn start_ring(
        &mut self,
        v: usize,
        size: u16,
        [desc_va, avail_va, used_va]: [u64; 3],
        base: u16,
    ) -> vhost::Result<()> {
        self.fe.set_vring_num(v, size)?;
        self.fe.set_vring_addr(
            v,
            &VringConfigData {
                queue_max_size: size,
                queue_size: size,
                flags: 0,
                desc_table_addr: desc_va,
                used_ring_addr: used_va,
                avail_ring_addr: avail_va,
                log_addr: None,
            },
        )?;
        self.fe.set_vring_base(v, base)?;
        self.fe.set_vring_call(v, &self.calls[v])?;
        self.fe.set_vring_kick(v, &self.kicks[v])?;
        self.fe.set_vring_enable(v, true)
    }

    /// Allocates `len` bytes of buffer space (16-aligned).
    pub fn alloc(&mut self, len: u64) -> u64 {
        let a = self.next_buf;
        self.next_buf = (a + len + 15) & !15;
        assert!(self.next_buf <= MEM_SIZE, "test ran out of guest memory");
        a
    }

    /// Writes descriptor `i` of ring `v`'s table.
    pub fn write_desc(&self, v: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = Descriptor {
            addr,
            len,
            flags,
            next,
        };
        self.rings[v].write_desc(&self.mem, i, d);
    }

    /// Adds a chain of fresh descriptors (`bufs`: address, length, flags without NEXT) and puts
    /// its head in the avail ring (not yet published). Returns the head (a packed ring: the
    /// chain's buffer id).
    pub fn add_chain(&mut self, v: usize, bufs: &[(u64, u32, u16)]) -> u16 {
        if let Some(r) = self.packed.get_mut(v) {
            return r.add_chain(&self.mem, bufs);
        }
        self.rings[v].add_chain(&self.mem, bufs)
    }

    /// Puts `head` in the next avail slot (not yet published).
    pub fn push_avail(&mut self, v: usize, head: u16) {
        self.rings[v].push_avail(&self.mem, head);
    }

    /// Publishes the avail index (a packed ring: the chains' first flags) and kicks.
    pub fn publish(&mut self, v: usize) {
        self.make_available(v);
        self.kicks[v].write(1).unwrap();
    }

    /// Publishes ring `v` without kicking (the avail index; a packed ring: the chains' first
    /// flags), as a poll-mode driver posting receive buffers does.
    pub fn make_available(&mut self, v: usize) {
        if let Some(r) = self.packed.get_mut(v) {
            r.publish(&self.mem);
        } else {
            self.rings[v].publish(&self.mem);
        }
    }

    /// Publishes ring `v` as a virtio driver does (§2.7.10, §2.8.10): kicks only when the
    /// device asks for kicks. Split: `VIRTQ_USED_F_NO_NOTIFY` clear, or with EVENT_IDX when
    /// the new avail index passes `avail_event`; packed: the device event flags anything
    /// but disabled. Returns whether it kicked. ([`Guest::publish`] always kicks.)
    pub fn publish_as_driver(&mut self, v: usize) -> bool {
        let packed = v < self.packed.len();
        // The split ring's avail index before this publication (EVENT_IDX compares with it).
        let old = if packed {
            0
        } else {
            self.rings[v].avail_idx(&self.mem)
        };
        self.make_available(v);
        // The stores above before the loads below (the device fences the other way).
        fence(Ordering::SeqCst);
        let wanted = if packed {
            self.packed[v].device_event(&self.mem).1 != EVENT_FLAGS_DISABLE
        } else {
            let r = &self.rings[v];
            if self.features & EVENT_IDX != 0 {
                let (event, new) = (r.avail_event(&self.mem), r.next_avail);
                new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
            } else {
                r.used_flags(&self.mem) & USED_F_NO_NOTIFY == 0
            }
        };
        if wanted {
            self.kicks[v].write(1).unwrap();
        }
        wanted
    }

    /// Stores avail.idx directly (hostile tests use any value).
    pub fn set_avail_idx(&self, v: usize, idx: u16) {
        self.rings[v].set_avail_idx(&self.mem, idx);
    }

    /// Stores avail.flags of ring `v`.
    pub fn set_avail_flags(&self, v: usize, flags: u16) {
        self.rings[v].set_avail_flags(&self.mem, flags);
    }

    /// Stores used_event of ring `v` (after its avail ring).
    pub fn set_used_event(&self, v: usize, idx: u16) {
        self.rings[v].set_used_event(&self.mem, idx);
    }

    /// used.flags of ring `v`.
    pub fn used_flags(&self, v: usize) -> u16 {
        self.rings[v].used_flags(&self.mem)
    }

    /// avail_event of ring `v` (after its used ring).
    pub fn avail_event(&self, v: usize) -> u16 {
        self.rings[v].avail_event(&self.mem)
    }

    /// used.idx of ring `v`.
    pub fn used_idx(&self, v: usize) -> u16 {
        self.rings[v].used_idx(&self.mem)
    }

    /// New used elements (id, len) since the last call.
    pub fn take_used(&mut self, v: usize) -> Vec<(u32, u32)> {
        if let Some(r) = self.packed.get_mut(v) {
            return r.take_used(&self.mem);
        }
        self.rings[v].take_used(&self.mem)
    }

    /// Writes a transmit buffer: 12-byte zero header then `frame`; returns its address.
    pub fn tx_buffer(&mut self, frame: &[u8]) -> (u64, u32) {
        self.tx_buffer_with(&VirtioNetHdr::default(), frame)
    }

    /// Writes a transmit buffer: `hdr` then `frame`; returns its address.
    pub fn tx_buffer_with(&mut self, hdr: &VirtioNetHdr, frame: &[u8]) -> (u64, u32) {
        let len = (NET_HDR_LEN + frame.len()) as u64;
        let a = self.alloc(len);
        self.mem
            .write_slice(&hdr.to_bytes(), GuestAddress(a))
            .unwrap();
        self.mem
            .write_slice(frame, GuestAddress(a + NET_HDR_LEN as u64))
            .unwrap();
        (a, len as u32)
    }
    /// Posts `n` receive buffers of `len` bytes on vring 0 (not yet published): (chain
    /// head or buffer id, buffer address) each.
    pub fn post_rx_buffers(&mut self, n: usize, len: u32) -> Vec<(u16, u64)> {
        (0..n)
            .map(|_| {
                let a = self.alloc(u64::from(len));
                (self.add_chain(0, &[(a, len, super::DESC_F_WRITE)]), a)
            })
            .collect()
    }

    /// `num_buffers` of the virtio-net header the device wrote at `addr`.
    pub fn num_buffers(&self, addr: u64) -> u16 {
        let h = self.read(addr, NET_HDR_LEN);
        u16::from_le_bytes([h[10], h[11]])
    }

    /// `len` bytes of guest memory at `addr`.
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.mem.read_slice(&mut b, GuestAddress(addr)).unwrap();
        b
    }

    /// True if the call eventfd of vring `v` was signalled (and consumes it).
    pub fn called(&self, v: usize) -> bool {
        self.calls[v].read().is_ok()
    }
}
