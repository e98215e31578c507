//! Typed, zero-copy views of the headers the switch parses and builds. (Stub.)
