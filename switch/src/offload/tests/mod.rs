//! Tests of the offload primitives against an independent reference, etherparse: frames are
//! built with its `PacketBuilder` ([`frames`]), and what the switch makes of them is parsed
//! back and checked with its checksum functions ([`reference`]).
//!
//! - [`checksum`]: the Internet checksum, pseudo-headers, `fill_partial`, `l4_checksum`;
//! - [`validation`]: the header checks, one test per lie, and what is accepted;
//! - [`segmentation`]: TSO and USO output, property-tested and at the edges;
//! - [`hostile`]: arbitrary headers and frames never panic, and what they pass segments right.

mod checksum;
mod frames;
mod hostile;
mod reference;
mod segmentation;
mod validation;

/// Property tests run `cases` cases and write no regression file (a failure prints its
/// shrunk input, to be made a unit test).
fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    }
}
