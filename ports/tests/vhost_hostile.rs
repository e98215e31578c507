//! A hostile guest against the vhost-user port: every malformed ring or memory table is
//! refused or breaks only its own vring, is counted, and never panics the switch or makes it
//! touch memory outside the guest's regions. The other direction, and other ports, go on.

use ports::vhost::test_utils as driver;

use driver::*;
use ports::vhost::VhostUserPort;
use ports::{Port, RxQueue};
use vhost::VhostBackend;

ports::attached_rig!(Rig);

fn rig(features: u64) -> Rig {
    Rig(Attached::new(features | INDIRECT))
}

impl Rig {
    /// Guest transmit ring (vring 1): publishes what the test put there and bursts.
    fn rx(&mut self) -> usize {
        let mut pkts = burst();
        self.rxq.rx_burst(&mut pkts)
    }

    fn assert_tx_ring_broken(&mut self) {
        self.g.publish(1);
        assert_eq!(self.rx(), 0);
        let s = vring_stats(&self.port, 1);
        assert!(s.broken && !s.running, "{s:?}");
        assert_eq!(s.times_broken, 1);
        // Stays broken (and is not counted again) even with a valid frame behind it.
        let (a, l) = self.g.tx_buffer(&frame(60, 1));
        self.g.add_chain(1, &[(a, l, 0)]);
        self.g.publish(1);
        assert_eq!(self.rx(), 0);
        assert_eq!(vring_stats(&self.port, 1).times_broken, 1);
        self.assert_rx_ring_works();
    }

    /// The guest's receive ring (vring 0) still takes frames.
    fn assert_rx_ring_works(&mut self) {
        let a = self.g.alloc(2048);
        self.g.add_chain(0, &[(a, 2048, DESC_F_WRITE)]);
        self.g.publish(0);
        let f = frame(100, 77);
        assert_eq!(self.txq.tx_burst(&mut packets(std::slice::from_ref(&f))), 1);
        assert_eq!(self.g.read(a + 12, 100), f);
    }

    /// The guest's transmit ring (vring 1) still delivers frames.
    fn assert_tx_ring_works(&mut self) {
        let f = frame(80, 88);
        let (a, l) = self.g.tx_buffer(&f);
        self.g.add_chain(1, &[(a, l, 0)]);
        self.g.publish(1);
        let mut pkts = burst();
        assert_eq!(self.rxq.rx_burst(&mut pkts), 1);
        assert_eq!(pkts[0].data(), &f[..]);
    }
}

#[test]
fn descriptor_loop_breaks_only_that_ring_and_port() {
    let d = SockDir::new();
    let mut other = VhostUserPort::server(&d.path("other.sock"), 1).unwrap();
    let mut og = Guest::connect(&d.path("other.sock"), 1, 0);
    let mut orxq = other.take_rxq(0).unwrap();

    let mut r = rig(0);
    let (a, l) = r.g.tx_buffer(&frame(60, 0));
    r.g.write_desc(1, 0, a, l, DESC_F_NEXT, 1);
    r.g.write_desc(1, 1, a, l, DESC_F_NEXT, 0);
    r.g.push_avail(1, 0);
    r.g.rings[1].next_desc = 2;
    r.assert_tx_ring_broken();

    let f = frame(64, 5);
    let (a, l) = og.tx_buffer(&f);
    og.add_chain(1, &[(a, l, 0)]);
    og.publish(1);
    let mut pkts = burst();
    assert_eq!(
        orxq.rx_burst(&mut pkts),
        1,
        "the other port keeps forwarding"
    );
    assert_eq!(pkts[0].data(), &f[..]);
}

