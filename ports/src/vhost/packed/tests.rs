//! Unit tests of the packed ring and the net paths over it, driven by the guest-side
//! [`PackedDriverRing`] over one memfd region, one file per concern:
//!
//! - `start`: sizes, alignment, placement and the starting position (`SET_VRING_BASE`);
//! - `frames`: frames both ways over several laps of small rings, chains, indirect tables,
//!   mergeable buffers, buffers in two regions;
//! - `bounds`: chains over the caps, returned unused or breaking the ring, and chains the
//!   driver got wrong;
//! - `notify`: both event suppression areas, with and without EVENT_IDX;
//! - `publish`: how a burst hands its used descriptors back, and the dirty log;
//! - `random`: rings of random bytes never make the device panic.

mod bounds;
mod frames;
mod notify;
mod publish;
mod random;
mod start;

use std::io::Write;
use std::sync::Arc;

use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{Bytes, GuestAddress};

use super::PackedRing;
use crate::vhost::memory::GuestMemoryTable;
use crate::vhost::net::NET_HDR_LEN;
use crate::vhost::test_utils::PackedDriverRing;

/// Guest memory: one region of 1 MiB at guest address 0.
const MEM: u64 = 1 << 20;
/// A fresh ring's `SET_VRING_BASE`: position 0, wrap counter 1.
const FRESH: u16 = 0x8000;

/// [`MEM`] bytes of guest memory in a memfd.
fn table() -> Arc<GuestMemoryTable> {
    let mut f = crate::vhost::memory::test::memfd();
    f.write_all(&vec![0u8; MEM as usize]).unwrap();
    let r = VhostUserMemoryRegion::new(0, MEM, 0, 0);
    Arc::new(GuestMemoryTable::map(&[r], vec![f]).unwrap())
}

/// The device side of `d`, started where a fresh ring starts.
fn start(mem: &Arc<GuestMemoryTable>, d: &PackedDriverRing, event_idx: bool) -> PackedRing {
    PackedRing::new(mem.clone(), d.config(event_idx), FRESH).unwrap()
}

/// `[addr, addr + len)` cut into `n` buffers of about the same length (the last one takes
/// the rest), each with `flags`.
fn pieces(addr: u64, len: u32, n: u32, flags: u16) -> Vec<(u64, u32, u16)> {
    let piece = len / n;
    (0..n)
        .map(|k| {
            let off = k * piece;
            let l = if k + 1 == n { len - off } else { piece };
            (addr + u64::from(off), l, flags)
        })
        .collect()
}

/// Writes a transmit buffer at `addr`: a zero virtio-net header, then `frame`; returns its
/// length.
fn write_tx_buffer(mem: &GuestMemoryTable, addr: u64, frame: &[u8]) -> u32 {
    let m = mem.mem();
    m.write_slice(&[0u8; NET_HDR_LEN], GuestAddress(addr))
        .unwrap();
    m.write_slice(frame, GuestAddress(addr + NET_HDR_LEN as u64))
        .unwrap();
    (NET_HDR_LEN + frame.len()) as u32
}

/// `len` bytes of guest memory at `addr`.
fn read(mem: &GuestMemoryTable, addr: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    mem.mem().read_slice(&mut b, GuestAddress(addr)).unwrap();
    b
}

/// The bytes of buffers `bufs` in order, `len` of them in all.
fn gather(mem: &GuestMemoryTable, bufs: &[(u64, u32, u16)], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for &(a, l, _) in bufs {
        let take = (l as usize).min(len - out.len());
        out.extend(read(mem, a, take));
    }
    out
}

/// `num_buffers` of the virtio-net header at `addr`.
fn num_buffers(mem: &GuestMemoryTable, addr: u64) -> u16 {
    let h = read(mem, addr, NET_HDR_LEN);
    u16::from_le_bytes([h[10], h[11]])
}
