//! The metric families: what each one means, and how it is read off a [`View`].
//!
//! | family | type | labels |
//! |---|---|---|
//! | `vswitch_port_{rx,tx}_{packets,bytes}_total`, `vswitch_port_tx_dropped_total` | counter | port |
//! | `vswitch_port_offload_frames_total` (`rx`: frames that came with a checked offload request; `tx`: frames a port took with theirs), `vswitch_port_offload_bad_headers_total`, `vswitch_port_gso_segments_total`, `vswitch_port_csum_filled_total` | counter | port (direction) |
//! | `vswitch_port_connected` (vhost-user: 1 while a frontend is attached) | gauge | port, type |
//! | `vswitch_port_guest_faults_total` (vhost-user: `ring_broken`, `memory`, `chain_over_cap`, `interrupt_lost`, `refused_message`) | counter | port, fault |
//! | `vswitch_rxq_{packets,bytes}_total` (per rx queue) | counter | port, queue, pmd |
//! | `vswitch_txq_{packets,bytes,dropped}_total` (each PMD's tx queue to a port) | counter | port, pmd |
//! | `vswitch_drops_total` | counter | pmd, reason |
//! | `vswitch_cache_{hits,misses}_total` (`emc`; `classifier`: a miss takes `normal`) | counter | pmd, level |
//! | `vswitch_classifier_lookups_total`, `vswitch_classifier_subtable_probes_total` | counter | pmd |
//! | `vswitch_classifier_subtables`, `vswitch_pmd_rules`, `vswitch_fdb_entries`, `vswitch_pmd_rxqs` | gauge | pmd |
//! | `vswitch_pmd_{busy,idle}_iterations_total`, `vswitch_pmd_sleeps_total` | counter | pmd |
//! | `vswitch_pmd_{busy,idle}_seconds_total` (written by `seconds`) | counter | pmd |
//! | `vswitch_pmd_info` (1, with the PMD's CPU) | gauge | pmd, core |
//! | `vswitch_tunnel_<counter>_total` (VXLAN and underlay: encap/decap, neighbour misses, ARP, drops; one family per [`switch::tunnel::stats::TunnelStats`] field) | counter | pmd |
//! | `vswitch_flows`, `vswitch_ports` | gauge | |

use std::collections::HashMap;

use ::metrics::{counter, describe_counter, describe_gauge, gauge, Unit};
use flowtable::PortNo;
use switch::stats::PortCounters;
use switch::{DropReason, PmdSnapshot, Switch};

/// One reading of everything the metrics show, taken without asking any PMD.
#[derive(Debug, Default)]
pub struct View {
    /// Each PMD's last published counters.
    pub pmds: Vec<PmdSnapshot>,
    /// Ports: number, name, type, connection state.
    pub ports: Vec<PortView>,
    /// Installed flows.
    pub flows: usize,
}

/// A port as the metrics label it.
#[derive(Debug, Clone)]
pub struct PortView {
    /// Datapath number (indexes the PMDs' per-port counters).
    pub no: PortNo,
    /// The `port` label.
    pub name: String,
    /// The config type (`memory`, `vhost-user`, ...).
    pub kind: &'static str,
    /// `Some(connected)` for ports with a peer to wait for.
    pub connected: Option<bool>,
    /// The tenant's faults, for ports whose peer is a tenant (vhost-user).
    pub guest_faults: Option<switch::GuestFaults>,
}

impl View {
    /// Reads the switch's published state: mirrors and the control plane's tables.
    pub fn read(sw: &Switch) -> View {
        let connections: HashMap<PortNo, Option<bool>> =
            sw.port_connections().into_iter().collect();
        let faults: HashMap<PortNo, Option<switch::GuestFaults>> =
            sw.port_faults().into_iter().collect();
        let ports = sw
            .ports()
            .into_iter()
            .map(|p| PortView {
                no: p.no,
                kind: p.config.kind.as_str(),
                connected: connections.get(&p.no).copied().flatten(),
                guest_faults: faults.get(&p.no).copied().flatten(),
                name: p.config.name,
            })
            .collect();
        View {
            pmds: sw.stats(),
            ports,
            flows: sw.flow_count(),
        }
    }
}

