//! The connection thread: one per port, never a PMD. It accepts (server mode) or makes
//! (client mode) the connection, runs the protocol loop one request at a time, and after a
//! disconnect tears this port's state down and waits for the next frontend.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recv, MsgFlags};
use tracing::{debug, info, warn};
use vhost::vhost_user::{BackendReqHandler, Error as ProtoError};

use super::handler::Handler;
use super::{warn_limited, PortShared};

/// How often a waiting thread checks whether its port was dropped.
const STOP_POLL_MS: u16 = 100;
/// First and last delay between connection attempts in client mode.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Server mode: accept, serve, repeat until the port is dropped.
pub(crate) fn server_loop(shared: Arc<PortShared>, listener: UnixListener) {
    if let Err(e) = listener.set_nonblocking(true) {
        warn_limited!("vhost-user listener: set_nonblocking failed: {e}");
    }
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(false).is_ok() {
                    serve(&shared, stream);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(STOP_POLL_MS));
            }
            Err(e) => {
                warn_limited!("vhost-user accept failed: {e}");
                std::thread::sleep(Duration::from_millis(u64::from(STOP_POLL_MS)));
            }
        }
    }
}

/// Client mode: connect with exponential backoff (forever), serve, repeat.
pub(crate) fn client_loop(shared: Arc<PortShared>, path: PathBuf) {
    let mut backoff = BACKOFF_MIN;
    while !shared.stopping() {
        match UnixStream::connect(&path) {
            Ok(stream) => {
                let start = Instant::now();
                serve(&shared, stream);
                // A peer that accepts and hangs up at once must not make us spin: only a
                // session that lasted a while resets the backoff.
                if start.elapsed() >= BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                } else {
                    sleep_unless_stopped(&shared, backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            Err(e) => {
                debug!(path = %path.display(), "vhost-user connect failed: {e}; retrying in {backoff:?}");
                sleep_unless_stopped(&shared, backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn sleep_unless_stopped(shared: &PortShared, d: Duration) {
    let step = Duration::from_millis(u64::from(STOP_POLL_MS));
    let mut left = d;
    while !left.is_zero() && !shared.stopping() {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}

/// `VHOST_USER_SET_VRING_ENABLE` (vhost-user spec, "Front-end message types").
const SET_VRING_ENABLE: u32 = 18;
/// A message header: request, flags, body size (u32 each, little-endian).
const HEADER_LEN: usize = 12;

/// If the next message on `stream` is `SET_VRING_ENABLE`, its vring index and value, read
/// without consuming anything (`MSG_PEEK`). Waits for the message like the crate's own read
/// would; fds attached to it stay queued for the crate.
fn peek_vring_enable(stream: &UnixStream) -> Option<(u32, bool)> {
    let peek = |buf: &mut [u8]| {
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_WAITALL;
        matches!(recv(stream.as_raw_fd(), buf, flags), Ok(n) if n == buf.len())
    };
    let mut msg = [0u8; HEADER_LEN + 8];
    if !peek(&mut msg[..HEADER_LEN]) {
        return None;
    }
    let word = |m: &[u8], at: usize| u32::from_le_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
    if word(&msg, 0) != SET_VRING_ENABLE || word(&msg, 8) != 8 || !peek(&mut msg) {
        return None;
    }
    Some((word(&msg, 12), word(&msg, 16) != 0))
}

/// Runs one connection to its end, then tears its state down.
fn serve(shared: &Arc<PortShared>, stream: UnixStream) {
    {
        // Checked under the lock the port's Drop takes: either Drop sees this connection and
        // shuts it down, or we see the stop flag.
        let mut conn = shared.conn.lock().unwrap_or_else(|e| e.into_inner());
        if shared.stopping() {
            return;
        }
        *conn = stream.try_clone().ok();
    }
    shared.connections.fetch_add(1, Ordering::Relaxed);
    shared.connected.store(true, Ordering::Release);
    if shared.connect_log.allow() {
        info!(socket = %shared.socket.display(), "vhost-user frontend connected");
    }
    let peek = stream.try_clone().ok();
    let handler = Arc::new(Mutex::new(Handler::new(shared.clone())));
    let mut req = BackendReqHandler::from_stream(stream, handler.clone());
    loop {
        // A refusal is only ever about the request that caused it.
        handler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_refused();
        // The one message the crate refuses without passing it on (below) is read here first.
        let early_enable = peek.as_ref().and_then(peek_vring_enable);
        match req.handle_request() {
            Ok(()) => {}
            Err(e) => {
                let refused = handler
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take_refused();
                if refused {
                    // Refused and (with REPLY_ACK) NACKed; the stream is still in step.
                    continue;
                }
                match e {
                    // QEMU (7.2) virtio-net sends SET_VRING_ENABLE(1) before SET_FEATURES and
                    // never again. The vhost crate refuses it (PROTOCOL_FEATURES not acked yet)
                    // after reading the whole message, without replying, so the stream is still
                    // in step; the message's index and value were peeked above.
                    ProtoError::InactiveFeature(f) => {
                        debug!("SET_VRING_ENABLE before SET_FEATURES ({f:?} not acked yet)");
                        if let Some((index, enable)) = early_enable {
                            handler
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .enable_before_features(index, enable);
                        }
                        continue;
                    }
                    ProtoError::Disconnected
                    | ProtoError::PartialMessage
                    | ProtoError::SocketBroken(_) => {
                        if shared.disconnect_log.allow() {
                            info!(socket = %shared.socket.display(), "vhost-user frontend disconnected");
                        }
                    }
                    e => {
                        if shared.disconnect_log.allow() {
                            warn!(
                                socket = %shared.socket.display(),
                                "vhost-user protocol error, dropping the connection: {e}"
                            );
                        }
                    }
                }
                break;
            }
        }
        if shared.stopping() {
            break;
        }
    }
    handler.lock().unwrap_or_else(|e| e.into_inner()).teardown();
    *shared.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    shared.connected.store(false, Ordering::Release);
}
