//! What a frame's source left for the switch to finish (the virtio-net header it came with),
//! and what an output takes unfinished.
//!
//! A guest that negotiated `VIRTIO_NET_F_CSUM` and `HOST_TSO4`/`6` hands over TCP frames of up
//! to 64 KiB whose checksum is partial, described by the 12-byte `struct virtio_net_hdr_v1` in
//! front of each (virtio 1.2 §5.1.6). A vhost-user port copies that header into the frame's
//! [`crate::Packet`] (switch memory, read once) as a [`VirtioNetHdr`]; the switch checks it
//! against the frame and either hands the frame on as it is to an output whose
//! [`TxOffloads`] take it (a guest that negotiated `GUEST_CSUM`/`GUEST_TSO4`/`6`), which then
//! gets the header in front of the frame, or finishes the work in software first.

/// `struct virtio_net_hdr_v1`: the 12 bytes in front of every frame on a virtio-net queue
/// once `VIRTIO_F_VERSION_1` is negotiated, all fields little-endian.
///
/// Only a description of what the source wrote: the switch checks it against the frame
/// before acting on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    /// `VIRTIO_NET_HDR_F_*` bits.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`, possibly with [`VirtioNetHdr::GSO_ECN`].
    pub gso_type: u8,
    /// The guest's idea of the header length; a hint only (Linux puts the length of the
    /// packet's linear part there), never used.
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS), with a `gso_type`.
    pub gso_size: u16,
    /// Where the partial checksum's summing starts, with `F_NEEDS_CSUM`.
    pub csum_start: u16,
    /// Where the checksum field is from `csum_start`, with `F_NEEDS_CSUM`.
    pub csum_offset: u16,
    /// Buffers a received packet spans (`VIRTIO_NET_F_MRG_RXBUF`); unused on transmit.
    pub num_buffers: u16,
}

impl VirtioNetHdr {
    /// The header's length on the queue.
    pub const LEN: usize = 12;

    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` on is partial.
    pub const F_NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was checked (receive path only).
    pub const F_DATA_VALID: u8 = 2;
    /// `VIRTIO_NET_HDR_F_RSC_INFO`: coalescing counts in the checksum fields (receive path
    /// only).
    pub const F_RSC_INFO: u8 = 4;

    /// `VIRTIO_NET_HDR_GSO_NONE`: no segmentation.
    pub const GSO_NONE: u8 = 0;
    /// `VIRTIO_NET_HDR_GSO_TCPV4`: TCP over IPv4 segmentation.
    pub const GSO_TCPV4: u8 = 1;
    /// `VIRTIO_NET_HDR_GSO_UDP`: UDP fragmentation (UFO).
    pub const GSO_UDP: u8 = 3;
    /// `VIRTIO_NET_HDR_GSO_TCPV6`: TCP over IPv6 segmentation.
    pub const GSO_TCPV6: u8 = 4;
    /// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (USO).
    pub const GSO_UDP_L4: u8 = 5;
    /// `VIRTIO_NET_HDR_GSO_ECN`: the TCP burst has CWR set.
    pub const GSO_ECN: u8 = 0x80;

    /// Reads the header as it is on the queue.
    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> Self {
        let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        VirtioNetHdr {
            flags: bytes[0],
            gso_type: bytes[1],
            hdr_len: le16(2),
            gso_size: le16(4),
            csum_start: le16(6),
            csum_offset: le16(8),
            num_buffers: le16(10),
        }
    }

    /// The header as it is on the queue.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0; Self::LEN];
        bytes[0] = self.flags;
        bytes[1] = self.gso_type;
        for (at, field) in [
            (2, self.hdr_len),
            (4, self.gso_size),
            (6, self.csum_start),
            (8, self.csum_offset),
            (10, self.num_buffers),
        ] {
            bytes[at..at + 2].copy_from_slice(&field.to_le_bytes());
        }
        bytes
    }

    /// True when the header asks for something: a partial checksum or segmentation (other
    /// flags and fields describe nothing to finish).
    pub fn requests(&self) -> bool {
        Offload::from_header(self).requests()
    }
}

/// A frame's offload request as it travels with the frame in its [`crate::Packet`]: the
/// fields of the [`VirtioNetHdr`] that ask for work, in 8 bytes (the header's `hdr_len` is a
/// hint no receiver relies on, `num_buffers` belongs to the receive queue).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
// `flags` and `gso_type` side by side for [`Offload::requests`], asked of every frame.
#[repr(C)]
pub struct Offload {
    /// `VIRTIO_NET_HDR_F_*` bits.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`, possibly with [`VirtioNetHdr::GSO_ECN`].
    pub gso_type: u8,
    /// Payload bytes per segment, with a `gso_type`.
    pub gso_size: u16,
    /// Where the partial checksum's summing starts, from the start of the frame.
    pub csum_start: u16,
    /// Where the checksum field is from `csum_start`.
    pub csum_offset: u16,
}

