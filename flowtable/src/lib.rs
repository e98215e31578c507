//! Pure, I/O-free packet logic for vswitch.
//!
//! Layers, used in one direction only:
//! - [`wire`]: typed, zero-copy views of each header (`Packet<T>` + `Repr`), under one no-panic
//!   contract;
//! - [`key`]: the [`FlowKey`] a frame is decided on, and its extraction from raw bytes;
//! - [`matching`] and [`action`]: what a rule matches (values + masks) and what it does;
//! - [`classifier`], [`emc`], [`fdb`]: the wildcard classifier (tuple-space search), the
//!   per-PMD exact-match cache and the MAC learning table.
//!
//! Nothing here does I/O, spawns threads or allocates per packet. The crate forbids `unsafe`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod action;
pub mod classifier;
pub mod emc;
pub mod fdb;
pub mod key;
pub mod matching;
pub mod types;
pub mod wire;

pub use action::Action;
pub use classifier::{
    Classifier, ClassifierError, ClassifierStats, Rule, RuleId, RuleIdx, RuleRef, SubtableInfo,
    BATCH_THRESHOLD, LOOKUP_BATCH,
};
pub use emc::{Emc, EmcStats};
pub use fdb::{L2Domain, Learned, MacEntry, MacTable};
pub use key::FlowKey;
pub use matching::{Field, Match};
pub use types::{MacAddr, PortNo, VlanId, Vni};
