//! Bearer-token check for mutating calls (everything but GET/HEAD and `POST /v1/trace`,
//! which changes nothing).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::ApiError;

/// Middleware: 401 unless a mutating request carries `Authorization: Bearer <token>`.
pub async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(token) = app.token() else {
        return next.run(req).await;
    };
    let read_only =
        matches!(*req.method(), Method::GET | Method::HEAD) || req.uri().path() == "/v1/trace";
    if read_only {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if crate::token::equal(t.trim(), token) => next.run(req).await,
        Some(_) => unauthorized("the bearer token is wrong"),
        None => unauthorized("this call needs an Authorization: Bearer <token> header (token file: see --api-token-file)"),
    }
}

fn unauthorized(msg: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, msg, Some("Authorization")).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        "Bearer".parse().expect("static header"),
    );
    r
}
