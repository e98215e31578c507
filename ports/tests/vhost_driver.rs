//! A small virtio driver for tests: plays the guest (and the VMM) against a `VhostUserPort`
//! with the `vhost` crate's `Frontend`, over a memfd both sides map. Included by the
//! `vhost_*` test files with `#[path]`; built alone it has no tests.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::memfd::{memfd_create, MFdFlags};
use ports::vhost::handler::{
    VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1,
    VIRTIO_NET_F_MRG_RXBUF,
};
use ports::vhost::{VhostUserPort, VringStats};
use ports::Packet;
use vhost::vhost_user::message::{
    VhostUserHeaderFlag, VhostUserProtocolFeatures, VhostUserVirtioFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

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

pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;
pub const DESC_F_INDIRECT: u16 = 4;

/// A temp dir holding a socket path.
pub struct SockDir {
    pub dir: tempfile::TempDir,
}

impl Default for SockDir {
    fn default() -> SockDir {
        SockDir::new()
    }
}

impl SockDir {
    pub fn new() -> SockDir {
        SockDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The driver side of one split ring.
#[derive(Debug, Clone)]
pub struct DriverRing {
    pub vring: usize,
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub next_avail: u16,
    pub next_desc: u16,
    pub last_used: u16,
}

impl DriverRing {
    fn new(vring: usize, size: u16) -> DriverRing {
        DriverRing::at(vring, size, vring as u64 * RING_AREA)
    }

    /// A ring of `size` entries whose descriptor table starts at guest address `base`.
    pub fn at(vring: usize, size: u16, base: u64) -> DriverRing {
        DriverRing {
            vring,
            size,
            desc: base,
            avail: base + 16 * u64::from(size),
            // used ring 4-aligned, placed after avail (6 + 2 * size bytes), rounded up.
            used: (base + 16 * u64::from(size) + 6 + 2 * u64::from(size) + 3) & !3,
            next_avail: 0,
            next_desc: 0,
            last_used: 0,
        }
    }
}

/// A connected guest: memory, frontend, eventfds.
pub struct Guest {
    pub mem: GuestMemoryMmap,
    pub memfd: File,
    pub fe: Frontend,
    pub kicks: Vec<EventFd>,
    pub calls: Vec<EventFd>,
    pub rings: Vec<DriverRing>,
    pub features: u64,
    next_buf: u64,
}

pub fn memfd(size: u64) -> File {
    let fd = memfd_create(c"vswitch-test-guest", MFdFlags::MFD_ALLOW_SEALING).unwrap();
    let f = File::from(fd);
    f.set_len(size).unwrap();
    f
}

/// Features a test can ask for (besides VERSION_1 and PROTOCOL_FEATURES, always acked).
pub const MRG: u64 = VIRTIO_NET_F_MRG_RXBUF;
pub const EVENT_IDX: u64 = VIRTIO_F_RING_EVENT_IDX;
pub const INDIRECT: u64 = VIRTIO_F_RING_INDIRECT_DESC;
pub const IN_ORDER: u64 = ports::vhost::handler::VIRTIO_F_IN_ORDER;

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
            features,
            next_buf: BUF_BASE,
        };
        for v in 0..2 * usize::from(pairs) {
            g.kicks.push(EventFd::new(libc::EFD_NONBLOCK).unwrap());
            g.calls.push(EventFd::new(libc::EFD_NONBLOCK).unwrap());
            let r = DriverRing::new(v, QSIZE);
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

    pub fn start_vring_at(
        &mut self,
        r: &DriverRing,
        desc_va: u64,
        avail_va: u64,
        used_va: u64,
    ) -> vhost::Result<()> {
        let v = r.vring;
        self.fe.set_vring_num(v, r.size)?;
        self.fe.set_vring_addr(
            v,
            &VringConfigData {
                queue_max_size: r.size,
                queue_size: r.size,
                flags: 0,
                desc_table_addr: desc_va,
                used_ring_addr: used_va,
                avail_ring_addr: avail_va,
                log_addr: None,
            },
        )?;
        self.fe.set_vring_base(v, r.next_avail)?;
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
        let at = self.rings[v].desc + 16 * u64::from(i);
        write_desc_at(&self.mem, at, addr, len, flags, next);
    }

    /// Adds a chain of fresh descriptors (`bufs`: address, length, flags without NEXT) and puts
    /// its head in the avail ring (not yet published). Returns the head.
    pub fn add_chain(&mut self, v: usize, bufs: &[(u64, u32, u16)]) -> u16 {
        let size = self.rings[v].size;
        let head = self.rings[v].next_desc;
        for (k, &(addr, len, flags)) in bufs.iter().enumerate() {
            let i = (head + k as u16) % size;
            let last = k + 1 == bufs.len();
            let next = (i + 1) % size;
            let f = if last { flags } else { flags | DESC_F_NEXT };
            self.write_desc(v, i, addr, len, f, if last { 0 } else { next });
        }
        self.rings[v].next_desc = (head + bufs.len() as u16) % size;
        self.push_avail(v, head);
        head
    }

    /// Puts `head` in the next avail slot (not yet published).
    pub fn push_avail(&mut self, v: usize, head: u16) {
        let r = &mut self.rings[v];
        let slot = u64::from(r.next_avail % r.size);
        self.mem
            .write_obj(head.to_le(), GuestAddress(r.avail + 4 + 2 * slot))
            .unwrap();
        r.next_avail = r.next_avail.wrapping_add(1);
    }

    /// Publishes the avail index and kicks.
    pub fn publish(&mut self, v: usize) {
        let idx = self.rings[v].next_avail;
        self.set_avail_idx(v, idx);
        self.kicks[v].write(1).unwrap();
    }

    /// Stores avail.idx directly (hostile tests use any value).
    pub fn set_avail_idx(&self, v: usize, idx: u16) {
        fence(Ordering::Release);
        self.mem
            .store(
                idx.to_le(),
                GuestAddress(self.rings[v].avail + 2),
                Ordering::Release,
            )
            .unwrap();
    }

    pub fn set_avail_flags(&self, v: usize, flags: u16) {
        self.mem
            .write_obj(flags.to_le(), GuestAddress(self.rings[v].avail))
            .unwrap();
    }

    /// used_event lives after the avail ring.
    pub fn set_used_event(&self, v: usize, idx: u16) {
        let r = &self.rings[v];
        self.mem
            .write_obj(
                idx.to_le(),
                GuestAddress(r.avail + 4 + 2 * u64::from(r.size)),
            )
            .unwrap();
    }

    pub fn used_flags(&self, v: usize) -> u16 {
        self.mem.read_obj(GuestAddress(self.rings[v].used)).unwrap()
    }

    pub fn avail_event(&self, v: usize) -> u16 {
        let r = &self.rings[v];
        self.mem
            .read_obj(GuestAddress(r.used + 4 + 8 * u64::from(r.size)))
            .unwrap()
    }

    pub fn used_idx(&self, v: usize) -> u16 {
        self.mem
            .load(GuestAddress(self.rings[v].used + 2), Ordering::Acquire)
            .unwrap()
    }

    /// New used elements (id, len) since the last call.
    pub fn take_used(&mut self, v: usize) -> Vec<(u32, u32)> {
        let idx = self.used_idx(v);
        let r = &mut self.rings[v];
        let mut out = Vec::new();
        while r.last_used != idx {
            let slot = u64::from(r.last_used % r.size);
            let at = GuestAddress(r.used + 4 + 8 * slot);
            let id: u32 = self.mem.read_obj(at).unwrap();
            let len: u32 = self.mem.read_obj(GuestAddress(at.0 + 4)).unwrap();
            out.push((id, len));
            r.last_used = r.last_used.wrapping_add(1);
        }
        out
    }

    /// Writes a transmit buffer: 12-byte zero header then `frame`; returns its address.
    pub fn tx_buffer(&mut self, frame: &[u8]) -> (u64, u32) {
        let len = 12 + frame.len() as u64;
        let a = self.alloc(len);
        self.mem.write_slice(&[0u8; 12], GuestAddress(a)).unwrap();
        self.mem.write_slice(frame, GuestAddress(a + 12)).unwrap();
        (a, len as u32)
    }

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

pub fn write_desc_at(mem: &GuestMemoryMmap, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..].copy_from_slice(&next.to_le_bytes());
    mem.write_slice(&b, GuestAddress(at)).unwrap();
}

/// A memory table entry for `file`.
pub fn region(file: &File, gpa: u64, size: u64, va: u64, off: u64) -> VhostUserMemoryRegionInfo {
    use std::os::fd::AsRawFd;
    VhostUserMemoryRegionInfo {
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: va,
        mmap_offset: off,
        mmap_handle: file.as_raw_fd(),
    }
}

/// A test frame: `len` bytes, pattern seeded by `seed`.
pub fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Packets holding `frames`.
pub fn packets(frames: &[Vec<u8>]) -> Vec<Packet> {
    frames
        .iter()
        .map(|f| {
            let mut p = Packet::new();
            assert!(p.copy_from(f));
            p
        })
        .collect()
}

pub fn burst() -> Vec<Packet> {
    vec![Packet::new(); ports::BURST]
}

/// Waits until `cond` holds (or panics after 5 s).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn vring_stats(port: &VhostUserPort, v: usize) -> VringStats {
    port.stats().vrings[v]
}

/// True if `fd` is readable now.
pub fn readable(fd: impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).unwrap() > 0
}
