//! What the PMD pipeline (`pmd`) and the overlay (`tunnel`) both use to send frames: the
//! per-port tx batches with the context every sender gets ([`tx`]), the ports' VLAN modes
//! with the one place a frame's 802.1Q tag is pushed or popped ([`vlan`]), and the rate
//! limit on what a PMD logs ([`log_limit`]).
//!
//! Layering: below both `pmd` and `tunnel`, importing neither; `pmd` uses `tunnel` (decap,
//! encap, the vxlan ports `normal` chooses among), never the other way round.

pub(crate) mod log_limit;
pub(crate) mod tx;
pub(crate) mod vlan;
