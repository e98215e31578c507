//! Everything that moves frames in and out of the switch.
//!
//! A port hands the datapath one [`RxQueue`] per receive queue and one [`TxQueue`] per PMD
//! thread. Each queue handle is owned by exactly one PMD, so a burst needs no lock. Frames live
//! in switch-owned [`Packet`] buffers that the PMD preallocates and reuses; ports copy into and
//! out of them (a guest's memory is never borrowed past one burst).
//!
//! This crate holds the trait, the buffer, [`vhost`] (vhost-user guest ports: the protocol via
//! the `vhost` crate, guest memory via `vm-memory`, and our own split-ring fast path), and
//! ports that need no privileges: [`mem`], an in-memory port pair for tests, and [`fault`], a
//! seeded fault injector; [`afxdp`] (AF_XDP uplinks with our own XDP program) and [`tap`]
//! (kernel tap interfaces, batched with io_uring); [`link`], what sysfs says of a kernel
//! interface (MAC, MTU, rx queue count); [`offload`], the virtio-net header a frame carries
//! through the switch and the offloads an output takes unfinished.
//!
//! Layering: depends on `flowtable` only for shared newtypes; knows nothing of the pipeline.
#![deny(missing_docs)]
// `unsafe` is denied everywhere but the modules that need it for speed or syscalls, which
// allow it explicitly (`vhost::hostmem` and `vhost::packed::ring` for guest memory;
// `afxdp::{umem, socket, xdp_prog}` for the kernel rings, the UMEM and bpf(2);
// `tap::{dev, uring}`; `watchdog` and `vhost::sigbus` for signals); each block there has a
// `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod afxdp;
pub mod fault;
pub mod link;
pub mod mem;
pub mod offload;
pub mod packet;
pub mod port;
pub mod tap;
pub mod vhost;
#[allow(unsafe_code)]
pub mod watchdog;

pub use link::{LinkError, LinkFacts};
pub use offload::{Offload, TxOffloads, VirtioNetHdr};
pub use packet::Packet;
pub use port::{GuestFaults, Port, PortError, RxQueue, TxQueue, BURST, BURST_WORK, SEGMENT_WORK};