#[test]
fn a_chain_as_long_as_the_ring_is_fine() {
    let mut r = rig(0);
    let f = frame(usize::from(QSIZE) - 12, 3);
    let (a, _) = r.g.tx_buffer(&f);
    let bufs: Vec<(u64, u32, u16)> = (0..u64::from(QSIZE)).map(|i| (a + i, 1, 0)).collect();
    r.g.add_chain(1, &bufs);
    r.g.publish(1);
    let mut pkts = burst();
    assert_eq!(r.rxq.rx_burst(&mut pkts), 1);
    assert_eq!(pkts[0].data(), &f[..]);
}

#[test]
fn indirect_table_longer_than_the_ring() {
    let mut r = rig(0);
    let n = u64::from(QSIZE) + 1;
    let table = r.g.alloc(16 * n);
    let (a, l) = r.g.tx_buffer(&frame(60, 0));
    for i in 0..n {
        let next = (i + 1) as u16;
        write_desc_at(&r.g.mem, table + 16 * i, a, l, DESC_F_NEXT, next);
    }
    r.g.add_chain(1, &[(table, (16 * n) as u32, DESC_F_INDIRECT)]);
    r.assert_tx_ring_broken();
}

#[test]
fn loop_inside_an_indirect_table() {
    let mut r = rig(0);
    let table = r.g.alloc(32);
    let (a, l) = r.g.tx_buffer(&frame(60, 0));
    write_desc_at(&r.g.mem, table, a, l, DESC_F_NEXT, 1);
    write_desc_at(&r.g.mem, table + 16, a, l, DESC_F_NEXT, 0);
    r.g.add_chain(1, &[(table, 32, DESC_F_INDIRECT)]);
    r.assert_tx_ring_broken();
}

#[test]
fn indirect_inside_indirect() {
    let mut r = rig(0);
    let inner = r.g.alloc(16);
    let outer = r.g.alloc(16);
    let (a, l) = r.g.tx_buffer(&frame(60, 0));
    write_desc_at(&r.g.mem, inner, a, l, 0, 0);
    write_desc_at(&r.g.mem, outer, inner, 16, DESC_F_INDIRECT, 0);
    r.g.add_chain(1, &[(outer, 16, DESC_F_INDIRECT)]);
    r.assert_tx_ring_broken();
}

#[test]
fn indirect_with_next() {
    let mut r = rig(0);
    let table = r.g.alloc(16);
    let (a, l) = r.g.tx_buffer(&frame(60, 0));
    write_desc_at(&r.g.mem, table, a, l, 0, 0);
    r.g.add_chain(1, &[(table, 16, DESC_F_INDIRECT), (a, l, 0)]);
    r.assert_tx_ring_broken();
}

#[test]
fn indirect_table_of_bad_length() {
    for len in [0u32, 24] {
        let mut r = rig(0);
        let table = r.g.alloc(32);
        r.g.add_chain(1, &[(table, len, DESC_F_INDIRECT)]);
        r.assert_tx_ring_broken();
    }
}

#[test]
fn indirect_table_outside_memory() {
    let mut r = rig(0);
    r.g.add_chain(1, &[(MEM_SIZE - 16, 32, DESC_F_INDIRECT)]);
    r.assert_tx_ring_broken();
}

#[test]
fn zero_and_short_chains_are_dropped_not_fatal() {
    let mut r = rig(0);
    let (a, _) = r.g.tx_buffer(&frame(60, 0));
    r.g.add_chain(1, &[(a, 0, 0)]);
    r.g.add_chain(1, &[(a, 11, 0)]);
    r.g.publish(1);
    assert_eq!(r.rx(), 0);
    let used = r.g.take_used(1);
    assert_eq!(used.len(), 2, "dropped chains are returned");
    assert!(used.iter().all(|u| u.1 == 0));
    let s = vring_stats(&r.port, 1);
    assert_eq!(s.counters.dropped_bad_length, 2);
    assert!(s.running && !s.broken);
    r.assert_tx_ring_works();
}

