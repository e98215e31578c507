//! What one client may ask of the API: body sizes per route, how long a request may take to
//! arrive, and how many connections each endpoint serves at once. docs/api.md
//! lists the same numbers.
//!
//! | what | limit |
//! | --- | --- |
//! | `POST /v1/trace` body | [`TRACE_BODY_LIMIT`] (384 KiB): the hex of the largest frame with a separator after every byte, each escaped in JSON |
//! | `POST /v1/flows/bulk` body | [`BULK_BODY_LIMIT`] (16 MiB): some 100k flows |
//! | every other body (`POST /v1/ports`, `/v1/flows`, `/v1/flows/delete`) | [`BODY_LIMIT`] (64 KiB) |
//! | a request's headers (and a kept-alive connection's idle time) | [`HEADER_TIMEOUT`] (30 s) |
//! | a request's body | [`BODY_TIMEOUT`] (30 s) |
//! | connections served at once, per endpoint (TCP, unix socket) | `--api-max-connections`, default [`DEFAULT_MAX_CONNECTIONS`] (64) |
//!
//! A body over its limit is answered 413 naming the limit (refused from `Content-Length`
//! before it is read, or as soon as the bytes read pass it). A connection over the cap is
//! answered 503 (`Retry-After: 1`) and closed; at most as many such answers are in progress at
//! once as connections are allowed, and connections beyond that are closed unanswered.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Largest body of the routes without a limit of their own: a port, a flow, a match to
/// delete by (a trunk port listing all 4094 VLANs takes some 20 KiB).
pub const BODY_LIMIT: usize = 64 << 10;

/// Largest `POST /v1/flows/bulk` body: some 100k flows of ~150 bytes.
pub const BULK_BODY_LIMIT: usize = 16 << 20;

/// The largest frame `POST /v1/trace` takes, in bytes: the largest the datapath carries
/// (a 64 KiB IP packet with its Ethernet and VLAN headers).
pub const MAX_TRACE_FRAME: usize = ports::packet::MAX_FRAME;

/// The longest `hex` of `POST /v1/trace`, in characters: two digits and one separator for
/// each byte of the largest frame.
pub const MAX_TRACE_HEX: usize = 3 * MAX_TRACE_FRAME;

/// Largest `POST /v1/trace` body: the longest `hex`, every separator escaped in JSON (`\n`,
/// two characters), plus room for the rest (`in_port`, the braces).
pub const TRACE_BODY_LIMIT: usize = 384 << 10;

/// How long a client has to send a request's headers, and how long a kept-alive connection
/// may sit idle between requests (hyper's header read timeout, which covers both).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client has to send a request's body once its headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections each endpoint serves at once unless `--api-max-connections` says otherwise.
/// A control API's clients are few (vswitchctl, an orchestrator's agent, Prometheus); each
/// connection holds at most one request at a time, so this also bounds the blocking threads
/// and request bodies in memory.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// How long a connection over the cap has to send its request before it is closed unanswered.
pub const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long stopping the server waits for requests in flight (a change waits up to 5 s for
/// the PMDs) before it closes their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `n` bytes in words: `64 KiB`, `16 MiB`, `1500 bytes`.
pub fn bytes_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// 413 for a body over `limit` bytes on `path`.
pub fn too_large(path: &str, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than the {} {path} accepts",
            bytes_text(limit)
        ),
        None,
    )
}

/// 503 for a connection over the cap of `max` (with `Retry-After: 1`; the connection is then
/// closed).
pub fn too_many_connections(max: usize) -> Response {
    let mut r = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the API is serving its limit of {max} connections on this endpoint \
             (--api-max-connections); retry shortly"
        ),
        None,
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_words() {
        assert_eq!(bytes_text(TRACE_BODY_LIMIT), "384 KiB");
        assert_eq!(bytes_text(BULK_BODY_LIMIT), "16 MiB");
        assert_eq!(bytes_text(BODY_LIMIT), "64 KiB");
        assert_eq!(bytes_text(1500), "1500 bytes");
    }

    /// The largest `hex` fits in the trace body even with every separator escaped.
    #[test]
    fn the_largest_trace_fits_its_body_limit() {
        let digits = 2 * MAX_TRACE_FRAME;
        let separators = MAX_TRACE_HEX - digits;
        let longest_in_port = 64;
        let json = r#"{"in_port":"","hex":""}"#.len();
        assert!(digits + 2 * separators + longest_in_port + json < TRACE_BODY_LIMIT);
    }
}
