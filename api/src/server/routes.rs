//! The route table and the OpenAPI document built from the handlers' annotations.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
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

/// Largest accepted request body (a bulk flow request of some 100k flows).
const BODY_LIMIT: usize = 64 << 20;

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
    let doc = Arc::new(doc);
    Router::new()
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
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    // Rendering reads the PMDs' published mirrors only; it never waits for a PMD.
    let body = crate::metrics::render(&app.switch);
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        format!("no such resource: {}", uri.path()),
        None,
    )
}

/// Runs `f` on the blocking pool: switch calls wait for the PMDs.
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| ApiError::internal(format!("request task: {e}")))?
}