impl Offload {
    /// No request.
    pub const NONE: Offload = Offload {
        flags: 0,
        gso_type: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// The request fields of `hdr`.
    #[inline]
    pub fn from_header(hdr: &VirtioNetHdr) -> Offload {
        Offload {
            flags: hdr.flags,
            gso_type: hdr.gso_type,
            gso_size: hdr.gso_size,
            csum_start: hdr.csum_start,
            csum_offset: hdr.csum_offset,
        }
    }

    /// The request fields of a header as it is on the queue (what [`VirtioNetHdr::from_bytes`]
    /// and [`Offload::from_header`] give, read straight from the bytes: every frame a guest
    /// sends comes with one).
    #[inline(always)]
    pub fn from_header_bytes(bytes: &[u8; VirtioNetHdr::LEN]) -> Offload {
        let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        Offload {
            flags: bytes[0],
            gso_type: bytes[1],
            gso_size: le16(4),
            csum_start: le16(6),
            csum_offset: le16(8),
        }
    }

    /// The header as it is on the queue for a guest: this request (`hdr_len` 0) and
    /// `num_buffers`. Every frame for a guest gets one; without a request it is all zeros
    /// but `num_buffers`.
    #[inline(always)]
    pub fn header_bytes(&self, num_buffers: u16) -> [u8; VirtioNetHdr::LEN] {
        let mut h = [0u8; VirtioNetHdr::LEN];
        if self.requests() {
            h[0] = self.flags;
            h[1] = self.gso_type;
            h[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
            h[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
            h[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        }
        h[10..].copy_from_slice(&num_buffers.to_le_bytes());
        h
    }

    /// The header that carries this request to a guest (`hdr_len` 0), with `num_buffers`.
    #[inline]
    pub fn header(&self, num_buffers: u16) -> VirtioNetHdr {
        VirtioNetHdr {
            flags: self.flags,
            gso_type: self.gso_type,
            hdr_len: 0,
            gso_size: self.gso_size,
            csum_start: self.csum_start,
            csum_offset: self.csum_offset,
            num_buffers,
        }
    }

    /// At most how many segments this request asks for on a frame of `len` bytes, headers
    /// included (0 when it asks for none): what the request may cost before it is checked,
    /// for [`crate::BURST_WORK`].
    #[inline]
    pub fn segments_asked(&self, len: usize) -> usize {
        if self.gso_type == VirtioNetHdr::GSO_NONE || self.gso_size == 0 {
            return 0;
        }
        len.div_ceil(usize::from(self.gso_size))
    }

    /// True when this asks for something: a partial checksum (`F_NEEDS_CSUM`) or
    /// segmentation; other flags ask for nothing. One 16-bit test.
    #[inline(always)]
    pub fn requests(&self) -> bool {
        let both = u16::from_le_bytes([self.flags, self.gso_type]);
        both & (u16::from(VirtioNetHdr::F_NEEDS_CSUM) | 0xff00) != 0
    }
}

/// The offloads an output takes unfinished: what a guest negotiated for its receive queue
/// (`VIRTIO_NET_F_GUEST_*`). Everything else is finished before the frame reaches the port.
/// The default takes nothing (an uplink, a guest without the features).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffloads {
    /// `GUEST_CSUM`: frames with a partial checksum (`F_NEEDS_CSUM`).
    pub csum: bool,
    /// `GUEST_TSO4`: TCP over IPv4 frames larger than the MTU, with `gso_size`.
    pub tso4: bool,
    /// `GUEST_TSO6`: the same over IPv6.
    pub tso6: bool,
    /// `GUEST_ECN`: TSO frames with [`VirtioNetHdr::GSO_ECN`].
    pub ecn: bool,
}

impl TxOffloads {
    /// Every offload the switch can pass on.
    pub const ALL: TxOffloads = TxOffloads {
        csum: true,
        tso4: true,
        tso6: true,
        ecn: true,
    };

    /// True when a frame with this (checked) request can go to the output as it is.
    #[inline]
    pub fn takes(&self, hdr: &Offload) -> bool {
        if hdr.flags & VirtioNetHdr::F_NEEDS_CSUM != 0 && !self.csum {
            return false;
        }
        if hdr.gso_type & VirtioNetHdr::GSO_ECN != 0 && !self.ecn {
            return false;
        }
        match hdr.gso_type & !VirtioNetHdr::GSO_ECN {
            VirtioNetHdr::GSO_NONE => true,
            VirtioNetHdr::GSO_TCPV4 => self.tso4,
            VirtioNetHdr::GSO_TCPV6 => self.tso6,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_little_endian() {
        let hdr = VirtioNetHdr {
            flags: 1,
            gso_type: VirtioNetHdr::GSO_TCPV4 | VirtioNetHdr::GSO_ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
            num_buffers: 3,
        };
        let bytes = hdr.to_bytes();
        assert_eq!(bytes, [1, 0x81, 66, 0, 0xa8, 5, 34, 0, 16, 0, 3, 0]);
        assert_eq!(VirtioNetHdr::from_bytes(&bytes), hdr);
        assert!(hdr.requests());
        assert!(!VirtioNetHdr::default().requests());
        let valid_only = VirtioNetHdr {
            flags: VirtioNetHdr::F_DATA_VALID,
            ..Default::default()
        };
        assert!(!valid_only.requests());
    }

    #[test]
    fn the_request_travels_in_eight_bytes_and_back() {
        assert_eq!(std::mem::size_of::<Offload>(), 8);
        let hdr = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV6,
            hdr_len: 74,
            gso_size: 1428,
            csum_start: 54,
            csum_offset: 16,
            num_buffers: 0,
        };
        let o = Offload::from_header(&hdr);
        assert!(o.requests());
        assert_eq!(Offload::from_header_bytes(&hdr.to_bytes()), o);
        let back = VirtioNetHdr {
            hdr_len: 0,
            num_buffers: 2,
            ..hdr
        };
        assert_eq!(o.header(2), back);
        assert_eq!(o.header_bytes(2), back.to_bytes());
        assert_eq!(
            Offload::NONE.header_bytes(7),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0]
        );
        let gso_only = Offload {
            gso_type: VirtioNetHdr::GSO_TCPV4,
            ..Offload::NONE
        };
        assert!(gso_only.requests());
        let valid_only = Offload {
            flags: VirtioNetHdr::F_DATA_VALID | VirtioNetHdr::F_RSC_INFO,
            ..Offload::NONE
        };
        assert!(!valid_only.requests());
        assert!(!Offload::NONE.requests());
    }

    #[test]
    fn an_output_takes_what_it_negotiated() {
        let csum = Offload {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            ..Offload::NONE
        };
        let tso4 = Offload {
            gso_type: VirtioNetHdr::GSO_TCPV4,
            gso_size: 1448,
            ..csum
        };
        let tso6_ecn = Offload {
            gso_type: VirtioNetHdr::GSO_TCPV6 | VirtioNetHdr::GSO_ECN,
            ..tso4
        };
        let uso = Offload {
            gso_type: VirtioNetHdr::GSO_UDP_L4,
            ..tso4
        };
        let none = TxOffloads::default();
        assert!(none.takes(&Offload::NONE));
        assert!(!none.takes(&csum));
        let csum_only = TxOffloads { csum: true, ..none };
        assert!(csum_only.takes(&csum));
        assert!(!csum_only.takes(&tso4));
        let tso = TxOffloads {
            tso4: true,
            tso6: true,
            ..csum_only
        };
        assert!(tso.takes(&tso4));
        assert!(!tso.takes(&tso6_ecn), "ECN needs GUEST_ECN");
        assert!(TxOffloads::ALL.takes(&tso6_ecn));
        assert!(!TxOffloads::ALL.takes(&uso), "USO is not offered");
        let tso_without_csum = TxOffloads {
            csum: false,
            ..TxOffloads::ALL
        };
        assert!(!tso_without_csum.takes(&tso4));
    }
}
