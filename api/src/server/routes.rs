//! The route table.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::app::App;

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every route of the API.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(axum::extract::State(app): axum::extract::State<Arc<App>>) -> impl IntoResponse {
    // Rendering reads the PMDs' published mirrors only; it never waits for a PMD.
    let body = crate::metrics::render(&app.switch);
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body)
}