#[test]
fn huge_transmit_length_is_dropped_without_reading() {
    let mut r = rig(0);
    let (a, _) = r.g.tx_buffer(&frame(60, 0));
    r.g.add_chain(1, &[(a, 0xffff_fff0, 0)]);
    r.g.publish(1);
    assert_eq!(r.rx(), 0);
    assert_eq!(vring_stats(&r.port, 1).counters.dropped_bad_length, 1);
    r.assert_tx_ring_works();
}

#[test]
fn chain_over_4_gib_breaks_the_ring() {
    let mut r = rig(0);
    let (a, _) = r.g.tx_buffer(&frame(60, 0));
    r.g.add_chain(1, &[(a, 0x8000_0000, 0), (a, 0x8000_0000, 0)]);
    r.assert_tx_ring_broken();
}

#[test]
fn transmit_buffer_outside_memory() {
    let mut r = rig(0);
    r.g.add_chain(1, &[(1 << 40, 100, 0)]);
    r.assert_tx_ring_broken();
}

#[test]
fn transmit_buffer_straddling_the_end_of_memory() {
    let mut r = rig(0);
    r.g.add_chain(1, &[(MEM_SIZE - 50, 100, 0)]);
    r.assert_tx_ring_broken();
}

#[test]
fn avail_idx_jump_on_transmit_ring() {
    let mut r = rig(0);
    r.g.set_avail_idx(1, QSIZE + 1);
    r.g.kicks[1].write(1).unwrap();
    assert_eq!(r.rx(), 0);
    assert!(vring_stats(&r.port, 1).broken);
    r.assert_rx_ring_works();
}

#[test]
fn head_and_next_out_of_range() {
    let mut r = rig(0);
    r.g.push_avail(1, QSIZE);
    r.assert_tx_ring_broken();

    let mut r = rig(0);
    let (a, l) = r.g.tx_buffer(&frame(60, 0));
    r.g.write_desc(1, 0, a, l, DESC_F_NEXT, QSIZE);
    r.g.push_avail(1, 0);
    r.assert_tx_ring_broken();
}

#[test]
fn writable_buffer_on_transmit_ring() {
    let mut r = rig(0);
    let (a, l) = r.g.tx_buffer(&frame(60, 0));
    r.g.add_chain(1, &[(a, l, DESC_F_WRITE)]);
    r.assert_tx_ring_broken();
}

/// Receive-ring faults: the guest's transmit direction keeps working.
fn assert_rx_ring_broken(r: &mut Rig) {
    r.g.publish(0);
    let f = frame(100, 1);
    assert_eq!(r.txq.tx_burst(&mut packets(std::slice::from_ref(&f))), 0);
    let s = vring_stats(&r.port, 0);
    assert!(s.broken, "{s:?}");
    assert_eq!(s.times_broken, 1);
    assert_eq!(r.txq.tx_burst(&mut packets(&[f])), 0);
    r.assert_tx_ring_works();
}

#[test]
fn read_only_buffer_on_receive_ring() {
    for mrg in [0, MRG] {
        let mut r = rig(mrg);
        let a = r.g.alloc(2048);
        r.g.add_chain(0, &[(a, 2048, 0)]);
        assert_rx_ring_broken(&mut r);
    }
}

#[test]
fn receive_buffer_running_off_the_end_of_memory() {
    for mrg in [0, MRG] {
        let mut r = rig(mrg);
        // Huge length: only what is written is checked, and that crosses the end.
        r.g.add_chain(0, &[(MEM_SIZE - 16, u32::MAX, DESC_F_WRITE)]);
        assert_rx_ring_broken(&mut r);
        // The bytes inside the region may have been written (the guest's own buffer); the
        // chain was never completed.
        assert_eq!(r.g.used_idx(0), 0);
    }
}

#[test]
fn receive_buffer_outside_memory() {
    let mut r = rig(0);
    r.g.add_chain(0, &[(1 << 40, 2048, DESC_F_WRITE)]);
    assert_rx_ring_broken(&mut r);
}

