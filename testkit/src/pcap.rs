//! Classic pcap files (the libpcap format `tcpdump -w` writes, not pcapng): frames a test
//! hands to DPDK's `net_pcap` vdev (`rx_pcap=FILE`), which sends each once.
//!
//! Written out here rather than with the `pcap-file` crate: its 2.0 line (the last stable)
//! would bring `thiserror` 1 and, through `derive-into-owned`, `syn` 1 into the workspace,
//! for a 24-byte file header and a 16-byte header per frame.
//!
//! The format (libpcap's `pcap/pcap.h`, and `pcap-savefile(5)`): a file header (magic
//! `0xa1b2c3d4` for microsecond timestamps, written in the writer's byte order, here
//! little-endian; version 2.4; zone and accuracy 0; the snapshot length; the link type),
//! then per frame a record header (seconds, microseconds, bytes captured, bytes on the
//! wire) and the frame's bytes.

use std::io::{self, Write};
use std::path::Path;

/// `LINKTYPE_ETHERNET`: each record is an Ethernet frame from its destination MAC on, without
/// preamble or FCS.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The snapshot length written: no frame in the file may be longer (a reader truncates to
/// it). 64 KiB covers any frame a TSO request can carry.
pub const SNAPLEN: u32 = 65_535;

/// Writes `frames` to `out` as a pcap file of Ethernet frames, in order, the n-th stamped
/// n microseconds after the epoch. A frame longer than [`SNAPLEN`] is an `InvalidInput`
/// error (nothing after it is written).
pub fn write_to<W: Write, F: AsRef<[u8]>>(
    mut out: W,
    frames: impl IntoIterator<Item = F>,
) -> io::Result<()> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes()); // magic: microseconds
    header.extend_from_slice(&2u16.to_le_bytes()); // version_major
    header.extend_from_slice(&4u16.to_le_bytes()); // version_minor
    header.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    header.extend_from_slice(&SNAPLEN.to_le_bytes());
    header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    out.write_all(&header)?;
    for (n, frame) in frames.into_iter().enumerate() {
        let frame = frame.as_ref();
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|&l| l <= SNAPLEN)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("frame {n}: {} bytes, over {SNAPLEN}", frame.len()),
                )
            })?;
        let usec = n as u64;
        let mut record = Vec::with_capacity(16);
        record.extend_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
        record.extend_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
        record.extend_from_slice(&len.to_le_bytes()); // incl_len
        record.extend_from_slice(&len.to_le_bytes()); // orig_len
        out.write_all(&record)?;
        out.write_all(frame)?;
    }
    out.flush()
}

/// Writes `frames` to a new file at `path` ([`write_to`]); panics saying why it could not.
pub fn write<F: AsRef<[u8]>>(path: &Path, frames: impl IntoIterator<Item = F>) {
    let file = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("creating pcap file {}: {e}", path.display()));
    write_to(io::BufWriter::new(file), frames)
        .unwrap_or_else(|e| panic!("writing pcap file {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two frames of 3 and 1 bytes, as libpcap writes them on a little-endian host.
    static FILE_BYTES: [u8; 24 + 16 + 3 + 16 + 1] = [
        // File header: magic, version 2.4, thiszone 0, sigfigs 0, snaplen 65535, Ethernet.
        0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0xff, 0xff, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //
        // Record 0: 0 s, 0 us, 3 bytes captured of 3, then the bytes.
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x03, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, //
        0xaa, 0xbb, 0xcc, //
        // Record 1: 0 s, 1 us, 1 byte of 1.
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //
        0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //
        0xdd,
    ];

    #[test]
    fn writes_libpcap_layout() {
        let mut out = Vec::new();
        write_to(&mut out, [&[0xaa, 0xbb, 0xcc][..], &[0xdd][..]]).unwrap();
        assert_eq!(out, FILE_BYTES);
    }

    #[test]
    fn no_frames_is_a_file_header() {
        let mut out = Vec::new();
        write_to(&mut out, std::iter::empty::<&[u8]>()).unwrap();
        assert_eq!(out, FILE_BYTES[..24]);
    }

    #[test]
    fn frame_over_snaplen_is_refused() {
        let mut out = Vec::new();
        let big = vec![0u8; SNAPLEN as usize + 1];
        let err = write_to(&mut out, [&[1u8][..], &big[..]]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("frame 1"), "{err}");
    }
}