/// Registers HELP text and units for every family.
pub fn describe() {
    use Unit::{Bytes, Count};
    let counters: [(&'static str, Unit, &'static str); 24] = [
        ("vswitch_port_rx_packets_total", Count, "Frames received on the port."),
        ("vswitch_port_guest_faults_total", Count, "A vhost-user tenant's faults on its port, by kind (ring_broken, memory: rings stopped by guest memory truncated under the switch, chain_over_cap, interrupt_lost, refused_message)."),
        ("vswitch_port_rx_bytes_total", Bytes, "Bytes received on the port."),
        ("vswitch_port_tx_packets_total", Count, "Frames the port's tx queues took."),
        ("vswitch_port_tx_bytes_total", Bytes, "Bytes the port's tx queues took."),
        ("vswitch_port_tx_dropped_total", Count, "Frames the port's tx queues refused (full)."),
        ("vswitch_port_offload_frames_total", Count, "Frames with a guest offload request (partial checksum, TSO): rx, received and checked; tx, taken by the port with the request kept (a guest that negotiated it)."),
        ("vswitch_port_offload_bad_headers_total", Count, "Frames from the port dropped because their virtio-net header lied about them."),
        ("vswitch_port_gso_segments_total", Count, "Segments made in software for frames sent to the port (it could not take them whole)."),
        ("vswitch_port_csum_filled_total", Count, "Partial checksums filled in software for frames sent to the port."),
        ("vswitch_rxq_packets_total", Count, "Frames received on one rx queue of a port."),
        ("vswitch_rxq_bytes_total", Bytes, "Bytes received on one rx queue of a port."),
        ("vswitch_txq_packets_total", Count, "Frames one PMD's tx queue to the port took."),
        ("vswitch_txq_bytes_total", Bytes, "Bytes one PMD's tx queue to the port took."),
        ("vswitch_txq_dropped_total", Count, "Frames one PMD's tx queue to the port refused."),
        ("vswitch_drops_total", Count, "Frames (or copies) not sent, by reason."),
        ("vswitch_cache_hits_total", Count, "Lookups answered by a cache level (emc: exact-match cache; classifier: a rule matched)."),
        ("vswitch_cache_misses_total", Count, "Lookups a cache level could not answer (emc: went to the classifier; classifier: no rule, took normal)."),
        ("vswitch_classifier_lookups_total", Count, "Classifier lookups (exact-match cache misses)."),
        ("vswitch_classifier_subtable_probes_total", Count, "Subtables probed by classifier lookups."),
        ("vswitch_pmd_busy_iterations_total", Count, "PMD loop iterations that received frames."),
        ("vswitch_pmd_idle_iterations_total", Count, "PMD loop iterations that received nothing."),
        ("vswitch_pmd_sleeps_total", Count, "Times the PMD slept waiting for traffic."),
        ("vswitch_pmd_rx_packets_total", Count, "Frames received on all of the PMD's rx queues."),
    ];
    for (name, unit, help) in counters {
        describe_counter!(name, unit, help);
    }
    for (field, help, _) in switch::tunnel::stats::TunnelStats::default().fields() {
        describe_counter!(format!("vswitch_tunnel_{field}_total"), Count, help);
    }
    let gauges: [(&'static str, &'static str); 9] = [
        (
            "vswitch_port_connected",
            "1 while the port's peer (a vhost-user frontend) is attached, else 0.",
        ),
        (
            "vswitch_classifier_subtables",
            "Subtables in the PMD's classifier.",
        ),
        (
            "vswitch_pmd_rules",
            "Rules installed in the PMD's classifier.",
        ),
        ("vswitch_fdb_entries", "Entries in the PMD's MAC table."),
        ("vswitch_pmd_rxqs", "Rx queues the PMD polls."),
        ("vswitch_pmd_info", "Always 1; labels name the PMD's CPU."),
        ("vswitch_flows", "Flows installed."),
        ("vswitch_ports", "Ports."),
        ("vswitch_pmds", "PMD threads."),
    ];
    for (name, help) in gauges {
        describe_gauge!(name, Unit::Count, help);
    }
}

/// Sets every family from `view`.
pub fn record(view: &View) {
    let names: HashMap<PortNo, &str> = view.ports.iter().map(|p| (p.no, &*p.name)).collect();
    record_ports(view);
    for snap in &view.pmds {
        record_pmd(snap, &names);
    }
    gauge!("vswitch_flows").set(view.flows as f64);
    gauge!("vswitch_ports").set(view.ports.len() as f64);
    gauge!("vswitch_pmds").set(view.pmds.len() as f64);
}

