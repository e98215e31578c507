//! The guest's receive queue (virtio-net `receiveq`, §5.1.6.3-4): the device writes frames
//! into it. [`enqueue`] writes a burst, each frame behind a virtio-net header,
//! into one chain each, or with `VIRTIO_NET_F_MRG_RXBUF` across as many chains as the frame
//! needs (`num_buffers` in the header says how many).
//!
//! The common chain, one writable descriptor with room for header and frame, takes a fast
//! path; whatever it declines, the general walk reads again and decides on its own read. The
//! chains of one mergeable frame share one [`MAX_CHAIN_DESCS`] bound, so a ring of empty
//! chains costs a bounded number of descriptor reads per frame.

use super::{header, RingCounters, NET_HDR_LEN};
use crate::packet::Packet;
use crate::vhost::split::layout::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
#[cfg(doc)]
use crate::vhost::virtq::MAX_CHAIN_DESCS;
use crate::vhost::virtq::{Chain, QueueError, Seg, Virtq};

/// Writes `pkts` (header + frame) into a guest receive ring, with or without mergeable
/// buffers. Returns how many frames were taken (sent, or dropped and counted because a chain
/// was too small) and whether the driver must be notified. Stops early when the ring has no
/// buffers left or breaks.
#[inline(always)]
pub(crate) fn enqueue<Q: Virtq>(
    q: &mut Q,
    pkts: &[Packet],
    mrg: bool,
    cnt: &mut RingCounters,
) -> (usize, bool) {
    if !q.begin_burst() {
        return (0, false);
    }
    let over_cap = cnt.guest_errors;
    let mut taken = 0;
    for pkt in pkts {
        if let Some(head) = q.next_chain() {
            // One descriptor, not counted (as on transmit).
            if let Some(written) = write_rx_fast(q, &head, pkt) {
                q.complete(&head, written);
                cnt.packets += 1;
                cnt.bytes += pkt.len() as u64;
                taken += 1;
                continue;
            }
        }
        // The rest is not taken: the driver made this burst expensive.
        if !q.can_walk() {
            break;
        }
        let r = if mrg {
            enqueue_mergeable(q, pkt)
        } else {
            enqueue_single(q, pkt)
        };
        match r {
            Ok(Some(true)) => {
                cnt.packets += 1;
                cnt.bytes += pkt.len() as u64;
                taken += 1;
            }
            Ok(Some(false)) => {
                cnt.dropped_too_small += 1;
                taken += 1;
            }
            // The chains were returned unused; the frame is dropped.
            Err(QueueError::ChainOverCap) => {
                cnt.guest_errors += 1;
                taken += 1;
            }
            Ok(None) => break,
            Err(e) => {
                q.set_fault(e);
                break;
            }
        }
    }
    cnt.dropped_no_buffers += (pkts.len() - taken) as u64;
    // The buffers were a repaired page, not the guest's: nothing is handed back.
    let Some(notify) = q.end_burst(cnt.guest_errors != over_cap) else {
        return (taken, false);
    };
    cnt.notifications += u64::from(notify);
    (taken, notify)
}

/// The common receive chain: one writable descriptor with room for header and frame, in the
/// region of the last buffer. Writes both (and logs them) and returns the used length; `None`
/// hands the chain to the general path, which reads the descriptor again and decides on its
/// own read (this one only picks the path).
#[inline(always)]
fn write_rx_fast<Q: Virtq>(q: &Q, head: &Q::Head, pkt: &Packet) -> Option<u32> {
    let frame = pkt.data();
    let d = q.head_desc(head)?;
    if d.flags & (DESC_F_NEXT | DESC_F_INDIRECT | DESC_F_WRITE) != DESC_F_WRITE {
        return None;
    }
    // frame.len() <= MAX_FRAME, so this cannot overflow and fits in u32.
    let total = NET_HDR_LEN + frame.len();
    if (d.len as usize) < total {
        return None;
    }
    if !q.write_buf2(&header(pkt, 1), frame, d.addr) {
        return None;
    }
    Some(total as u32)
}

/// One frame into one chain. `None`: no buffer left.
fn enqueue_single<Q: Virtq>(q: &mut Q, pkt: &Packet) -> Result<Option<bool>, QueueError> {
    let Some(mut head) = q.next_chain() else {
        return Ok(None);
    };
    q.start_gather();
    let cap = match q.collect(&mut head, true) {
        Err(QueueError::ChainOverCap) => {
            q.complete(&head, 0);
            return Err(QueueError::ChainOverCap);
        }
        r => r?,
    };
    q.consume(&head);
    let need = (NET_HDR_LEN + pkt.len()) as u64;
    if cap < need {
        // §5.1.6.3.1 requires buffers big enough for a full frame without MRG_RXBUF; a driver
        // that posts less gets the buffer back empty.
        q.push_used(&head, 0);
        return Ok(Some(false));
    }
    let mut src = Src::new(header(pkt, 1), pkt.data());
    let written = write_segs(q, 0, q.segs().len(), &mut src)?;
    q.push_used(&head, written);
    Ok(Some(true))
}

