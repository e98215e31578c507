//! `Body<T>`: a JSON request body whose errors name the field at fault (via
//! `serde_path_to_error`), answered as 400 `{"error", "field"}`. The body is read up to a
//! limit of the route's own (413 past it; see [`super::limits`]) and within
//! [`BODY_TIMEOUT`](super::limits::BODY_TIMEOUT) (408), and parsed on the blocking pool:
//! the runtime's one thread never spends a large body's parsing time. `PathParam<T>`: a
//! path parameter whose errors are answered the same way.

use std::pin::Pin;

use axum::body::HttpBody;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::limits::{self, BODY_LIMIT, BODY_TIMEOUT};
use crate::error::ApiError;

/// A JSON body of type `T`, of at most `MAX` bytes.
pub struct Body<T, const MAX: usize = BODY_LIMIT>(pub T);

impl<S: Send + Sync, T, const MAX: usize> FromRequest<S> for Body<T, MAX>
where
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read::<MAX>(req).await?;
        let value = tokio::task::spawn_blocking(move || parse::<T>(&bytes))
            .await
            .map_err(|e| ApiError::internal(format!("parsing the request body: {e}")))??;
        Ok(Body(value))
    }
}

/// Reads the whole body of `req`: 413 as soon as it is known to be over `MAX` bytes (from
/// `Content-Length`, before reading anything, or from what has arrived), 408 when it does not
/// arrive within [`BODY_TIMEOUT`].
async fn read<const MAX: usize>(req: Request) -> Result<Vec<u8>, ApiError> {
    let path = req.uri().path().to_string();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX as u64) {
        return Err(limits::too_large(&path, MAX));
    }
    let mut body = req.into_body();
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let collect = async {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body: {e}"),
                    None,
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX {
                    return Err(limits::too_large(&path, MAX));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Ok(done) => done.map(|()| buf),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
            None,
        )),
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

/// Parses `bytes` as JSON `T`; errors name the field (`match.ip_dst`, `[1].actions`). A
/// number written with a fraction or exponent whose value is a whole number (`7.0`, `1e3`)
/// is taken where an integer is expected: in JSON (and JSON Schema) it is that integer.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "the request needs a JSON body",
            None,
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let e = match serde_path_to_error::deserialize(de) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    // Once more with whole floats as integers, through a Value (which, unlike the first
    // pass, takes the last of duplicate keys: a corner of a corner), if there were any.
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Err(refusal(e));
    };
    if !whole_numbers(&mut value) {
        return Err(refusal(e));
    }
    serde_path_to_error::deserialize(value).map_err(refusal)
}

/// Turns every float of `v` whose value is a whole number in the `i64`/`u64` range into that
/// integer; true if there was one.
fn whole_numbers(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            let Some(f) = n.as_f64().filter(|_| n.is_f64()) else {
                return false;
            };
            if f.fract() != 0.0 || f < -(2f64.powi(63)) || f >= 2f64.powi(64) {
                return false;
            }
            *n = if f < 0.0 {
                (f as i64).into()
            } else {
                (f as u64).into()
            };
            true
        }
        Value::Array(a) => {
            // Every element, not just up to the first change.
            let mut changed = false;
            for x in a {
                changed |= whole_numbers(x);
            }
            changed
        }
        Value::Object(o) => {
            let mut changed = false;
            for x in o.values_mut() {
                changed |= whole_numbers(x);
            }
            changed
        }
        _ => false,
    }
}

/// A deserialization error as a 400 naming the field.
fn refusal(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    {
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
    }
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
    fn whole_floats_are_integers() {
        let o: Outer = parse(br#"{"top": 7.0, "list": [{"a": 1e3}]}"#).unwrap();
        assert_eq!((o.top, o.list[0].a), (7, 1000));
        for bad in [
            r#"{"top": 7.5, "list": []}"#,
            r#"{"top": -1.0, "list": []}"#,
        ] {
            let e = parse::<Outer>(bad.as_bytes()).unwrap_err();
            assert_eq!(e.body.field.as_deref(), Some("top"), "{bad}");
        }
        // Without a float, duplicate keys are still refused.
        assert!(parse::<Outer>(br#"{"top": 1, "top": 2, "list": []}"#).is_err());
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