/// Per-port totals (summed over PMDs) and connection state.
fn record_ports(view: &View) {
    for p in &view.ports {
        let sum = PortCounters::total(&view.pmds, p.no);
        let port = p.name.clone();
        counter!("vswitch_port_rx_packets_total", "port" => port.clone()).absolute(sum.rx_packets);
        counter!("vswitch_port_rx_bytes_total", "port" => port.clone()).absolute(sum.rx_bytes);
        counter!("vswitch_port_tx_packets_total", "port" => port.clone()).absolute(sum.tx_packets);
        counter!("vswitch_port_tx_bytes_total", "port" => port.clone()).absolute(sum.tx_bytes);
        counter!("vswitch_port_tx_dropped_total", "port" => port.clone()).absolute(sum.tx_dropped);
        for (direction, n) in [("rx", sum.rx_offload), ("tx", sum.tx_offload)] {
            counter!("vswitch_port_offload_frames_total", "port" => port.clone(), "direction" => direction)
                .absolute(n);
        }
        counter!("vswitch_port_offload_bad_headers_total", "port" => port.clone())
            .absolute(sum.rx_offload_bad);
        counter!("vswitch_port_gso_segments_total", "port" => port.clone())
            .absolute(sum.tx_segments);
        counter!("vswitch_port_csum_filled_total", "port" => port.clone())
            .absolute(sum.tx_csum_filled);
        if let Some(f) = p.guest_faults {
            for (fault, n) in [
                ("ring_broken", f.rings_broken),
                ("memory", f.memory_faults),
                ("chain_over_cap", f.chains_over_cap),
                ("interrupt_lost", f.interrupts_lost),
                ("refused_message", f.refused_messages),
            ] {
                counter!("vswitch_port_guest_faults_total", "port" => port.clone(), "fault" => fault)
                    .absolute(n);
            }
        }
        if let Some(up) = p.connected {
            gauge!("vswitch_port_connected", "port" => port, "type" => p.kind).set(if up {
                1.0
            } else {
                0.0
            });
        }
    }
}

/// One PMD's queues, drops, caches, classifier and loop counters.
fn record_pmd(snap: &PmdSnapshot, names: &HashMap<PortNo, &str>) {
    let pmd = snap.pmd.to_string();
    let s = &snap.stats;
    for (&(no, queue), c) in snap.rxqs.iter().zip(&snap.rxq_counters) {
        let Some(&port) = names.get(&no) else {
            continue;
        };
        let labels = [
            ("port", port.to_string()),
            ("queue", queue.to_string()),
            ("pmd", pmd.clone()),
        ];
        counter!("vswitch_rxq_packets_total", &labels).absolute(c.rx_packets);
        counter!("vswitch_rxq_bytes_total", &labels).absolute(c.rx_bytes);
    }
    for (i, c) in s.ports.iter().enumerate() {
        // Counters of deleted ports (and the unused number 0) stay in the PMD's table.
        let Some(&port) = names.get(&PortNo(i as u32)) else {
            continue;
        };
        let labels = [("port", port.to_string()), ("pmd", pmd.clone())];
        counter!("vswitch_txq_packets_total", &labels).absolute(c.tx_packets);
        counter!("vswitch_txq_bytes_total", &labels).absolute(c.tx_bytes);
        counter!("vswitch_txq_dropped_total", &labels).absolute(c.tx_dropped);
    }
    for why in DropReason::ALL {
        counter!("vswitch_drops_total", "pmd" => pmd.clone(), "reason" => why.as_str())
            .absolute(s.drops_of(why));
    }
    let level = |l: &'static str| [("pmd", pmd.clone()), ("level", l.to_string())];
    // Levels in order: the in-port alone, the exact-match cache, the classifier; each
    // level's misses are the next one's lookups.
    counter!("vswitch_cache_hits_total", &level("port")).absolute(s.port_decided);
    counter!("vswitch_cache_misses_total", &level("port")).absolute(s.emc_hits + s.emc_misses);
    counter!("vswitch_cache_hits_total", &level("emc")).absolute(s.emc_hits);
    counter!("vswitch_cache_misses_total", &level("emc")).absolute(s.emc_misses);
    counter!("vswitch_cache_hits_total", &level("classifier")).absolute(s.classifier_hits);
    counter!("vswitch_cache_misses_total", &level("classifier")).absolute(s.classifier_misses);
    let labels = [("pmd", pmd.clone())];
    counter!("vswitch_classifier_lookups_total", &labels)
        .absolute(s.classifier_hits + s.classifier_misses);
    counter!("vswitch_classifier_subtable_probes_total", &labels).absolute(s.classifier_probes);
    counter!("vswitch_pmd_busy_iterations_total", &labels).absolute(s.busy_iterations);
    counter!("vswitch_pmd_idle_iterations_total", &labels).absolute(s.idle_iterations);
    counter!("vswitch_pmd_sleeps_total", &labels).absolute(s.sleeps);
    counter!("vswitch_pmd_rx_packets_total", &labels).absolute(s.rx_packets);
    for (field, _, v) in snap.tunnel.fields() {
        counter!(format!("vswitch_tunnel_{field}_total"), &labels).absolute(v);
    }
    gauge!("vswitch_classifier_subtables", &labels).set(snap.subtables as f64);
    gauge!("vswitch_pmd_rules", &labels).set(snap.rules as f64);
    gauge!("vswitch_fdb_entries", &labels).set(snap.mac_entries as f64);
    gauge!("vswitch_pmd_rxqs", &labels).set(snap.rxqs.len() as f64);
    gauge!("vswitch_pmd_info", "pmd" => pmd, "core" => snap.core.to_string()).set(1.0);
}
