//! Switch.
