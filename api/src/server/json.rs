//! `Body<T>`: a JSON request body whose errors name the field at fault (via
//! `serde_path_to_error`), answered as 400 `{"error", "field"}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body of type `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text(), None))?;
        parse(&bytes).map(Body)
    }
}

/// Parses `bytes` as JSON `T`; errors name the field (`match.ip_dst`, `[1].actions`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "the request needs a JSON body",
            None,
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut msg = inner.to_string();
        // serde_json appends " at line L column C"; keep it for syntax errors only.
        if !inner.is_syntax() && !inner.is_eof() {
            if let Some(i) = msg.rfind(" at line ") {
                msg.truncate(i);
            }
        }
        let field = (path != "." && path != "?").then_some(path);
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, msg, field.as_deref())
    })
}
