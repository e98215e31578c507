//! Where everything lives in a packed virtqueue (virtio 1.1 §2.7): one ring of 16-byte
//! descriptors that the driver makes available and the device marks used in place, and two
//! 4-byte event suppression structures (the driver's, which the device reads, and the
//! device's, which the device writes). All of it is little-endian.
//!
//! Both sides read from here: the device ([`super::PackedRing`]) and the guest-side test
//! driver (`vhost::test_utils`). In vhost-user's `SET_VRING_ADDR` the three addresses of a
//! packed ring are the descriptor ring (`desc_user_addr`), the driver event suppression area
//! (`avail_user_addr`) and the device event suppression area (`used_user_addr`).

pub use crate::vhost::split::layout::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};

/// `VIRTQ_DESC_F_AVAIL` (bit 7): with `VIRTQ_DESC_F_USED`, says whose turn a descriptor is
/// (§2.7.1).
pub const DESC_F_AVAIL: u16 = 1 << 7;
/// `VIRTQ_DESC_F_USED` (bit 15) (§2.7.1).
pub const DESC_F_USED: u16 = 1 << 15;
/// The largest queue size (§2.7: packed rings need not be a power of two; at most 32768).
pub const MAX_QUEUE_SIZE: u16 = 32768;
/// Bit 15 of an event offset, of a `SET_VRING_BASE`/`GET_VRING_BASE` value and of our own
/// ring positions: the wrap counter; bits 0-14 are the descriptor index.
pub const WRAP_BIT: u16 = 1 << 15;

/// True when a descriptor whose flags are `flags` was made available by the driver in the
/// lap whose wrap counter is `wrap` (§2.7.1: AVAIL equals the wrap counter, USED does not).
#[inline(always)]
pub const fn is_avail(flags: u16, wrap: bool) -> bool {
    let want = if wrap { DESC_F_AVAIL } else { DESC_F_USED };
    flags & (DESC_F_AVAIL | DESC_F_USED) == want
}

/// The wrap bits the device writes into a used descriptor in the lap whose wrap counter is
/// `wrap` (§2.7.1: AVAIL and USED both equal to the wrap counter); the device adds `WRITE`
/// when it wrote into the buffers (§2.7.4).
#[inline(always)]
pub const fn used_flags(wrap: bool) -> u16 {
    if wrap {
        DESC_F_AVAIL | DESC_F_USED
    } else {
        0
    }
}

/// `struct pvirtq_desc` (§2.7.13): one 16-byte entry of the ring (or of an indirect table).
pub mod desc {
    /// `le64 addr`: guest physical address of the buffer.
    pub const ADDR: usize = 0;
    /// `le32 len`: its length; in a used descriptor, the bytes the device wrote.
    pub const LEN: usize = 8;
    /// `le16 id`: the buffer id; in a used descriptor, the id of the buffer returned.
    pub const ID: usize = 12;
    /// `le16 flags`: `DESC_F_*`.
    pub const FLAGS: usize = 14;
    /// Bytes of one descriptor.
    pub const SIZE: u64 = 16;
    /// Alignment of the descriptor ring (§2.7.10.1: 16).
    pub const ALIGN: u64 = 16;

    /// Offset of descriptor `idx` in its ring or table.
    #[inline(always)]
    pub const fn entry(idx: u16) -> u64 {
        SIZE * idx as u64
    }

    /// Bytes of a ring of `size` descriptors.
    #[inline(always)]
    pub const fn ring_len(size: u32) -> u64 {
        SIZE * size as u64
    }
}

/// `struct pvirtq_event_suppress` (§2.7.14): `le16 desc` (an offset in bits 0-14 and a wrap
/// counter in bit 15, read only with `RING_EVENT_F_DESC`) and `le16 flags`.
pub mod event {
    /// `le16 desc`: the event offset and wrap counter.
    pub const OFF_WRAP: u64 = 0;
    /// `le16 flags`: `FLAG_*`.
    pub const FLAGS: u64 = 2;
    /// Bytes of the structure.
    pub const SIZE: u64 = 4;
    /// Alignment of each event suppression area (§2.7.10.1: 4).
    pub const ALIGN: u64 = 4;
    /// `RING_EVENT_FLAGS_ENABLE`: notifications wanted.
    pub const FLAG_ENABLE: u16 = 0;
    /// `RING_EVENT_FLAGS_DISABLE`: no notifications.
    pub const FLAG_DISABLE: u16 = 1;
    /// `RING_EVENT_FLAGS_DESC`: a notification when the other side passes the descriptor at
    /// `OFF_WRAP` (only with `VIRTIO_F_RING_EVENT_IDX`).
    pub const FLAG_DESC: u16 = 2;
}

/// One packed descriptor, copied out of guest memory (or about to be written into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedDesc {
    /// Guest physical address of the buffer (or of an indirect table).
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// Buffer id.
    pub id: u16,
    /// `DESC_F_*`.
    pub flags: u16,
}

impl PackedDesc {
    /// A descriptor as the driver wrote it (§2.7.13).
    #[inline(always)]
    pub fn from_bytes(b: &[u8; desc::SIZE as usize]) -> PackedDesc {
        let (a, l, i, f) = (desc::ADDR, desc::LEN, desc::ID, desc::FLAGS);
        let mut addr = [0u8; 8];
        addr.copy_from_slice(&b[a..l]);
        PackedDesc {
            addr: u64::from_le_bytes(addr),
            len: u32::from_le_bytes([b[l], b[l + 1], b[l + 2], b[l + 3]]),
            id: u16::from_le_bytes([b[i], b[i + 1]]),
            flags: u16::from_le_bytes([b[f], b[f + 1]]),
        }
    }

    /// The descriptor's 16 bytes as a driver writes them.
    pub fn to_bytes(&self) -> [u8; desc::SIZE as usize] {
        let mut b = [0u8; desc::SIZE as usize];
        b[desc::ADDR..desc::LEN].copy_from_slice(&self.addr.to_le_bytes());
        b[desc::LEN..desc::ID].copy_from_slice(&self.len.to_le_bytes());
        b[desc::ID..desc::FLAGS].copy_from_slice(&self.id.to_le_bytes());
        b[desc::FLAGS..].copy_from_slice(&self.flags.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// Hand-written bytes of one descriptor, both ways.
    #[test]
    fn descriptor_bytes() {
        let bytes = [
            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // addr
            0x44, 0x33, 0x22, 0x11, // len
            0x07, 0x00, // id
            0x83, 0x00, // flags: AVAIL | NEXT | WRITE
        ];
        let d = PackedDesc::from_bytes(&bytes);
        assert_eq!(
            d,
            PackedDesc {
                addr: 0x1122_3344_5566_7788,
                len: 0x1122_3344,
                id: 7,
                flags: DESC_F_AVAIL | DESC_F_NEXT | DESC_F_WRITE,
            }
        );
        assert_eq!(d.to_bytes(), bytes);
    }

    /// §2.7.1's table: available in lap `w` is AVAIL = w, USED = !w; used is both = w.
    #[test]
    fn avail_and_used_flags_by_wrap_counter() {
        assert!(is_avail(DESC_F_AVAIL, true));
        assert!(is_avail(DESC_F_USED, false));
        assert!(!is_avail(DESC_F_AVAIL, false));
        assert!(!is_avail(DESC_F_USED, true));
        for wrap in [false, true] {
            assert!(!is_avail(used_flags(wrap), wrap));
            assert!(!is_avail(used_flags(wrap), !wrap));
        }
    }
}
