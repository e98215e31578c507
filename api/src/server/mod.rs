//! The HTTP server: a tokio runtime on its own (non-PMD) thread serving the REST API, `/healthz`
//! and `/metrics` on a TCP address and/or a unix socket, stopped gracefully on request.
//!
//! Handlers never run switch calls on the runtime's thread: every [`Switch`](switch::Switch)
//! call, reads included (they take locks, if only briefly; a change waiting for the PMDs
//! holds none that reads need, but later changes wait for it), goes through
//! `spawn_blocking`, so a slow change never stalls `/healthz` or any other request.

mod auth;
mod fdb;
mod flows;
mod json;
mod ports;
mod routes;
mod schema;
mod stats;
mod trace;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::app::App;

/// The router [`Server::start`] serves, for callers that drive it in-process without a
/// socket (the `rest_bodies` fuzz target in `api/fuzz`, docs/FUZZING.md).
pub use routes::router;

/// The API's default TCP address (documented in the README).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6690";

/// Where the API listens.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// TCP address; `None` turns TCP off.
    pub tcp: Option<SocketAddr>,
    /// Unix socket path.
    pub unix: Option<PathBuf>,
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
        if let Some(addr) = tcp_addr {
            info!(%addr, "API listening on TCP");
        }
        if let Some(path) = &at.unix {
            info!(path = %path.display(), "API listening on unix socket");
        }
        let (stop, stopped) = watch::channel(false);
        let router = routes::router(app);
        let thread = std::thread::Builder::new()
            .name("api".into())
            .spawn(move || {
                rt.block_on(async move {
                    let wait = |mut rx: watch::Receiver<bool>| async move {
                        let _ = rx.wait_for(|s| *s).await;
                    };
                    let tcp = tcp.map(|l| {
                        tokio::spawn(
                            axum::serve(l, router.clone())
                                .with_graceful_shutdown(wait(stopped.clone()))
                                .into_future(),
                        )
                    });
                    let unix = unix.map(|l| {
                        tokio::spawn(
                            axum::serve(l, router.clone())
                                .with_graceful_shutdown(wait(stopped.clone()))
                                .into_future(),
                        )
                    });
                    for task in [tcp, unix].into_iter().flatten() {
                        match task.await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => warn!("API server: {e}"),
                            Err(e) => warn!("API server task: {e}"),
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

    /// Stops accepting, lets requests in flight finish, and joins the thread.
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
