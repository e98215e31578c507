//! API errors: a status and `{"error": reason, "field": path-or-null}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switch::config::{PathSeg, PortType, ProblemKind};
use switch::SwitchError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status (4xx for bad requests).
    pub status: StatusCode,
    /// Body.
    pub body: ErrorBody,
    /// A PMD did not confirm a change in time ([`SwitchError::PmdTimeout`]): the switch's
    /// control plane holds the change and it is queued to the PMDs, so it is made, only not
    /// confirmed. [`App::change`](crate::app::App::change) persists such a change.
    pub unconfirmed: bool,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What is wrong.
    pub error: String,
    /// The request field at fault (`match.ip_dst`, `flows[2].actions[0]`), or null.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a status, a message and maybe a field.
    pub fn new(status: StatusCode, error: impl Into<String>, field: Option<&str>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: field.map(str::to_string),
            },
            unconfirmed: false,
        }
    }

    /// 400 about `field`.
    pub fn bad(field: &str, error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, Some(field))
    }

    /// 404 about `field`.
    pub fn not_found(field: &str, error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error, Some(field))
    }

    /// 500.
    pub fn internal(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error, None)
    }

    /// Maps a switch error; `prefix` is prepended to validation paths (e.g. `flows` for a
    /// bulk request, whose switch paths start with `flow[i]`).
    pub fn from_switch(e: SwitchError, prefix: Option<&str>) -> ApiError {
        match e {
            SwitchError::Invalid(p) => {
                let mut path = p.path.clone();
                match (prefix, path.first()) {
                    (Some(pre), Some(PathSeg::Key(k))) if k == "flow" => {
                        path[0] = PathSeg::Key(pre.to_string());
                    }
                    (None, Some(PathSeg::Key(k))) if k == "flow" => {
                        // A single flow: drop `flow[0]`.
                        path.drain(..2.min(path.len()));
                    }
                    _ => {}
                }
                let status = match p.kind {
                    ProblemKind::Invalid => StatusCode::BAD_REQUEST,
                    ProblemKind::NoSuchPort => StatusCode::NOT_FOUND,
                    ProblemKind::Conflict => StatusCode::CONFLICT,
                };
                ApiError::new(status, p.message, Some(&render_path(&path)))
            }
            SwitchError::NoSuchPort(name) => {
                ApiError::not_found("name", format!("no port named {name:?}"))
            }
            SwitchError::PortExists(name) => ApiError::new(
                StatusCode::CONFLICT,
                format!("a port named {name:?} already exists"),
                Some("name"),
            ),
            SwitchError::NoSuchFlow(id) => {
                ApiError::not_found("id", format!("no flow with id {id}"))
            }
            e @ SwitchError::Unsupported { .. } => ApiError::bad("type", e.to_string()),
            // Without the port's type the field is unknown: see [`ApiError::from_add_port`].
            e @ SwitchError::Port { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, e.to_string(), None)
            }
            e @ SwitchError::PmdTimeout(_) => ApiError {
                unconfirmed: true,
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), None)
            },
            e => ApiError::internal(e.to_string()),
        }
    }

    /// Maps an error of adding a port of type `kind`: a port that could not be opened names
    /// the field saying what to open (`socket` for vhost-user, `interface` for afxdp and
    /// tap; none for the others, whose opening involves no field). What the request names
    /// does not exist (no such interface, no such directory for the socket): 404; it is in
    /// use (an interface another program or port holds, an address in use): 409; else 400.
    pub fn from_add_port(e: SwitchError, kind: PortType) -> ApiError {
        match e {
            SwitchError::Port { name, source } => {
                let field = match kind {
                    PortType::VhostUser => Some("socket"),
                    PortType::Afxdp | PortType::Tap => Some("interface"),
                    PortType::Memory | PortType::Vxlan => None,
                };
                let status = match &source {
                    ports::PortError::Os { source, .. } => open_failure_status(source),
                    _ => StatusCode::BAD_REQUEST,
                };
                let e = SwitchError::Port { name, source };
                ApiError::new(status, e.to_string(), field)
            }
            e => ApiError::from_switch(e, None),
        }
    }
}

/// 404 when what a port opens does not exist, 409 when it is in use, else 400: from the OS
/// error behind `e`, or failing that its kind.
fn open_failure_status(e: &std::io::Error) -> StatusCode {
    use std::io::ErrorKind;
    match os_error(e) {
        Some(libc_errno::ENODEV | libc_errno::ENOENT | libc_errno::ENXIO) => StatusCode::NOT_FOUND,
        Some(libc_errno::EBUSY | libc_errno::EEXIST | libc_errno::EADDRINUSE) => {
            StatusCode::CONFLICT
        }
        Some(_) => StatusCode::BAD_REQUEST,
        None => match e.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::ResourceBusy | ErrorKind::AlreadyExists | ErrorKind::AddrInUse => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::BAD_REQUEST,
        },
    }
}

/// The OS error behind `e`: its own, or the first one down the chain of the error it wraps.
fn os_error(e: &std::io::Error) -> Option<i32> {
    if let Some(code) = e.raw_os_error() {
        return Some(code);
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|inner| {
        let inner: &(dyn std::error::Error + 'static) = inner;
        inner
    });
    while let Some(err) = next {
        if let Some(code) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Some(code);
        }
        next = err.source();
    }
    None
}

/// The errno values [`ApiError::from_add_port`] tells apart.
mod libc_errno {
    pub use nix::libc::{EADDRINUSE, EBUSY, EEXIST, ENODEV, ENOENT, ENXIO};
}

/// `flow[2].match.ip_dst`: a config path as the switch writes it in its messages.
pub use switch::config::render_path;

impl From<SwitchError> for ApiError {
    fn from(e: SwitchError) -> ApiError {
        ApiError::from_switch(e, None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}
