//! Hostile and broken input: random bytes, truncated and corrupted frames never stop the
//! datapath, and every frame read is accounted for.

mod common;

use common::*;
use ports::fault::{FaultRxq, Faults};
use ports::mem::{self, MemPort};
use ports::{Port, PortError, RxQueue, TxQueue};
use switch::Switch;

struct FaultyPort {
    inner: MemPort,
    seed: u64,
}

impl Port for FaultyPort {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn n_rxq(&self) -> usize {
        self.inner.n_rxq()
    }
    fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError> {
        let faults = Faults {
            drop: 3000,
            truncate: 20000,
            corrupt: 20000,
        };
        Ok(Box::new(FaultRxq::new(
            self.inner.take_rxq(q)?,
            faults,
            self.seed,
        )))
    }
    fn txq(&mut self, pmd: usize) -> Result<Box<dyn TxQueue>, PortError> {
        self.inner.txq(pmd)
    }
}

#[test]
fn garbage_in_is_forwarded_or_counted_never_fatal() {
    let sw = Switch::new(&switch_cfg(&[last_cpu()])).unwrap();
    let (port, bad_peer) = mem::pair(8192).unwrap();
    sw.attach(
        mem_port("bad"),
        Box::new(FaultyPort {
            inner: port,
            seed: 42,
        }),
    )
    .unwrap();
    sw.add_port(mem_port("out")).unwrap();
    sw.add_port(mem_port("other")).unwrap();
    sw.add_flows(&[flow(100, &[("in_port", "bad")], &["output:out"])])
        .unwrap();
    let out = sw.mem_peer("out").unwrap();

    // Valid frames (which the fault injector truncates and corrupts) and raw noise.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..4000u32 {
        if i % 2 == 0 {
            bad_peer.inject(&udp_frame(
                (i % 200) as u8,
                mac(7),
                7,
                (i % 3 == 0).then_some(5),
                i,
            ));
        } else {
            let len = (next() % 200) as usize;
            let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            bad_peer.inject(&noise);
        }
    }
    let got = collect(&sw, &[bad_peer.clone(), out.clone()]);
    let s = &sw.stats()[0].stats;
    let bad = sw.port_no("bad").unwrap();
    let read = s.ports[bad.index()].rx_packets;
    assert!(read > 3000 && read < 4000, "faults dropped some: {read}");
    // Tagged ones (and noise that parses as tagged) are refused by the port, which has no
    // `vlan` (the untagged domain only); everything else goes where the rule says.
    let vlan = s.drops_of(switch::DropReason::Vlan);
    assert!(vlan > 0, "no tagged frame was refused");
    assert_eq!(
        got[1].len() as u64 + vlan,
        read,
        "every frame read was forwarded or counted"
    );

    // And the switch still works normally afterwards.
    sw.add_flows(&[flow(200, &[("in_port", "other")], &["output:out"])])
        .unwrap();
    let other = sw.mem_peer("other").unwrap();
    other.inject(&unicast(3, 4, 1));
    let got = collect(&sw, &[other, out]);
    assert_eq!(got[1], vec![unicast(3, 4, 1)]);
}
