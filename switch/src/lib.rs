//! The vswitch datapath and its control handle.
//!
//! - [`config`]: the serde model shared by the config file, the API and persisted state, its
//!   checks, and the rules between ports that a file and a live change both obey;
//! - [`control`]: [`Switch`], which owns ports and flows and sends every change to the PMDs
//!   (a file per resource: PMDs, ports, flows, fdb, trace);
//! - `datapath`: tx batches and VLAN tag editing, shared by `pmd` and `tunnel` (below both);
//! - [`offload`]: guest offloads in software: the virtio-net header checked as an offload
//!   request, checksums, segmentation (not yet wired into the pipeline, issue 13);
//! - `pmd`: the poll-mode threads and the per-burst pipeline (rx, key, lookup, execute, tx);
//! - [`stats`]: per-PMD counters and how they are published;
//! - [`tunnel`]: VXLAN ports over an IPv4 underlay (ARP, neighbour cache, encap/decap).
//!
//! Layering: uses `flowtable` (packet logic) and `ports` (I/O); knows nothing of HTTP or the
//! command line. `unsafe` is denied but for one instruction: the PMD clock's `rdtsc`
//! (`pmd/clock.rs`).
#![deny(unsafe_code)]

pub mod config;
pub mod control;
mod datapath;
pub mod offload;
mod pmd;
pub mod stats;
pub mod tunnel;

pub use config::Config;
pub use control::{FdbEntry, FlowInfo, PortInfo, Switch, SwitchError};
/// A tenant's faults on its port, as [`Switch::port_faults`] reports them.
pub use ports::GuestFaults;
pub use stats::{DropReason, PmdSnapshot, PmdStats};
