//! Prometheus exposition of the switch's counters for `GET /metrics`.
//!
//! Interface shared by the REST server (which owns the route) and the metrics work (which owns
//! this module): [`render`] reads what the switch already publishes (each PMD's mirror, the
//! control plane's port and flow tables) and returns the text exposition format. A scrape
//! never talks to a PMD thread, and the PMDs never share an atomic per packet: their plain
//! counters reach the mirror about once a millisecond.
//!
//! Every render builds a fresh [`metrics_exporter_prometheus::PrometheusRecorder`] (local, never
//! installed globally), sets each counter to the switch's running total with `absolute` and
//! each gauge with `set`, and renders it. A long-lived recorder would be wrong here: its
//! `absolute` is a `fetch_max`, so a port deleted and re-created under the same name would
//! keep its old, larger total, and a deleted port's series would stay forever. Built per
//! scrape, the output is exactly the switch's state (a re-created port restarts at zero, which
//! Prometheus's `rate` treats as a counter reset), and there is nothing to upkeep.
//!
//! Families (all prefixed `vswitch_`; labels `port`, `queue`, `pmd`, `reason`, `level`):
//! see [`families`]. The two PMD time counters are fractional seconds, which the `metrics`
//! crate's `u64` counters cannot hold; [`seconds`] writes them in the same format.

mod families;
mod seconds;

use ::metrics::with_local_recorder;
use metrics_exporter_prometheus::PrometheusBuilder;
use switch::Switch;

pub use families::View;

/// The `/metrics` body for `sw`, in the Prometheus text exposition format.
pub fn render(sw: &Switch) -> String {
    render_view(&View::read(sw))
}

/// The exposition of one reading of the switch.
pub fn render_view(view: &View) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    with_local_recorder(&recorder, || {
        families::describe();
        families::record(view);
    });
    let mut out = handle.render();
    seconds::write(&mut out, &view.pmds);
    out
}

#[cfg(test)]
mod tests;
