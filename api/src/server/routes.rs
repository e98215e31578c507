//! The route table and the OpenAPI document built from the handlers' annotations.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{auth, fdb, flows, ports, stats, trace};
use crate::app::App;
use crate::error::ApiError;

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vswitch REST API",
        description = "Ports, flows, MAC learning, datapath statistics and packet trace of a \
            running vswitchd. Bodies use the config file's model (switch/src/config.rs). \
            Mutating calls need `Authorization: Bearer <token>`; every error is \
            `{\"error\": reason, \"field\": path-or-null}`."
    ),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

/// Every route of the API.
pub fn router(app: Arc<App>) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ports::list, ports::create))
        .routes(routes!(ports::show, ports::delete))
        .routes(routes!(flows::list, flows::create, flows::delete_all))
        .routes(routes!(flows::create_bulk))
        .routes(routes!(flows::delete_matching))
        .routes(routes!(flows::delete_one))
        .routes(routes!(fdb::list, fdb::flush))
        .routes(routes!(stats::show))
        .routes(routes!(trace::trace))
        .split_for_parts();
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    super::openapi::refine(&mut doc, &app.socket_dir());
    let doc = Arc::new(doc);
    let routes = Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_token,
        ))
        // Bodies are read by `json::Body` with each route's own limit; this one only bounds
        // axum's extractors, should a route ever use one.
        .layer(DefaultBodyLimit::max(super::limits::BODY_LIMIT))
        .with_state(app);
    // axum answers a known path asked with another method with a bare 405, and adds its
    // `Allow` header only after the layers on the routes have run: a layer around the whole
    // router sees the final answer and gives it the JSON error body.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn(method_not_allowed))
}

/// Middleware: turns axum's empty 405 into `{"error", "field": null}` naming the method and
/// the allowed ones (from the `Allow` header, which is kept); the status stays 405.
async fn method_not_allowed(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let res = next.run(req).await;
    if res.status() != StatusCode::METHOD_NOT_ALLOWED {
        return res;
    }
    let allow = res.headers().get(header::ALLOW).cloned();
    let allowed = allow
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "none".into());
    let mut out = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {path}; allowed: {allowed}"),
        None,
    )
    .into_response();
    if let Some(v) = allow {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(State(app): State<Arc<App>>) -> Result<impl IntoResponse, ApiError> {
    // Rendering reads the PMDs' published mirrors and the switch's tables only and never
    // asks a PMD; the locks it takes are never held while a change waits for the PMDs.
    let body = blocking(&app, |app| Ok(crate::metrics::render(&app.switch))).await?;
    Ok(([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!("no such resource: {}", uri.path()),
        None,
    )
}

/// Runs `f` on the blocking pool. Every handler that calls the switch goes through here, also
/// reads: a change waits (up to the PMD timeout) for the PMDs, later changes wait for it,
/// and reads take locks (briefly: the switch's tables, each PMD's counters mirror), while
/// the API's runtime is a single thread that must stay free for every other request
/// (`/healthz` above all).
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| ApiError::internal(format!("request task: {e}")))?
}
