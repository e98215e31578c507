//! The guest's transmit queue (virtio-net `transmitq`, §5.1.6.2): the device reads frames out
//! of it. [`dequeue`] takes a burst of chains, copies each frame once into a switch buffer
//! (with the virtio-net header in front of it when the guest acked `VIRTIO_NET_F_CSUM`: the
//! header becomes the packet's offload request) and hands every chain back with used
//! length 0.
//!
//! The common chain, one read-only descriptor holding header and frame, takes a fast path
//! with the same checks as the general walk; whatever it declines, the general walk (the
//! ring's `collect`) reads again and decides on its own read.

use super::{RingCounters, NET_HDR_LEN};
use crate::offload::Offload;
use crate::packet::{Packet, MAX_FRAME};
use crate::port::{BURST_WORK, SEGMENT_WORK};
use crate::vhost::split::layout::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::vhost::virtq::{QueueError, Virtq};

/// Takes up to `pkts.len()` frames from a guest transmit ring into `pkts[..n]`, strips the
/// virtio-net header, completes the chains (used length 0) and returns `n` and whether the
/// driver must be notified. Bad chains are dropped and counted; ring faults break the ring.
#[inline(always)]
pub(crate) fn dequeue<Q: Virtq>(
    q: &mut Q,
    pkts: &mut [Packet],
    cnt: &mut RingCounters,
) -> (usize, bool) {
    if !q.begin_burst() {
        return (0, false);
    }
    let over_cap = cnt.guest_errors;
    let offloads = q.io().tx_offloads;
    // The burst's work so far (BURST_WORK): bytes taken, and the segments they ask for.
    let bytes_before = cnt.bytes;
    let mut segment_work = 0;
    let mut got = 0;
    for _ in 0..pkts.len() {
        let Some(mut head) = q.next_chain() else {
            break;
        };
        let pkt = &mut pkts[got];
        // The fast path reads one descriptor (at most 32 a burst) and is not counted; the
        // general walk spends the budget.
        let r = if read_tx_fast(q, &head, pkt, offloads) {
            Ok(true)
        } else if !q.can_walk() {
            // The rest waits for the next burst: the driver made this one expensive.
            break;
        } else {
            read_tx_chain(q, &mut head, pkt, offloads)
        };
        match r {
            Ok(true) => {
                let pkt = &pkts[got];
                cnt.packets += 1;
                cnt.bytes += pkt.len() as u64;
                if offloads {
                    segment_work += pkt.offload().segments_asked(pkt.len()) * SEGMENT_WORK;
                }
                got += 1;
            }
            Ok(false) => cnt.dropped_bad_length += 1,
            // Returned unused below, like a chain of bad length.
            Err(QueueError::ChainOverCap) => cnt.guest_errors += 1,
            Err(e) => {
                q.set_fault(e);
                break;
            }
        }
        q.complete(&head, 0);
        if (cnt.bytes - bytes_before) as usize + segment_work >= BURST_WORK {
            // The rest waits: this guest had its share of the PMD for this turn.
            break;
        }
    }
    // Frames read from a repaired page are zeros, not the guest's: none goes on.
    let Some(notify) = q.end_burst(cnt.guest_errors != over_cap) else {
        return (0, false);
    };
    cnt.notifications += u64::from(notify);
    (got, notify)
}

/// The common transmit chain: one read-only descriptor holding header and frame, in the
/// region of the last buffer. True when the frame was copied into `pkt` (with `offloads`,
/// header and frame in one copy, the header's request kept as the packet's, checked by the
/// switch before anything acts on it); false hands the chain to [`read_tx_chain`], which
/// reads the descriptor again and checks and reports everything (this one only picks the
/// path, so that is no double fetch: every decision is made on one read).
#[inline(always)]
fn read_tx_fast<Q: Virtq>(q: &Q, head: &Q::Head, pkt: &mut Packet, offloads: bool) -> bool {
    let Some(d) = q.head_desc(head) else {
        return false;
    };
    if d.flags & (DESC_F_NEXT | DESC_F_INDIRECT | DESC_F_WRITE) != 0 {
        return false;
    }
    let Some(frame_len) = (d.len as usize).checked_sub(NET_HDR_LEN) else {
        return false;
    };
    if !offloads {
        let Some(addr) = d.addr.checked_add(NET_HDR_LEN as u64) else {
            return false;
        };
        return match pkt.prepare(frame_len) {
            Some(dst) => q.read_buf(dst, addr),
            None => false,
        };
    }
    let Some(dst) = pkt.prepare_with_header(frame_len) else {
        return false;
    };
    if !q.read_buf(dst, d.addr) {
        return false;
    }
    let hdr = dst_header(dst);
    set_request(pkt, hdr);
    true
}

/// The header at the front of what [`Packet::prepare_with_header`] returned.
#[inline(always)]
fn dst_header(dst: &[u8]) -> Option<[u8; NET_HDR_LEN]> {
    dst.first_chunk().copied()
}

/// Keeps the request of the header read in front of the frame.
#[inline(always)]
fn set_request(pkt: &mut Packet, hdr: Option<[u8; NET_HDR_LEN]>) {
    if let Some(hdr) = hdr {
        pkt.set_offload(Offload::from_header_bytes(&hdr));
    }
}

/// Gathers one transmit chain into `pkt` (one copy: header and frame; the header's request
/// kept with `offloads`). `Ok(false)`: the chain's length is unusable and it is dropped.
fn read_tx_chain<Q: Virtq>(
    q: &mut Q,
    head: &mut Q::Head,
    pkt: &mut Packet,
    offloads: bool,
) -> Result<bool, QueueError> {
    q.start_gather();
    let total = q.collect(head, false)?;
    let Some(frame_len) = total.checked_sub(NET_HDR_LEN as u64) else {
        return Ok(false);
    };
    if frame_len > MAX_FRAME as u64 {
        return Ok(false);
    }
    let Some(dst) = pkt.prepare_with_header(frame_len as usize) else {
        return Ok(false);
    };
    let mut off = 0usize;
    for seg in q.segs() {
        if seg.len == 0 {
            continue;
        }
        let addr = seg.addr_at(0)?;
        // seg.len <= total - off by construction (the segments add up to `total`).
        let end = off + seg.len as usize;
        // Double-fetch note: this is the only read of these bytes; header and frame are
        // switch memory from here on, so a guest rewriting its buffer cannot change what the
        // pipeline parses (the TOCTOU Firecracker documents does not arise).
        if !q.read_buf(&mut dst[off..end], addr) {
            return Err(QueueError::BufferOutsideMemory { addr, len: seg.len });
        }
        off = end;
    }
    if offloads {
        let hdr = dst_header(dst);
        set_request(pkt, hdr);
    }
    Ok(true)
}
