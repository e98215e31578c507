//! Where everything lives in a split virtqueue (virtio 1.1 §2.6): descriptor flags, the
//! bytes of one descriptor, and the offset of every field of the available and used rings,
//! as functions of the queue size. All of it is little-endian, as virtio 1.x requires.
//!
//! Both sides read from here: the device ([`super::SplitRing`]) and the guest-side test
//! driver (`vhost::test_utils`), so an offset is written down once, next to its section of
//! the spec, instead of as `4 + 8 * size` at each use.

/// `VIRTQ_DESC_F_NEXT`: the chain continues in `next` (§2.6.5).
pub const DESC_F_NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the buffer is device-writable (§2.6.5).
pub const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_DESC_F_INDIRECT`: the buffer is a table of descriptors (§2.6.5.3).
pub const DESC_F_INDIRECT: u16 = 4;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device does not want kicks (§2.6.10).
pub const USED_F_NO_NOTIFY: u16 = 1;
/// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver does not want interrupts (§2.6.7).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// The largest queue size (§2.6: "The maximum Queue Size value is 32768").
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// `struct virtq_desc` (§2.6.5): one 16-byte entry of a descriptor table (the ring's own,
/// or an indirect one).
pub mod desc {
    /// `le64 addr`: guest physical address of the buffer.
    pub const ADDR: usize = 0;
    /// `le32 len`: its length in bytes.
    pub const LEN: usize = 8;
    /// `le16 flags`: `DESC_F_*`.
    pub const FLAGS: usize = 12;
    /// `le16 next`: the next descriptor of the chain, when `DESC_F_NEXT` is set.
    pub const NEXT: usize = 14;
    /// Bytes of one descriptor.
    pub const SIZE: u64 = 16;
    /// Alignment of the descriptor table (§2.6, the alignment table).
    pub const ALIGN: u64 = 16;

    /// Offset of descriptor `idx` in its table.
    #[inline(always)]
    pub const fn entry(idx: u16) -> u64 {
        SIZE * idx as u64
    }

    /// Bytes of a table of `size` descriptors.
    #[inline(always)]
    pub const fn table_len(size: u32) -> u64 {
        SIZE * size as u64
    }
}

/// Both rings start alike (§2.6.6, §2.6.8): `le16 flags`, `le16 idx` (free-running), then
/// `size` entries, then one `le16` event field. Offsets for entries of `elem` bytes.
mod ring {
    /// `le16 flags`.
    pub const FLAGS: u64 = 0;
    /// `le16 idx`.
    pub const IDX: u64 = 2;
    /// The first entry.
    pub const RING: u64 = 4;

    /// Offset of entry `slot`.
    #[inline(always)]
    pub const fn entry(elem: u64, slot: u64) -> u64 {
        RING + elem * slot
    }

    /// Bytes of a ring of `size` entries with its event field.
    #[inline(always)]
    pub const fn len(elem: u64, size: u32) -> u64 {
        entry(elem, size as u64) + 2
    }
}

/// `struct virtq_avail` (§2.6.6): `flags` (`AVAIL_F_NO_INTERRUPT`), `idx`, `le16 ring[size]`
/// of chain heads, then `used_event` (read only with `VIRTIO_F_EVENT_IDX`).
pub mod avail {
    pub use super::ring::{FLAGS, IDX, RING};
    /// Bytes of one ring entry.
    pub const ELEM_SIZE: u64 = 2;
    /// Alignment of the available ring (§2.6, the alignment table).
    pub const ALIGN: u64 = 2;

    /// Offset of ring entry `slot` (`slot < size`).
    #[inline(always)]
    pub const fn entry(slot: u64) -> u64 {
        super::ring::entry(ELEM_SIZE, slot)
    }

    /// Offset of `used_event`, just past the ring of `size` entries (§2.6.7.2).
    #[inline(always)]
    pub const fn used_event(size: u32) -> u64 {
        entry(size as u64)
    }

    /// Bytes of the available ring of a queue of `size`, `used_event` included: 6 + 2 size.
    #[inline(always)]
    pub const fn ring_len(size: u32) -> u64 {
        super::ring::len(ELEM_SIZE, size)
    }
}

/// `struct virtq_used` (§2.6.8): `flags` (`USED_F_NO_NOTIFY`), `idx`, `ring[size]` of
/// `struct virtq_used_elem { le32 id; le32 len; }`, then `avail_event` (written only with
/// `VIRTIO_F_EVENT_IDX`).
pub mod used {
    pub use super::ring::{FLAGS, IDX, RING};
    /// Bytes of one used element.
    pub const ELEM_SIZE: u64 = 8;
    /// Offset of `id` (the chain's head) in a used element.
    pub const ELEM_ID: usize = 0;
    /// Offset of `len` (bytes written into the chain) in a used element.
    pub const ELEM_LEN: usize = 4;
    /// Alignment of the used ring (§2.6, the alignment table).
    pub const ALIGN: u64 = 4;

    /// Offset of used element `slot` (`slot < size`).
    #[inline(always)]
    pub const fn entry(slot: u64) -> u64 {
        super::ring::entry(ELEM_SIZE, slot)
    }

    /// Offset of `avail_event`, just past the ring of `size` elements (§2.6.10).
    #[inline(always)]
    pub const fn avail_event(size: u32) -> u64 {
        entry(size as u64)
    }

    /// Bytes of the used ring of a queue of `size`, `avail_event` included: 6 + 8 size.
    #[inline(always)]
    pub const fn ring_len(size: u32) -> u64 {
        super::ring::len(ELEM_SIZE, size)
    }

    /// A used element as the device writes it.
    #[inline(always)]
    pub fn elem(id: u16, len: u32) -> [u8; ELEM_SIZE as usize] {
        let mut e = [0u8; ELEM_SIZE as usize];
        e[ELEM_ID..ELEM_LEN].copy_from_slice(&u32::from(id).to_le_bytes());
        e[ELEM_LEN..].copy_from_slice(&len.to_le_bytes());
        e
    }
}

/// One descriptor, copied out of guest memory (or about to be written into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Guest physical address of the buffer (or of an indirect table).
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// `DESC_F_*`.
    pub flags: u16,
    /// Next descriptor of the chain when `DESC_F_NEXT` is set.
    pub next: u16,
}

impl Descriptor {
    /// A descriptor as the driver wrote it (§2.6.5).
    #[inline(always)]
    pub fn from_bytes(b: &[u8; desc::SIZE as usize]) -> Descriptor {
        let (a, l, f, n) = (desc::ADDR, desc::LEN, desc::FLAGS, desc::NEXT);
        let mut addr = [0u8; 8];
        addr.copy_from_slice(&b[a..l]);
        Descriptor {
            addr: u64::from_le_bytes(addr),
            len: u32::from_le_bytes([b[l], b[l + 1], b[l + 2], b[l + 3]]),
            flags: u16::from_le_bytes([b[f], b[f + 1]]),
            next: u16::from_le_bytes([b[n], b[n + 1]]),
        }
    }

    /// The descriptor's 16 bytes as a driver writes them.
    pub fn to_bytes(&self) -> [u8; desc::SIZE as usize] {
        let mut b = [0u8; desc::SIZE as usize];
        b[desc::ADDR..desc::LEN].copy_from_slice(&self.addr.to_le_bytes());
        b[desc::LEN..desc::FLAGS].copy_from_slice(&self.len.to_le_bytes());
        b[desc::FLAGS..desc::NEXT].copy_from_slice(&self.flags.to_le_bytes());
        b[desc::NEXT..].copy_from_slice(&self.next.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// The sizes §2.6 gives for a queue of `size`: 16 size, 6 + 2 size, 6 + 8 size.
    #[test]
    fn ring_sizes_match_the_spec() {
        for size in [1u32, 256, 32768] {
            let s = u64::from(size);
            assert_eq!(desc::table_len(size), 16 * s);
            assert_eq!(avail::ring_len(size), 6 + 2 * s);
            assert_eq!(used::ring_len(size), 6 + 8 * s);
            assert_eq!(avail::used_event(size), 4 + 2 * s);
            assert_eq!(used::avail_event(size), 4 + 8 * s);
        }
    }

    /// Hand-written bytes of one descriptor, both ways.
    #[test]
    fn descriptor_bytes() {
        let bytes = [
            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // addr
            0x44, 0x33, 0x22, 0x11, // len
            0x03, 0x00, // flags: NEXT | WRITE
            0x07, 0x00, // next
        ];
        let d = Descriptor::from_bytes(&bytes);
        assert_eq!(
            d,
            Descriptor {
                addr: 0x1122_3344_5566_7788,
                len: 0x1122_3344,
                flags: DESC_F_NEXT | DESC_F_WRITE,
                next: 7,
            }
        );
        assert_eq!(d.to_bytes(), bytes);
        assert_eq!(used::elem(5, 0x0102_0304), [5, 0, 0, 0, 4, 3, 2, 1]);
    }
}
