//! The vswitch daemon's edge: command-line handling and logging for `vswitchd`. The REST
//! API, metrics exposition and `vswitchctl` join this crate later.
//!
//! Layering: the top of the stack; uses `switch` and never the other way round.
#![forbid(unsafe_code)]

pub mod daemon;
pub mod metrics;
