//! The control handle's own tests: reads never wait for a change the PMDs have not confirmed.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ::ports::mem::{self, MemPort};
use ::ports::{Packet, Port, PortError, RxQueue, TxQueue};
use crossbeam_channel::{bounded, Receiver, Sender};

use super::*;
use crate::config::{MatchValue, PortConfig};

/// Closed: a PMD polling a [`GatedRxq`] blocks inside `rx_burst` until it opens.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.0 .0.lock().unwrap() = closed;
        self.0 .1.notify_all();
    }
}

/// An rx queue that blocks its PMD while the gate is closed (a PMD slow to confirm),
/// saying so on `blocked` when it starts to.
struct GatedRxq {
    inner: Box<dyn RxQueue>,
    gate: Gate,
    blocked: Sender<()>,
}

impl RxQueue for GatedRxq {
    fn rx_burst(&mut self, pkts: &mut [Packet]) -> usize {
        let (closed, cv) = &*self.gate.0;
        let mut c = closed.lock().unwrap();
        if *c {
            let _ = self.blocked.try_send(());
        }
        while *c {
            c = cv.wait(c).unwrap();
        }
        drop(c);
        self.inner.rx_burst(pkts)
    }
}

struct GatedPort {
    inner: MemPort,
    gate: Gate,
    blocked: Sender<()>,
}

impl Port for GatedPort {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn n_rxq(&self) -> usize {
        self.inner.n_rxq()
    }
    fn take_rxq(&mut self, q: usize) -> Result<Box<dyn RxQueue>, PortError> {
        Ok(Box::new(GatedRxq {
            inner: self.inner.take_rxq(q)?,
            gate: self.gate.clone(),
            blocked: self.blocked.clone(),
        }))
    }
    fn txq(&mut self, pmd: usize) -> Result<Box<dyn TxQueue>, PortError> {
        self.inner.txq(pmd)
    }
}

fn mem_port(name: &str) -> PortConfig {
    let text = format!("name = {name:?}\ntype = \"memory\"\n");
    toml::from_str(&text).unwrap()
}

fn flow(in_port: &str, out: &str) -> FlowConfig {
    FlowConfig {
        priority: 100,
        matches: [("in_port".to_string(), MatchValue::Text(in_port.into()))].into(),
        actions: vec![format!("output:{out}")],
    }
}

/// One PMD that busy-polls (never sleeps), so it reaches the gated queue at once.
fn one_pmd() -> Switch {
    let cfg = SwitchConfig {
        pmd_cores: vec![crate::config::online_cpus().last().copied().unwrap_or(0)],
        pmd_sleep_after_us: 0,
        ..SwitchConfig::default()
    };
    Switch::new(&cfg).unwrap()
}

/// Runs `f` on a thread and gives its answer if it comes within `within`.
fn answers_within<T: Send + 'static>(
    within: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(within).ok()
}

/// Every read the API and the metrics make while `sw` waits for a change: none may
/// wait with it.
fn read_all(sw: &Switch) -> Vec<String> {
    let _ = (sw.stats(), sw.port_connections(), sw.flow_count());
    let _ = (sw.flow_configs(), sw.next_flow_id(), sw.port_no("a"));
    let _ = (sw.mem_peer("a"), sw.port_name(PortNo(1)));
    sw.ports().into_iter().map(|p| p.config.name).collect()
}

/// While the only PMD cannot confirm a change (it is blocked polling a queue), each
/// mutating call waits for it, but the reads do not wait with it: they answer at once
/// and already show the change. Once the PMD runs again every call is confirmed.
#[test]
fn reads_do_not_wait_for_a_change_the_pmds_have_not_confirmed() {
    let sw = Arc::new(one_pmd());
    let gate = Gate::default();
    let (blocked_tx, blocked): (Sender<()>, Receiver<()>) = bounded(1);
    let (port, _peer) = mem::pair(mem::DEFAULT_QUEUE_LEN).unwrap();
    sw.attach(
        mem_port("a"),
        Box::new(GatedPort {
            inner: port,
            gate: gate.clone(),
            blocked: blocked_tx,
        }),
    )
    .unwrap();
    sw.add_port(mem_port("b")).unwrap();
    sw.add_port(mem_port("c")).unwrap();

    type Change = fn(&Switch) -> Result<(), SwitchError>;
    let changes: [(&str, Change, &[&str]); 4] = [
        (
            "add_flows",
            |sw| sw.add_flows(&[flow("a", "b")]).map(drop),
            &["a", "b", "c"],
        ),
        ("del_flow", |sw| sw.del_flow(RuleId(1)), &["a", "b", "c"]),
        (
            "add_port",
            |sw| sw.add_port(mem_port("d")).map(drop),
            &["a", "b", "c", "d"],
        ),
        ("del_port", |sw| sw.del_port("c"), &["a", "b", "d"]),
    ];
    for (what, change, ports_during) in changes {
        gate.set_closed(true);
        blocked
            .recv_timeout(Duration::from_secs(5))
            .expect("the PMD polls the gated queue");
        let started = Instant::now();
        let changing = {
            let sw = sw.clone();
            std::thread::spawn(move || change(&sw))
        };
        // Let the change send its commands and start waiting.
        std::thread::sleep(Duration::from_millis(100));
        assert!(!changing.is_finished(), "{what} returned unconfirmed");
        let read = {
            let sw = sw.clone();
            answers_within(Duration::from_secs(1), move || read_all(&sw))
        };
        gate.set_closed(false);
        let read = read.unwrap_or_else(|| panic!("reads waited for {what}"));
        assert_eq!(read, ports_during, "{what}: the tables show the change");
        changing
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(started.elapsed() < PMD_TIMEOUT, "{what} was confirmed");
    }
    assert_eq!(sw.flow_count(), 0);
}
