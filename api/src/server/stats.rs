//! `/v1/stats`: the datapath's counters per PMD, as the PMDs last published them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use switch::DropReason;

use super::routes::blocking;
use crate::app::App;
use crate::error::ApiError;

/// Datapath statistics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    /// One entry per PMD thread.
    pub pmds: Vec<PmdView>,
    /// Drops by reason over all PMDs.
    pub drops: BTreeMap<String, u64>,
}

/// One PMD's counters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PmdView {
    /// PMD index.
    pub pmd: usize,
    /// The CPU it is pinned to.
    pub core: usize,
    /// Busy share of its time, 0..=1 (busy / (busy + idle) nanoseconds).
    pub busy_ratio: f64,
    /// Nanoseconds in iterations that received frames.
    pub busy_ns: u64,
    /// Nanoseconds polling or asleep without traffic.
    pub idle_ns: u64,
    /// Iterations that received frames.
    pub busy_iterations: u64,
    /// Iterations that received nothing.
    pub idle_iterations: u64,
    /// Times it went to sleep waiting for traffic.
    pub sleeps: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Rx queues it polls.
    pub rxqs: Vec<RxqView>,
    /// Frames decided by their in-port alone (the rules give every frame of the port one
    /// decision); the misses are the frames that went on to the exact-match cache.
    pub port: CacheView,
    /// Exact-match cache.
    pub emc: CacheView,
    /// Classifier.
    pub classifier: ClassifierView,
    /// Learned MACs in its table.
    pub mac_entries: usize,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
}

/// An rx queue and its port.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RxqView {
    /// Port name.
    pub port: String,
    /// Queue index.
    pub queue: usize,
}

/// Counters of one decision level (in-port, exact-match cache).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CacheView {
    /// Frames decided at this level.
    pub hits: u64,
    /// Frames passed on to the next level (after the cache: a classifier lookup each).
    pub misses: u64,
}

/// Classifier counters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClassifierView {
    /// Rules installed.
    pub rules: usize,
    /// Subtables (distinct masks).
    pub subtables: usize,
    /// Lookups (cache misses).
    pub lookups: u64,
    /// Lookups that matched a rule.
    pub hits: u64,
    /// Lookups that matched none (the frame took `normal`).
    pub misses: u64,
    /// Subtables probed over all lookups.
    pub subtable_probes: u64,
}

/// Per-PMD counters: busy/idle time, rx queues, cache and classifier hits and misses, drops
/// by reason.
#[utoipa::path(get, path = "/v1/stats", operation_id = "show_stats", tag = "stats",
    responses((status = 200, body = StatsView)))]
pub async fn show(State(app): State<Arc<App>>) -> Result<Json<StatsView>, ApiError> {
    Ok(Json(blocking(&app, |app| Ok(read(app))).await?))
}

fn read(app: &App) -> StatsView {
    let names: BTreeMap<u32, String> = app
        .switch
        .ports()
        .into_iter()
        .map(|p| (p.no.0, p.config.name))
        .collect();
    let mut drops: BTreeMap<String, u64> = BTreeMap::new();
    let pmds = app
        .switch
        .stats()
        .into_iter()
        .map(|s| {
            let st = &s.stats;
            let mut d = BTreeMap::new();
            for why in DropReason::ALL {
                d.insert(why.as_str().to_string(), st.drops_of(why));
                *drops.entry(why.as_str().to_string()).or_default() += st.drops_of(why);
            }
            let total = st.busy_ns + st.idle_ns;
            PmdView {
                pmd: s.pmd,
                core: s.core,
                busy_ratio: if total == 0 {
                    0.0
                } else {
                    st.busy_ns as f64 / total as f64
                },
                busy_ns: st.busy_ns,
                idle_ns: st.idle_ns,
                busy_iterations: st.busy_iterations,
                idle_iterations: st.idle_iterations,
                sleeps: st.sleeps,
                rx_packets: st.rx_packets,
                rxqs: s
                    .rxqs
                    .iter()
                    .map(|(p, q)| RxqView {
                        port: names.get(&p.0).cloned().unwrap_or_else(|| p.to_string()),
                        queue: *q,
                    })
                    .collect(),
                port: CacheView {
                    hits: st.port_decided,
                    misses: st.emc_hits + st.emc_misses,
                },
                emc: CacheView {
                    hits: st.emc_hits,
                    misses: st.emc_misses,
                },
                classifier: ClassifierView {
                    rules: s.rules,
                    subtables: s.subtables,
                    lookups: st.emc_misses,
                    hits: st.classifier_hits,
                    misses: st.classifier_misses,
                    subtable_probes: st.classifier_probes,
                },
                mac_entries: s.mac_entries,
                drops: d,
            }
        })
        .collect();
    StatsView { pmds, drops }
}
