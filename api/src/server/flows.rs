//! `/v1/flows`: list with hit counters, create one or many (all or nothing), delete by id,
//! by match, or all.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use flowtable::RuleId;
use serde::{Deserialize, Serialize};
use switch::config::{FlowConfig, MatchValue};

use super::json::{Body, PathParam};
use super::limits::BULK_BODY_LIMIT;
use super::routes::blocking;
use crate::app::{App, Undo};
use crate::error::{ApiError, ErrorBody};

/// A flow: its id, its config (as in the config file's `[[flow]]`) and its hits.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlowView {
    /// The flow's id (stable across restarts).
    pub id: u64,
    /// Priority, 0..=65535 (higher wins).
    pub priority: u32,
    /// Match fields (absent: wildcard); `in_port` names a port.
    #[serde(rename = "match")]
    #[schema(value_type = BTreeMap<String, super::schema::MatchValue>)]
    pub matches: BTreeMap<String, MatchValue>,
    /// Actions, e.g. `output:vm2`, `normal`, `drop`, `push_vlan:10`.
    pub actions: Vec<String>,
    /// Frames this flow decided, over all PMDs.
    pub hits: u64,
}

impl FlowView {
    fn new(id: RuleId, f: FlowConfig, hits: u64) -> FlowView {
        FlowView {
            id: id.0,
            priority: f.priority,
            matches: f.matches,
            actions: f.actions,
            hits,
        }
    }
}

/// A bulk request: installed all together or not at all.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkFlows {
    /// The flows.
    #[schema(value_type = Vec<super::schema::FlowConfig>)]
    pub flows: Vec<FlowConfig>,
}

/// The ids of created flows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    /// In request order.
    pub ids: Vec<u64>,
}

/// Which flows to delete: those whose match equals this one (and priority, when given).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchQuery {
    /// The match, as in a flow.
    #[serde(rename = "match", default)]
    #[schema(value_type = BTreeMap<String, super::schema::MatchValue>)]
    pub matches: BTreeMap<String, MatchValue>,
    /// Only flows of this priority.
    pub priority: Option<u32>,
}

/// The ids of deleted flows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// Ids removed.
    pub deleted: Vec<u64>,
}

/// All flows with their hit counters, in id order.
#[utoipa::path(get, path = "/v1/flows", operation_id = "list_flows", tag = "flows",
    responses((status = 200, body = [FlowView])))]
pub async fn list(State(app): State<Arc<App>>) -> Result<Json<Vec<FlowView>>, ApiError> {
    let flows = blocking(&app, |app| Ok(app.switch.flows()?)).await?;
    Ok(Json(
        flows
            .into_iter()
            .map(|f| FlowView::new(f.id, f.config, f.hits))
            .collect(),
    ))
}

/// Creates one flow (body: a `[[flow]]` of the config file, as JSON).
#[utoipa::path(post, path = "/v1/flows", operation_id = "create_flow", tag = "flows",
    request_body(content = super::schema::FlowConfig,
        description = "a [[flow]] table of the config file, as JSON"),
    responses((status = 201, body = FlowView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody,
            description = "`in_port` or an `output:` names no port"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB")))]
pub async fn create(
    State(app): State<Arc<App>>,
    Body(flow): Body<FlowConfig>,
) -> Result<(StatusCode, Json<FlowView>), ApiError> {
    let v = blocking(&app, move |app| {
        app.change(|sw| {
            let ids = sw.add_flows(std::slice::from_ref(&flow))?;
            Ok((ids[0], Undo::DelFlows(ids)))
        })
        .map(|id| FlowView::new(id, flow, 0))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Creates many flows at once: all valid and installed, or none (the error names
/// `flows[i]...`).
#[utoipa::path(post, path = "/v1/flows/bulk", operation_id = "create_flows_bulk", tag = "flows",
    request_body = BulkFlows,
    responses((status = 201, body = Created), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody,
            description = "a flow's `in_port` or `output:` names no port"),
        (status = 413, body = ErrorBody, description = "the body is over 16 MiB")))]
pub async fn create_bulk(
    State(app): State<Arc<App>>,
    Body(bulk): Body<BulkFlows, BULK_BODY_LIMIT>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let ids = blocking(&app, move |app| {
        app.change(|sw| {
            let ids = sw
                .add_flows(&bulk.flows)
                .map_err(|e| ApiError::from_switch(e, Some("flows")))?;
            Ok((ids.clone(), Undo::DelFlows(ids)))
        })
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            ids: ids.iter().map(|i| i.0).collect(),
        }),
    ))
}

/// Deletes one flow.
#[utoipa::path(delete, path = "/v1/flows/{id}", operation_id = "delete_flow", tag = "flows",
    params(("id" = u64, Path, description = "flow id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn delete_one(
    State(app): State<Arc<App>>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad("id", format!("{id:?} is not a flow id (a number)")))?;
    blocking(&app, move |app| {
        app.change(|sw| {
            let config = sw
                .flow_configs()
                .into_iter()
                .find(|(i, _)| i.0 == id)
                .ok_or_else(|| ApiError::not_found("id", format!("no flow with id {id}")))?;
            sw.del_flow(RuleId(id))?;
            Ok(((), Undo::RestoreFlows(vec![config])))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes every flow whose match equals the given one (compared as compiled matches).
#[utoipa::path(post, path = "/v1/flows/delete", operation_id = "delete_flows_matching", tag = "flows",
    request_body = MatchQuery,
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody,
            description = "`in_port` names no port"),
        (status = 413, body = ErrorBody, description = "the body is over 64 KiB")))]
pub async fn delete_matching(
    State(app): State<Arc<App>>,
    Body(q): Body<MatchQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = blocking(&app, move |app| {
        app.change(|sw| {
            let before = sw.flow_configs();
            let ids = sw.del_flows_matching(&q.matches, q.priority)?;
            let undo = before
                .into_iter()
                .filter(|(id, _)| ids.contains(id))
                .collect();
            Ok((ids, Undo::RestoreFlows(undo)))
        })
    })
    .await?;
    Ok(Json(Deleted {
        deleted: deleted.iter().map(|i| i.0).collect(),
    }))
}

/// Deletes every flow.
#[utoipa::path(delete, path = "/v1/flows", operation_id = "delete_all_flows", tag = "flows",
    responses((status = 200, body = Deleted), (status = 401, body = ErrorBody)))]
pub async fn delete_all(State(app): State<Arc<App>>) -> Result<Json<Deleted>, ApiError> {
    let deleted = blocking(&app, |app| {
        app.change(|sw| {
            let before = sw.flow_configs();
            sw.del_all_flows()?;
            let ids = before.iter().map(|(id, _)| id.0).collect();
            Ok((ids, Undo::RestoreFlows(before)))
        })
    })
    .await?;
    Ok(Json(Deleted { deleted }))
}
