//! Dirty-page logging (LOG_SHMFD + LOG_ALL): while the frontend logs, every page the switch
//! writes into guest memory (receive buffers, used rings) is marked in its log, and nothing is
//! marked otherwise.

use ports::vhost::test_utils as driver;

use std::os::fd::AsRawFd;

use driver::*;
use ports::vhost::VhostUserPort;
use ports::Port;
use vhost::vhost_user::message::VhostUserVirtioFeatures;
use vhost::{VhostBackend, VhostUserDirtyLogRegion};

const LOG_ALL: u64 = VhostUserVirtioFeatures::LOG_ALL.bits();
/// One bit per 4 KiB page.
const LOG_BYTES: u64 = MEM_SIZE / 4096 / 8;

fn dirty_pages(log: &std::fs::File) -> Vec<u64> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; LOG_BYTES as usize];
    log.read_exact_at(&mut b, 0).unwrap();
    (0..MEM_SIZE / 4096)
        .filter(|&p| b[(p / 8) as usize] & (1 << (p % 8)) != 0)
        .collect()
}

fn pages(addr: u64, len: u64) -> impl Iterator<Item = u64> {
    addr / 4096..=(addr + len - 1) / 4096
}

/// Hands `log` (a 4 KiB memfd: one bit per page of guest memory) to the port.
fn attach(g: &Guest, log: &std::fs::File) {
    g.fe.set_log_base(
        0,
        Some(VhostUserDirtyLogRegion {
            mmap_size: 4096,
            mmap_offset: 0,
            mmap_handle: log.as_raw_fd(),
        }),
    )
    .unwrap();
}

fn clear(log: &std::fs::File) {
    use std::os::unix::fs::FileExt;
    log.write_all_at(&vec![0u8; LOG_BYTES as usize], 0).unwrap();
}

#[test]
fn writes_into_guest_memory_are_logged_only_while_logging() {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let mut port = VhostUserPort::server(&path, 1).unwrap();
    let mut g = Guest::connect(&path, 1, MRG);
    let mut rxq = port.take_rxq(0).unwrap();
    let mut txq = port.txq(0).unwrap();

    let log = memfd(4096);
    attach(&g, &log);

    // Not logging yet: nothing is marked.
    let a = g.alloc(2048);
    g.add_chain(0, &[(a, 2048, DESC_F_WRITE)]);
    g.publish(0);
    assert_eq!(txq.tx_burst(&mut packets(&[frame(100, 1)])), 1);
    assert!(dirty_pages(&log).is_empty());

    // Migration starts.
    g.fe.set_features(g.features | LOG_ALL).unwrap();
    // A frame spanning two buffers, the second on another page.
    let b1 = g.alloc(4096);
    let b2 = g.alloc(4096);
    g.add_chain(0, &[(b1, 4096, DESC_F_WRITE)]);
    g.add_chain(0, &[(b2, 4096, DESC_F_WRITE)]);
    g.publish(0);
    assert_eq!(txq.tx_burst(&mut packets(&[frame(5000, 2)])), 1);
    // Pages written: the used elements and index (one page here), all of b1, and the first
    // 5012 - 4096 = 916 bytes of b2; and, when logging started, both rings' used flags and
    // index (written when the rings started, before any log).
    let mut want: Vec<u64> = pages(g.rings[0].used, 4 + 8 * u64::from(QSIZE))
        .chain(pages(g.rings[1].used, 4))
        .chain(pages(b1, 4096))
        .chain(pages(b2, 916))
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(dirty_pages(&log), want, "buffers and the used ring");

    // The guest's transmit ring: only its used ring is written.
    clear(&log);
    let (t, l) = g.tx_buffer(&frame(60, 3));
    g.add_chain(1, &[(t, l, 0)]);
    g.publish(1);
    let mut pkts = burst();
    assert_eq!(rxq.rx_burst(&mut pkts), 1);
    assert_eq!(dirty_pages(&log), vec![g.rings[1].used / 4096]);

    // Migration cancelled: LOG_ALL cleared, logging stops.
    g.fe.set_features(g.features).unwrap();
    clear(&log);
    let c = g.alloc(2048);
    g.add_chain(0, &[(c, 2048, DESC_F_WRITE)]);
    g.publish(0);
    assert_eq!(txq.tx_burst(&mut packets(&[frame(100, 4)])), 1);
    assert!(dirty_pages(&log).is_empty());
}

#[test]
fn a_log_past_its_file_drops_the_connection() {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let port = VhostUserPort::server(&path, 1).unwrap();
    let g = Guest::connect(&path, 1, 0);
    let log = memfd(4096);
    // The crate sends no reply to a refused SET_LOG_BASE, so the port hangs up rather than
    // leave the frontend waiting.
    let r = g.fe.set_log_base(
        0,
        Some(VhostUserDirtyLogRegion {
            mmap_size: 8192,
            mmap_offset: 0,
            mmap_handle: log.as_raw_fd(),
        }),
    );
    assert!(r.is_err());
    wait_for("disconnect", || !port.is_connected());
}

/// A receive buffer that runs off the end of guest memory breaks the ring, but the bytes
/// written inside guest memory before the write failed are still marked dirty (migration
/// must copy them again).
#[test]
fn bytes_of_a_partly_failed_write_are_logged() {
    let d = SockDir::new();
    let path = d.path("vhu.sock");
    let mut port = VhostUserPort::server(&path, 1).unwrap();
    let mut g = Guest::connect(&path, 1, MRG);
    let mut txq = port.txq(0).unwrap();
    let log = memfd(4096);
    attach(&g, &log);
    g.fe.set_features(g.features | LOG_ALL).unwrap();
    clear(&log);
    // 2 KiB of buffer, only its first 8 bytes inside guest memory: the 12-byte header is the
    // first write, and it fails part way.
    let start = MEM_SIZE - 8;
    vm_memory::Bytes::write_slice(&g.mem, &[0xaa; 8], vm_memory::GuestAddress(start)).unwrap();
    g.add_chain(0, &[(start, 2048, DESC_F_WRITE)]);
    g.publish(0);
    txq.tx_burst(&mut packets(&[frame(1000, 5)]));
    assert!(vring_stats(&port, 0).broken, "the ring broke on the buffer");
    assert_eq!(
        g.read(start, 8),
        vec![0u8; 8],
        "a header of zeros was written there"
    );
    assert!(
        dirty_pages(&log).contains(&(start / 4096)),
        "the page written before the failure is marked: {:?}",
        dirty_pages(&log)
    );
}
