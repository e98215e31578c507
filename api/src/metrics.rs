//! Prometheus exposition of the switch's counters for `GET /metrics`.
//!
//! Interface shared by the REST server (which owns the route) and the metrics work (which owns
//! this file): [`render`] reads the switch's published counters (never a PMD thread) and returns
//! the text exposition format. Being filled in by the metrics work (issue 4).

use switch::Switch;

/// The `/metrics` body for `sw`, in the Prometheus text exposition format.
pub fn render(sw: &Switch) -> String {
    let _ = sw;
    String::new()
}
