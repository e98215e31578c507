//! `/v1/ports`: list, create, show, delete.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use switch::config::PortConfig;
use switch::stats::PortCounters;
use switch::PortInfo;

use super::json::Body;
use super::routes::blocking;
use crate::app::{App, Undo};
use crate::error::{ApiError, ErrorBody};

/// A port: its config, where its queues are polled, and its counters over all PMDs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortView {
    /// The port's name.
    pub name: String,
    /// Its config, as in the config file's `[[port]]`.
    #[schema(value_type = Object)]
    pub config: PortConfig,
    /// Datapath port number.
    pub port_no: u32,
    /// For each rx queue, the PMD polling it.
    pub rxq_pmds: Vec<usize>,
    /// For ports with a peer to wait for (vhost-user): whether it is attached now (a
    /// frontend connected, its rings set up). Null for ports without one (memory).
    pub connected: Option<bool>,
    /// Counters summed over the PMDs.
    pub counters: Counters,
}

/// A port's counters.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Counters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the port's tx queue refused.
    pub tx_dropped: u64,
}

fn view(app: &App, p: PortInfo) -> PortView {
    let connected = app
        .switch
        .port_connections()
        .into_iter()
        .find(|&(no, _)| no == p.no)
        .and_then(|(_, c)| c);
    let mut total = PortCounters::default();
    for s in app.switch.stats() {
        if let Some(c) = s.stats.ports.get(p.no.index()) {
            total.add(c);
        }
    }
    PortView {
        name: p.config.name.clone(),
        port_no: p.no.0,
        rxq_pmds: p.rxq_pmds,
        connected,
        config: p.config,
        counters: Counters {
            rx_packets: total.rx_packets,
            rx_bytes: total.rx_bytes,
            tx_packets: total.tx_packets,
            tx_bytes: total.tx_bytes,
            tx_dropped: total.tx_dropped,
        },
    }
}

fn find(app: &App, name: &str) -> Result<PortInfo, ApiError> {
    app.switch
        .ports()
        .into_iter()
        .find(|p| p.config.name == name)
        .ok_or_else(|| ApiError::not_found("name", format!("no port named {name:?}")))
}

/// All ports, in creation order.
#[utoipa::path(get, path = "/v1/ports", tag = "ports",
    responses((status = 200, body = [PortView])))]
pub async fn list(State(app): State<Arc<App>>) -> Json<Vec<PortView>> {
    Json(
        app.switch
            .ports()
            .into_iter()
            .map(|p| view(&app, p))
            .collect(),
    )
}

/// Creates a port (body: a `[[port]]` of the config file, as JSON).
#[utoipa::path(post, path = "/v1/ports", tag = "ports",
    request_body(content = Object, description = "a [[port]] table: name, type, socket, mode, queues, ..."),
    responses((status = 201, body = PortView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(app): State<Arc<App>>,
    Body(cfg): Body<PortConfig>,
) -> Result<(StatusCode, Json<PortView>), ApiError> {
    let v = blocking(&app, move |app| {
        let name = cfg.name.clone();
        app.change(|sw| {
            sw.add_port(cfg)?;
            Ok(((), Undo::DelPort(name.clone())))
        })?;
        Ok(view(app, find(app, &name)?))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// One port.
#[utoipa::path(get, path = "/v1/ports/{name}", tag = "ports",
    params(("name" = String, Path, description = "port name")),
    responses((status = 200, body = PortView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<PortView>, ApiError> {
    let p = find(&app, &name)?;
    Ok(Json(view(&app, p)))
}

/// Deletes a port. Refused (409) while flows name it: delete them first, so the persisted
/// state always restores.
#[utoipa::path(delete, path = "/v1/ports/{name}", tag = "ports",
    params(("name" = String, Path, description = "port name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(&app, move |app| {
        app.change_persisted_first(
            |sw, mut state| {
                find(app, &name)?;
                let users: Vec<String> = sw
                    .flow_configs()
                    .iter()
                    .filter(|(_, f)| names_port(f, &name))
                    .map(|(id, _)| id.0.to_string())
                    .collect();
                if !users.is_empty() {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        format!(
                            "port {name:?} is used by flow(s) {}; delete them first",
                            users.join(", ")
                        ),
                        Some("name"),
                    ));
                }
                state.ports.retain(|p| p.name != name);
                Ok(state)
            },
            |sw| Ok(sw.del_port(&name)?),
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// True when the flow's match or actions name the port.
fn names_port(f: &switch::config::FlowConfig, name: &str) -> bool {
    let in_port = f.matches.get("in_port").is_some_and(|v| match v {
        switch::config::MatchValue::Text(t) => t == name,
        switch::config::MatchValue::Int(_) => false,
    });
    in_port
        || f.actions.iter().any(|a| {
            a.trim()
                .strip_prefix("output:")
                .is_some_and(|p| p.trim() == name)
        })
}
