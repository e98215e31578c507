//! The HTTP server: a tokio runtime on its own (non-PMD) thread serving the REST API, `/healthz`
//! and `/metrics` on a TCP address and/or a unix socket, stopped gracefully on request.
//!
//! Handlers never run switch calls on the runtime's thread: every [`Switch`](switch::Switch)
//! call, reads included (they take locks, if only briefly; a change waiting for the PMDs
//! holds none that reads need, but later changes wait for it), goes through
//! `spawn_blocking`, so a slow change never stalls `/healthz` or any other request; so do
//! parsing request bodies and decoding a trace's hex.
//!
//! The server accepts its own connections (hyper's HTTP/1 server, as axum's `serve` uses,
//! with a timer armed): each endpoint serves at most `--api-max-connections` at once, request
//! headers and bodies must arrive in time, and every route has a body limit ([`limits`]).

mod auth;
mod fdb;
mod flows;
mod json;
pub mod limits;
mod openapi;
mod ports;
mod routes;
mod schema;
mod stats;
mod trace;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use axum::serve::Listener;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use crate::app::App;

/// The router [`Server::start`] serves, for callers that drive it in-process without a
/// socket (the `rest_bodies` fuzz target in `api/fuzz`, docs/FUZZING.md).
pub use routes::router;

/// The API's default TCP address (documented in docs/api.md).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6690";

/// Where the API listens, and how many connections each endpoint serves at once.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// TCP address; `None` turns TCP off.
    pub tcp: Option<SocketAddr>,
    /// Unix socket path.
    pub unix: Option<PathBuf>,
    /// Connections served at once on each endpoint (at least 1); one more is answered 503
    /// and closed (see [`limits`]).
    pub max_connections: usize,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            tcp: None,
            unix: None,
            max_connections: limits::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The running server: its thread and the signal that stops it.
pub struct Server {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    unix: Option<PathBuf>,
    /// The TCP address actually bound (the port is known even when 0 was asked for).
    pub tcp_addr: Option<SocketAddr>,
}

impl Server {
    /// Binds every endpoint (errors name the address), then serves on a new thread. The
    /// thread inherits this thread's CPU mask: call it after keeping off the PMD cores.
    pub fn start(app: Arc<App>, at: &Endpoints) -> anyhow::Result<Server> {
        anyhow::ensure!(
            at.max_connections >= 1,
            "--api-max-connections must be at least 1"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("api")
            .build()
            .context("creating the API runtime")?;
        let (tcp, unix) = rt.block_on(async {
            let tcp = match at.tcp {
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("--api-listen {addr}"))?,
                ),
                None => None,
            };
            let unix = match &at.unix {
                Some(path) => Some(bind_unix(path)?),
                None => None,
            };
            anyhow::Ok((tcp, unix))
        })?;
        let tcp_addr = tcp.as_ref().map(|l| l.local_addr()).transpose()?;
        let max = at.max_connections;
        if let Some(addr) = tcp_addr {
            info!(%addr, max_connections = max, "API listening on TCP");
        }
        if let Some(path) = &at.unix {
            info!(path = %path.display(), max_connections = max, "API listening on unix socket");
        }
        let (stop, stopped) = watch::channel(false);
        let router = routes::router(app);
        let thread = std::thread::Builder::new()
            .name("api".into())
            .spawn(move || {
                rt.block_on(async move {
                    let tcp =
                        tcp.map(|l| tokio::spawn(serve(l, router.clone(), max, stopped.clone())));
                    let unix =
                        unix.map(|l| tokio::spawn(serve(l, router.clone(), max, stopped.clone())));
                    for task in [tcp, unix].into_iter().flatten() {
                        if let Err(e) = task.await {
                            warn!("API server task: {e}");
                        }
                    }
                });
            })
            .context("spawning the API thread")?;
        Ok(Server {
            stop,
            thread: Some(thread),
            unix: at.unix.clone(),
            tcp_addr,
        })
    }

    /// Stops accepting, lets requests in flight finish (up to
    /// [`limits::SHUTDOWN_GRACE`]), and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                warn!("the API thread panicked");
            }
        }
        if let Some(path) = self.unix.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An HTTP/1 connection builder with the header timeout (which also ends a kept-alive
/// connection idle that long) armed: axum's own `serve` sets no timer, so its connections
/// could wait forever.
fn http1_builder() -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits::HEADER_TIMEOUT);
    b
}

/// Serves `router` on `listener` until `stopped` turns true, at most `max` connections at
/// once; then stops accepting and gives the connections in flight
/// [`limits::SHUTDOWN_GRACE`] to finish. Nothing here blocks the runtime: a connection
/// over the cap is handed to a task that answers 503 and closes it.
async fn serve<L>(mut listener: L, router: Router, max: usize, mut stopped: watch::Receiver<bool>)
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    let served = Arc::new(Semaphore::new(max));
    let refusing = Arc::new(Semaphore::new(max));
    let graceful = GracefulShutdown::new();
    loop {
        let (io, peer) = tokio::select! {
            conn = listener.accept() => conn,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let io = TokioIo::new(io);
        match served.clone().try_acquire_owned() {
            Ok(permit) => {
                let conn =
                    http1_builder().serve_connection(io, TowerToHyperService::new(router.clone()));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        debug!(?peer, "API connection: {e}");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                let Ok(permit) = refusing.clone().try_acquire_owned() else {
                    debug!(
                        ?peer,
                        "API connection closed: over the cap, refusals busy too"
                    );
                    continue;
                };
                warn!(
                    ?peer,
                    max, "API connection refused: at its connection limit"
                );
                let answer = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, Infallible>(limits::too_many_connections(max))
                });
                let mut b = http1_builder();
                b.keep_alive(false)
                    .header_read_timeout(limits::REFUSAL_TIMEOUT);
                let conn = b.serve_connection(io, answer);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(limits::SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            "API requests still in flight after {:?}; closing their connections",
            limits::SHUTDOWN_GRACE
        );
    }
}

/// Binds a unix socket, replacing a stale socket file (but nothing else) at `path`.
fn bind_unix(path: &std::path::Path) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!(
                "--api-socket {}: exists and is not a socket",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| {
            format!("--api-socket {}: removing the stale socket", path.display())
        })?;
    }
    tokio::net::UnixListener::bind(path).with_context(|| format!("--api-socket {}", path.display()))
}
