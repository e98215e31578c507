//! Test support for the vswitch workspace, and nothing else: no crate depends on it outside
//! `[dev-dependencies]`, and it is never published.
//!
//! What the integration tests of `ports`, `switch` and `api` share:
//! - [`config`]: config-file text (the `[switch]` table, memory and vhost-user ports).
//! - [`netns`]: network namespaces, veth pairs and `ip` helpers, each removed on drop;
//!   every address a test assigns lies in the benchmarking range 198.18.0.0/15.
//! - [`packet_socket`]: a raw AF_PACKET socket on one interface, opened inside a namespace.
//! - [`frames`]: test frames built with `flowtable::wire` reprs (Ethernet, ARP, IPv4, UDP,
//!   VXLAN), not with bytes written by hand.
//! - [`process`]: child processes whose output is read line by line and which are stopped
//!   by PID (never by name), peer programs a test needs, and scratch directories.
//! - [`ptrace`]: one thread of another process, stopped and resumed.
//! - [`logs`]: capture of what `tracing` logs, per call or for the whole test process.
//! - [`testpmd`] and [`qemu`]: the real vhost-user frontends the end-to-end tests drive.
//! - [`pcap`]: pcap files of frames, for testpmd's `net_pcap` port to send.
//! - [`prometheus`]: one sample read out of a `/metrics` text.
//!
//! Helpers panic with a message saying what failed (and which Debian package to install
//! when a tool is missing): they run inside tests, where a panic is a failure report.

#![deny(missing_docs)]

pub mod config;
pub mod frames;
pub mod logs;
pub mod netns;
pub mod packet_socket;
pub mod pcap;
pub mod process;
pub mod prometheus;
pub mod ptrace;
pub mod qemu;
pub mod scratch;
pub mod testpmd;

/// The last CPU: where a test puts the switch's PMD, away from everything else.
pub fn last_cpu() -> usize {
    std::thread::available_parallelism().unwrap().get() - 1
}
