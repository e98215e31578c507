//! The datapath's side of guest offloads ([`crate::offload`]): a frame's request is checked
//! against the frame when it comes in, carried with it through the pipeline, and either
//! handed to an output that takes it as it is or finished in software for one that does
//! not (Linux's `validate_xmit_skb`, OVS's `netdev_send_prepare_batch`).
//!
//! Flow rules and `normal` see the same key whether or not a frame carries a request: the
//! check refuses a checksum field that overlaps what the key is read from, and finishing
//! happens at output, after the decision.

use std::time::Instant;

use flowtable::{FlowKey, PortNo};
use ports::{Offload, Packet, VirtioNetHdr};
use tracing::warn;

use crate::datapath::log_limit::LogLimit;
use crate::offload::{csum, write_segment, CheckOffload, Gso, OffloadRequest};
use crate::stats::{DropReason, PmdStats};

/// Checks the offload request of each frame of a burst from `in_port` against the frame. A
/// request that holds is kept in the form an output needs ([`normalized`]); a frame whose
/// request lies is dropped (`bad_offload`, and the port's `rx_offload_bad`), logged at most
/// every few seconds. The frames left, with their keys, are moved to the front; returns how
/// many there are.
pub(super) fn ingress_burst(
    in_port: PortNo,
    burst: &mut [Packet],
    keys: &mut [FlowKey],
    stats: &mut PmdStats,
    log: &mut LogLimit,
    now: Instant,
) -> usize {
    let n = burst.len().min(keys.len());
    let (mut w, mut accepted, mut bad) = (0, 0, 0);
    for i in 0..n {
        let pkt = &mut burst[i];
        if pkt.offload().requests() {
            match pkt.offload().header(0).offload_request(pkt.data()) {
                Ok(request) => {
                    let checked = normalized(pkt.offload(), &request);
                    pkt.set_offload(checked);
                    accepted += 1;
                }
                Err(e) => {
                    bad += 1;
                    if let Some(suppressed) = log.allow(now) {
                        warn!(
                            port = %in_port,
                            suppressed,
                            "frame dropped: its virtio-net header lies about it: {e}"
                        );
                    }
                    continue;
                }
            }
        } else {
            // Flags such as DATA_VALID ask for nothing; nothing goes on.
            pkt.clear_offload();
        }
        keys[w] = keys[i];
        burst.swap(w, i);
        w += 1;
    }
    let pc = stats.port_mut(in_port);
    pc.rx_offload += accepted;
    pc.rx_offload_bad += bad;
    stats.drops[DropReason::BadOffload as usize] += bad;
    w
}

/// The request as an output gets it once checked: `NEEDS_CSUM` with the checksum's place,
/// and the segmentation type and size; nothing else (`DATA_VALID` asks for nothing).
fn normalized(asked: &Offload, request: &OffloadRequest) -> Offload {
    let mut out = Offload::NONE;
    if let Some(c) = request.csum {
        out.flags = VirtioNetHdr::F_NEEDS_CSUM;
        out.csum_start = c.start;
        out.csum_offset = c.offset;
    }
    if let Some(gso) = &request.gso {
        out.gso_type = asked.gso_type;
        out.gso_size = gso.size();
    }
    out
}

/// What an output that cannot take a frame's request needs done first.
pub(super) enum Finish {
    /// The checksum was filled in place and the request cleared: the frame goes as it is
    /// (and so to every later output of it).
    Filled,
    /// The frame must be cut into [`Gso::segment_count`] segments ([`build_segment`]); the
    /// frame itself is left as it is for other outputs.
    Segment(Gso),
    /// The request no longer fits the frame (an action edited it past what a request can
    /// describe: a third VLAN tag); the copy for this output is dropped.
    Unfit,
}

/// Finishes `pkt`'s checksum in place, or says how to segment it: see [`Finish`]. The
/// request was checked when the frame came in; it is checked again here because actions
/// (VLAN push and pop) may have moved the headers since.
pub(super) fn finish(pkt: &mut Packet) -> Finish {
    let Ok(request) = pkt.offload().header(0).offload_request(pkt.data()) else {
        return Finish::Unfit;
    };
    if let Some(gso) = request.gso {
        return Finish::Segment(gso);
    }
    if let Some(c) = request.csum {
        let (start, offset) = (usize::from(c.start), usize::from(c.offset));
        if csum::fill_partial(pkt.data_mut(), start, offset).is_err() {
            return Finish::Unfit;
        }
    }
    pkt.clear_offload();
    Finish::Filled
}

/// Builds segment `index` of `frame` (as [`finish`] asked) into `seg`, with no offload
/// request. False if the frame is not the one `gso` was checked against.
pub(super) fn build_segment(frame: &[u8], gso: &Gso, index: usize, seg: &mut Packet) -> bool {
    let Some(dst) = seg.prepare(gso.segment_len(index)) else {
        return false;
    };
    write_segment(frame, gso, index, dst).is_ok()
}
