//! `Body<T>`: a JSON request body whose errors name the field at fault (via
//! `serde_path_to_error`), answered as 400 `{"error", "field"}`; `PathParam<T>`: a path
//! parameter whose errors are answered the same way.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
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

/// A path parameter (`/v1/ports/{name}`). axum's own `Path` answers a parameter it cannot
/// decode (`%AE`: not UTF-8) with a plain-text 400; this one answers with the JSON error every
/// other refusal uses. Found by the `rest_bodies` fuzz target (docs/FUZZING.md).
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| PathParam(v))
            .map_err(|e| ApiError::new(e.status(), e.body_text(), None))
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
        let at = (path != "." && path != "?").then_some(path);
        let field = match missing_field(&msg) {
            Some(name) => Some(match at {
                Some(at) => format!("{at}.{name}"),
                None => name.to_string(),
            }),
            None => at,
        };
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, msg, field.as_deref())
    })
}

/// The field serde names in "missing field `x`". serde reports a missing field at the
/// object that lacks it (`.` for the top level), so the caller joins the two.
fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        top: u32,
        list: Vec<Inner>,
    }

    fn field_of(json: &str) -> Option<String> {
        parse::<Outer>(json.as_bytes()).unwrap_err().body.field
    }

    #[test]
    fn missing_fields_are_named_with_their_path() {
        assert_eq!(field_of(r#"{"list": []}"#).as_deref(), Some("top"));
        assert_eq!(
            field_of(r#"{"top": 1, "list": [{"a": 1}, {}]}"#).as_deref(),
            Some("list[1].a")
        );
        assert_eq!(
            field_of(r#"{"top": 1, "list": [{"a": "x"}]}"#).as_deref(),
            Some("list[0].a")
        );
        assert_eq!(field_of(r#"{"top": 1"#), None);
    }
}