/// One frame across as many chains as it needs, `num_buffers` set (§5.1.6.4). `None`: not
/// enough buffers for the whole frame (nothing consumed). The chains of one frame share one
/// [`MAX_CHAIN_DESCS`] bound: chains that reach it without room for the frame are returned
/// unused ([`QueueError::ChainOverCap`]), so a ring of empty chains costs at most that many
/// descriptor reads per frame, and the same chains are never walked again.
fn enqueue_mergeable<Q: Virtq>(q: &mut Q, pkt: &Packet) -> Result<Option<bool>, QueueError> {
    let need = (NET_HDR_LEN + pkt.len()) as u64;
    q.start_gather();
    q.chains().clear();
    let mut cap = 0u64;
    while cap < need {
        let Some(mut head) = q.next_chain() else {
            q.rewind();
            return Ok(None);
        };
        // Bounded: at most MAX_CHAIN_DESCS descriptors for the whole frame, each of at most
        // 2^32 bytes.
        let r = q.collect(&mut head, true);
        let segs_end = q.segs().len();
        q.chains().push(Chain { head, segs_end });
        q.skip(&head);
        match r {
            Ok(c) => cap += c,
            Err(QueueError::ChainOverCap) => {
                return_unused(q);
                q.commit();
                return Err(QueueError::ChainOverCap);
            }
            Err(e) => return Err(e),
        }
    }
    // chains.len() <= MAX_CHAIN_DESCS, so it fits num_buffers (u16).
    let n = q.chains().len();
    let mut src = Src::new(header(pkt, n as u16), pkt.data());
    let mut start = 0;
    for i in 0..n {
        let c = q.chains()[i];
        let written = write_segs(q, start, c.segs_end, &mut src)?;
        q.push_used(&c.head, written);
        start = c.segs_end;
    }
    q.commit();
    Ok(Some(true))
}

/// Completes the gathered chains with used length 0 (the driver gets its buffers back,
/// nothing in them).
fn return_unused<Q: Virtq>(q: &mut Q) {
    for i in 0..q.chains().len() {
        let c = q.chains()[i];
        q.push_used(&c.head, 0);
    }
}

/// Writes from `src` into segments `from..to` until either runs out; returns the bytes
/// written (at most 2^32: the chain was checked when collected).
fn write_segs<Q: Virtq>(
    q: &Q,
    from: usize,
    to: usize,
    src: &mut Src<'_>,
) -> Result<u32, QueueError> {
    let mut written = 0u64;
    for seg in &q.segs()[from..to] {
        // Each segment takes at most the rest of the header and then frame bytes: at most two
        // copies per segment (one for a segment that starts past the header).
        let mut off = 0u64;
        while off < seg.len && !src.is_empty() {
            let chunk = src.chunk((seg.len - off).min(usize::MAX as u64) as usize);
            let n = write_at(q, seg, off, chunk)?;
            off += n as u64;
            written += n as u64;
            src.advance(n);
        }
        if src.is_empty() {
            break;
        }
    }
    Ok(written as u32)
}

/// Writes `bytes` at `off` into `seg` (the caller checked that they fit the segment) and
/// marks them in the dirty log; returns their length.
#[inline]
fn write_at<Q: Virtq>(q: &Q, seg: &Seg, off: u64, bytes: &[u8]) -> Result<usize, QueueError> {
    let addr = seg.addr_at(off)?;
    if !q.write_buf(bytes, addr) {
        return Err(QueueError::BufferOutsideMemory {
            addr,
            len: bytes.len() as u64,
        });
    }
    Ok(bytes.len())
}

/// The byte stream written into a receive chain: header, then frame.
struct Src<'a> {
    hdr: [u8; NET_HDR_LEN],
    frame: &'a [u8],
    pos: usize,
}

impl<'a> Src<'a> {
    fn new(hdr: [u8; NET_HDR_LEN], frame: &'a [u8]) -> Src<'a> {
        Src { hdr, frame, pos: 0 }
    }

    /// The next at most `max` contiguous bytes (empty when done).
    #[inline]
    fn chunk(&self, max: usize) -> &[u8] {
        let s: &[u8] = match self.hdr.get(self.pos..) {
            Some(h) if !h.is_empty() => h,
            _ => self.frame.get(self.pos - NET_HDR_LEN..).unwrap_or(&[]),
        };
        &s[..s.len().min(max)]
    }

    /// True when every byte was taken.
    #[inline]
    fn is_empty(&self) -> bool {
        self.pos >= NET_HDR_LEN + self.frame.len()
    }

    #[inline]
    fn advance(&mut self, n: usize) {
        self.pos += n;
    }
}
