//! The vswitch daemon's edge: `vswitchd`'s flags, life cycle and logging ([`daemon`]), the
//! REST API server ([`server`]), the Prometheus exposition ([`metrics`]).
//!
//! Layering: the top of the stack; uses `switch` and never the other way round.
#![forbid(unsafe_code)]

pub mod app;
pub mod ctl;
pub mod daemon;
pub mod error;
pub mod frame;
pub mod metrics;
pub mod server;
pub mod state;
pub mod token;