#[test]
fn avail_idx_jump_on_receive_ring() {
    for mrg in [0, MRG] {
        let mut r = rig(mrg);
        r.g.rings[0].next_avail = 1000;
        assert_rx_ring_broken(&mut r);
    }
}

#[test]
fn ring_in_unmapped_memory_is_refused_at_start() {
    let mut r = rig(0);
    let ring = r.g.rings[1].clone();
    let outside = VA_BASE + MEM_SIZE;
    // The message is accepted (it is well formed); the ring does not start, and is counted.
    r.g.start_vring_at(&ring, outside, VA_BASE + ring.avail, VA_BASE + ring.used)
        .unwrap();
    let s = vring_stats(&r.port, 1);
    assert!(!s.running);
    assert!(s.times_broken >= 1);
    assert_eq!(r.rx(), 0);
    // Straddling the end of the region is refused too.
    let before = s.times_broken;
    r.g.start_vring_at(
        &ring,
        VA_BASE + MEM_SIZE - 2048,
        VA_BASE + ring.avail,
        VA_BASE + ring.used,
    )
    .unwrap();
    assert!(vring_stats(&r.port, 1).times_broken > before);
    r.assert_rx_ring_works();
    // A good configuration starts it again.
    r.g.start_vring(&ring);
    r.assert_tx_ring_works();
}

#[test]
fn broken_ring_restarts_after_get_vring_base() {
    let mut r = rig(0);
    r.g.set_avail_idx(1, QSIZE + 1);
    assert_eq!(r.rx(), 0);
    assert!(vring_stats(&r.port, 1).broken);
    let base = r.g.fe.get_vring_base(1).unwrap();
    assert_eq!(base, 0);
    r.g.set_avail_idx(1, 0);
    let ring = r.g.rings[1].clone();
    r.g.start_vring(&ring);
    let s = vring_stats(&r.port, 1);
    assert!(s.running && !s.broken);
    r.assert_tx_ring_works();
}

#[test]
fn bad_memory_tables_are_refused_and_the_connection_stays() {
    let mut r = rig(0);
    let f1 = memfd(1 << 20);
    let f2 = memfd(1 << 20);
    // Overlapping in guest physical space.
    let overlap = [
        region(&f1, 0, 1 << 20, 0x1000_0000, 0),
        region(&f2, 0x8_0000, 1 << 20, 0x2000_0000, 0),
    ];
    assert!(r.g.fe.set_mem_table(&overlap).is_err());
    // Larger than its file.
    assert!(r
        .g
        .fe
        .set_mem_table(&[region(&f1, 0, 2 << 20, 0x1000_0000, 0)])
        .is_err());
    // Offset + size past the end of the file.
    assert!(r
        .g
        .fe
        .set_mem_table(&[region(&f1, 0, 1 << 20, 0x1000_0000, 4096)])
        .is_err());
    let s = r.port.stats();
    assert_eq!(s.refused_messages, 3);
    assert!(s.connected);
    assert_eq!(s.connections, 1);
    // The old table is still in use.
    r.g.fe.get_features().unwrap();
    r.assert_tx_ring_works();
    r.assert_rx_ring_works();
}

#[test]
fn features_not_offered_are_refused() {
    let mut r = rig(0);
    assert!(r.g.fe.set_features(1 << 5).is_err(), "no VERSION_1");
    assert!(
        r.g.fe
            .set_features(driver::MRG | (1 << 32) | (1 << 33))
            .is_err(),
        "ACCESS_PLATFORM was not offered"
    );
    assert!(r.port.is_connected());
    r.assert_tx_ring_works();
}

#[test]
fn guest_memfd_is_sealed_against_shrinking() {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    let r = rig(0);
    let seals = fcntl(&r.g.memfd, FcntlArg::F_GET_SEALS).unwrap();
    assert!(SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK));
    assert!(
        r.g.memfd.set_len(4096).is_err(),
        "the frontend cannot shrink it under us"
    );
}
